"""Training speed on this machine: seconds per step and images per second for SSD FPNLite 320
and Mask R-CNN R50 320, through the real input pipeline (TFRecords -> decode -> augment ->
batch) and with that pipeline replaced by one cached in-memory batch. Target: the real pipeline
reaches >= 95% of the in-memory rate.

    python -m pipelines.bench [--sample ../shared/data/egohands-4videos] [--steps 20]

Data: the real EgoHands sample (boxes) for SSD; the same real frames with elliptical polygons
inscribed in their boxes (as prep.bench does) for Mask R-CNN, which needs masks. Models train
from scratch here: the speed does not depend on the initial weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from pipelines import config as cfg
from pipelines.train import Trainer
from prep.bench import DEFAULT_SAMPLE, polygon_tree
from prep.egohands_clean import prepare
from prep.sources import Source

TARGET = 0.95


def timed(step, batches, n: int) -> float:
    """Mean seconds per step over ``n`` steps after two warm-up steps."""
    for _ in range(2):
        losses = step(*next(batches))
    float(losses["Loss/total_loss"])
    start = time.perf_counter()
    for _ in range(n):
        losses = step(*next(batches))
    float(losses["Loss/total_loss"])  # wait for the last step
    return (time.perf_counter() - start) / n


def measure(
    model: str, data: Path, work: Path, batch_size: int, steps: int, fast_decode: bool = True
) -> dict:
    proto = cfg.configure(model, data, batch_size=batch_size, steps=10_000, from_scratch=True)
    pipeline = work / f"{model}.config"
    cfg.save(proto, pipeline)
    trainer = Trainer(pipeline, work / f"run-{model}", fast_decode=fast_decode)
    trainer.restore()
    iterator = iter(trainer.dataset)
    real = timed(trainer.step, iterator, steps)
    cached = next(iterator)

    def repeat():
        while True:
            yield cached

    memory = timed(trainer.step, repeat(), steps)
    return {
        "model": model,
        "batch": batch_size,
        "decode": "scaled" if fast_decode else "full",
        "real": real,
        "memory": memory,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--models", default="ssd,mask_rcnn")
    args = p.parse_args(argv)
    if not (args.sample / "boxes.csv").is_file():
        print(f"error: real sample not found at {args.sample} (pass --sample)", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for model in args.models.split(","):
            if model == "ssd":
                data = work / "boxes"
                prepare(Source(args.sample), data)
                rows.append(measure(model, data, work, 8, args.steps, fast_decode=False))
                for batch in (2, 8):
                    rows.append(measure(model, data, work, batch, args.steps))
            else:
                data = work / "masks"
                prepare(Source(polygon_tree(args.sample, work / "poly")), data)
                rows.append(measure(model, data, work, 2, max(5, args.steps // 2)))
    print(f"\ntraining speed, {os.cpu_count()} core(s), real EgoHands frames (1280x720 JPEG)")
    print(
        "| model     | batch | decode | pipeline s/step | img/s | in-memory s/step | img/s | "
        "pipeline/in-memory | target |"
    )
    print(
        "|-----------|-------|--------|-----------------|-------|------------------|-------|"
        "--------------------|--------|"
    )
    for r in rows:
        ratio = r["memory"] / r["real"]
        verdict = "ok" if ratio >= TARGET else "MISS"
        print(
            f"| {r['model']:<9} | {r['batch']:>5} | {r['decode']:<6} | {r['real']:>15.3f} | "
            f"{r['batch'] / r['real']:>5.1f} | {r['memory']:>16.3f} | "
            f"{r['batch'] / r['memory']:>5.1f} | {ratio:>17.1%} | >= {TARGET:.0%} {verdict} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
