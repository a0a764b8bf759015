"""Several labelled sources into ONE dataset folder: EgoHands folders, COCO JSON and Pascal VOC,
each kept whole in its own sub-folder and every record tagged with its source's name.

    python -m prep.mix --out data/mix \\
        --egohands ego=../shared/data/egohands-4videos --eval-videos CARDS_LIVINGROOM_B_T \\
        --coco subhih=../shared/data/hands-webcam/subhih-webcam/annotations.json \\
        --coco asl=../shared/data/hands-webcam/asl-letters/annotations.json \\
        --coco fingers=../shared/data/hands-webcam/finger-gestures/annotations.json \\
        [--hold-out asl] [--voc mine=my/Annotations,my/JPEGImages] [--dup-distance 4]

Splits stay grouped: EgoHands by video (``--eval-videos``/``--test-videos``, else the seeded
stratified split), COCO by each image's own ``split`` field, VOC by its ``ImageSets/Main``
lists; ``--hold-out NAME`` puts a whole source in eval (to measure a model on a source it never
saw). Near-duplicate images (perceptual hash within ``--dup-distance`` bits) are found across
every source and split: a train image that duplicates an eval or test image is dropped from
train, a duplicate between two sources' train sets is kept once, and every pair is listed in
``duplicates.csv``; nothing is silently kept in both train and eval.

The folder holds ``<name>/`` (a dataset folder as prep writes for one source: images, CSVs,
``{train,eval,test}.record-*``), ``label_map.pbtxt`` (the classes of every source) and
``summary.json`` (per source and split: frames and boxes; the duplicates). ``pipelines.configure
--data`` on it samples each source with a weight and evaluates each source separately.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common.folders import atomic_dir, check_replaceable
from common.labelmap import write_label_map
from handspot.errors import UserError, fail
from handspot.options import parse_names
from handspot.signals import command
from prep.dataset import SPLITS, Plan
from prep.dedup import near_pairs, phash
from prep.summary import MIX, DatasetSummary, SourceSummary, SplitSummary, Totals

KINDS = ("egohands", "coco", "voc")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass
class SourceSpec:
    """One source of a mix: its name (folder and record tag), kind and where it is."""

    name: str
    kind: str
    path: Path
    images: Path | None = None  # COCO: image folder (default images/ beside the JSON); VOC: images


def parse_spec(kind: str, text: str) -> SourceSpec:
    """``NAME=PATH`` (COCO: ``NAME=JSON[,IMAGES]``; VOC: ``NAME=ANNOTATIONS,IMAGES``)."""
    name, sep, rest = text.partition("=")
    if not sep or not rest:
        raise UserError(f"--{kind} {text}: expected NAME=PATH")
    if not NAME.match(name):
        raise UserError(f"--{kind} {text}: a source name is letters, digits, - and _")
    path, _, images = rest.partition(",")
    if kind == "voc" and not images:
        raise UserError(f"--voc {text}: expected NAME=ANNOTATIONS_FOLDER,IMAGES_FOLDER")
    return SourceSpec(name, kind, Path(path), Path(images) if images else None)


def plan_source(spec: SourceSpec, eval_videos=(), test_videos=(), seed: int = 0) -> Plan:
    if spec.kind == "egohands":
        from prep.egohands import plan_egohands
        from prep.sources import Source

        return plan_egohands(
            Source(spec.path), eval_videos=eval_videos, test_videos=test_videos, seed=seed
        )
    if spec.kind == "coco":
        from prep.coco import plan_coco

        return plan_coco(spec.path, spec.images, seed=seed)
    if spec.kind == "voc":
        from prep.voc import plan_voc

        return plan_voc(spec.images, spec.path, seed=seed)
    raise UserError(f"unknown source kind {spec.kind}; expected one of {KINDS}")


def find_duplicates(plans: dict[str, Plan], distance: int) -> tuple[dict, list[dict]]:
    """Drop near-duplicates from the plans' train sets; return ``(counts, pairs)``."""
    refs = [(name, t) for name, plan in plans.items() for t in plan.tasks]
    hashes, readable = [], []
    for name, task in tqdm(refs, desc="hash", unit="image"):
        try:
            h = phash(plans[name].source.read(task.member))
        except UserError:
            h = None  # unreadable: build counts it as a corrupt image
        if h is not None:
            hashes.append(h)
            readable.append((name, task))
    dropped: dict[tuple[str, str], str] = {}  # (source, key) -> the count it adds to
    rows = []
    for i, j, bits in near_pairs(hashes, distance):
        (na, ta), (nb, tb) = readable[i], readable[j]
        sa, sb = plans[na].split_of[ta.key], plans[nb].split_of[tb.key]
        if na == nb and sa == sb:
            continue  # neighbouring frames of one video or one split: the source's own business
        action = "reported"
        if (sa == "train") != (sb == "train"):
            victim = (na, ta.key) if sa == "train" else (nb, tb.key)
            action = f"dropped {victim[0]}/{victim[1]} from train"
            dropped.setdefault(victim, "dropped_train_near_held_out")
        elif sa == sb == "train":
            action = f"dropped {nb}/{tb.key} (kept {na}/{ta.key})"
            dropped.setdefault((nb, tb.key), "dropped_across_sources")
        rows.append(
            {
                "a": f"{na}/{ta.key}",
                "a_split": sa,
                "b": f"{nb}/{tb.key}",
                "b_split": sb,
                "bits": bits,
                "action": action,
            }
        )
    counts = {"pairs": len(rows), "dropped_train_near_held_out": 0, "dropped_across_sources": 0}
    for count in dropped.values():
        counts[count] += 1
    for name, plan in plans.items():
        gone = {key for source, key in dropped if source == name}
        if gone:
            plan.tasks = [t for t in plan.tasks if t.key not in gone]
            for key in gone:
                plan.split_of.pop(key)
            plan.meta["dropped_duplicates"] = len(gone)
    return counts, rows


