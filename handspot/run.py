"""Detection on video files, cameras and image folders: the typed options of the command line
(``hands-detect``, detect_single_threaded.py / detect_multi_threaded.py) and the function they
call, which wires a source, the loop and the sinks the options ask for.

    report = detect(DetectOptions(source="video.mp4", output="out.mp4", json="out.jsonl"))

The pieces: ``handspot.sources`` (frames), ``handspot.loop`` (single- and multi-threaded loops
with a per-frame hook in frame order), ``handspot.sinks`` (video, JSON lines, window, picture).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from handspot.api import HandDetectorOptions
from handspot.backends import BACKENDS, Backend
from handspot.calibrate import pick, pick_landmarks
from handspot.detector import Detector
from handspot.errors import UserError
from handspot.files import output_target
from handspot.landmarks import LandmarkModel
from handspot.loop import run_multi, run_single
from handspot.options import option
from handspot.profile import Profile
from handspot.sinks import (
    CODECS,
    IMAGE_OUTPUTS,
    VIDEO_OUTPUTS,
    JsonLinesSink,
    PictureSink,
    Sink,
    VideoSink,
    WindowSink,
    choose_codec,
)
from handspot.sources import IMAGE_EXTS, FrameSource, Hook


@dataclass(frozen=True)
class DetectOptions(HandDetectorOptions):
    """What to detect on, with which model, and where the results go; the same defaults from
    Python as on the command line (``resolved`` decides what is left to decide)."""

    source: str = option(
        "0", "video file, image folder, image, or camera index (default: 0)", type=str
    )
    width: int | None = option(None, "resize frames to this width (with --height)", type=int)
    height: int | None = option(None, type=int)
    display: int = option(0, "1: show a window")
    fps: float | None = option(None, "frame rate of the output video (default: source)", type=float)
    output: str | None = option(
        None, "annotated video to write (.mp4, .webm or .avi), or picture (.jpg, .png)", type=str
    )
    codec: str = option(
        "auto",
        "the video's codec: auto is H.264 for .mp4 (browsers play it; mp4v without PyAV), VP9 "
        "for .webm, MJPEG for .avi",
        choices=CODECS,
    )
    json: str | None = option(None, "JSON lines to write: one line a frame", type=str)
    max_frames: int = option(0, "stop after N frames (0: all)")
    profile: bool = option(False, "print the time spent in each stage per frame")
    num_workers: int = option(
        os.cpu_count() or 2, "inference workers, each with its own interpreter (multi-threaded)"
    )
    track: bool | None = option(
        None,
        "an id per hand across frames (with the landmark stage each hand's crop follows it and "
        "the detector runs every --detect-every frames; without, ByteTrack on every frame); "
        "default: on with the landmark stage for a video file or camera, else off",
        type=bool,
    )

    def check(self, backends: Mapping[str, Backend] = BACKENDS) -> None:
        """Every bad option is one message before anything runs; outputs never overwrite the
        source or each other."""
        super().check(backends)
        if (self.width is None) != (self.height is None):
            raise UserError("--width and --height go together")
        if self.width is not None and (self.width < 2 or self.height < 2):
            raise UserError("--width and --height must be at least 2")
        if self.max_frames < 0:
            raise UserError("--max-frames must be 0 (all) or more")
        if self.num_workers < 1:
            raise UserError("--num-workers must be at least 1")
        if self.fps is not None and not self.fps > 0:
            raise UserError("--fps must be above 0")
        self._check_outputs()

    def _check_outputs(self) -> None:
        outputs = [Path(o) for o in (self.output, self.json) if o]
        for out in outputs:
            if out.is_dir():
                raise UserError(f"{out} is a folder; give a file name")
        if self.output and Path(self.output).suffix.lower() not in VIDEO_OUTPUTS + IMAGE_OUTPUTS:
            raise UserError(
                f"--output {self.output}: must end in {', '.join(VIDEO_OUTPUTS + IMAGE_OUTPUTS)}"
            )
        if self.output and Path(self.output).suffix.lower() in VIDEO_OUTPUTS:
            choose_codec(self.output, self.codec)
        elif self.codec != "auto":
            raise UserError("--codec is for a video --output (.mp4, .webm, .avi)")
        if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
            raise UserError("--output and --json are the same file")
        source = Path(self.source)
        for out in outputs:
            if source.exists() and out.exists() and out.resolve() == source.resolve():
                raise UserError(f"{out} is the source; choose another output file")
            writable(out)

    def resolved(self) -> DetectOptions:
        """These options with "decide for me" decided: the landmark stage for a hand model,
        and its tracking (video mode) for a video file or a camera."""
        o = super().resolved()
        if o.track is not None:
            return o
        path = Path(o.source)
        video = o.source.isdigit() or (path.is_file() and path.suffix.lower() not in IMAGE_EXTS)
        return replace(o, track=o.landmarks and video)

    def hook(
        self, fps: float, backends: Mapping[str, Backend] = BACKENDS, *, workers: int = 1,
        profile: Profile | None = None, models: Models | None = None,
    ) -> tuple[Hook | None, int]:  # fmt: skip
        """The per-frame hook these options ask for, and how often the detector runs
        (``models``: loaded once, reused)."""
        o = self.resolved()
        if not o.track:
            return None, 1
        if models is None:
            return o.video_hook(fps, backends, workers=workers, profile=profile)
        return o.video_hook(fps, backends, models.boxes_detector, workers=workers,
                            profile=profile, landmark_model=models.landmarks)  # fmt: skip

    def sinks(self, fps: float, profile: Profile | None = None) -> list[Sink]:
        """The outputs asked for, in the order they are written: JSON, picture or video,
        window."""
        sinks: list[Sink] = []
        if self.json:
            sinks.append(JsonLinesSink(self.json, profile))
        if self.output and Path(self.output).suffix.lower() in IMAGE_OUTPUTS:
            sinks.append(PictureSink(self.output))
        elif self.output:
            sinks.append(VideoSink(self.output, fps, profile, self.codec))
        if self.display and (window := WindowSink.open()):
            sinks.append(window)
        return sinks


def writable(out: Path) -> None:
    """One error now, before any frame, where ``out`` cannot be written (a device, FIFO or
    /dev/stdout is written straight, never replaced)."""
    target, straight = output_target(out)
    if straight:
        if target.exists() and not os.access(target, os.W_OK):
            raise UserError(f"cannot write {out}: permission denied")
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None


class Models:
    """A run's models, loaded once and kept for the runs that follow (a batch worker's, one
    video after another, in one thread): each detector the options make, on first use, and
    the landmark model."""

    def __init__(self, options: DetectOptions, backends: Mapping[str, Backend] = BACKENDS):
        self.options, self.backends = options.resolved(), backends
        self._made: dict[tuple[bool, bool], Detector] = {}
        self.landmarks = (
            LandmarkModel(self.options.landmark_model) if self.options.landmarks else None
        )

    def detector(self, stage: bool, boxes_for: bool) -> Detector:
        """``DetectOptions.detector_factory(stage=..., boxes_for=...)``'s detector, made once."""
        key = (stage, boxes_for)
        if key not in self._made:
            make = self.options.detector_factory(stage=stage, boxes_for=boxes_for,
                                                 backends=self.backends)  # fmt: skip
            self._made[key] = make()
        return self._made[key]

    def boxes_detector(self) -> Detector:
        """Video mode's detector: the boxes alone, the weaker ones kept."""
        return self.detector(False, True)


