"""Prep throughput on the real EgoHands sample.

    python -m prep.bench [--sample ../shared/data/egohands-4videos] [--workers 2]

Rows: the sample as it is (boxes.csv, no masks), and the same real frames laid out as the
official dataset with a ``polygons.mat`` per video (an elliptical polygon inscribed in each real
box) so the full path with PNG instance masks is measured. Target: >= 80 frames/s with masks.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.io

from prep.fixtures import HAND_TYPES, _struct_array

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "egohands-4videos"


def sample_frames(count: int, sample: Path = DEFAULT_SAMPLE, size=(1280, 720)) -> list:
    """Up to ``count`` real EgoHands frames (BGR) at ``size`` for the speed benches, in file
    order; 10 frames of seeded noise when the shared sample is absent."""
    import cv2

    found = sorted(Path(sample).rglob("*.jpg"))[:count]
    if not found:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 255, (size[1], size[0], 3), np.uint8) for _ in range(10)]
    return [cv2.resize(cv2.imread(str(f)), size) for f in found]


TARGET_FPS = 80.0


def ellipse(box, n: int = 48) -> np.ndarray:
    x0, y0, x1, y1 = box
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack(
        [(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(t), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(t)], 1
    )


def polygon_tree(sample: Path, out: Path) -> Path:
    """Lay the sample's frames out as ``_LABELLED_SAMPLES/<VIDEO>/`` with a ``polygons.mat``."""
    boxes: dict[str, list] = defaultdict(list)
    with open(sample / "boxes.csv", newline="") as f:
        for row in csv.DictReader(f):
            boxes[row["filename"]].append([float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
    by_video: dict[str, list[str]] = defaultdict(list)
    for name in sorted(boxes):
        by_video[name.split("/")[0]].append(name)
    for video, names in by_video.items():
        folder = out / "_LABELLED_SAMPLES" / video
        folder.mkdir(parents=True)
        records = []
        for name in names:
            os.symlink(sample / name, folder / Path(name).name)
            hands = dict.fromkeys(HAND_TYPES, np.zeros((0, 0)))
            for ht, box in zip(HAND_TYPES, boxes[name], strict=False):
                hands[ht] = ellipse(box)
            records.append(hands)
        scipy.io.savemat(folder / "polygons.mat", {"polygons": _struct_array(records, HAND_TYPES)})
    return out


def run(source_path: Path, workers: int, masks: bool) -> tuple[int, float]:
    from prep.egohands_clean import prepare
    from prep.sources import Source

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = prepare(Source(source_path), Path(tmp) / "out", workers=workers, masks=masks)
        return summary["totals"]["frames"], time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    if not (args.sample / "boxes.csv").is_file():
        print(f"error: real sample not found at {args.sample} (pass --sample)", file=sys.stderr)
        return 2
    import prep.tfrecord  # noqa: F401  (TensorFlow start-up is not part of the figure)

    tmp = Path(tempfile.mkdtemp())
    try:
        rows = [
            ("real frames, boxes.csv (no masks)", *run(args.sample, args.workers, False)),
            (
                "real frames, polygons.mat + PNG masks",
                *run(polygon_tree(args.sample, tmp / "poly"), args.workers, True),
            ),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nprep throughput, {args.workers} worker(s), {os.cpu_count()} core(s)")
    print(f"| {'case':<40} | {'frames':>6} | {'seconds':>7} | {'frames/s':>8} | target |")
    print(f"|{'-' * 42}|{'-' * 8}|{'-' * 9}|{'-' * 10}|--------|")
    for name, frames, secs in rows:
        fps = frames / secs
        target = (
            f">= {TARGET_FPS:.0f} {'ok' if fps >= TARGET_FPS else 'MISS'}"
            if "masks" in name and "no masks" not in name
            else ""
        )
        print(f"| {name:<40} | {frames:>6} | {secs:>7.2f} | {fps:>8.1f} | {target:<6} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