def mix(
    specs: list[SourceSpec],
    out: Path,
    *,
    hold_out: tuple[str, ...] = (),
    eval_videos: tuple[str, ...] = (),
    test_videos: tuple[str, ...] = (),
    dup_distance: int = 4,
    seed: int = 0,
    workers: int = 2,
) -> DatasetSummary:
    """Plan every source, hold out the named ones, drop duplicates, write; return the summary."""
    if not specs:
        raise UserError("no sources: pass --egohands, --coco or --voc NAME=PATH")
    check_replaceable(Path(out), "dataset")  # before reading anything
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UserError(f"source names must differ: {names}")
    unknown = sorted(set(hold_out) - set(names))
    if unknown:
        raise UserError(f"--hold-out {', '.join(unknown)}: no such source; sources: {names}")
    if (eval_videos or test_videos) and not any(s.kind == "egohands" for s in specs):
        raise UserError("--eval-videos/--test-videos need an --egohands source")
    if not 0 <= dup_distance < 32:
        raise UserError("--dup-distance must be between 0 and 31 bits")
    by_path: dict[Path, str] = {}
    for spec in specs:
        where = Path(spec.path).resolve()
        if where in by_path:
            raise UserError(f"sources {by_path[where]} and {spec.name} are the same: {spec.path}")
        by_path[where] = spec.name
    plans = {s.name: plan_source(s, eval_videos, test_videos, seed) for s in specs}
    for name in hold_out:
        plan = plans[name]
        plan.split_of = dict.fromkeys(plan.split_of, "eval")
        plan.meta["held_out_whole"] = True
    if all(v != "train" for p in plans.values() for v in p.split_of.values()):
        raise UserError("every source is held out; leave at least one to train on")
    classes: list[str] = []
    for plan in plans.values():
        classes += [c for c in plan.classes if c not in classes]
    trained = {n for n, p in plans.items() if "train" in p.split_of.values()}
    counts, pairs = find_duplicates(plans, dup_distance)
    for name, plan in plans.items():
        if not plan.tasks:
            raise UserError(
                f"source {name}: de-duplication removed every frame (each is a near-duplicate "
                "of another source's: the same pictures given twice?)"
            )
        if name in trained and "train" not in plan.split_of.values():
            plan.meta.setdefault("warnings", []).append(
                "de-duplication removed every train frame (each is a near-duplicate of another "
                "source's: the same pictures given twice?); this source trains nothing"
            )
    summaries = {}
    inputs = [s.path for s in specs]
    with atomic_dir(out, "dataset", tool="prep.mix", inputs=inputs) as tmp:
        for spec in specs:
            plan = plans[spec.name]
            plan.classes = classes
            summaries[spec.name] = plan.build(tmp / spec.name, workers=workers, dataset=spec.name)
        write_label_map(tmp / "label_map.pbtxt", classes)
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, ["a", "a_split", "b", "b_split", "bits", "action"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(pairs)
        (tmp / "duplicates.csv").write_text(buf.getvalue())
        summary = DatasetSummary(
            MIX,
            classes,
            Totals(*(sum(getattr(b.totals, k) for b in summaries.values()) for k in TOTALS)),
            sources={
                spec.name: _source_summary(spec, summaries[spec.name], plans[spec.name], hold_out)
                for spec in specs
            },
            duplicates={"distance_bits": dup_distance, **counts},
        )
        summary.write(tmp)
    return summary


TOTALS = ("frames", "boxes", "skipped_frames", "skipped_boxes")


def _source_summary(spec: SourceSpec, built: DatasetSummary, plan: Plan, hold_out) -> SourceSummary:
    return SourceSummary(
        {
            s: SplitSummary(split.frames, split.boxes, f"{spec.name}/{split.records}")
            for s, split in built.splits.items()
        },
        kind=spec.kind,
        path=str(spec.path),
        held_out_whole=spec.name in hold_out,
        split_by=built.meta.get("split_by"),
        dropped_duplicates=plan.meta.get("dropped_duplicates", 0),
        skipped_frames=built.totals.skipped_frames,
        skipped_boxes=built.totals.skipped_boxes,
        warnings=built.warnings,
    )


def print_table(summary: DatasetSummary, out: Path, seconds: float) -> None:
    print(f"\n{'source':<16} {'kind':<9} {'train':>11} {'eval':>11} {'test':>11}  dropped dups")
    for name, s in summary.sources.items():
        cells = [f"{s.splits[k].frames}/{s.splits[k].boxes}" for k in SPLITS]
        held = " (held out)" if s.held_out_whole else ""
        print(
            f"{name:<16} {s.kind:<9} {cells[0]:>11} {cells[1]:>11} {cells[2]:>11}  "
            f"{s.dropped_duplicates}{held}"
        )
        for w in s.warnings:
            print(f"warning: {name}: {w}")
    d, t = summary.duplicates, summary.totals
    print(
        f"frames/boxes per split. {t.frames} frames, {t.boxes} boxes; skipped "
        f"{t.skipped_frames} frames, {t.skipped_boxes} boxes. Near-duplicate pairs "
        f"(<= {d['distance_bits']} bits) across sources or splits: {d['pairs']} (list in "
        f"{out / 'duplicates.csv'})"
    )
    print(f"wrote {out} in {seconds:.1f} s")


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m prep.mix",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="the mixed dataset folder")
    for kind, meta in (
        ("egohands", "NAME=FOLDER_OR_ZIP"),
        ("coco", "NAME=JSON[,IMAGES]"),
        ("voc", "NAME=ANNOTATIONS,IMAGES"),
    ):
        p.add_argument(f"--{kind}", action="append", default=[], metavar=meta)
    p.add_argument("--hold-out", type=parse_names, default=(), metavar="NAME[,NAME]")
    for split in ("eval", "test"):
        p.add_argument(
            f"--{split}-videos",
            type=parse_names,
            default=(),
            metavar="VIDEO[,VIDEO]",
            help=f"EgoHands videos for {split} (every other video trains)",
        )
    p.add_argument("--dup-distance", type=int, default=4, help="pHash bits (default: 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        specs = [parse_spec(kind, text) for kind in KINDS for text in getattr(args, kind)]
        summary = mix(
            specs,
            args.out,
            hold_out=args.hold_out,
            eval_videos=args.eval_videos,
            test_videos=args.test_videos,
            dup_distance=args.dup_distance,
            seed=args.seed,
            workers=args.workers,
        )
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    print_table(summary, args.out, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
