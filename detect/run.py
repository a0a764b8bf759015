"""Hand detection on video files, cameras and image folders: typed options, the sinks they ask
for, and the CLI behind detect_single_threaded.py / detect_multi_threaded.py.

    report = detect(DetectOptions(source="video.mp4", output="out.mp4", json="out.jsonl"))

The pieces: ``detect.sources`` (frames), ``detect.loop`` (single- and multi-threaded loops with
a per-frame hook in frame order), ``detect.sinks`` (video, JSON lines, window, picture).
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from common import DEFAULT_MODEL, Stopped, UserError, exit_code, fail, output_target, stream_fd
from common.backends import ARTIFACTS, check_backend, load_detector
from common.card import ModelCard
from common.landmarks import HandLandmarker, LandmarkOptions
from common.options import add_options, from_args, option
from common.tracking import BoxTracker, HandTracker, TrackOptions
from detect.loop import Hook, run_multi, run_single
from detect.profile import Profile
from detect.sinks import (
    IMAGE_OUTPUTS,
    VIDEO_OUTPUTS,
    JsonLinesSink,
    PictureSink,
    Sink,
    VideoSink,
    WindowSink,
)
from detect.sources import IMAGE_EXTS, FrameSource


@dataclass(frozen=True)
class DetectOptions:
    """What to detect on, with which model, and where the results go."""

    source: str = option(
        "0", "video file, image folder, image, or camera index (default: 0)", type=str
    )
    model: str = option(str(DEFAULT_MODEL), "exported model folder (default: the shipped model)")
    backend: str | None = option(
        None,
        "artifact to run (default: tflite_raw, the int8 network decoded here, where the "
        "model has litert/; else tflite, the int8 OD API graph)",
        type=str,
        choices=sorted(ARTIFACTS),
    )
    width: int | None = option(None, "resize frames to this width (with --height)", type=int)
    height: int | None = option(None, type=int)
    score_threshold: float = option(0.5, flags=("--score-thresh",))
    display: int = option(0, "1: show a window")
    fps: float | None = option(None, "frame rate of the output video (default: source)", type=float)
    output: str | None = option(
        None, "annotated video to write (.mp4 or .avi), or picture (.jpg, .png)", type=str
    )
    json: str | None = option(None, "JSON lines to write: one line a frame", type=str)
    threads: int = option(1, "threads per TFLite interpreter")
    max_frames: int = option(0, "stop after N frames (0: all)")
    profile: bool = option(False, "print the time spent in each stage per frame")
    num_workers: int = option(
        os.cpu_count() or 2, "inference workers, each with its own interpreter (multi-threaded)"
    )
    landmarks: bool | None = option(
        None,
        "the landmark stage: 21 keypoints, left/right and hand presence per hand (MediaPipe's "
        "hand landmark model), boxes that show no hand down-weighted (default: on for a hand "
        "model, one class named hand)",
        type=bool,
    )
    landmark_model: str = option("lite", "landmark model: lite or full", choices=("lite", "full"))
    mirrored: bool = option(False, "the frames are mirrored (a selfie view): left/right as is")
    track: bool | None = option(
        None,
        "an id per hand across frames (with the landmark stage each hand's crop follows it and "
        "the detector runs every --detect-every frames; without, ByteTrack on every frame); "
        "default: on with the landmark stage for a video file or camera, else off",
        type=bool,
    )
    detect_every: int = option(5, "with --track --landmarks: run the detector every N frames")

    def check(self) -> None:
        """Every bad option is one message before anything runs; outputs never overwrite the
        source or each other."""
        if (self.width is None) != (self.height is None):
            raise UserError("--width and --height go together")
        if self.width is not None and (self.width < 2 or self.height < 2):
            raise UserError("--width and --height must be at least 2")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise UserError(
                f"--score-threshold must be between 0 and 1, got {self.score_threshold}"
            )
        if self.max_frames < 0:
            raise UserError("--max-frames must be 0 (all) or more")
        if self.threads < 1 or self.num_workers < 1:
            raise UserError("--threads and --num-workers must be at least 1")
        if self.fps is not None and not self.fps > 0:
            raise UserError("--fps must be above 0")
        if self.detect_every < 1:
            raise UserError("--detect-every must be at least 1")
        outputs = [Path(o) for o in (self.output, self.json) if o]
        for out in outputs:
            if out.is_dir():
                raise UserError(f"{out} is a folder; give a file name")
        if self.output and Path(self.output).suffix.lower() not in VIDEO_OUTPUTS + IMAGE_OUTPUTS:
            raise UserError(
                f"--output {self.output}: must end in {', '.join(VIDEO_OUTPUTS + IMAGE_OUTPUTS)}"
            )
        if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
            raise UserError("--output and --json are the same file")
        check_backend(self.model, self.backend or default_backend(self.model))
        source = Path(self.source)
        for out in outputs:
            if source.exists() and out.exists() and out.resolve() == source.resolve():
                raise UserError(f"{out} is the source; choose another output file")
            target, straight = output_target(out)
            if straight:  # a device, FIFO or /dev/stdout: written straight, never replaced
                if target.exists() and not os.access(target, os.W_OK):
                    raise UserError(f"cannot write {out}: permission denied")
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=target.parent):
                    pass
            except OSError as e:
                raise UserError(f"cannot write {out}: {e.strerror or e}") from None

    def landmark_options(self) -> LandmarkOptions:
        return LandmarkOptions(model=self.landmark_model, mirrored=self.mirrored)

    def resolved(self) -> DetectOptions:
        """These options with "decide for me" decided: the landmark stage for a hand model,
        and its tracking (video mode) for a video file or a camera."""
        landmarks, track = self.landmarks, self.track
        if landmarks is None:
            landmarks = list(ModelCard.load(self.model).labels.values()) == ["hand"]
        if track is None:  # video mode: the landmark stage's tracking, on frames in order
            path = Path(self.source)
            video = self.source.isdigit() or (
                path.is_file() and path.suffix.lower() not in IMAGE_EXTS
            )
            track = landmarks and video
        return replace(self, landmarks=landmarks, track=track)

    def detector_factory(self, *, stage: bool = True):
        """A function making one detector of these options (one per worker): the backend, and
        the landmark stage after it with ``--landmarks`` (``stage=False``: the backend alone,
        keeping the boxes the stage needs)."""
        backend = self.backend or default_backend(self.model)
        threshold = self.score_threshold
        if self.landmarks or self.track:  # the stage and ByteTrack want the weaker boxes too
            threshold = min(threshold, self.landmark_options().min_score)
        kwargs = {"score_threshold": threshold}
        if backend.startswith("tflite"):
            kwargs["num_threads"] = self.threads
        boxes = functools.partial(load_detector, self.model, backend, **kwargs)
        if not (self.landmarks and stage):
            return boxes
        return lambda: HandLandmarker(
            boxes(), self.landmark_options(), score_threshold=self.score_threshold
        )

    def hook(self, fps: float) -> tuple[Hook | None, int]:
        """The per-frame hook these options ask for, and how often the detector runs."""
        if not self.track:
            return None, 1
        if not self.landmarks:
            return BoxTracker(fps=fps, score_threshold=self.score_threshold), 1
        tracker = HandTracker(
            self.detector_factory(stage=False),
            self.landmark_options(),
            TrackOptions(detect_every=self.detect_every),
            score_threshold=self.score_threshold,
        )
        return tracker, tracker.detect_every

    def sinks(self, fps: float, profile: Profile | None = None) -> list[Sink]:
        """The outputs asked for, in the order they are written: JSON, picture or video,
        window."""
        sinks: list[Sink] = []
        if self.json:
            sinks.append(JsonLinesSink(self.json, profile))
        if self.output and Path(self.output).suffix.lower() in IMAGE_OUTPUTS:
            sinks.append(PictureSink(self.output))
        elif self.output:
            sinks.append(VideoSink(self.output, fps, profile))
        if self.display and (window := WindowSink.open()):
            sinks.append(window)
        return sinks


def default_backend(model: str | Path) -> str:
    """The int8 network with NumPy decoding and NMS where the model has it (about 37% less time
    a frame than the OD API graph, whose TFLite post-processing op is 40% of its latency;
    detect.sizes measures both), else the OD API's int8 graph."""
    return "tflite_raw" if (Path(model) / ARTIFACTS["tflite_raw"]).is_file() else "tflite"


