"""``summary.json``, the account every dataset folder carries of itself, written and read through
one typed class: what was written per split (frames, boxes, records), what was skipped and why,
per video; for a ``prep.mix`` folder the same per source, and the near-duplicates dropped.

    summary = DatasetSummary.read("data/mix")
    summary.sources["ego"].splits["eval"].frames
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from handspot.errors import UserError
from handspot.files import atomic_write_json

FILE = "summary.json"
MIX = "prep.mix"


@dataclass
class Totals:
    frames: int = 0
    boxes: int = 0
    skipped_frames: int = 0
    skipped_boxes: int = 0


@dataclass
class SplitSummary:
    """One split: its frames and boxes (None: not known, a folder without a summary) and the
    shard pattern of its TFRecords, relative to the dataset folder."""

    frames: int | None
    boxes: int | None
    records: str
    shards: int = 0
    videos: list[str] = field(default_factory=list)
    skipped_frames: dict[str, int] = field(default_factory=dict)
    skipped_boxes: dict[str, int] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)  # boxes mended, pictures made PNG


@dataclass
class SourceSummary:
    """One source of a ``prep.mix`` folder (its sub-folder holds its own summary)."""

    splits: dict[str, SplitSummary]
    kind: str = ""  # egohands, coco, voc
    path: str = ""
    held_out_whole: bool = False
    split_by: str | None = None
    dropped_duplicates: int = 0
    skipped_frames: int = 0
    skipped_boxes: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class DatasetSummary:
    """A dataset folder's summary: one source's splits, or (``tool`` prep.mix) its sources.
    ``meta`` keeps what the source's planner adds (its file, how it was split, the seed, the
    annotations it skipped, warnings), at the top of the JSON as written."""

    tool: str
    classes: list[str] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    sources: dict[str, SourceSummary] = field(default_factory=dict)
    masks: bool = False
    videos: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    duplicates: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def mix(self) -> bool:
        return self.tool == MIX

    @property
    def warnings(self) -> list[str]:
        return list(self.meta.get("warnings", []))

    def to_dict(self) -> dict:
        out = {"tool": self.tool, **self.meta, "classes": list(self.classes)}
        if self.mix:
            out["sources"] = {k: asdict(v) for k, v in self.sources.items()}
            out["duplicates"] = self.duplicates
            out["totals"] = asdict(self.totals)
            return out
        out.update(masks=self.masks, totals=asdict(self.totals))
        out["splits"] = {k: asdict(v) for k, v in self.splits.items()}
        out.update(videos=self.videos, problems=self.problems)
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> DatasetSummary:
        raw = dict(raw)
        known = {f.name for f in fields(cls)} - {"meta"}
        values = {k: raw.pop(k) for k in list(raw) if k in known}
        values["totals"] = Totals(**values.get("totals", {}))
        values["splits"] = _splits(values.get("splits", {}))
        values["sources"] = {
            k: SourceSummary(**{**v, "splits": _splits(v["splits"])})
            for k, v in values.get("sources", {}).items()
        }
        return cls(**values, meta=raw)

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / FILE
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def read(cls, folder: str | Path) -> DatasetSummary | None:
        """The folder's summary; None where it has none (records and a label map only)."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except ValueError as e:
            raise UserError(f"{path} is not valid JSON ({e})") from None
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{path} is not a dataset summary of this project ({e!r})") from None


def _splits(raw: dict) -> dict[str, SplitSummary]:
    return {name: SplitSummary(**split) for name, split in raw.items()}
