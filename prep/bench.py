"""Prep throughput on the real EgoHands sample.

    python -m prep.bench [--sample ../shared/data/egohands-4videos] [--workers 2]

Rows: the sample as it is (boxes.csv, no masks), and the same real frames laid out as the
official dataset with a ``polygons.mat`` per video (an elliptical polygon inscribed in each real
box) so the full path with PNG instance masks is measured. Target: >= 80 frames/s with masks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from prep.samples import DEFAULT_SAMPLE, polygon_tree

TARGET_FPS = 80.0


def run(source_path: Path, workers: int, masks: bool) -> tuple[int, float]:
    from prep.egohands import prepare
    from prep.sources import Source

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = prepare(Source(source_path), Path(tmp) / "out", workers=workers, masks=masks)
        return summary.totals.frames, time.perf_counter() - start


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