def detect(options: DetectOptions, *, multi: bool = True) -> dict:
    """Run detection as ``options`` say: the multi-threaded loop (``options.num_workers``) or
    the single-threaded one; returns the report (frames, seconds, fps, skipped, profile)."""
    options.check()
    options = options.resolved()
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
        hook, every = options.hook(source.fps)
        sinks = options.sinks(source.fps, profile)
    except BaseException:
        source.close()
        raise
    make_detector = options.detector_factory(stage=hook is None)
    run = functools.partial(run_multi, workers=options.num_workers) if multi else run_single
    return run(make_detector, source, sinks, hook=hook, detect_every=every, profile=profile)


def build_parser(multi: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"{'Multi' if multi else 'Single'}-threaded hand detection on a video file, "
        "an image folder, an image or a camera."
    )
    add_options(p, DetectOptions, exclude=() if multi else ("num_workers",))
    return p


def main(argv: list[str] | None = None, multi: bool = False) -> int:
    return run_cli(from_args(DetectOptions, build_parser(multi).parse_args(argv)), multi=multi)


def run_cli(options: DetectOptions, *, multi: bool) -> int:
    """``detect`` for a command line: one error line or the report, and its exit code."""

    def stop(signum, _frame):  # SIGTERM as Ctrl-C: the loop closes the outputs on its way out
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)  # the multi-threaded loop sets its own
    try:
        report = detect(options, multi=multi)
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt as e:
        print("interrupted; outputs closed", file=sys.stderr)
        return exit_code(e)
    finally:
        signal.signal(signal.SIGTERM, previous)
    extra = f", {report['skipped']} unreadable image(s) skipped" if report["skipped"] else ""
    # stdout carrying an output (--json /dev/stdout | jq): the report goes to stderr
    outputs = [o for o in (options.json, options.output) if o]
    report_to = sys.stderr if any(stream_fd(o) == 1 for o in outputs) else sys.stdout
    print(
        f"{report['frames']} frames in {report['seconds']} s ({report['fps']} FPS){extra}"
        + ("; interrupted" if report.get("interrupted") else ""),
        file=report_to,
    )
    if "profile_table" in report:
        print(report["profile_table"], file=report_to)
    if report.get("interrupted"):
        # The files are closed and complete: leave without TensorFlow's teardown, which takes
        # about a second after Ctrl-C with the SavedModel backend.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code(Stopped(report["interrupted"])))
    return 0
