"""Where results go, one job each: the annotated video, the JSON lines, the window and the
annotated picture. Every sink gets the frames in order through ``write`` and finishes its file in
``close`` (complete and playable, also after Ctrl-C); files are written under a temporary name
and renamed into place; devices, FIFOs and ``/dev/stdout`` are written straight, and a link's
target gets the content (``handspot.files.output_target``).

    sinks = [VideoSink("out.mp4", fps=30), JsonLinesSink("out.jsonl")]
    annotate = Annotator()
    for frame, det in ...:
        picture = annotate(frame, det) if any(s.needs_picture for s in sinks) else None
        for sink in sinks:
            sink.write(frame, det, picture)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from handspot.detections import Detections
from handspot.draw import draw_detections
from handspot.errors import UserError
from handspot.files import atomic_write_bytes, open_straight, output_target, part_path
from handspot.profile import Profile, stage
from handspot.sources import Frame

VIDEO_OUTPUTS = (".mp4", ".webm", ".avi")
IMAGE_OUTPUTS = (".jpg", ".jpeg", ".png")  # for an image source: the annotated picture


class Annotator:
    """The annotated BGR picture of a frame (``draw_detections``)."""

    def __init__(self, profile: Profile | None = None):
        self.profile = profile

    def __call__(self, frame: Frame, det: Detections) -> np.ndarray:
        with stage(self.profile, "draw"):
            return cv2.cvtColor(draw_detections(frame.rgb, det), cv2.COLOR_RGB2BGR)


def stamp_fps(bgr: np.ndarray, fps: float) -> None:
    """The frame rate in the picture's corner (streams only, not still pictures)."""
    cv2.putText(
        bgr, f"{fps:.1f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 255, 255), 2,
        cv2.LINE_AA,
    )  # fmt: skip


class Sink:
    """Gets every frame in order; ``needs_picture``: it wants the annotated picture."""

    needs_picture = False

    def write(self, frame: Frame, det: Detections, picture: np.ndarray | None) -> bool:
        """Take one frame; False asks the loop to stop (the user closed the window)."""
        return True

    def close(self) -> None:
        """Finish the output so it is complete."""

    def abort(self) -> None:
        """The run failed: leave the output as it was before (nothing half-written)."""
        self.close()


