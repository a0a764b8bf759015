"""Where frames come from: a video file, a camera, an image folder or one image, in order.

source = FrameSource("video.mp4", max_frames=100)
for frame in source:          # Frame(index, time, rgb, file)
    ...
source.close()
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from handspot.detections import Detections
from handspot.errors import UserError
from handspot.images import read_image
from handspot.profile import Profile, stage

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Frame:
    index: int
    time: float  # seconds from the start of the source
    rgb: np.ndarray
    file: str = ""  # the image's file name, for an image or image-folder source


# What a loop calls on every frame, in frame order, with the detector's result on the frames it
# ran on (None on the others): the detections to draw and write (tracking goes here).
Hook = Callable[[Frame, Detections | None], Detections]


def schedule(hook: Hook | None, every: int) -> Callable[[int], bool]:
    """Which frames the detector runs on, asked in frame order: the hook's own schedule where
    it keeps one (video mode paces the detector by how well its tracks hold), else every
    ``every``-th frame."""
    own = getattr(hook, "should_detect", None)
    return own if own is not None else (lambda index: index % every == 0)


def close_hook(hook: Hook | None) -> None:
    """A hook that holds threads (video mode's crop pool) lets them go."""
    if hasattr(hook, "close"):
        hook.close()


class FrameSource:
    """Frames from a video file, a camera index, an image folder or one image, in order, at
    ``width`` x ``height`` when both are given; at most ``max_frames`` (0: all). Unreadable
    images in a folder are skipped and counted (``skipped``); ``read`` counts the frames given."""

    def __init__(
        self,
        spec: str,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        *,
        max_frames: int = 0,
        profile: Profile | None = None,
    ):
        self.spec, self.size, self.skipped, self.read = spec, (width, height), 0, 0
        self.max_frames, self.profile = max_frames, profile
        self._cap = None
        self._images: list[Path] = []
        path = Path(spec)
        if spec.isdigit():
            self._cap = cv2.VideoCapture(int(spec))
            if width and height:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if not self._cap.isOpened():
                raise UserError(f"cannot open camera {spec}")
            self.kind = "camera"
        elif path.is_dir():
            self._images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if not self._images:
                raise UserError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in {path}")
            self.kind = "images"
        elif path.is_file() and path.suffix.lower() in IMAGE_EXTS:
            self._images = [path]
            self.kind = "images"
        elif path.is_file():
            self._cap = cv2.VideoCapture(str(path))
            if not self._cap.isOpened():
                raise UserError(f"cannot open video {path} (not a video OpenCV can decode)")
            self.kind = "video"
        else:
            raise UserError(
                f"source not found: {spec} (a video file, image folder, image, or camera index)"
            )
        native = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0
        self.fps = fps or (native if native and native > 0 else 30.0)

    def __len__(self) -> int:
        if self._images:
            n = len(self._images)
        elif self.kind == "video":
            n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        else:
            n = 0
        return min(n, self.max_frames) if self.max_frames else n

    def _resize(self, bgr: np.ndarray) -> np.ndarray:
        w, h = self.size
        if w and h and (bgr.shape[1], bgr.shape[0]) != (w, h):
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[Frame]:
        for frame in self._frames():
            if self.max_frames and frame.index >= self.max_frames:
                return
            self.read += 1
            yield frame

    def _frames(self) -> Iterator[Frame]:
        if self._images:
            index = 0
            for path in self._images:
                bgr = read_image(path)
                if bgr is None:
                    self.skipped += 1
                    print(f"warning: {path} could not be decoded; skipped", file=sys.stderr)
                    continue
                yield Frame(index, index / self.fps, self._resize(bgr), path.name)
                index += 1
            if not index:
                raise UserError(f"none of the {self.skipped} image(s) in {self.spec} could be read")
            return
        index, start = 0, time.monotonic()
        while True:
            with stage(self.profile, "decode"):
                ok, bgr = self._cap.read()
            if not ok:
                break
            t = index / self.fps if self.kind == "video" else time.monotonic() - start
            with stage(self.profile, "resize"):
                rgb = self._resize(bgr)
            yield Frame(index, t, rgb)
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
