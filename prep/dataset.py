"""Turn labelled frames from any source into the project's dataset folder.

The folder (``--out``) holds ``images/<split>/``, ``<split>_labels.csv``, sharded
``<split>.record-?????-of-?????`` files in the OD API tf.Example format, ``label_map.pbtxt`` and
``summary.json``. It is written to a temporary sibling and renamed into place at the end.

Frames are processed in worker processes (read + validate the image, clip polygons, compute
boxes, rasterise and PNG-encode masks); the main process writes, in a fixed order, so re-runs
give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from common.folders import atomic_dir
from common.labelmap import write_label_map
from handspot.errors import UserError
from prep.geometry import (
    clean_polygon,
    clip_polygon,
    egohands_box,
    mask_to_png,
    polygon_area,
    rasterize,
)
from prep.sources import Source, TinyImage, as_png, upright, validate_image
from prep.summary import DatasetSummary, SplitSummary, Totals

SPLITS = ("train", "eval", "test")
CSV_COLUMNS = (
    "filename",
    "width",
    "height",
    "class",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "video",
    "hand_type",
)
FRAMES_PER_SHARD = 400


@dataclass
class RawObject:
    """An object as the source labels it: polygons (boxes derived from them), or a box."""

    label: str
    hand_type: str = ""
    polygons: tuple[np.ndarray, ...] = ()
    box: tuple[float, float, float, float] | None = None  # xmin, ymin, xmax, ymax in pixels


@dataclass
class FrameTask:
    key: str  # unique output file name, e.g. CARDS_OFFICE_S_B_frame_0011.jpg
    member: str  # where the image is inside the source
    video: str
    objects: list[RawObject]
    size: tuple[int, int] | None = None  # width, height the labels declare (COCO), if any


@dataclass
class Obj:
    label: str
    hand_type: str
    box: tuple[float, float, float, float]
    mask_png: bytes | None = None


@dataclass
class FrameResult:
    key: str
    video: str
    file_name: str = ""  # in images/<split>/ and the records: the key, + ".png" when converted
    width: int = 0
    height: int = 0
    image: bytes = b""
    image_format: str = "jpeg"
    objects: list[Obj] = field(default_factory=list)
    skipped: str | None = None  # reason the whole frame was dropped
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason, message)


@dataclass
class Plan:
    """What one source contributes, before anything is written: its frames (sorted: train,
    eval, test), the split of each, its classes and the summary's metadata."""

    source: Source
    tasks: list[FrameTask]
    split_of: dict[str, str]
    classes: list[str]
    masks: bool
    meta: dict
    video_meta: dict | None = None
    labels: Path | None = None  # the labelling tool's file read, beside the source's images

    def build(self, out: Path, **kwargs) -> DatasetSummary:
        """Write this plan as a dataset folder (see :func:`build` for ``kwargs``); never into a
        folder that holds what it reads."""
        inputs = [self.source.path] + ([self.labels] if self.labels else [])
        return build(
            self.source,
            self.tasks,
            self.split_of,
            out,
            self.classes,
            masks=self.masks,
            meta=self.meta,
            video_meta=self.video_meta,
            inputs=inputs,
            **kwargs,
        )


def sort_tasks(tasks: list[FrameTask], split_of: dict[str, str], key=lambda t: t.key) -> None:
    """Order tasks train, eval, test, then by ``key`` (the order build writes them in)."""
    order = {s: i for i, s in enumerate(SPLITS)}
    tasks.sort(key=lambda t: (order[split_of[t.key]], key(t)))


