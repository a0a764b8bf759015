"""What ``pipelines.evaluate`` measures of one checkpoint, as one typed class: written as
``<model-dir>/eval/metrics-<step>.json`` and read back by export (the card's ``eval``) and
finetune (before / after).

    result = EvalResult.read("runs/mix/eval/metrics-3000.json")
    result.per_source["ego"].headline["box_AP50"]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from handspot.errors import UserError
from handspot.files import atomic_write_json


@dataclass
class SourceEval:
    """One eval input (a source of a ``prep.mix`` dataset): its image count, the headline
    metrics (box AP, AP50, ..., rounded) and every metric the evaluators gave."""

    examples: int
    headline: dict[str, float]
    metrics: dict[str, float]


@dataclass
class EvalResult:
    checkpoint: str
    step: int
    per_source: dict[str, SourceEval]
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> SourceEval:
        """The first source's (the only one of a single-source dataset)."""
        return next(iter(self.per_source.values()))

    def card_eval(self) -> dict:
        """What a model card's ``eval`` holds: the headline, one row a source for a mix."""
        if len(self.per_source) > 1:
            return {name: r.headline for name, r in self.per_source.items()}
        return self.first.headline

    def to_dict(self) -> dict:
        """The file's JSON: the first source's figures at the top level, as it always had."""
        first = self.first
        return {
            "checkpoint": self.checkpoint,
            "step": self.step,
            "examples": first.examples,
            "headline": first.headline,
            "metrics": first.metrics,
            "per_source": {name: asdict(r) for name, r in self.per_source.items()},
            "notes": self.notes,
        }

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.to_dict())

    @classmethod
    def from_dict(cls, raw: dict) -> EvalResult:
        per_source = raw.get("per_source") or {
            "eval": {k: raw[k] for k in ("examples", "headline", "metrics")}
        }
        return cls(
            raw["checkpoint"],
            int(raw["step"]),
            {name: SourceEval(**r) for name, r in per_source.items()},
            list(raw.get("notes", [])),
        )

    @classmethod
    def read(cls, path: str | Path) -> EvalResult:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path} not found")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(
                f"{path} is not a metrics file of python -m pipelines.evaluate ({e!r})"
            ) from None
