"""Detection on video files, cameras and image folders: sources, drawing, ordered outputs, and
the single- and multi-threaded loops behind detect_single_threaded.py / detect_multi_threaded.py.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import queue
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common import DEFAULT_MODEL, UserError, atomic_write_bytes, fail, remove_stale
from common.backends import ARTIFACTS, Detector, load_detector
from common.detections import Detections
from common.draw import draw

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Frame:
    index: int
    time: float  # seconds from the start of the source
    rgb: np.ndarray
    file: str = ""  # the image's file name, for an image or image-folder source


class FrameSource:
    """Frames from a video file, a camera index, an image folder or one image, in order.
    Unreadable images in a folder are skipped and counted."""

    def __init__(
        self,
        spec: str,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
    ):
        self.spec, self.size, self.skipped = spec, (width, height), 0
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

    profile: Profile | None = None

    def __len__(self) -> int:
        if self._images:
            return len(self._images)
        if self.kind == "video":
            return int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return 0

    def _resize(self, bgr: np.ndarray) -> np.ndarray:
        w, h = self.size
        if w and h and (bgr.shape[1], bgr.shape[0]) != (w, h):
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[Frame]:
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
            return
        index, start = 0, time.monotonic()
        while True:
            with _stage(self.profile, "decode"):
                ok, bgr = self._cap.read()
            if not ok:
                break
            t = index / self.fps if self.kind == "video" else time.monotonic() - start
            with _stage(self.profile, "resize"):
                rgb = self._resize(bgr)
            yield Frame(index, t, rgb)
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


def read_image(path: Path) -> np.ndarray | None:
    """BGR pixels of an image file, or ``None`` when it is unreadable, corrupt or truncated: a
    half-written JPEG or PNG is refused as prep refuses it, not decoded half grey."""
    from prep.sources import validate_image

    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data.startswith((b"\xff\xd8", b"\x89PNG")):
        try:
            validate_image(data)
        except ValueError:
            return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


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


IMAGE_OUTPUTS = (".jpg", ".jpeg", ".png")  # --output for an image source: the annotated picture


def part_path(target: Path) -> Path:
    """A temporary name beside ``target``, unique to this process and call (two runs writing the
    same output never share one); stale ones left by killed runs are removed first."""
    remove_stale(target.parent, f".{target.name}.part-")
    return (
        target.parent / f".{target.name}.part-{os.getpid()}-{secrets.token_hex(4)}{target.suffix}"
    )


class Profile:
    """Seconds spent in each stage, summed over threads (``--profile``)."""

    STAGES = ("decode", "resize", "model", "draw", "encode+write", "json")

    def __init__(self):
        self.seconds = dict.fromkeys(self.STAGES, 0.0)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[name] += time.perf_counter() - t

    def table(self, frames: int, wall: float, workers: int) -> str:
        """ms per frame in each stage; the writer thread's stages run one frame at a time."""
        lines = ["| stage | ms/frame | thread |", "|---|---|---|"]
        pool = f"{workers} worker(s)"
        where = {"decode": "capture", "resize": "capture", "model": pool}
        if workers > 1:
            where["draw"] = pool
        for name in self.STAGES:
            ms = 1000 * self.seconds[name] / max(frames, 1)
            lines.append(f"| {name} | {ms:.2f} | {where.get(name, 'writer')} |")
        serial = {
            "capture": self.seconds["decode"] + self.seconds["resize"],
            "writer": sum(self.seconds[k] for k in ("encode+write", "json"))
            + (0 if workers > 1 else self.seconds["draw"]),
            "worker": (self.seconds["model"] + (self.seconds["draw"] if workers > 1 else 0))
            / workers,
        }
        busiest = max(serial, key=serial.get)
        lines.append(
            f"wall {1000 * wall / max(frames, 1):.2f} ms/frame; busiest: {busiest} thread at "
            f"{1000 * serial[busiest] / max(frames, 1):.2f} ms/frame; all stages together "
            f"{1000 * sum(self.seconds.values()) / max(frames, 1):.2f} ms/frame of CPU"
        )
        return "\n".join(lines)


NO_PROFILE = contextlib.nullcontext()


def _stage(profile: Profile | None, name: str):
    return profile.stage(name) if profile else NO_PROFILE