class JsonLinesSink(Sink):
    """One JSON line a frame: ``{"frame", "file" (image sources), "time", "detections"}``."""

    def __init__(self, path: str | Path, profile: Profile | None = None):
        self.path, straight = output_target(path)
        self.profile = profile
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = None if straight else part_path(self.path)
        # straight: appended (a stdout redirected with >> keeps what it had), line-buffered (a
        # reader of /dev/stdout or a FIFO gets each frame's line as it comes)
        if straight:
            self._file = open_straight(self.path, "a", buffering=1)
        else:
            self._file = open(self._tmp, "w")  # noqa: SIM115 (closed in close())

    def write(self, frame, det, picture=None):
        with stage(self.profile, "json"):
            line = {
                "frame": frame.index,
                **({"file": frame.file} if frame.file else {}),
                "time": round(frame.time, 4),
                "detections": det.to_json(),
            }
            try:
                self._file.write(json.dumps(line) + "\n")
            except OSError as e:
                self.abort()
                raise UserError(f"cannot write {self.path}: {e.strerror or e}") from None
        return True

    def close(self):
        if self._file.closed:
            return
        try:
            self._file.close()
        except OSError as e:
            self.abort()
            raise UserError(f"cannot write {self.path}: {e.strerror or e}") from None
        if self._tmp is not None:
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Nothing half-written under the final name: the temporary file goes (lines already
        written to a stream stay: they were complete)."""
        with contextlib.suppress(OSError):
            self._file.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


CODECS = ("auto", "h264", "vp9", "mp4v", "mjpg")
VIDEO_CODECS = {".mp4": ("h264", "mp4v"), ".webm": ("vp9",), ".avi": ("mjpg",)}


def choose_codec(path: str | Path, codec: str = "auto") -> str:
    """The codec for a video file: ``auto`` is H.264 for .mp4 (browsers play it; MPEG-4 part 2,
    ``mp4v``, when PyAV is not installed), VP9 for .webm, MJPEG for .avi. One error for a codec
    the container does not hold or that needs PyAV where it is missing."""
    suffix = Path(path).suffix.lower()
    allowed = VIDEO_CODECS.get(suffix, ())
    if codec == "auto":
        return allowed[0] if allowed[0] not in AV_CODECS or has_pyav() else allowed[-1]
    if codec not in allowed:
        raise UserError(f"--codec {codec} does not go in {suffix} (there: {', '.join(allowed)})")
    if codec in AV_CODECS and not has_pyav():
        raise UserError(f"--codec {codec} needs PyAV: pip install av (or handspot[video])")
    return codec


def has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


AV_CODECS = {  # codec -> PyAV's encoder and its options: as fast as OpenCV's mp4v, or near
    "h264": ("libx264", {"preset": "ultrafast", "crf": "23"}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"}),
}


class OpenCvEncoder:
    """MPEG-4 part 2 (``mp4v``) or MJPEG through OpenCV."""

    def __init__(self, path: Path, codec: str, fps: float, size: tuple[int, int]):
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if codec == "mp4v" else "MJPG"))
        self._writer = cv2.VideoWriter(str(path), fourcc, fps, size)
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write {codec}")

    def write(self, bgr: np.ndarray) -> None:
        self._writer.write(bgr)

    def close(self) -> None:
        self._writer.release()


class PyAvEncoder:
    """H.264 or VP9 through PyAV (FFmpeg): what browsers play. Odd sizes are padded to even
    (4:2:0 chroma needs them)."""

    def __init__(self, path: Path, codec: str, fps: float, size: tuple[int, int]):
        from fractions import Fraction

        import av

        name, options = AV_CODECS[codec]
        fmt = "webm" if codec == "vp9" else "mp4"
        self._container = av.open(str(path), "w", format=fmt)
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream(name, rate=rate, options=options)
        self._stream.width, self._stream.height = (v + v % 2 for v in size)
        self._stream.pix_fmt = "yuv420p"
        self._pad = (self._stream.height - size[1], self._stream.width - size[0])

    def write(self, bgr: np.ndarray) -> None:
        import av

        if any(self._pad):
            bgr = cv2.copyMakeBorder(bgr, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_CONSTANT)
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode())
        self._container.close()


class VideoSink(Sink):
    """The annotated video (.mp4: H.264, or MPEG-4 part 2 without PyAV; .webm: VP9; .avi:
    MJPEG; ``codec`` as ``choose_codec``), opened at the first frame's size; a frame of another
    size (a folder of mixed photos) is fitted into it, not dropped."""

    needs_picture = True

    def __init__(
        self, path: str | Path, fps: float, profile: Profile | None = None, codec: str = "auto"
    ):
        self.path, self.fps, self.profile = Path(path), fps, profile
        self.codec = choose_codec(self.path, codec)
        self._writer = None
        self._tmp = None
        self._straight = False
        self._size: tuple[int, int] | None = None  # width, height
        self.fitted = 0  # frames of another size, fitted into the video's

    def _open(self, shape) -> OpenCvEncoder | PyAvEncoder:
        suffix = self.path.suffix
        self.path, self._straight = output_target(self.path)
        if self._straight:  # a device or pipe cannot be seeked: encode aside, copy in at close
            fd, name = tempfile.mkstemp(prefix="detect-", suffix=suffix)
            os.close(fd)
            self._tmp = Path(name)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = part_path(self.path)
        encoder = PyAvEncoder if self.codec in AV_CODECS else OpenCvEncoder
        try:
            return encoder(self._tmp, self.codec, self.fps, (shape[1], shape[0]))
        except (OSError, ValueError) as e:
            self._tmp.unlink(missing_ok=True)
            raise UserError(f"cannot write video {self.path} ({self.codec}: {e})") from None

    def write(self, frame, det, picture):
        with stage(self.profile, "encode+write"):
            if self._writer is None:
                self._writer = self._open(picture.shape)
                self._size = (picture.shape[1], picture.shape[0])
            if (picture.shape[1], picture.shape[0]) != self._size:
                if not self.fitted:
                    w, h = self._size
                    print(f"warning: {self.path.name}: frames of other sizes are fitted into "
                          f"the first frame's {w}x{h}", file=sys.stderr)  # fmt: skip
                self.fitted += 1
                picture = fit(picture, *self._size)
            self._writer.write(picture)
        return True

    def abort(self):
        if self._writer is None:
            return
        with contextlib.suppress(Exception):
            self._writer.close()
        self._writer = None
        self._tmp.unlink(missing_ok=True)

    def close(self):
        if self._writer is None:
            return
        try:
            self._writer.close()
            self._writer = None
            if not playable(self._tmp):  # the encoder says nothing when the disk fills up
                raise UserError(f"cannot write {self.path}: the video could not be finished "
                                "(disk full?)")  # fmt: skip
            if not self._straight:
                os.replace(self._tmp, self.path)
                return
            with open(self._tmp, "rb") as src, open_straight(self.path, "ab") as dst:
                shutil.copyfileobj(src, dst)
        except OSError as e:
            raise UserError(f"cannot write {self.path}: {e.strerror or e}") from None
        finally:
            self._writer = None
            self._tmp.unlink(missing_ok=True)


def fit(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """``picture`` scaled to fit ``width`` x ``height``, its aspect kept, centred on black."""
    h, w = picture.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - size[0]) // 2, (height - size[1]) // 2
    out[y : y + size[1], x : x + size[0]] = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    return out


def playable(path: Path) -> bool:
    """Whether a written video opens and gives its first frame (a truncated mp4 does not)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return capture.isOpened() and capture.read()[0]
    finally:
        capture.release()


class PictureSink(Sink):
    """The annotated picture of an image source (.jpg, .png); of a folder, the last one, written
    when the run ends."""

    needs_picture = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._encoded: bytes | None = None

    def write(self, frame, det, picture):
        ok, encoded = cv2.imencode(self.path.suffix, picture)
        if not ok:
            raise UserError(f"cannot encode {self.path}")
        self._encoded = encoded.tobytes()
        return True

    def close(self):
        if self._encoded is None:
            return
        try:
            atomic_write_bytes(self.path, self._encoded)
        except OSError as e:
            raise UserError(f"cannot write {self.path}: {e.strerror or e}") from None
        finally:
            self._encoded = None

    def abort(self):
        self._encoded = None


class WindowSink(Sink):
    """A window showing the annotated frames; q or Esc stops."""

    needs_picture = True

    @classmethod
    def open(cls) -> WindowSink | None:
        """The window, or None (said on stderr) where none can be shown."""
        if why := gui_available():
            print(f"warning: --display ignored: {why}", file=sys.stderr)
            return None
        return cls()

    def write(self, frame, det, picture):
        cv2.imshow("hands", picture)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self):
        cv2.destroyAllWindows()


def gui_available() -> str | None:
    """``None`` when a window can be shown, else why not."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display (DISPLAY is not set)"
    info = cv2.getBuildInformation()
    gui = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if "NONE" in gui.upper():
        return (
            "this OpenCV has no GUI (opencv-python-headless); `pip install "
            "--force-reinstall opencv-python==<same version>` for windows"
        )
    return None
