"""Fine-tune an exported model on your own labelled frames without forgetting what it knew: one
command from the dataset folder to a before/after table and an exported model.

    python -m pipelines.finetune --data data/mine --out runs/mine

It starts from ``--base``'s checkpoint (default: the shipped model), mixes a replay share of
the base model's own training sources into every batch (``--replay``, a prep.mix folder;
default ``data/mix`` when present), picks the steps, learning rate and warm-up by the rule
below, trains (resumable: run the same command again), scores the base model and the
fine-tuned one on every held-out set (yours and each replay source's: what was gained and what
was forgotten), and exports ``<out>/export`` with the table in its card.

The rule, measured on the README's case ("Train on your own hands"): ``steps`` = 12 passes over
your training frames at your share of the batch, between 200 and 3,000; learning rate 0.002 at
batch 8, in proportion to the batch; warm-up over the first 10% of the steps from a tenth of
the rate; cosine decay to 0.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.paths import DEFAULT_MODEL, ROOT
from handspot.errors import UserError, fail
from handspot.files import atomic_write_json
from handspot.options import add_options, from_args, option
from handspot.signals import command
from pipelines.configure import parse_weights

PASSES = 12  # over the user's training frames
MIN_STEPS, MAX_STEPS = 200, 3000
LR_AT_8 = 0.002  # at batch 8, scaled in proportion to the batch
WARMUP = 0.1  # of the steps, from LR / 10
HEADS = "BoxPredictor"  # --head-only trains the variables whose names contain this
REPORT = "finetune.json"


@dataclass(frozen=True)
class FinetuneOptions:
    data: str = option("", "your dataset folder (prep.coco / prep.cvat / prep.labelstudio ...)")
    out: str = option("", "run folder: config, checkpoints, finetune.json, export/")
    base: str = option(str(DEFAULT_MODEL), "exported model to start from (default: shipped)")
    replay: str | None = option(
        None, "prep.mix folder of the base model's sources (default: data/mix if present; "
        "'none': no replay)", type=str,
    )  # fmt: skip
    replay_share: float = option(0.5, "share of each batch drawn from the replay sources")
    replay_weights: str = option(
        "", "NAME=W[,NAME=W]: relative weights of the replay sources (default 1 each; 0 leaves "
        "one out, e.g. the one your frames come from)", metavar="NAME=W",
    )  # fmt: skip
    batch_size: int = option(8, "global batch")
    steps: int | None = option(None, "total steps (default: the rule)", type=int)
    learning_rate: float | None = option(None, "peak rate (default: the rule)", type=float)
    head_only: bool = option(False, "train the box predictor only; the backbone and FPN stay")
    export: bool = option(True, "export the fine-tuned model into <out>/export", type=bool)
    seed: int | None = option(0, "TensorFlow's seed", type=int)
    max_eval: int | None = option(None, "score at most N frames of each held-out set", type=int)
    quiet: bool = option(False, cli=False)

    def check(self) -> None:
        if not self.data or not self.out:
            raise UserError("--data and --out are required")
        if not 0.0 <= self.replay_share < 1.0:
            raise UserError(f"--replay-share must be from 0 to below 1, got {self.replay_share}")
        if self.batch_size < 1 or (self.steps is not None and self.steps < 1):
            raise UserError("--batch-size and --steps must be at least 1")
        if self.learning_rate is not None and not (
            math.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise UserError(f"--learning-rate must be above 0, not {self.learning_rate}")
        if self.max_eval is not None and self.max_eval < 1:
            raise UserError(f"--max-eval must be at least 1 (leave it out for all), not "
                            f"{self.max_eval}")  # fmt: skip
        if self.replay == "none" and self.replay_weights:
            raise UserError("--replay-weights weighs the replay sources, and --replay is none")


@dataclass
class Plan:
    """What the rule chose, from what."""

    train_frames: int
    batch_size: int
    replay: str | None
    replay_share: float
    steps: int
    learning_rate: float
    warmup_steps: int
    head_only: bool


@dataclass
class FinetuneReport:
    """``<out>/finetune.json``, also the exported card's ``finetune`` entry: the plan and AP50
    per held-out set, base model against fine-tuned."""

    base: str
    plan: Plan
    rows: dict[str, dict] = field(default_factory=dict)  # set -> {"frames", "base", "tuned"}

    def save(self, folder: Path) -> None:
        atomic_write_json(Path(folder) / REPORT, asdict(self))

    @classmethod
    def load(cls, folder: Path) -> FinetuneReport:
        raw = json.loads((Path(folder) / REPORT).read_text())
        return cls(raw["base"], Plan(**raw["plan"]), raw["rows"])

    def table(self) -> str:
        lines = ["| held-out set | frames | base AP50 | fine-tuned AP50 | change |",
                 "|---|---|---|---|---|"]  # fmt: skip
        for name, r in self.rows.items():
            change = r["tuned"] - r["base"]
            lines.append(
                f"| {name} | {r['frames']} | {r['base']:.3f} | {r['tuned']:.3f} | {change:+.3f} |"
            )
        return "\n".join(lines)


def rule(train_frames: int, batch: int, share: float) -> tuple[int, float, int]:
    """Steps, peak learning rate and warm-up steps for this much data and this batch."""
    own_per_step = batch * (1.0 - share)
    steps = min(MAX_STEPS, max(MIN_STEPS, math.ceil(PASSES * train_frames / own_per_step)))
    return steps, LR_AT_8 * batch / 8, round(WARMUP * steps)


def default_replay() -> str:
    """``data/mix`` when prep.mix has written it; else one error saying how to make it, since
    fine-tuning without replay forgets (the measured case in docs/training.md)."""
    mix = ROOT / "data" / "mix"
    if (mix / "summary.json").is_file():
        return str(mix)
    raise UserError(
        f"no replay set: {mix} is missing. Without replay, fine-tuning forgot 0.09-0.10 AP50 on "
        "the model's own sources in the measured case (docs/training.md). Build it first with "
        f"the base model's sources: {MIX_COMMAND}; or pass --replay FOLDER (a prep.mix "
        "folder), or --replay none to train on your frames only"
    )


MIX_COMMAND = (  # the shipped model's sources (docs/training.md, "Prepare data")
    "python -m prep.mix --out data/mix --egohands ego=../shared/data/egohands-4videos "
    "--eval-videos CARDS_LIVINGROOM_B_T "
    "--coco subhih=../shared/data/hands-webcam/subhih-webcam/annotations.json "
    "--coco asl=../shared/data/hands-webcam/asl-letters/annotations.json "
    "--coco fingers=../shared/data/hands-webcam/finger-gestures/annotations.json"
)


def build_config(options: FinetuneOptions):
    """The run's pipeline.config (the base model's, with these inputs and this schedule) and
    the plan."""
    from pipelines import pipeline_config as cfg
    from prep.folder import Dataset

    base = Path(options.base)
    start = base / "checkpoint" / "ckpt-0"
    if not cfg.checkpoint_exists(str(start)) or not (base / "pipeline.config").is_file():
        raise UserError(f"{base}: not an exported model with checkpoint/ckpt-0 and its config")
    proto = cfg.load(base / "pipeline.config")
    mine = Dataset.read(options.data)
    check_classes(mine, options)
    replay = options.replay if options.replay is not None else default_replay()
    replay = None if replay == "none" else replay
    template = type(proto.eval_input_reader[0])()
    template.CopyFrom(proto.eval_input_reader[0])
    cfg.set_inputs(proto, Path(options.data), {})
    readers = list(proto.eval_input_reader)
    for r in readers:
        r.name = r.name or "mine"
    source = proto.train_input_reader
    own = list(source.tf_record_input_reader.input_path)
    frames = sum(s.splits["train"].frames or 0 for s in mine.sources.values() if s.trains())
    if frames == 0:
        raise UserError(f"{options.data} has no training frames")
    weights = [(1.0 - (options.replay_share if replay else 0.0)) / len(own)] * len(own)
    if replay:
        add_replay(proto, Dataset.read(replay), replay, options, weights, readers, template)
    del source.sample_from_datasets_weights[:]
    source.sample_from_datasets_weights.extend(weights)
    del proto.eval_input_reader[:]
    proto.eval_input_reader.extend(readers)
    if not readers:
        raise UserError("nothing to score: your data has no held-out frames and there is no replay")
    plan = plan_schedule(options, frames, replay)
    set_schedule(proto, plan, start)
    return proto, plan


def check_classes(mine, options: FinetuneOptions) -> None:
    """Your dataset labels the base model's classes, or one error."""
    from handspot.card import ModelCard

    base_classes = [n for _, n in sorted(ModelCard.load(Path(options.base)).labels.items())]
    if list(mine.classes) != base_classes:
        raise UserError(
            f"{options.data} has classes {list(mine.classes)}, the base model {base_classes}: "
            "label the same classes (or train a new model with pipelines.configure)"
        )