class Outputs:
    """The annotated video, the JSON lines and the window, fed in frame order."""

    def __init__(self, args, source: FrameSource, profile: Profile | None = None):
        self.profile = profile
        self.video_path, self.json_path = args.output, args.json
        self.fps = source.fps
        self.display = bool(args.display)
        self.writer = None
        self.json = None
        self.count = 0
        self._tmp_video = None
        if self.display and (why := gui_available()):
            print(f"warning: --display ignored: {why}", file=sys.stderr)
            self.display = False
        if self.json_path:
            Path(self.json_path).parent.mkdir(parents=True, exist_ok=True)
            self._tmp_json = part_path(Path(self.json_path))
            self.json = open(self._tmp_json, "w")  # noqa: SIM115 (closed in close())
        self._fps_window: list[float] = []

    def _video(self, shape) -> cv2.VideoWriter:
        if self.writer is None:
            Path(self.video_path).parent.mkdir(parents=True, exist_ok=True)
            suffix = Path(self.video_path).suffix or ".mp4"
            self._tmp_video = part_path(Path(self.video_path))
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if suffix == ".mp4" else "MJPG"))
            self.writer = cv2.VideoWriter(
                str(self._tmp_video), fourcc, self.fps, (shape[1], shape[0])
            )
            if not self.writer.isOpened():
                raise UserError(f"cannot write video {self.video_path}")
        return self.writer

    @property
    def draws(self) -> bool:
        return bool(self.video_path or self.display)

    def render(self, frame: Frame, det: Detections) -> np.ndarray:
        """The annotated BGR picture (no FPS overlay): workers call this in parallel."""
        with _stage(self.profile, "draw"):
            picture = draw(frame.rgb, det.boxes, list(det.class_names), det.masks, det.scores)
            return cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)

    def write(self, frame: Frame, det: Detections, bgr: np.ndarray | None = None) -> bool:
        """Emit one frame (``bgr``: its picture, if already rendered); returns False when the
        user closed the window."""
        now = time.perf_counter()
        self._fps_window = [t for t in self._fps_window if now - t < 2.0] + [now]
        fps = (len(self._fps_window) - 1) / max(now - self._fps_window[0], 1e-6)
        self.count += 1
        if self.json is not None:
            with _stage(self.profile, "json"):
                self._write_json(frame, det)
        if self.draws:
            return self._show(self.render(frame, det) if bgr is None else bgr, fps)
        return True

    def _write_json(self, frame: Frame, det: Detections) -> None:
        self.json.write(
            json.dumps(
                {
                    "frame": frame.index,
                    **({"file": frame.file} if frame.file else {}),
                    "time": round(frame.time, 4),
                    "detections": det.to_json(),
                }
            )
            + "\n"
        )

    def _show(self, bgr: np.ndarray, fps: float) -> bool:
        picture_out = bool(self.video_path) and Path(self.video_path).suffix.lower() in (
            IMAGE_OUTPUTS
        )
        if not picture_out:  # a rate means nothing on a still picture
            cv2.putText(
                bgr,
                f"{fps:.1f} FPS",
                (10, 30),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.9,
                (0, 255, 255),  # BGR
                2,
                cv2.LINE_AA,
            )
        if picture_out:
            ok, encoded = cv2.imencode(Path(self.video_path).suffix, bgr)
            if not ok:
                raise UserError(f"cannot encode {self.video_path}")
            atomic_write_bytes(Path(self.video_path), encoded.tobytes())  # the last frame
        elif self.video_path:
            with _stage(self.profile, "encode+write"):
                self._video(bgr.shape).write(bgr)
        if self.display:
            cv2.imshow("hands", bgr)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                return False
        return True

    def close(self) -> None:
        """Finish the files so they are complete and playable, even after Ctrl-C."""
        if self.writer is not None:
            self.writer.release()
            os.replace(self._tmp_video, self.video_path)
        if self.json is not None:
            self.json.close()
            os.replace(self._tmp_json, self.json_path)
        if self.display:
            cv2.destroyAllWindows()


