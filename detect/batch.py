"""Video archives on Apache Beam: hands, keypoints and ids for every video (or image folder)
a glob matches, on one machine or a cluster.

    python -m detect.batch --input "videos/**/*.mp4" --out DIR [--runner DirectRunner]
        [detect's options: --masks, --model ..., --no-track ...] [Beam's options]

Each input becomes ``DIR/<its path under the glob's folder>.jsonl``: the lines ``detect
--json`` writes for it, the same frames, boxes, keypoints and ids, with the same options.
Every worker loads the models once (``DoFn.setup``) and reads its own inputs, a whole video
each (tracking runs through a video, so it is not split). Outputs are written under a
temporary name and renamed whole; inputs whose output is there are skipped, so the same
command finishes a run that was stopped. A file that cannot be read fails that input, not
the run: ``DIR/_summary.json`` holds every input's frames, hands, seconds and status, and
``DIR/_failures.txt`` one line per failed input with its reason (exit code 1 when there is
one).

The DirectRunner (the default) runs on this machine, one worker process a core
(``--direct_num_workers``, ``--direct_running_mode``); Flink, Spark and Dataflow take Beam's
usual options (docs/cluster.md), the inputs, the model and ``DIR`` on storage every worker
mounts at the same path.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from handspot.api import HandDetectorOptions
from handspot.errors import UserError, fail
from handspot.files import atomic_write_bytes, atomic_write_json, remove_stale
from handspot.options import add_options, from_args, option
from handspot.signals import command

SUMMARY, FAILURES = "_summary.json", "_failures.txt"
LOCAL = ("DirectRunner", "PrismRunner")  # runners whose workers are processes of this machine
NAMESPACE = "detect.batch"  # Beam metrics: videos, frames, hands, failed


@dataclass(frozen=True)
class BatchOptions(HandDetectorOptions):
    """What to run over (``input``), where the lines go (``out``), on which Beam runner, and
    detect's options for every input."""

    input: str = option("", "glob of videos or image folders (quote it: ** recurses)", type=str)
    out: str = option("", "folder for one JSON lines file an input, and the summary", type=str)
    runner: str = option("DirectRunner", "Beam runner: DirectRunner, PrismRunner, FlinkRunner, "
                         "SparkRunner, DataflowRunner")  # fmt: skip
    track: bool | None = option(
        None, "ids across frames (default: on for videos with the landmark stage)", type=bool
    )
    max_frames: int = option(0, "read at most N frames of each input (0: all)")

    def check(self) -> None:
        if not self.input or not self.out:
            raise UserError("--input and --out are required")
        if self.max_frames < 0:
            raise UserError("--max-frames must be 0 (all) or more")
        super().check()

    def detect_options(self, source: str, json_path: str):
        """The ``DetectOptions`` of one input: these options, that source, that JSON file."""
        from handspot.run import DetectOptions

        shared = {f.name: getattr(self, f.name) for f in fields(HandDetectorOptions)}
        return DetectOptions(**shared, source=source, json=json_path, track=self.track,
                             max_frames=self.max_frames)  # fmt: skip


def list_inputs(pattern: str) -> dict[str, str]:
    """``{output name: input path}`` of every file or folder the glob matches; an output name
    is the input's path under the glob's first folder with ``.jsonl`` for its suffix."""
    found = sorted(glob.glob(pattern, recursive=True))
    if not found:
        raise UserError(f"--input {pattern!r} matches nothing")
    root = Path(pattern)
    while glob.has_magic(str(root)) and root != root.parent:
        root = root.parent
    names: dict[str, str] = {}
    for path in found:
        rel = Path(path).relative_to(root) if Path(path) != root else Path(Path(path).name)
        name = str(rel.with_suffix(".jsonl") if Path(path).is_file() else f"{rel}.jsonl")
        if name in names:
            raise UserError(f"{names[name]} and {path} would both write {name}; rename one")
        names[name] = path
    return names


def line_counts(path: Path) -> tuple[int, int]:
    """Frames and hands in a JSON lines output."""
    frames = hands = 0
    with open(path) as f:
        for line in f:
            frames += 1
            hands += len(json.loads(line)["detections"])
    return frames, hands