def detect(
    options: DetectOptions, *, multi: bool = True, backends: Mapping[str, Backend] = BACKENDS,
    models: Models | None = None,
) -> dict:  # fmt: skip
    """Run detection as ``options`` say: the multi-threaded loop (``options.num_workers``) or
    the single-threaded one; returns the report (frames, seconds, fps, skipped, profile).
    ``models`` (single-threaded only): loaded once by ``Models.load`` for these options."""
    if models is not None and multi:
        raise ValueError("models loaded once serve the single-threaded loop only")
    options.check(backends)
    note = f"backend {options.backend} (--backend)" if options.backend else ""
    named = options.landmark_model != "auto"
    options = options.resolved()
    note = note or pick(options.model, options.threads)[1]  # the lines of its choices
    if options.landmarks:
        note += "\n" + (f"landmark model {options.landmark_model} (--landmark-model)" if named
                        else pick_landmarks(options.threads)[1])  # fmt: skip
    profile = Profile() if options.profile else None
    source = FrameSource(
        options.source,
        options.width,
        options.height,
        options.fps,
        max_frames=options.max_frames,
        profile=profile,
    )
    try:
        workers = options.num_workers if multi else 1
        hook, every = options.hook(source.fps, backends, workers=workers, profile=profile,
                                   models=models)  # fmt: skip
        sinks = options.sinks(source.fps, profile)
    except BaseException:
        source.close()
        raise
    if models is not None:
        loaded = models.detector(hook is None, bool(options.track))
        make_detector = lambda: loaded  # noqa: E731
    else:
        make_detector = options.detector_factory(
            stage=hook is None, boxes_for=bool(options.track), backends=backends
        )
    run = functools.partial(run_multi, workers=options.num_workers) if multi else run_single
    report = run(make_detector, source, sinks, hook=hook, detect_every=every, profile=profile)
    report["backend"] = note
    if (runs := getattr(hook, "detector_runs", None)) is not None:  # video mode's tracking
        report["detector_runs"] = runs
    return report