def _fix_box(box, width: int, height: int) -> tuple[float, float, float, float] | None:
    """The box clipped to the image, at the labels table's precision (0.001 px), or None where
    nothing of it is left."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    x0, x1 = (round(min(max(v, 0.0), width), 3) for v in (x0, x1))
    y0, y1 = (round(min(max(v, 0.0), height), 3) for v in (y0, y1))
    if x1 <= x0 or y1 <= y0:
        return None
    return tuple(int(v) if float(v).is_integer() else float(v) for v in (x0, y0, x1, y1))


def process_object(
    obj: RawObject, width: int, height: int, masks: bool
) -> tuple[Obj | None, list[tuple[str, str]]]:
    """Clean one object; return it (or ``None`` when dropped) and the problems met."""
    problems: list[tuple[str, str]] = []
    polys = []
    for raw in obj.polygons:
        pts, dropped = clean_polygon(raw)
        if dropped:
            problems.append(("nan_coordinates", f"{dropped} non-finite point(s) dropped"))
        n_raw = len(pts)
        outside = n_raw >= 3 and (
            (pts.min(axis=0) < 0).any() or (pts.max(axis=0) > (width, height)).any()
        )
        if outside:
            problems.append(("clipped_to_image", "polygon extends past the image; clipped"))
        pts = clip_polygon(pts, width, height) if n_raw >= 3 else pts
        if n_raw < 3:
            problems.append(("degenerate_polygon", f"polygon has {n_raw} point(s), needs 3"))
        elif len(pts) < 3:
            problems.append(("outside_image", "polygon lies outside the image"))
        elif polygon_area(pts) <= 0:
            problems.append(("degenerate_polygon", "polygon has no area"))
        else:
            polys.append(pts)
    if obj.polygons and not polys:
        return None, problems
    if obj.box is not None:
        box = _fix_box(obj.box, width, height)
        if box is None:
            problems.append(("degenerate_box", f"box {tuple(obj.box)} is empty inside the image"))
            return None, problems
    else:
        box = egohands_box(np.concatenate(polys), width, height)
        if box is None:
            problems.append(("degenerate_polygon", "polygon box has no area"))
            return None, problems
    mask_png = None
    if masks and polys:
        mask = rasterize(polys, width, height)
        if not mask.any():
            problems.append(("degenerate_polygon", "polygon covers no pixel"))
            return None, problems
        mask_png = mask_to_png(mask)
    return Obj(obj.label, obj.hand_type, box, mask_png), problems


def process_frame(source: Source, task: FrameTask, masks: bool, keep_empty: bool) -> FrameResult:
    result = FrameResult(task.key, task.video, task.key)
    try:
        data, orientation = upright(source.read(task.member))
        if (png := as_png(data)) is not None:  # WebP, BMP, ...: what the records can hold
            data, result.file_name = png, f"{task.key}.png"
            result.problems.append(("converted_to_png", "not a JPEG or PNG: stored as PNG"))
        result.width, result.height, result.image_format = validate_image(data)
    except (UserError, ValueError) as e:
        result.skipped = "tiny_image" if isinstance(e, TinyImage) else "corrupt_image"
        result.problems.append((result.skipped, str(e)))
        return result
    if task.size is not None and task.size != (result.width, result.height):
        turned = f" (after its EXIF orientation {orientation})" if orientation != 1 else ""
        result.skipped = "size_mismatch"
        result.problems.append(
            ("size_mismatch", f"labels say {task.size[0]}x{task.size[1]}, the picture is "
             f"{result.width}x{result.height}{turned}: labelled on another image?")
        )  # fmt: skip
        return result
    result.image = data
    for raw in task.objects:
        obj, problems = process_object(raw, result.width, result.height, masks)
        result.problems.extend(problems)
        if obj is not None:
            result.objects.append(obj)
    if not result.objects and not keep_empty:
        result.skipped = "no_hands"
        result.problems.append(("no_hands", "frame has no usable hand; skipped"))
        result.image = b""
    return result


# Worker processes get the shared arguments once, through the pool initializer.
_WORKER: dict[str, Any] = {}


def _init_worker(source: Source, masks: bool, keep_empty: bool) -> None:
    cv2.setNumThreads(1)
    _WORKER.update(source=source, masks=masks, keep_empty=keep_empty)


def _work(task: FrameTask) -> FrameResult:
    return process_frame(_WORKER["source"], task, _WORKER["masks"], _WORKER["keep_empty"])


def _bounded_map(executor: Executor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """Ordered ``executor.map`` that keeps at most ``window`` results in flight (flat memory)."""
    pending: deque = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def map_frames(
    source: Source,
    tasks: Sequence[FrameTask],
    *,
    masks: bool,
    keep_empty: bool,
    workers: int,
    desc: str = "frames",
) -> Iterator[FrameResult]:
    """Process frames in input order, in ``workers`` processes (0: in this process)."""
    bar = tqdm(total=len(tasks), desc=desc, unit="frame", smoothing=0.1)
    try:
        if workers <= 0:
            for task in tasks:
                yield process_frame(source, task, masks, keep_empty)
                bar.update()
            return
        ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold TF
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(source, masks, keep_empty)
        ) as ex:
            try:
                for result in _bounded_map(ex, _work, tasks, window=8 * workers):
                    yield result
                    bar.update()
            except BaseException:
                ex.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 3)


def build(
    source: Source,
    tasks: Sequence[FrameTask],
    split_of: dict[str, str],
    out: Path,
    classes: Sequence[str],
    *,
    masks: bool = True,
    keep_empty: bool = False,
    workers: int = 2,
    frames_per_shard: int = FRAMES_PER_SHARD,
    meta: dict | None = None,
    video_meta: dict | None = None,
    dataset: str = "",
    inputs: Sequence[Path] = (),
) -> DatasetSummary:
    """Write the dataset folder and return its summary (also written as ``summary.json``).

    ``split_of`` maps each task key to ``train``/``eval``/``test``. Tasks are written in the
    order given, so callers pass them sorted. ``dataset`` tags every record with its source.
    """
    from prep import tfrecord  # TensorFlow only in the writing process, never in workers

    class_ids = _class_ids(tasks, classes)
    tally = Tally()
    meta = dict(meta or {})
    with atomic_dir(out, "dataset", tool=meta.get("tool", "prep"), inputs=inputs) as tmp:
        per_split = Counter(split_of[t.key] for t in tasks)
        writers = {}
        for split in SPLITS:
            (tmp / "images" / split).mkdir(parents=True)
            if per_split[split]:
                shards = max(1, math.ceil(per_split[split] / frames_per_shard))
                writers[split] = tfrecord.ShardedWriter(tmp, split, shards)
        try:
            for res in map_frames(
                source, tasks, masks=masks, keep_empty=keep_empty, workers=workers
            ):
                split = split_of[res.key]
                tally.problems(res, split)
                if res.skipped:
                    continue
                (tmp / "images" / split / res.file_name).write_bytes(res.image)
                writers[split].write(tfrecord.encode(_example(res, class_ids, masks, dataset)))
                tally.written(res, split)
        finally:
            for w in writers.values():
                w.close()
        tally.check_some_written(len(tasks))
        tally.write_tables(tmp)
        write_label_map(tmp / "label_map.pbtxt", classes)
        shards = {s: len(w.paths) for s, w in writers.items()}
        summary = tally.summary(tasks, split_of, list(classes), masks, meta, video_meta, shards)
        summary.write(tmp)
    return summary


def _class_ids(tasks: Sequence[FrameTask], classes: Sequence[str]) -> dict[str, int]:
    """Label map ids (1..N) by name; every task's label must be one of ``classes``."""
    class_ids = {name: i for i, name in enumerate(classes, 1)}
    for task in tasks:
        for obj in task.objects:
            if obj.label not in class_ids:
                raise UserError(f"{task.member}: class {obj.label!r} is not one of {list(classes)}")
    if not tasks:
        raise UserError("no frames to write")
    return class_ids