def default_backend(model: str | Path) -> str:
    """The int8 network with NumPy decoding and NMS where the model has it (about 37% less time
    a frame than the OD API graph, whose TFLite post-processing op is 40% of its latency;
    detect.sizes measures both), else the OD API's int8 graph."""
    return "tflite_raw" if (Path(model) / ARTIFACTS["tflite_raw"]).is_file() else "tflite"


def make_detector(args, workers: int = 1) -> list[Detector]:
    if args.backend is None:
        args.backend = default_backend(args.model)
    kwargs = {"score_threshold": args.score_threshold}
    if args.backend.startswith("tflite"):
        kwargs["num_threads"] = args.threads
    return [load_detector(args.model, args.backend, **kwargs) for _ in range(workers)]


def run_single(args) -> dict:
    detector = make_detector(args)[0]
    profile = Profile() if getattr(args, "profile", False) else None
    source = FrameSource(args.source, args.width, args.height, args.fps)
    source.profile = profile
    outputs = Outputs(args, source, profile)
    start = time.perf_counter()
    try:
        for frame in source:
            if args.max_frames and frame.index >= args.max_frames:
                break
            with _stage(profile, "model"):
                det = detector.detect(frame.rgb)
            if not outputs.write(frame, det):
                break
    finally:
        outputs.close()
        source.close()
    return _report(outputs, source, start, profile, 1)


def run_multi(args) -> dict:
    """Capture thread -> N workers (own interpreter each) -> ordered writer (this thread).
    Queues are bounded so memory stays flat; Ctrl-C stops capture, drains and closes."""
    workers = max(1, args.num_workers)
    detectors = make_detector(args, workers)
    profile = Profile() if getattr(args, "profile", False) else None
    source = FrameSource(args.source, args.width, args.height, args.fps)
    source.profile = profile
    outputs = Outputs(args, source, profile)
    todo: queue.Queue = queue.Queue(maxsize=2 * workers)
    done: queue.Queue = queue.Queue(maxsize=4 * workers)
    stop = threading.Event()
    errors: list[BaseException] = []

    def capture():
        try:
            for frame in source:
                if stop.is_set() or (args.max_frames and frame.index >= args.max_frames):
                    break
                while not stop.is_set():
                    try:
                        todo.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # reported by the writer
            errors.append(e)
        finally:
            for _ in range(workers):
                todo.put(None)

    def work(detector: Detector):
        try:
            while (frame := todo.get()) is not None:
                if stop.is_set():
                    continue  # interrupted: drain the queue without running the model
                with _stage(profile, "model"):
                    det = detector.detect(frame.rgb)
                # drawing happens here, in parallel, not in the writer thread
                bgr = outputs.render(frame, det) if outputs.draws else None
                done.put((frame.index, frame, (det, bgr)))
        except BaseException as e:
            errors.append(e)
            stop.set()
        finally:
            done.put(None)

    threads = [threading.Thread(target=capture, daemon=True)]
    threads += [threading.Thread(target=work, args=(d,), daemon=True) for d in detectors]
    start = time.perf_counter()
    for t in threads:
        t.start()
    pending: list = []
    next_index, finished = 0, 0
    interrupted = False
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame_):
        nonlocal interrupted
        interrupted = True
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        while finished < workers:
            try:
                item = done.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                finished += 1
                continue
            heapq.heappush(pending, (item[0], id(item), item))
            while pending and pending[0][0] == next_index:
                _, _, (_, frame, (det, bgr)) = heapq.heappop(pending)
                if not outputs.write(frame, det, bgr):
                    stop.set()
                next_index += 1
        # Frames skipped by a folder source leave no gap: indices are assigned after decoding.
        while pending:
            _, _, (_, frame, (det, bgr)) = heapq.heappop(pending)
            outputs.write(frame, det, bgr)
    finally:
        stop.set()
        outputs.close()
        source.close()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
    if errors:
        raise errors[0]
    report = _report(outputs, source, start, profile, workers)
    report["interrupted"] = interrupted
    return report


def _report(
    outputs: Outputs,
    source: FrameSource,
    start: float,
    profile: Profile | None = None,
    workers: int = 1,
) -> dict:
    seconds = time.perf_counter() - start
    report = {
        "frames": outputs.count,
        "seconds": round(seconds, 3),
        "fps": round(outputs.count / seconds, 2) if seconds > 0 else 0.0,
        "skipped": source.skipped,
    }
    if profile is not None:
        report["profile_ms"] = {
            k: round(1000 * v / max(outputs.count, 1), 3) for k, v in profile.seconds.items()
        }
        report["profile_table"] = profile.table(outputs.count, seconds, workers)
    return report