def add_replay(proto, mix, replay: str, options, weights: list, readers: list, template) -> None:
    """The replay sources into the training input (``weights`` extended) and their held-out
    sets into ``readers``."""
    from pipelines import pipeline_config as cfg

    if not mix.mix:
        raise UserError(f"--replay {replay}: not a folder written by prep.mix")
    try:
        relative = parse_weights(options.replay_weights)
    except argparse.ArgumentTypeError as e:
        raise UserError(f"--replay-weights: {e}") from None
    unknown = sorted(set(relative) - set(mix.sources))
    if unknown:
        raise UserError(f"--replay-weights: no source {', '.join(unknown)} in {replay}")
    chosen = {
        n: relative.get(n, 1.0)
        for n, s in mix.sources.items()
        if s.trains() and relative.get(n, 1.0) > 0
    }
    if not chosen:
        raise UserError(f"--replay {replay}: no source trains with a weight above 0")
    total = sum(chosen.values())
    inputs = proto.train_input_reader.tf_record_input_reader.input_path
    for n, w in chosen.items() if options.replay_share > 0 else ():  # 0: scored only
        inputs.append(mix.sources[n].records("train"))
        weights.append(options.replay_share * w / total)
    for n, s in mix.sources.items():
        if held := s.held_out():
            name = n if n not in {r.name for r in readers} else f"replay_{n}"
            label_map = proto.train_input_reader.label_map_path
            readers.append(cfg.eval_reader(template, name, label_map, held))


