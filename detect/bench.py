"""Detection speed on a 1280x720 video: end-to-end FPS of the single- and multi-threaded
scripts, with and without writing the annotated video, per backend; and model-only latency of
our int8 model next to MediaPipe's palm_detection_full.tflite in the same LiteRT harness.

    python -m detect.bench [--model exported/hands_ssd320] [--frames 300]
    python -m detect.bench --against /tmp/base [--rounds 10]   # A/B against another checkout
    python -m detect.bench --codecs [--rounds 5]   # the output video's codecs, interleaved

MediaPipe's file comes from the mediapipe==0.10.21 wheel (pip download --no-deps, cached);
that row is skipped when it cannot be had. Targets (2 cores): multi-threaded int8 >= 200 FPS
with output written, >= 1.7x single-threaded; latency ours / MediaPipe <= 1.0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common.cache import MEDIAPIPE, wheel_file
from common.paths import DEFAULT_MODEL
from handspot.errors import UserError, fail
from handspot.run import DetectOptions, detect
from pipelines.backends import BACKENDS
from prep.samples import DEFAULT_SAMPLE, sample_frames

PALM = "mediapipe/modules/palm_detection/palm_detection_full.tflite"


def write_mp4(path: Path, frames_bgr) -> Path:
    """BGR frames (1280x720) as a 30 FPS mpeg4 video, the benches' input."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
    for frame in frames_bgr:
        writer.write(frame)
    writer.release()
    return path


def make_video(path: Path, frames: int, sample: Path) -> Path:
    pictures = sample_frames(50, sample)
    return write_mp4(path, (pictures[i % len(pictures)] for i in range(frames)))


def palm_model() -> Path | None:
    try:
        return wheel_file(MEDIAPIPE, PALM)
    except UserError:
        return None


