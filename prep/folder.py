"""A dataset folder written by prep, read through one typed class: its sources, each source's
splits and record files, and which of them are held out. What configure, compare and evaluate
train and score on is decided here, once.

    data = Dataset.read("data/mix")
    data.sources["ego"].records("train")      # "data/mix/ego/train.record-?????-of-?????"
    data.sources["ego"].held_out()            # its eval and test records (those with frames)

A folder of one source (``prep.egohands_clean``, ``prep.coco import``, ``prep.voc import``)
reads as one source named ``""`` whose held-out part is its eval split (its test split is kept
for a final test); a ``prep.mix`` folder has one source a sub-folder, each held out on its eval
and test splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.labelmap import read_label_map
from handspot.errors import UserError
from prep.summary import DatasetSummary, SplitSummary
from prep.tfrecord import shard_pattern

SPLITS = ("train", "eval", "test")


@dataclass(frozen=True)
class Split:
    frames: int | None  # None: not known (a folder without a summary)
    boxes: int | None
    records: str  # the shard pattern of its TFRecords, under the dataset folder


@dataclass(frozen=True)
class Source:
    name: str
    splits: dict[str, Split]
    held_out_splits: tuple[str, ...]
    held_out_whole: bool = False  # prep.mix --hold-out: the whole source is in eval

    def records(self, split: str) -> str:
        return self.splits[split].records

    def trains(self) -> bool:
        frames = self.splits["train"].frames
        return frames is None or frames > 0

    def held_out(self) -> list[str]:
        """The record patterns a model is scored on: the held-out splits that have frames."""
        return [
            self.splits[s].records
            for s in self.held_out_splits
            if self.splits[s].frames or self.splits[s].frames is None
        ]


@dataclass(frozen=True)
class Dataset:
    path: Path
    classes: tuple[str, ...]
    sources: dict[str, Source]
    mix: bool  # written by prep.mix (one sub-folder a source)

    @property
    def label_map(self) -> Path:
        return self.path / "label_map.pbtxt"

    @classmethod
    def read(cls, folder: str | Path) -> Dataset:
        path = Path(folder)
        if not path.is_dir():
            raise UserError(f"dataset folder not found: {path}")
        summary = DatasetSummary.read(path)
        classes = tuple(read_label_map(path / "label_map.pbtxt").values())
        if summary is not None and summary.mix:
            sources = {
                name: _source(path, name, s.splits, ("eval", "test"), s.held_out_whole)
                for name, s in summary.sources.items()
            }
            return cls(path, classes, sources, mix=True)
        splits = (
            summary.splits
            if summary is not None and summary.splits
            else {
                s: SplitSummary(None, None, shard_pattern(".", s).removeprefix("./"))
                for s in SPLITS
            }
        )  # a folder with records and a label map but no summary: the standard names
        return cls(path, classes, {"": _source(path, "", splits, ("eval",))}, mix=False)


def _source(root: Path, name: str, splits: dict[str, SplitSummary], held_out, whole=False):
    return Source(
        name,
        {
            s: Split(v.frames, v.boxes, str(root / v.records))
            for s, v in splits.items()
            if s in SPLITS
        },
        held_out,
        whole,
    )