def plan_schedule(options: FinetuneOptions, frames: int, replay: str | None) -> Plan:
    """The rule's steps, rate and warm-up, or the ones given."""
    share = options.replay_share if replay else 0.0
    steps, lr, warmup = rule(frames, options.batch_size, share)
    if options.steps:
        steps = options.steps
        warmup = min(round(WARMUP * steps), steps - 1)
    lr = options.learning_rate or lr
    return Plan(frames, options.batch_size, replay, share, steps, lr, warmup, options.head_only)


def set_schedule(proto, plan: Plan, start: Path) -> None:
    """The plan into the config: batch, steps, the base checkpoint, the cosine schedule, and
    which variables train."""
    from pipelines import pipeline_config as cfg

    train = proto.train_config
    train.batch_size = plan.batch_size
    train.num_steps = plan.steps
    train.fine_tune_checkpoint = str(start)
    train.fine_tune_checkpoint_type = "full"
    schedule = cfg.cosine_schedule(proto)
    schedule.learning_rate_base = plan.learning_rate
    schedule.total_steps = plan.steps
    schedule.warmup_learning_rate = plan.learning_rate / 10
    schedule.warmup_steps = plan.warmup_steps
    del train.update_trainable_variables[:]
    if plan.head_only:
        train.update_trainable_variables.append(HEADS)


def finetune(options: FinetuneOptions) -> FinetuneReport:
    """Configure, train, score before/after, export (see the module's notes). ``--out`` holds
    one run: the same command resumes it, another (other data, base or plan) is refused, and
    one process at a time works in it."""
    options.check()
    proto, plan = build_config(options)
    out = Path(options.out)
    with run_folder(out, run_identity(options, plan)):
        return run(options, proto, plan, out)