class Invoker:
    """One LiteRT interpreter, one thread, a fixed random input."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=1)
        self.interp.allocate_tensors()
        spec = self.interp.get_input_details()[0]
        rng = np.random.default_rng(0)
        x = (
            rng.integers(0, 255, spec["shape"])
            if spec["dtype"] != np.float32
            else rng.random(spec["shape"])
        )
        self.interp.set_tensor(spec["index"], x.astype(spec["dtype"]))
        self.times: list[float] = []

    def turn(self, invokes: int, keep: bool) -> None:
        for _ in range(invokes):
            t = time.perf_counter()
            self.interp.invoke()
            if keep:
                self.times.append((time.perf_counter() - t) * 1000)


def latency(path: Path, runs: int = 200) -> float:
    """Median ms of one invoke on a random input, one thread, LiteRT (10 warm-up invokes)."""
    invoker = Invoker(path)
    invoker.turn(10, keep=False)
    invoker.turn(runs, keep=True)
    return float(np.median(invoker.times))


def against(other: Path, model: Path, video: Path, rounds: int, work: Path) -> dict:
    """detect_multi_threaded.py with the mp4 and JSON written, this checkout against
    ``other`` (another checkout of the project), as separate processes interleaved round by
    round (the first rotates; one warm-up round dropped). ``{name: [fps, ...]}``."""
    import re
    import subprocess

    here = Path(__file__).resolve().parents[1]
    trees = {"this checkout": here, f"{other}": other.resolve()}
    fps: dict[str, list[float]] = {name: [] for name in trees}
    names = list(trees)
    for r in range(rounds + 1):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            result = subprocess.run(
                [sys.executable, str(trees[name] / "detect" / "detect_multi_threaded.py"),
                 "--source", str(video), "--model", str(model), "--num-workers", "2",
                 "--output", str(work / "ab.mp4"), "--json", str(work / "ab.jsonl")],
                capture_output=True, text=True, cwd=trees[name],
            )  # fmt: skip
            found = re.search(r"\(([\d.]+) FPS\)", result.stdout)
            if result.returncode != 0 or not found:
                raise UserError(f"{name}: detect failed: {result.stderr.strip()[-300:]}")
            if r:  # round 0 warms the caches up
                fps[name].append(float(found[1]))
    return fps


def against_table(fps: dict[str, list[float]], frames: int) -> str:
    (a, xs), (b, ys) = fps.items()
    lines = [
        f"detect_multi_threaded.py, 1280x720, {frames} frames, mp4 + JSON written, 2 workers; "
        f"{len(xs)} rounds, interleaved",
        "",
        "| code | median FPS | IQR FPS | min-max |",
        "|---|---|---|---|",
    ]
    for name, v in fps.items():
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        lines.append(f"| {name} | {med:.1f} | {q1:.1f}-{q3:.1f} | {min(v):.1f}-{max(v):.1f} |")
    paired = np.median([x / y for x, y in zip(xs, ys, strict=True)])
    lines.append("")
    lines.append(
        f"{a} / {b}: {np.median(xs) / np.median(ys):.3f} (medians), {paired:.3f} (median of "
        "the per-round ratios)"
    )
    return "\n".join(lines)


CODEC_ROWS = (("none", None), ("mp4v", "out.mp4"), ("h264", "out.mp4"), ("vp9", "out.webm"))


def codecs(model: Path, video: Path, rounds: int, work: Path) -> dict[str, list[float]]:
    """detect multi-threaded (boxes only) writing each codec, and writing no video, interleaved
    round by round (the first round dropped as warm-up): FPS per round for each."""
    fps: dict[str, list[float]] = {name: [] for name, _ in CODEC_ROWS}
    for r in range(rounds + 1):
        for name, out in CODEC_ROWS:
            options = DetectOptions(
                source=str(video), model=str(model), landmarks=False, track=False,
                output=str(work / out) if out else None, codec=name if out else "auto",
            )  # fmt: skip
            report = detect(options, multi=True, backends=BACKENDS)
            if r:
                fps[name].append(report["fps"])
    return fps


def codecs_table(fps: dict[str, list[float]], frames: int) -> str:
    base = float(np.median(fps["none"]))
    lines = [
        f"\noutput codecs: detect multi-threaded, boxes only, 1280x720, {frames} frames, "
        f"{len(fps['none'])} interleaved rounds",
        "| output | FPS median | min-max | x no video |",
        "|---|---|---|---|",
    ]
    for name, values in fps.items():
        med = float(np.median(values))
        lines.append(f"| {name} | {med:.1f} | {min(values):.1f}-{max(values):.1f} | "
                     f"{med / base:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument(
        "--against",
        type=Path,
        metavar="CHECKOUT",
        help="only the A/B: detect multi of this checkout against another one (e.g. a "
        "`git worktree` of an earlier commit), interleaved",
    )
    p.add_argument("--codecs", action="store_true", help="only the output codecs' table")
    p.add_argument("--rounds", type=int, default=10, help="--against, --codecs: measured rounds")
    args = p.parse_args(argv)
    if not (args.model / "model_int8.tflite").is_file():
        print(f"error: {args.model} has no model_int8.tflite", file=sys.stderr)
        return 2
    if args.against:
        if not (args.against / "detect" / "detect_multi_threaded.py").is_file():
            return fail(f"{args.against} is not a checkout of this project")
        with tempfile.TemporaryDirectory() as tmp:
            video = make_video(Path(tmp) / "bench.mp4", args.frames, args.sample)
            try:
                fps = against(args.against, args.model, video, args.rounds, Path(tmp))
            except UserError as e:
                return fail(str(e))
        print(against_table(fps, args.frames))
        return 0
    if args.codecs:
        with tempfile.TemporaryDirectory() as tmp:
            video = make_video(Path(tmp) / "bench.mp4", args.frames, args.sample)
            print(codecs_table(codecs(args.model, video, args.rounds, Path(tmp)), args.frames))
        return 0
    workers = os.cpu_count() or 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "bench.mp4", args.frames, args.sample)
        for backend in ("tflite_raw", "tflite", "tflite_fp32", "saved_model"):
            for write in (False, True):
                for multi in (False, True):
                    options = DetectOptions(
                        source=str(video),
                        model=str(args.model),
                        backend=backend,
                        num_workers=workers,
                        output=str(Path(tmp) / "out.mp4") if write else None,
                        landmarks=False,  # the backends' own speed (detect.hands_bench: the stage)
                        track=False,
                    )
                    report = detect(options, multi=multi, backends=BACKENDS)
                    rows.append((backend, "multi" if multi else "single", write, report["fps"]))
    print(f"\nend-to-end detection, 1280x720 video, {args.frames} frames, {workers} core(s)")
    print("| backend     | script | output written | FPS    |")
    print("|-------------|--------|----------------|--------|")
    for backend, script, write, fps in rows:
        print(f"| {backend:<11} | {script:<6} | {'yes' if write else 'no':<14} | {fps:>6.1f} |")
    fps = {(b, s, w): f for b, s, w, f in rows}
    multi, single = fps[("tflite_raw", "multi", True)], fps[("tflite_raw", "single", True)]
    print(
        f"int8 (tflite_raw, the default) multi-threaded with output: {multi:.1f} FPS "
        f"(target >= 200: {'ok' if multi >= 200 else 'MISS'}); {multi / single:.2f}x single "
        f"(target >= 1.7x: {'ok' if multi / single >= 1.7 else 'MISS'})"
    )
    ours = latency(args.model / "model_int8.tflite")
    palm = palm_model()
    print("\nmodel-only latency, LiteRT, 1 thread (median of 200)")
    print("| model                              | ms     |")
    print("|------------------------------------|--------|")
    print(f"| ours int8 ({args.model.name:<22}) | {ours:>6.2f} |")
    if palm is None:
        print("| MediaPipe palm_detection_full      | skipped: wheel unavailable |")
    else:
        theirs = latency(palm)
        print(f"| MediaPipe palm_detection_full      | {theirs:>6.2f} |")
        print(
            f"ratio ours / MediaPipe: {ours / theirs:.2f} (target <= 1.0: "
            f"{'ok' if ours / theirs <= 1.0 else 'MISS'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
