"""Seeded, reproducible train/eval/test splits: by video (stratified) or by frame."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

from handspot.errors import UserError

SPLITS = ("train", "eval", "test")


def split_counts(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """How many of ``n`` items go to train/eval/test; eval and test get at least one each when
    their ratio is positive and there are enough items."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise UserError(f"ratios must be three non-negative numbers, got {list(ratios)}")
    total = sum(ratios)
    n_eval, n_test = (round(n * r / total) for r in ratios[1:])
    if n >= 3:
        n_eval = max(n_eval, 1 if ratios[1] > 0 else 0)
        n_test = max(n_test, 1 if ratios[2] > 0 else 0)
    n_train = n - n_eval - n_test
    if n_train < 1:
        raise UserError(
            f"{n} item(s) cannot be split {list(ratios)}; need more videos or use --split-by frame"
        )
    return n_train, n_eval, n_test


def split_by_video(
    videos: Mapping[str, Mapping[str, str]],
    ratios: Sequence[float],
    seed: int,
    strata: Sequence[str] = ("activity", "location"),
) -> tuple[dict[str, str], list[str]]:
    """Assign whole videos to splits. Returns ``({video: split}, warnings)``.

    Held-out videos are drawn round-robin over the (activity, location) strata in seeded order,
    so eval and test span as many strata as possible, and a video is held out only if train
    keeps at least one video of every activity and every location.
    """
    names = sorted(videos)
    _, n_eval, n_test = split_counts(len(names), ratios)
    rng = random.Random(seed)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for v in names:
        groups[tuple(videos[v].get(k, "") for k in strata)].append(v)
    keys = sorted(groups)
    rng.shuffle(keys)
    for k in sorted(groups):
        rng.shuffle(groups[k])
    order: list[str] = []
    while any(groups.values()):
        for k in keys:
            if groups[k]:
                order.append(groups[k].pop())

    def covers(train: set[str]) -> bool:
        return all(
            {videos[v].get(k, "") for v in train} == {videos[v].get(k, "") for v in names}
            for k in strata
        )

    train, held, warnings = set(names), [], []
    for v in order:
        if len(held) == n_eval + n_test:
            break
        if covers(train - {v}):
            train.discard(v)
            held.append(v)
    if len(held) < n_eval + n_test:
        warnings.append(
            "train cannot keep every activity and location with this many videos; "
            "held-out videos were drawn without that constraint"
        )
        for v in order:
            if len(held) == n_eval + n_test:
                break
            if v not in held:
                train.discard(v)
                held.append(v)
    assignment = dict.fromkeys(names, "train")
    assignment.update(dict.fromkeys(held[:n_eval], "eval"))
    assignment.update(dict.fromkeys(held[n_eval:], "test"))
    return assignment, warnings


def choose_videos(
    names: Sequence[str], eval_videos: Sequence[str], test_videos: Sequence[str]
) -> dict[str, str]:
    """Named held-out videos; every other video trains."""
    unknown = sorted((set(eval_videos) | set(test_videos)) - set(names))
    if unknown:
        raise UserError(f"no video named {', '.join(unknown)}; the videos are: {', '.join(names)}")
    if set(eval_videos) & set(test_videos):
        raise UserError("a video cannot be in both eval and test")
    assignment = dict.fromkeys(names, "train")
    assignment.update(dict.fromkeys(eval_videos, "eval"))
    assignment.update(dict.fromkeys(test_videos, "test"))
    if "train" not in assignment.values():
        raise UserError("every video is held out; leave at least one to train on")
    return assignment


def split_by_frame(keys: Sequence[str], ratios: Sequence[float], seed: int) -> dict[str, str]:
    """Seeded random frame-level split (frames of one video land in several splits)."""
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    n_train, n_eval, _ = split_counts(len(order), ratios)
    return {
        k: ("train" if i < n_train else "eval" if i < n_train + n_eval else "test")
        for i, k in enumerate(order)
    }


# The split names datasets publish (COCO ``split`` fields, VOC ImageSets) and ours.
PUBLISHED = {
    "train": "train",
    "trainval": "train",
    "valid": "eval",
    "val": "eval",
    "validation": "eval",
    "eval": "eval",
    "test": "test",
}


def published_split(name: str, where: str) -> str:
    """Our split for a split name a dataset publishes; an unknown name is one error."""
    split = PUBLISHED.get(str(name).strip().lower())
    if split is None:
        raise UserError(
            f"{where}: unknown split {name!r}; expected one of {', '.join(sorted(PUBLISHED))}"
        )
    return split


def choose_split(
    keys: Sequence[str],
    published: Mapping[str, str],
    split_by: str,
    ratios: Sequence[float],
    seed: int,
    where: str,
) -> tuple[dict[str, str], str]:
    """The split of each key and how it was chosen. ``published`` maps a key to the split name
    its source gives ("" for none); ``split_by``: "source" keeps those, "frame" draws a seeded
    split, "auto" is "source" when the source gives any."""
    if split_by == "auto":
        split_by = "source" if any(published.get(k) for k in keys) else "frame"
    if split_by == "source":
        missing = [k for k in keys if not published.get(k)]
        if missing:
            raise UserError(
                f"{where}: {len(missing)} image(s) have no published split (e.g. {missing[0]}); "
                "use --split-by frame"
            )
        return {k: published_split(published[k], where) for k in keys}, split_by
    if split_by == "frame":
        return split_by_frame(keys, ratios, seed), split_by
    raise UserError(f"--split-by must be auto, source or frame, got {split_by}")


def add_split_by(parser, published: str) -> None:
    """The ``--split-by`` option of an importer whose source may publish a split."""
    parser.add_argument(
        "--split-by",
        choices=("auto", "source", "frame"),
        default="auto",
        help=f"source: {published}; frame: random, seeded; auto (default): source when the "
        "dataset gives one",
    )