class DetectInputs:
    """The DoFn (made a ``beam.DoFn`` by ``do_fn``): models loaded once a worker, then one
    input at a time into its JSON lines file; yields the input's summary row."""

    def __init__(self, options: dict, out: str):
        self.options, self.out = options, out
        self.models = None

    def setup(self) -> None:
        from handspot.run import Models

        self.models = Models(BatchOptions(**self.options).detect_options("", ""))

    def process(self, item):
        from apache_beam.metrics import Metrics

        name, source = item
        row = run_one(BatchOptions(**self.options), self.models, name, source, Path(self.out))
        Metrics.counter(NAMESPACE, "videos").inc()
        Metrics.counter(NAMESPACE, "frames").inc(row["frames"])
        Metrics.counter(NAMESPACE, "hands").inc(row["hands"])
        if row["status"] != "done":
            Metrics.counter(NAMESPACE, "failed").inc()
        yield row


def run_one(options: BatchOptions, models, name: str, source: str, out: Path) -> dict:
    """One input through detect, its lines renamed into ``out/name`` only when it finished;
    its summary row (a failure is a row with its reason)."""
    from handspot.run import detect

    target = out / name
    part = target.with_name(f".{target.name}.batch-{os.getpid()}-{secrets.token_hex(4)}")
    start = time.perf_counter()
    row = {"output": name, "input": source, "frames": 0, "hands": 0}
    try:
        detect(options.detect_options(source, str(part)), multi=False, models=models)
        os.replace(part, target)
        row["frames"], row["hands"] = line_counts(target)
        row["status"] = "done"
    except UserError as e:
        row |= {"status": "failed", "reason": str(e)}
    except Exception as e:  # a broken input fails that input, never the run
        row |= {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    finally:
        part.unlink(missing_ok=True)
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def do_fn(options: dict, out: str):
    import apache_beam as beam

    class DetectInputsFn(DetectInputs, beam.DoFn):
        pass

    return DetectInputsFn(options, out)


def pipeline_options(runner: str, beam_args: list[str]):
    """Beam's options: the runner, whatever was passed for it, and on the DirectRunner one
    worker process a core unless said otherwise."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args = ["--runner", runner, *beam_args]
    if runner == "DirectRunner":
        if not any(a.startswith("--direct_num_workers") for a in beam_args):
            args += ["--direct_num_workers", str(os.cpu_count() or 1)]
        if not any(a.startswith("--direct_running_mode") for a in beam_args):
            args += ["--direct_running_mode", "multi_processing"]
    if not any(a.startswith("--default_sdk_harness_log_level") for a in beam_args):
        args += ["--default_sdk_harness_log_level", "ERROR"]  # the workers' notices
    return PipelineOptions(args)


def run_pipeline(options: BatchOptions, todo: dict[str, str], beam_args: list[str]) -> dict:
    """The inputs to do, through Beam, their rows merged into the summary; the run's Beam
    counters (videos, frames, hands, failed). A runner that cannot run is one error."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        result = build_pipeline(options, todo, beam_args).run()
        result.wait_until_finish()
    except Exception as e:  # the runner's (an input's own failure is its row, never this)
        why = (str(e).strip().splitlines() or [""])[-1][:300]
        raise UserError(f"the {options.runner} could not run ({type(e).__name__}: {why})") from None
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    return {c.key.metric.name: c.committed for c in found}


def build_pipeline(options: BatchOptions, todo: dict[str, str], beam_args: list[str]):
    """Create the inputs, keep those not done, detect, gather the rows into the summary."""
    import apache_beam as beam

    out = Path(options.out)
    p = beam.Pipeline(options=pipeline_options(options.runner, beam_args))
    _ = (
        p
        | "inputs" >> beam.Create(sorted(todo.items()))
        | "not done" >> beam.Filter(lambda item: not (out / item[0]).exists())
        | "detect" >> beam.ParDo(do_fn(asdict(options), str(out)))
        | "rows" >> beam.combiners.ToList()
        | "summary" >> beam.Map(lambda found: write_rows(out, found))
    )
    return p


def write_rows(out: Path, found: list[dict]) -> None:
    """The run's rows into ``out/_summary.json`` (merged with an earlier run's)."""
    summary = read_summary(out)
    for row in found:
        summary[row["output"]] = row
    write_summary(out, summary)


def read_summary(out: Path) -> dict[str, dict]:
    try:
        return json.loads((out / SUMMARY).read_text()).get("inputs", {})
    except (OSError, ValueError, AttributeError):
        return {}


def write_summary(out: Path, summary: dict[str, dict]) -> None:
    rows = [summary[k] for k in sorted(summary)]
    failed = [r for r in rows if r.get("status") != "done"]
    atomic_write_json(out / SUMMARY, {
        "inputs": {r["output"]: r for r in rows},
        "done": len(rows) - len(failed), "failed": len(failed),
        "frames": sum(r.get("frames", 0) for r in rows),
        "hands": sum(r.get("hands", 0) for r in rows),
    })  # fmt: skip
    lines = "".join(f"{r['input']}: {r.get('reason', r.get('status'))}\n" for r in failed)
    atomic_write_bytes(out / FAILURES, lines.encode())


def done_before(out: Path, inputs: dict[str, str]) -> dict[str, dict]:
    """The inputs whose output is there: their rows (an earlier run's, or counted now)."""
    earlier, rows = read_summary(out), {}
    for name, source in inputs.items():
        if (out / name).is_file():
            row = earlier.get(name) or {"output": name, "input": source, "status": "done"}
            if "frames" not in row:
                row["frames"], row["hands"] = line_counts(out / name)
            rows[name] = row
    return rows


def progress(out: Path, todo: dict[str, str], stop: threading.Event) -> None:
    """A tqdm line over the outputs appearing in ``out`` (local runners share its disk)."""
    from tqdm import tqdm

    with tqdm(total=len(todo), desc="detect.batch", unit="input") as bar:
        while not stop.wait(0.5):
            bar.n = sum((out / name).exists() for name in todo)
            bar.refresh()
        bar.n = sum((out / name).exists() for name in todo)
        bar.refresh()


def batch(options: BatchOptions, beam_args: list[str] = ()) -> dict:
    """List the inputs, run those not done through Beam, write the summary; returns it."""
    options.check()
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    inputs = list_inputs(options.input)
    earlier = done_before(out, inputs)
    todo = {k: v for k, v in inputs.items() if k not in earlier}
    out.mkdir(parents=True, exist_ok=True)
    for name in todo:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        if options.runner in LOCAL:  # a killed local run's part files, and their own parts
            for prefix in (".", ".."):  # (on a cluster they may be another host's, alive)
                remove_stale((out / name).parent, f"{prefix}{Path(name).name}.batch-")
    write_summary(out, {**read_summary(out), **earlier})
    if todo:
        stop = threading.Event()
        bar = threading.Thread(target=progress, args=(out, todo, stop), daemon=True)
        bar.start()
        try:
            counters = run_pipeline(options, todo, list(beam_args))
        finally:
            stop.set()
            bar.join(timeout=5)
    summary = json.loads((out / SUMMARY).read_text())
    summary["skipped"] = len(earlier)
    summary["counters"] = counters if todo else {}
    return summary


@command("interrupted; the finished outputs are kept: run the same command for the rest")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detect.batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, BatchOptions)
    args, beam_args = p.parse_known_args(argv)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)  # its workers' notices: noise here
    logging.getLogger().setLevel(logging.ERROR)
    try:
        summary = batch(from_args(BatchOptions, args), beam_args)
    except UserError as e:
        return fail(str(e))
    if counters := summary["counters"]:
        print(
            "this run's Beam counters: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counters.items()))
        )
    print(f"{args.out}: {summary['done']} input(s) done, {summary['failed']} failed, "
          f"{summary['frames']} frames, {summary['hands']} hands ({SUMMARY}); this run skipped "
          f"{summary['skipped']} done before")  # fmt: skip
    for line in (Path(args.out) / FAILURES).read_text().splitlines():
        print(f"failed: {line}", file=sys.stderr)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
