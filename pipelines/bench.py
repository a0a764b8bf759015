"""Training speed on this machine: seconds per step and images per second for SSD FPNLite 320
and Mask R-CNN R50 320, through the real input pipeline (TFRecords -> decode -> augment ->
batch) and with that pipeline replaced by one cached in-memory batch. Target: the real pipeline
reaches >= 95% of the in-memory rate.

    python -m pipelines.bench [--sample ../shared/data/egohands-4videos] [--steps 20]
    python -m pipelines.bench --replicas [--rounds 3]    # tf.distribute's overhead
    python -m pipelines.bench --memory [--batches 2,8,16]  # peak memory against the batch

``--replicas``: SSD at global batch 8 on one device and under MirroredStrategy over 2 logical
CPU devices (4 + 4), each in its own process, interleaved over ``--rounds`` (ABAB); steps per
second, median and spread. On one CPU the two replicas share the same cores: the figure is the
strategy's overhead, not a speed-up (that needs devices of their own).

``--memory``: the peak resident memory of ``pipelines.train`` (3 steps, its own process) at each
batch size, and the line through them (GB = base + per image x batch) that
``pipeline_config.memory_estimate`` uses (the constants there come from this table).

Data: the real EgoHands sample (boxes) for SSD; the same real frames with elliptical polygons
inscribed in their boxes (as prep.bench does) for Mask R-CNN, which needs masks. Models train
from scratch here: the speed does not depend on the initial weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines import pipeline_config as cfg
from pipelines.train import Trainer, TrainOptions
from prep.egohands import prepare
from prep.samples import DEFAULT_SAMPLE, polygon_tree
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
    options = TrainOptions(full_res_decode=not fast_decode)
    trainer = Trainer(pipeline, work / f"run-{model}", options)
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


def replica_run(data: Path, work: Path, replicas: int, steps: int) -> float:
    """Seconds per step of SSD at global batch 8 under ``replicas`` logical CPU devices (this
    process must not have started TensorFlow's devices yet)."""
    from pipelines.distribute import make_strategy

    strategy, _ = make_strategy(cpu_replicas=replicas if replicas > 1 else 0)
    proto = cfg.configure("ssd", data, batch_size=8, steps=10_000, from_scratch=True)
    pipeline = work / f"replicas{replicas}.config"
    cfg.save(proto, pipeline)
    trainer = Trainer(
        pipeline, work / f"run-replicas{replicas}", TrainOptions(seed=0), strategy=strategy
    )
    trainer.restore()
    return timed(trainer.step, iter(trainer.dataset), steps)


def replicas_table(sample: Path, steps: int, rounds: int) -> None:
    from tqdm import tqdm

    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "boxes"
        prepare(Source(sample), data)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        for _ in tqdm(range(rounds), desc="rounds"):
            for replicas in (1, 2):
                out = subprocess.run(
                    [sys.executable, "-m", "pipelines.bench", "--replica-run", str(replicas),
                     "--data", str(data), "--steps", str(steps)],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                times[replicas].append(json.loads(out.stdout.strip().splitlines()[-1])["s"])
    print(f"\ntf.distribute overhead, SSD 320, global batch 8, {os.cpu_count()} core(s), "
          f"{rounds} interleaved rounds x {steps} steps (real input pipeline)")  # fmt: skip
    print("| strategy | replicas | median steps/s | min-max steps/s | img/s |")
    print("|---|---|---|---|---|")
    for replicas, name in ((1, "default (one device)"), (2, "MirroredStrategy, 2 logical CPUs")):
        rates = [1 / t for t in times[replicas]]
        med = statistics.median(rates)
        print(f"| {name} | {replicas} | {med:.2f} | {min(rates):.2f}-{max(rates):.2f} | "
              f"{8 * med:.1f} |")  # fmt: skip
    ratio = statistics.median(times[1]) / statistics.median(times[2])
    print(f"2 replicas / 1 replica, steps per second: {ratio:.2f}")


def memory_table(sample: Path, models: list[str], batches: list[int]) -> None:
    """Peak RSS of a 3-step training process per model and batch (from scratch: the same
    memory as a fine-tune), and the fitted line."""
    import numpy as np
    from tqdm import tqdm

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "boxes"
        prepare(Source(sample), data)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        print(f"\npeak memory of pipelines.train, 3 steps, {os.cpu_count()} core(s)")
        print("| model | input | batch | peak GB |")
        print("|---|---|---|---|")
        for model in models:
            peaks = []
            for batch in tqdm(batches, desc=f"memory {model}", leave=False):
                proto = cfg.configure(model, data, batch_size=batch, steps=3, from_scratch=True)
                pipeline = Path(tmp) / f"{model}{batch}.config"
                cfg.save(proto, pipeline)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "pipelines.train", "--pipeline", str(pipeline),
                     "--model-dir", str(Path(tmp) / f"m{model}{batch}"), "--checkpoint-every",
                     "1000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                _, status, usage = os.wait4(proc.pid, 0)
                if status != 0:
                    raise SystemExit(f"training {model} at batch {batch} failed ({status})")
                peaks.append(usage.ru_maxrss / 2**20)  # KiB -> GiB
                h, w = cfg.input_size(proto)
                print(f"| {model} | {h}x{w} | {batch} | {peaks[-1]:.2f} |")
            per_image, base = np.polyfit(batches, peaks, 1)
            print(f"{model}: GB = {base:.2f} + {per_image:.3f} x batch (at {h}x{w})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--models", default="ssd,mask_rcnn")
    p.add_argument("--replicas", action="store_true", help="1 vs 2 replicas table instead")
    p.add_argument("--rounds", type=int, default=3, help="--replicas: interleaved rounds")
    p.add_argument("--memory", action="store_true", help="peak memory against the batch instead")
    p.add_argument("--batches", default="2,8,16", help="--memory: batch sizes")
    p.add_argument("--replica-run", type=int, help=argparse.SUPPRESS)  # one process of --replicas
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.replica_run:
        with tempfile.TemporaryDirectory() as tmp:
            s = replica_run(args.data, Path(tmp), args.replica_run, args.steps)
        print(json.dumps({"replicas": args.replica_run, "s": s}))
        return 0
    if not (args.sample / "boxes.csv").is_file():
        print(f"error: real sample not found at {args.sample} (pass --sample)", file=sys.stderr)
        return 2
    if args.replicas:
        replicas_table(args.sample, args.steps, args.rounds)
        return 0
    if args.memory:  # SSD (Mask R-CNN would need masks, and is a recipe here)
        memory_table(args.sample, ["ssd"], [int(b) for b in args.batches.split(",")])
        return 0
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
