"""Hands in images and in video from Python, in the shape MediaPipe Tasks' detectors have: one
options class, ``detect`` for an image and ``detect_for_video`` for the frames of one video in
order (tracking: an id a hand), each returning ``Detections``.

    import cv2
    import handspot

    with handspot.HandDetector(handspot.HandDetectorOptions(score_threshold=0.5)) as hands:
        rgb = cv2.cvtColor(cv2.imread("hands.jpg"), cv2.COLOR_BGR2RGB)
        found = hands.detect(rgb)     # boxes, scores, keypoints (N, 21, 3), data["handedness"]
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from handspot.assets import LANDMARK_MODELS, SHIPPED_MODEL
from handspot.backends import BACKENDS, Backend, check_backend, default_backend, load_detector
from handspot.calibrate import forced_backend, pick, pick_landmarks
from handspot.card import ModelCard
from handspot.detections import Detections
from handspot.detector import Detector
from handspot.errors import UserError
from handspot.landmarks import MODEL_HELP, HandLandmarker, LandmarkModel, LandmarkOptions
from handspot.masks import Masker, MaskOptions
from handspot.options import option
from handspot.profile import Profile
from handspot.sources import Frame, Hook, close_hook, schedule
from handspot.tracking import BoxTracker, HandTracker, TrackOptions


@dataclass(frozen=True)
class HandDetectorOptions:
    """The detector, its landmark stage and its video mode: what ``HandDetector`` and the
    command line (``DetectOptions``, which adds sources and outputs) share, defaults included.
    ``landmarks`` None means "decide for me": on for a hand model (one class, hand)."""

    model: str = option(str(SHIPPED_MODEL), "exported model folder (default: the shipped model)")
    backend: str | None = option(
        None,
        "artifact to run (default: HANDSPOT_BACKEND, else the faster of the model's raw int8 "
        "and float networks on this CPU, timed once and cached; tflite, the OD API graph, "
        "where the model has no litert/)",
        type=str,
    )
    score_threshold: float = option(0.5, flags=("--score-thresh",))
    threads: int = option(1, "threads per TFLite interpreter")
    landmarks: bool | None = option(
        None,
        "the landmark stage: 21 keypoints, left/right and hand presence per hand (MediaPipe's "
        "hand landmark model), boxes that show no hand down-weighted (default: on for a hand "
        "model, one class named hand)",
        type=bool,
    )
    landmark_model: str = option("auto", MODEL_HELP, choices=("auto", *LANDMARK_MODELS))
    mirrored: bool = option(False, "the frames are mirrored (a selfie view): left/right as is")
    masks: bool = option(
        False, "a mask for every hand: GrabCut seeded by its 21 keypoints (needs the landmark "
        "stage; some ms a hand: off by default)"
    )  # fmt: skip
    detect_every: int = option(
        5, "video with the landmark stage: run the detector every N frames (and when a hand "
        "is lost)"
    )  # fmt: skip
    max_hands: int | None = option(
        None, "with the landmark stage, at most this many hands: in video those followed "
        "(default 4; while that many hold, the detector rests), in an image the best ones "
        "(default: all)", type=int,
    )  # fmt: skip
    crop_threads: int | None = option(
        None, "detect_for_video: threads for a frame's hand crops (default: crop_threads(), one "
        "a hand up to max_hands, as many as the CPUs); the command line's are its --num-workers",
        type=int, cli=False,
    )  # fmt: skip

    def check(self, backends: Mapping[str, Backend] = BACKENDS) -> None:
        """Every bad option as one message, before anything loads."""
        if not 0.0 <= self.score_threshold <= 1.0:
            raise UserError(
                f"--score-threshold must be between 0 and 1, got {self.score_threshold}"
            )
        if self.threads < 1:
            raise UserError("--threads must be at least 1")
        if self.detect_every < 1:
            raise UserError("--detect-every must be at least 1")
        if self.crop_threads is not None and self.crop_threads < 1:
            raise UserError("crop_threads must be at least 1")
        if self.max_hands is not None and self.max_hands < 1:
            raise UserError("--max-hands must be at least 1")
        backend = self.backend or forced_backend() or default_backend(self.model)
        check_backend(self.model, backend, backends)
        if self.masks and self.landmarks is False:
            raise UserError("--masks needs the landmark stage (its keypoints seed the masks)")
        if self.max_hands is not None and self.landmarks is False:
            raise UserError("--max-hands needs the landmark stage (boxes only keep every box)")

    def resolved(self):
        """These options with "decide for me" decided (the one place that decides): the
        landmark stage for a hand model, and the backend fastest on this CPU
        (``handspot.calibrate``)."""
        o = self
        if o.landmarks is None:
            labels = list(ModelCard.load(o.model).labels.values())
            o = replace(o, landmarks=labels == ["hand"])
        if o.backend is None:
            o = replace(o, backend=pick(o.model, o.threads)[0])
        if o.landmarks and o.landmark_model == "auto":
            o = replace(o, landmark_model=pick_landmarks(o.threads)[0])
        return o

    def landmark_options(self) -> LandmarkOptions:
        return LandmarkOptions(
            model=self.landmark_model, mirrored=self.mirrored, max_hands=self.max_hands
        )

    def track_options(self) -> TrackOptions:
        most = TrackOptions().max_hands if self.max_hands is None else self.max_hands
        return TrackOptions(detect_every=self.detect_every, max_hands=most)

    def masker(self) -> Masker | None:
        return Masker(MaskOptions()) if self.masks else None

    def detector_factory(
        self, *, stage: bool = True, boxes_for: bool = False,
        backends: Mapping[str, Backend] = BACKENDS,
    ) -> Callable[[], Detector]:  # fmt: skip
        """A function making one detector of these options (one per worker): the backend, and
        the landmark stage after it when on (``stage=False``: the backend alone). ``boxes_for``:
        the boxes feed a later stage or a tracker, so the weaker ones are kept too."""
        o = self.resolved()
        backend = o.backend
        threshold = o.score_threshold
        if o.landmarks or boxes_for:  # the stage and ByteTrack want the weaker boxes too
            threshold = min(threshold, o.landmark_options().min_score)
        kwargs = {"score_threshold": threshold, "backends": backends}
        if backend.startswith("tflite"):
            kwargs["num_threads"] = o.threads
        boxes = functools.partial(load_detector, o.model, backend, **kwargs)
        if not (o.landmarks and stage):
            return boxes
        return lambda: HandLandmarker(
            boxes(), o.landmark_options(), score_threshold=o.score_threshold, masker=o.masker()
        )

    def video_hook(
        self, fps: float, backends: Mapping[str, Backend] = BACKENDS,
        make_detector: Callable[[], Detector] | None = None, *, workers: int = 1,
        profile: Profile | None = None, landmark_model: LandmarkModel | None = None,
    ) -> tuple[Hook, int]:  # fmt: skip
        """Video mode's per-frame hook and how often the loop runs the detector: the landmark
        stage's tracking (each hand's crop follows its keypoints; ``workers`` crops at once) or,
        boxes only, ByteTrack."""
        o = self.resolved()
        if not o.landmarks:
            return BoxTracker(fps=fps, score_threshold=o.score_threshold), 1
        tracker = HandTracker(
            make_detector or o.detector_factory(stage=False, boxes_for=True, backends=backends),
            o.landmark_options(),
            o.track_options(),
            score_threshold=o.score_threshold,
            workers=workers,
            profile=profile,
            masker=o.masker(),
            model=landmark_model,
        )
        return tracker, tracker.detect_every


def crop_threads(max_hands: int) -> int:
    """Threads for the hands' crops of a frame in ``detect_for_video``: one a hand (up to
    ``max_hands``), as many as the CPUs this process may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(max_hands, cpus or 1))