def _example(res: FrameResult, class_ids: dict[str, int], masks: bool, dataset: str):
    from prep import tfrecord

    return tfrecord.Example(
        filename=res.file_name,
        width=res.width,
        height=res.height,
        encoded=res.image,
        boxes=np.array([o.box for o in res.objects], np.float64).reshape(-1, 4),
        labels=[o.label for o in res.objects],
        label_ids=[class_ids[o.label] for o in res.objects],
        masks_png=[o.mask_png for o in res.objects] if masks else [],
        image_format=res.image_format,
        dataset=dataset,
    )


class Tally:
    """What ``build`` counts as it writes: frames and boxes per split and per video, the reasons
    of what was skipped or fixed, and the rows of the per-split label tables."""

    def __init__(self):
        self.frames, self.boxes = Counter(), Counter()
        self.frame_skips: dict[str, Counter] = defaultdict(Counter)
        self.box_skips: dict[str, Counter] = defaultdict(Counter)
        self.fixed: dict[str, Counter] = defaultdict(Counter)
        self.video_frames, self.video_boxes = Counter(), Counter()
        self.video_skips: dict[str, Counter] = defaultdict(Counter)
        self.problem_lines: list[str] = []
        self.rows: dict[str, list] = {s: [] for s in SPLITS}

    def problems(self, res: FrameResult, split: str) -> None:
        for reason, message in res.problems:
            self.problem_lines.append(f"{res.key}: {message}")
            if reason == res.skipped:
                self.frame_skips[split][reason] += 1
                self.video_skips[res.video][f"frame:{reason}"] += 1
            elif reason in ("nan_coordinates", "clipped_to_image", "converted_to_png"):
                self.fixed[split][reason] += 1
            else:
                self.box_skips[split][reason] += 1
                self.video_skips[res.video][f"box:{reason}"] += 1

    def written(self, res: FrameResult, split: str) -> None:
        self.frames[split] += 1
        self.boxes[split] += len(res.objects)
        self.video_frames[res.video] += 1
        self.video_boxes[res.video] += len(res.objects)
        for o in res.objects:
            box = (_num(v) for v in o.box)
            self.rows[split].append(
                [res.file_name, res.width, res.height, o.label, *box, res.video, o.hand_type]
            )

    def check_some_written(self, planned: int) -> None:
        """One error, naming the reasons, when every one of ``planned`` frames was skipped: a
        dataset of no frame trains nothing."""
        if planned and not sum(self.frames.values()):
            why = Counter()
            for counts in self.frame_skips.values():
                why.update(counts)
            reasons = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in why.most_common())
            example = f" (e.g. {self.problem_lines[0]})" if self.problem_lines else ""
            raise UserError(f"every one of the {planned} frames was skipped: {reasons}"
                            f"{example}; nothing was written")  # fmt: skip

    def write_tables(self, folder: Path) -> None:
        """``<split>_labels.csv``: one row a box (``CSV_COLUMNS``)."""
        for split in SPLITS:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            writer.writerows(self.rows[split])
            (folder / f"{split}_labels.csv").write_text(buf.getvalue())

    def summary(self, tasks, split_of, classes, masks, meta, video_meta, shards) -> DatasetSummary:
        from prep import tfrecord

        totals = Totals(
            sum(self.frames.values()),
            sum(self.boxes.values()),
            sum(sum(c.values()) for c in self.frame_skips.values()),
            sum(sum(c.values()) for c in self.box_skips.values()),
        )
        splits = {
            s: SplitSummary(
                self.frames[s],
                self.boxes[s],
                tfrecord.shard_pattern(".", s).removeprefix("./"),
                shards.get(s, 0),
                sorted({t.video for t in tasks if split_of[t.key] == s}),
                dict(sorted(self.frame_skips[s].items())),
                dict(sorted(self.box_skips[s].items())),
                dict(sorted(self.fixed[s].items())),
            )
            for s in SPLITS
        }
        videos = {
            v: {
                **((video_meta or {}).get(v, {})),
                "frames": self.video_frames[v],
                "boxes": self.video_boxes[v],
                "skipped": dict(sorted(self.video_skips[v].items())),
            }
            for v in sorted({t.video for t in tasks})
        }
        tool = meta.pop("tool", "prep")
        return DatasetSummary(
            tool, classes, totals, splits, masks=masks, videos=videos,
            problems=self.problem_lines, meta=meta,
        )  # fmt: skip