def build_parser(multi: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"{'Multi' if multi else 'Single'}-threaded hand detection on a video file, "
        "an image folder, an image or a camera."
    )
    p.add_argument(
        "--source",
        default="0",
        help="video file, image folder, image, or camera index (default: 0)",
    )
    p.add_argument(
        "--model",
        default=str(DEFAULT_MODEL),
        help="exported model folder (default: the shipped hands model)",
    )
    p.add_argument(
        "--backend",
        choices=sorted(ARTIFACTS),
        help="artifact to run (default: tflite_raw, the int8 network decoded here, where the "
        "model has litert/; else tflite, the int8 OD API graph)",
    )
    p.add_argument("--width", type=int, help="resize frames to this width (with --height)")
    p.add_argument("--height", type=int)
    p.add_argument("--score-threshold", "--score-thresh", type=float, default=0.5)
    p.add_argument("--display", type=int, default=0, help="1: show a window")
    p.add_argument("--fps", type=float, help="frame rate of the output video (default: source)")
    p.add_argument(
        "--output", help="annotated video to write (.mp4 or .avi), or picture (.jpg, .png)"
    )
    p.add_argument("--json", help="JSON lines to write: one line a frame")
    p.add_argument("--threads", type=int, default=1, help="threads per TFLite interpreter")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: all)")
    p.add_argument(
        "--profile", action="store_true", help="print the time spent in each stage per frame"
    )
    if multi:
        p.add_argument(
            "--num-workers",
            type=int,
            default=os.cpu_count() or 2,
            help="inference workers, each with its own interpreter",
        )
    return p


VIDEO_OUTPUTS = (".mp4", ".avi")


def check_args(args) -> None:
    """Every bad flag is one message before anything runs; outputs never overwrite the source
    or each other."""
    if (args.width is None) != (args.height is None):
        raise UserError("--width and --height go together")
    if args.width is not None and (args.width < 2 or args.height < 2):
        raise UserError("--width and --height must be at least 2")
    if not 0.0 <= args.score_threshold <= 1.0:
        raise UserError(f"--score-threshold must be between 0 and 1, got {args.score_threshold}")
    if args.max_frames < 0:
        raise UserError("--max-frames must be 0 (all) or more")
    if args.threads < 1 or getattr(args, "num_workers", 1) < 1:
        raise UserError("--threads and --num-workers must be at least 1")
    if args.fps is not None and not args.fps > 0:
        raise UserError("--fps must be above 0")
    outputs = [Path(o) for o in (args.output, args.json) if o]
    for out in outputs:
        if out.is_dir():
            raise UserError(f"{out} is a folder; give a file name")
    if args.output and Path(args.output).suffix.lower() not in VIDEO_OUTPUTS + IMAGE_OUTPUTS:
        raise UserError(
            f"--output {args.output}: must end in {', '.join(VIDEO_OUTPUTS + IMAGE_OUTPUTS)}"
        )
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise UserError("--output and --json are the same file")
    source = Path(args.source)
    for out in outputs:
        if source.exists() and out.exists() and out.resolve() == source.resolve():
            raise UserError(f"{out} is the source; choose another output file")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=out.parent):
                pass
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None


def main(argv: list[str] | None = None, multi: bool = False) -> int:
    args = build_parser(multi).parse_args(argv)
    try:
        check_args(args)
        report = run_multi(args) if multi else run_single(args)
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        print("interrupted; outputs closed", file=sys.stderr)
        return 130
    extra = f", {report['skipped']} unreadable image(s) skipped" if report["skipped"] else ""
    print(
        f"{report['frames']} frames in {report['seconds']} s ({report['fps']} FPS){extra}"
        + ("; interrupted" if report.get("interrupted") else "")
    )
    if "profile_table" in report:
        print(report["profile_table"])
    if report.get("interrupted"):
        # The files are closed and complete: leave without TensorFlow's teardown, which takes
        # about a second after Ctrl-C with the SavedModel backend.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 0