def run(options: FinetuneOptions, proto, plan: Plan, out: Path) -> FinetuneReport:
    """Train (resuming), score both models, write the report, export."""
    from pipelines import pipeline_config as cfg
    from pipelines.evaluate import evaluate, resolve_checkpoint
    from pipelines.train import TrainOptions, train

    pipeline = out / "finetune.config"
    cfg.save(proto, pipeline)
    every = max(plan.steps // 4, 50)
    train(pipeline, out / "train", TrainOptions(seed=options.seed, quiet=options.quiet,
                                                 checkpoint_every=every))  # fmt: skip
    scores = {}
    for which, checkpoint in (
        ("tuned", resolve_checkpoint(out / "train", None)),
        ("base", proto.train_config.fine_tune_checkpoint),
    ):
        result = evaluate(
            pipeline, checkpoint, max_examples=options.max_eval, quiet=options.quiet, faces=False
        )
        scores[which] = result.per_source
    tuned, before = scores["tuned"], scores["base"]
    report = FinetuneReport(str(options.base), plan)
    for name, r in tuned.items():
        report.rows[name] = {
            "frames": r.examples,
            "base": round(before[name].headline["box_AP50"], 4),
            "tuned": round(r.headline["box_AP50"], 4),
        }
    report.save(out)
    if options.export:
        from pipelines.export import export

        card = {"finetune": asdict(report)}
        export(out / "train" / "pipeline.config", out / "train", out / "export", extra_card=card)
    return report


RUN = "finetune-run.json"  # what the run in a folder was asked: data, base, replay, plan


def run_identity(options: FinetuneOptions, plan: Plan) -> dict:
    def where(path: str | None) -> str | None:
        return None if path is None else str(Path(path).resolve())

    chosen = asdict(plan) | {"replay": where(plan.replay)}
    return {"data": where(options.data), "base": where(options.base), "seed": options.seed,
            "replay_weights": options.replay_weights, "plan": chosen}  # fmt: skip


@contextlib.contextmanager
def run_folder(out: Path, identity: dict):
    """Hold ``out`` for this run: made if missing, locked against a second process, and
    refused when it holds another run's work or files of the user's."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = open(out / ".finetune.lock", "w")  # noqa: SIM115 - held for the whole run
    except OSError as e:
        raise UserError(f"cannot write to {out}: {e.strerror or e}") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another fine-tune is running in {out}; wait for it to end or "
                            "choose another --out") from None  # fmt: skip
        check_same_run(out, identity)
        atomic_write_json(out / RUN, identity)
        yield


def check_same_run(out: Path, identity: dict) -> None:
    """``out`` is new, or holds the run ``identity`` describes (then it resumes)."""
    try:
        before = json.loads((out / RUN).read_text())
    except FileNotFoundError:
        before = None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {out / RUN}: {e}") from None
    if before is None:
        theirs = sorted(p.name for p in out.iterdir() if p.name != ".finetune.lock")
        if theirs:
            raise UserError(f"--out {out} holds files of another kind ({', '.join(theirs[:3])}); "
                            "choose a new or empty folder")  # fmt: skip
        return
    changed = [k for k in identity if k != "plan" and before.get(k) != identity[k]]
    plan = before.get("plan") or {}
    changed += [f"plan.{k}" for k, v in identity["plan"].items() if plan.get(k) != v]
    if changed:
        raise UserError(
            f"--out {out} holds a fine-tune run with another {', '.join(changed)}; the same "
            "command resumes it: choose another --out for this one (or delete that folder)"
        )


@command("interrupted; the last checkpoint is kept: run the same command to resume")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, FinetuneOptions)
    args = p.parse_args(argv)
    try:
        options = from_args(FinetuneOptions, args)
        report = finetune(options)
    except UserError as e:
        return fail(str(e))
    print(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
