"""MediaPipe Tasks' ObjectDetector against our own backends on the same exported files and
held-out frames, one thread each, interleaved (the contenders take turns frame by frame, the
order turning every round; the first round is warm-up and dropped).

    python -m detect.tasks_bench [--model exported/hands_ssd320] [--rounds 10] [--frames 5]

Rows: ``tflite_raw`` (detect's default: the raw network, our decode + NMS), ``tflite`` (the
OD API graph with its NMS op, in ai-edge-litert), ``mediapipe`` (MediaPipe Tasks' detect()
on that file) and ``mediapipe_raw`` (on ``litert/model_int8.tflite``, MediaPipe decoding the
anchors itself), timed inside MediaPipe's process, so the pipe to it is not counted, pinned to
one CPU (the Python API has no thread option). Per row: the median of the per-round mean ms a
frame, its quartiles, and the ratio to ``tflite_raw``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.paths import DEFAULT_MODEL
from detect.hands_bench import held_out_frames, quartiles
from handspot.errors import UserError, fail
from pipelines.backends import load_detector

ROWS = ("tflite_raw", "tflite", "mediapipe", "mediapipe_raw")


def bench(model: Path, frames: list[np.ndarray], rounds: int) -> dict[str, list[float]]:
    """Per contender, the mean ms a frame of each round after the warm-up one."""
    cpu = min(os.sched_getaffinity(0))
    detectors = {}
    try:
        for row in ROWS:
            options = {"cpus": {cpu}} if row.startswith("mediapipe") else {"num_threads": 1}
            detectors[row] = load_detector(model, row, score_threshold=0.5, **options)
        ms: dict[str, list[float]] = {row: [] for row in ROWS}
        for r in tqdm(range(rounds + 1), desc="tasks bench", unit="round"):
            order = ROWS[r % len(ROWS) :] + ROWS[: r % len(ROWS)]
            took = dict.fromkeys(ROWS, 0.0)
            for image in frames:
                for row in order:
                    start = time.perf_counter()
                    detectors[row].detect(image)
                    spent = (time.perf_counter() - start) * 1e3
                    mediapipe = row.startswith("mediapipe")
                    took[row] += detectors[row].last_ms if mediapipe else spent
            if r:  # round 0 warms up
                for row in ROWS:
                    ms[row].append(took[row] / len(frames))
    finally:
        for detector in detectors.values():
            detector.close()
    return ms


def table(ms: dict[str, list[float]], model: Path, frames: int) -> str:
    base = quartiles(ms["tflite_raw"])[0]
    lines = [
        f"{model.name}, {frames} held-out frames, {len(ms['tflite_raw'])} rounds, 1 thread",
        "| backend | ms a frame (median) | q1-q3 | vs tflite_raw |",
        "|---|---|---|---|",
    ]
    for row, values in ms.items():
        med, q1, q3 = quartiles(values)
        lines.append(f"| {row} | {med:.1f} | {q1:.1f}-{q3:.1f} | {med / base:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m detect.tasks_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--frames", type=int, default=5, help="held-out frames per source")
    args = p.parse_args(argv)
    try:
        if args.rounds < 1 or args.frames < 1:
            raise UserError("--rounds and --frames must be at least 1")
        frames = [f for source in held_out_frames(args.frames).values() for f in source]
        if not frames:
            raise UserError("no held-out frames found (../shared/data)")
        print(table(bench(args.model, frames, args.rounds), args.model, len(frames)))
    except UserError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