class HandDetector:
    """Hands with the options' model and stage: ``detect(rgb)`` on any image, and
    ``detect_for_video(rgb, timestamp_ms)`` on the frames of one video, in order, which keeps
    the tracking state (a ``track_id`` per hand) between calls; there, the hands' crops of a
    frame run at once (``crop_threads`` threads), beside the detector where it runs. Images are
    RGB uint8 HxWx3."""

    def __init__(self, options: HandDetectorOptions | None = None):
        self.options = (options or HandDetectorOptions()).resolved()
        self.options.check()
        self._image = self.options.detector_factory()()
        self._boxes: Detector | None = None  # video mode's, made at its first frame
        self._hook: Hook | None = None
        self._due: Callable[[int], bool] | None = None  # which frames the detector runs on
        self._frames, self._last_ms = 0, None

    @classmethod
    def create_from_options(cls, options: HandDetectorOptions) -> HandDetector:
        return cls(options)

    @classmethod
    def create_from_model_path(cls, model: str) -> HandDetector:
        """A detector for any exported model folder, with the default options."""
        return cls(HandDetectorOptions(model=str(model)))

    def detect(self, image: np.ndarray) -> Detections:
        """The hands in one image (no tracking state is kept or used)."""
        return self._image.detect(image)

    def detect_for_video(self, image: np.ndarray, timestamp_ms: int) -> Detections:
        """The hands in the next frame of a video; ``timestamp_ms`` must increase."""
        if self._last_ms is not None and timestamp_ms <= self._last_ms:
            raise ValueError(f"timestamp_ms must increase: {timestamp_ms} after {self._last_ms}")
        if self._hook is None:
            self._boxes = self.options.detector_factory(stage=False, boxes_for=True)()
            threads = self.options.crop_threads or crop_threads(
                self.options.track_options().max_hands
            )
            self._hook, every = self.options.video_hook(
                30.0, make_detector=self._boxes_now, workers=threads
            )
            self._due = schedule(self._hook, every)
        frame = Frame(self._frames, timestamp_ms / 1000, image)
        if (read_ahead := getattr(self._hook, "read_ahead", None)) is not None:
            read_ahead(frame)  # the followed hands' crops start now, beside the detector
        det = self._boxes.detect(image) if self._due(self._frames) else None
        self._frames, self._last_ms = self._frames + 1, timestamp_ms
        return self._hook(frame, det)

    def _boxes_now(self) -> Detector:
        return self._boxes

    def close(self) -> None:
        close_hook(self._hook)  # video mode's crop threads
        for detector in (self._image, self._boxes):
            if detector is not None:
                detector.close()

    def __enter__(self) -> HandDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
