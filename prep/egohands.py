"""EgoHands -> train/eval/test split, CSVs, OD API TFRecords (boxes + PNG masks), label map: the
EgoHands importer, beside ``prep.coco`` and ``prep.voc``. Its CLI keeps the name users know,
``prep/egohands_clean.py`` (a script, or ``python -m prep.egohands_clean``):

    python prep/egohands_clean.py                       # download the official zip, then prep
    python prep/egohands_clean.py --source egohands_data.zip --out data/egohands
    python prep/egohands_clean.py --source ../shared/data/egohands-4videos   # boxes.csv layout

A source is the official ``egohands_data.zip`` or its unpacked folder (``_LABELLED_SAMPLES/
<VIDEO>/polygons.mat`` + frames, ``metadata.mat`` at the root), or a folder of video folders
with a ``boxes.csv`` (``filename,width,height,class,xmin,ymin,xmax,ymax``), which has boxes
but no masks.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import scipy.io

from common.folders import check_replaceable
from common.paths import CACHE_DIR
from handspot.errors import UserError, fail
from handspot.options import parse_names
from handspot.signals import command
from prep.dataset import FrameTask, Plan, RawObject, sort_tasks
from prep.sources import EGOHANDS_URL, Source, download
from prep.split import choose_videos, split_by_frame, split_by_video
from prep.summary import DatasetSummary

HAND_TYPES = ("myleft", "myright", "yourleft", "yourright")
CLASS_SETS = {"hand": ("hand",), "hand_type": HAND_TYPES}
_FRAME_NUM = re.compile(r"(\d+)\D*$")


@dataclass
class Video:
    name: str
    folder: str  # member prefix inside the source
    frames: list[str] = field(default_factory=list)  # image members, in label order
    labels: list[list[RawObject]] = field(default_factory=list)  # objects per frame
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------- .mat parsing


def _unwrap(x):
    """Strip the 1x1 object/cell wrappers scipy puts around MATLAB values."""
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.reshape(-1)[0]
    return x


def _text(x) -> str:
    x = _unwrap(x)
    if isinstance(x, np.ndarray):
        return "".join(str(c) for c in x.reshape(-1))
    return str(x)


def _loadmat(data: bytes, name: str) -> dict:
    try:
        return scipy.io.loadmat(io.BytesIO(data))
    except NotImplementedError:
        raise UserError(f"{name} is a MATLAB v7.3 (HDF5) file; save it with -v7") from None
    except Exception as e:  # scipy raises many types for damaged files
        raise UserError(f"{name} is not a readable .mat file ({type(e).__name__}: {e})") from None


def parse_polygons(data: bytes, name: str) -> list[dict[str, np.ndarray]]:
    """``polygons.mat`` -> one ``{hand_type: (N, 2) x,y array}`` per labelled frame."""
    mat = _loadmat(data, name)
    if "polygons" not in mat:
        raise UserError(f"{name} has no 'polygons' variable")
    poly = mat["polygons"]
    if poly.dtype.names is None or not set(HAND_TYPES) & set(poly.dtype.names):
        raise UserError(f"{name}: 'polygons' is not a struct array with fields {HAND_TYPES}")
    frames = []
    for rec in poly.reshape(-1):
        hands = {}
        for ht in HAND_TYPES:
            value = _unwrap(rec[ht]) if ht in poly.dtype.names else np.zeros((0, 2))
            try:
                hands[ht] = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                hands[ht] = np.full((1, 2), np.nan)  # unreadable: reported as degenerate
        frames.append(hands)
    return frames


def parse_metadata(data: bytes, name: str = "metadata.mat") -> dict[str, dict]:
    """``metadata.mat`` -> ``{video_id: {activity, location, viewer, partner, frame_nums}}``."""
    mat = _loadmat(data, name)
    if "video" not in mat or mat["video"].dtype.names is None:
        raise UserError(f"{name} has no 'video' struct array")
    video = mat["video"]
    fields = video.dtype.names
    out = {}
    for rec in video.reshape(-1):
        vid = _text(rec["video_id"])
        meta = {
            key: _text(rec[f])
            for key, f in (
                ("activity", "activity_id"),
                ("location", "location_id"),
                ("viewer", "ego_viewer_id"),
                ("partner", "partner_id"),
                ("partner_video", "partner_video_id"),
            )
            if f in fields
        }
        if "labelled_frames" in fields:
            lf = _unwrap(rec["labelled_frames"])
            try:
                meta["frame_nums"] = [
                    int(np.asarray(_unwrap(f["frame_num"])).reshape(-1)[0])
                    for f in np.asarray(lf).reshape(-1)
                ]
            except (ValueError, IndexError, TypeError, KeyError):
                raise UserError(f"{name}: labelled_frames of {vid} have no frame numbers") from None
        out[vid] = meta
    return out


def video_attributes(name: str) -> dict[str, str]:
    """EgoHands ids read ACTIVITY_LOCATION_VIEWER_PARTNER, e.g. CARDS_COURTYARD_B_T."""
    parts = name.split("_")
    keys = ("activity", "location", "viewer", "partner")
    return dict(zip(keys, parts, strict=False)) if len(parts) == 4 else {}


# ---------------------------------------------------------------- discovery


def _frame_num(member: str) -> int:
    m = _FRAME_NUM.search(PurePosixPath(member).stem)
    return int(m.group(1)) if m else -1


def _images_by_folder(source: Source) -> dict[str, list[str]]:
    folders: dict[str, list[str]] = {}
    for m in source.members:
        p = PurePosixPath(m)
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and not p.name.startswith("."):
            folders.setdefault(str(p.parent), []).append(m)
    return {k: sorted(v, key=lambda m: (_frame_num(m), m)) for k, v in folders.items()}


def discover_polygons(source: Source, classes: str) -> tuple[list[Video], list[str]]:
    """Videos of the official layout, frames paired with their polygons."""
    warnings: list[str] = []
    meta_members = sorted(
        (m for m in source.members if PurePosixPath(m).name == "metadata.mat"),
        key=lambda m: (m.count("/"), m),
    )
    metadata = parse_metadata(source.read(meta_members[0]), meta_members[0]) if meta_members else {}
    if not meta_members:
        warnings.append("no metadata.mat: frames paired with polygons by sorted file order")
    images = _images_by_folder(source)
    videos = []
    for pm in (m for m in source.members if PurePosixPath(m).name == "polygons.mat"):
        folder = str(PurePosixPath(pm).parent)
        name = PurePosixPath(folder).name
        polys = parse_polygons(source.read(pm), pm)
        frames = images.get(folder, [])
        meta = {**video_attributes(name), **metadata.get(name, {})}
        nums = meta.pop("frame_nums", None)
        if nums is not None:
            by_num = {_frame_num(f): f for f in frames}
            missing = [n for n in nums if n not in by_num]
            if missing or len(nums) != len(polys):
                raise UserError(
                    f"video {name}: metadata.mat lists {len(nums)} labelled frames, polygons.mat "
                    f"has {len(polys)}" + (f", frame(s) {missing[:5]} missing" if missing else "")
                )
            frames = [by_num[n] for n in nums]
        elif len(frames) != len(polys):
            raise UserError(
                f"video {name}: {len(frames)} frames but {len(polys)} polygon entries "
                "in polygons.mat"
            )
        video = Video(name, folder, frames, meta=meta)
        for hands in polys:
            video.labels.append(
                [
                    RawObject("hand" if classes == "hand" else ht, ht, (hands[ht],))
                    for ht in HAND_TYPES
                    if hands[ht].size
                ]
            )
        videos.append(video)
    orphans = sorted(
        f for f in images if f not in {v.folder for v in videos} and PurePosixPath(f).name != "."
    )
    for f in orphans:
        warnings.append(f"{f}: images but no polygons.mat; folder skipped")
    return videos, warnings


def discover_csv(source: Source, classes: str, csv_member: str) -> tuple[list[Video], list[str]]:
    """Video folders labelled by a handtracking-style boxes CSV (no masks)."""
    if classes != "hand":
        raise UserError("a boxes CSV carries no hand types; use --classes hand")
    try:
        text = source.read(csv_member).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{csv_member} is not a text CSV file (not UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text))
    need = {"filename", "xmin", "ymin", "xmax", "ymax"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise UserError(f"{csv_member} needs columns {sorted(need)}")
    base = str(PurePosixPath(csv_member).parent)
    boxes: dict[str, list[RawObject]] = {}
    for i, row in enumerate(reader, 2):
        try:
            box = tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise UserError(f"{csv_member} line {i}: coordinates are not numbers") from None
        member = str(PurePosixPath(base) / row["filename"]) if base != "." else row["filename"]
        boxes.setdefault(member, []).append(RawObject("hand", row.get("hand_type") or "", (), box))
    known = set(source.members)
    videos: dict[str, Video] = {}
    for member in sorted(boxes, key=lambda m: (str(PurePosixPath(m).parent), _frame_num(m), m)):
        if member not in known:
            raise UserError(f"{csv_member} names {member}, which is not in {source.path}")
        folder = str(PurePosixPath(member).parent)
        name = PurePosixPath(folder).name if folder != "." else "images"
        v = videos.setdefault(name, Video(name, folder, meta=video_attributes(name)))
        v.frames.append(member)
        v.labels.append(boxes[member])
    return list(videos.values()), []


def discover(source: Source, classes: str) -> tuple[list[Video], list[str]]:
    if any(PurePosixPath(m).name == "polygons.mat" for m in source.members):
        videos, warnings = discover_polygons(source, classes)
    else:
        csvs = sorted(
            (m for m in source.members if PurePosixPath(m).name == "boxes.csv"),
            key=lambda m: (m.count("/"), m),
        )
        if not csvs:
            raise UserError(
                f"no EgoHands videos in {source.path}: found neither "
                "<VIDEO>/polygons.mat nor boxes.csv"
            )
        videos, warnings = discover_csv(source, classes, csvs[0])
    videos = [v for v in videos if v.frames]
    if not videos:
        raise UserError(f"no labelled frames in {source.path}")
    return sorted(videos, key=lambda v: v.name), warnings


# ---------------------------------------------------------------- main


def plan_egohands(
    source: Source,
    *,
    classes: str = "hand",
    split_by: str = "video",
    ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    masks: bool = True,
    eval_videos: Sequence[str] = (),
    test_videos: Sequence[str] = (),
) -> Plan:
    """Discover and split. ``eval_videos``/``test_videos`` name the held-out videos explicitly
    (every other video trains; ``ratios`` and ``seed`` are unused)."""
    videos, warnings = discover(source, classes)
    tasks = [
        FrameTask(f"{v.name}_{PurePosixPath(f).name}", f, v.name, objs)
        for v in videos
        for f, objs in zip(v.frames, v.labels, strict=True)
    ]
    if eval_videos or test_videos:
        if split_by != "video":
            raise UserError("--eval-videos/--test-videos need --split-by video")
        by_video = choose_videos([v.name for v in videos], eval_videos, test_videos)
        split_of = {t.key: by_video[t.video] for t in tasks}
    elif split_by == "video":
        by_video, more = split_by_video({v.name: v.meta for v in videos}, ratios, seed)
        warnings += more
        split_of = {t.key: by_video[t.video] for t in tasks}
    else:
        by_video = {}
        split_of = split_by_frame([t.key for t in tasks], ratios, seed)
    sort_tasks(tasks, split_of, key=lambda t: (t.video, _frame_num(t.member), t.key))
    has_polygons = all(o.polygons for t in tasks for o in t.objects)
    meta = {
        "tool": "prep.egohands_clean",
        "source": source.path.name,
        "split_by": split_by,
        "seed": seed,
        "ratios": list(ratios),
        **(
            {"held_out": {"eval": list(eval_videos), "test": list(test_videos)}}
            if eval_videos or test_videos
            else {}
        ),
        "warnings": warnings,
    }
    video_meta = {
        v.name: ({"split": by_video[v.name]} if by_video else {}) | v.meta for v in videos
    }
    return Plan(
        source,
        tasks,
        split_of,
        list(CLASS_SETS[classes]),
        masks and has_polygons,
        meta,
        video_meta,
    )


def prepare(
    source: Source,
    out: Path,
    *,
    workers: int | None = None,
    keep_empty: bool = False,
    frames_per_shard: int = 400,
    **kw,
) -> DatasetSummary:
    """Discover, split and write (see :func:`plan_egohands`); return the summary."""
    check_replaceable(Path(out), "dataset")  # before reading anything
    return plan_egohands(source, **kw).build(
        out,
        keep_empty=keep_empty,
        workers=(os.cpu_count() or 1) if workers is None else workers,
        frames_per_shard=frames_per_shard,
    )


def print_summary(summary: DatasetSummary, out: Path, seconds: float) -> None:
    print(f"\n{'split':<6} {'frames':>7} {'boxes':>7} {'shards':>6} {'skipped':>8}  videos")
    for name, s in summary.splits.items():
        skipped = sum(s.skipped_frames.values())
        print(f"{name:<6} {s.frames:>7} {s.boxes:>7} {s.shards:>6} {skipped:>8}  {len(s.videos)}")
    t = summary.totals
    print(
        f"{t.frames} frames, {t.boxes} boxes, masks: {'yes' if summary.masks else 'no'}; "
        f"skipped {t.skipped_frames} frames, {t.skipped_boxes} boxes "
        f"(reasons in {out / 'summary.json'})"
    )
    for w in summary.warnings:
        print(f"warning: {w}")
    print(f"wrote {out} in {seconds:.1f} s")


def parse_ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three numbers like 0.8,0.1,0.1, got {text}"
        ) from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.8,0.1,0.1, got {text}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="egohands_clean",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--source",
        help="egohands_data.zip or an unpacked folder (default: download "
        "the official zip into the cache, resuming a partial download)",
    )
    p.add_argument("--url", default=EGOHANDS_URL, help="download URL (default: %(default)s)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=CACHE_DIR,
        help="where downloads go (default: %(default)s; env HANDS_CACHE)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("data/egohands"),
        help="output folder (default: %(default)s)",
    )
    p.add_argument(
        "--classes",
        choices=sorted(CLASS_SETS),
        default="hand",
        help="one class 'hand', or the four hand types (default: %(default)s)",
    )
    p.add_argument(
        "--split-by",
        choices=("video", "frame"),
        default="video",
        help="split whole videos (default) or frames",
    )
    p.add_argument(
        "--ratios",
        type=parse_ratios,
        default=(0.8, 0.1, 0.1),
        help="train,eval,test fractions (default: 0.8,0.1,0.1)",
    )
    p.add_argument("--seed", type=int, default=0, help="split seed (default: %(default)s)")
    for split in ("eval", "test"):
        p.add_argument(
            f"--{split}-videos",
            type=parse_names,
            default=(),
            metavar="NAME[,NAME]",
            help=f"put these videos in {split} (every other video trains; replaces --ratios)",
        )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: one per core; 0 = none)",
    )
    p.add_argument(
        "--frames-per-shard",
        type=int,
        default=400,
        help="TFRecord shard size in frames (default: %(default)s)",
    )
    p.add_argument("--no-masks", action="store_true", help="write boxes only")
    p.add_argument(
        "--keep-empty", action="store_true", help="keep frames with no hand as negative examples"
    )
    p.add_argument(
        "--preview",
        type=int,
        default=0,
        metavar="N",
        help="draw N frames per split, read back from the records, to <out>/preview/",
    )
    return p


@command()
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if args.frames_per_shard < 1:
            raise UserError("--frames-per-shard must be at least 1")
        if args.preview < 0:
            raise UserError("--preview must be 0 (none) or more")
        if args.source:
            source_path = Path(args.source)
        else:
            source_path = download(args.url, args.cache_dir / Path(args.url).name)
        source = Source(source_path)
        summary = prepare(
            source,
            args.out,
            classes=args.classes,
            split_by=args.split_by,
            ratios=args.ratios,
            seed=args.seed,
            workers=args.workers,
            masks=not args.no_masks,
            keep_empty=args.keep_empty,
            frames_per_shard=args.frames_per_shard,
            eval_videos=args.eval_videos,
            test_videos=args.test_videos,
        )
        print_summary(summary, args.out, time.perf_counter() - start)
        if args.preview:
            from prep.preview import write_previews

            written = write_previews(args.out, args.preview)
            print(f"preview: {len(written)} image(s) in {args.out / 'preview'}")
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0
