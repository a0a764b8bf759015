"""The model card (``model_card.json``): the contract between the exporter, every detector
backend, detect's tables and the page's ``hands.js``. One typed class reads and writes it.

    card = ModelCard.load("exported/hands_ssd320")
    card.labels                # {1: "hand"}
    card.postprocess.min_score # what every decoder applies before its NMS
    card.litert.scales_xywh    # the box coder's scales in MediaPipe's order (x, y, w, h)

``schema`` says which fields a reader can rely on; ``hands.js`` reads exactly this schema
(webexport/web/hands.js ``CARD_SCHEMA``). Schema 2 added ``schema`` and
``postprocess.min_score``; Python reads a schema-1 card (no ``schema`` field) with the default,
and ``python -m handspot.card FOLDER...`` rewrites cards in the current schema (``--merge JSON``:
with fields added or replaced, as ``pipelines.export --card`` adds them).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from handspot.decode import MIN_SCORE
from handspot.errors import UserError, fail
from handspot.files import atomic_write_json

SCHEMA = 2
FILE = "model_card.json"


@dataclass
class Postprocess:
    """How boxes and scores become detections: NMS per class, at the card's thresholds."""

    iou_threshold: float
    max_detections: int
    score: str  # "sigmoid" (SSD) or "softmax" (Faster/Mask R-CNN)
    min_score: float = MIN_SCORE


@dataclass
class RawOutputs:
    """``litert/``: the network without post-processing. Box encodings ``[1, A, 4]`` and scores
    ``[1, A, K]`` out; decode them on ``anchors.bin`` with the box coder's scales."""

    anchors: int
    box_coder_scales: list[float]  # y, x, h, w: the OD API's faster_rcnn_box_coder order
    outputs: dict[str, list[int]]

    @property
    def scales_xywh(self) -> list[float]:
        """The same scales in x, y, w, h order (MediaPipe's SSD tensor decoding options)."""
        y, x, h, w = self.box_coder_scales
        return [x, y, w, h]


@dataclass
class ModelCard:
    """What an exported folder holds and how to run it. ``extra`` keeps the fields merged in by
    ``pipelines.export --card`` (training data, licences, recipe, ...) as they are."""

    name: str
    architecture: str
    input_size: tuple[int, int]  # height, width
    labels: dict[int, str]
    postprocess: Postprocess
    litert: RawOutputs | None = None
    training: dict = field(default_factory=dict)
    eval: dict[str, dict] = field(default_factory=dict)  # per source: headline metrics
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    files_mb: dict[str, float] = field(default_factory=dict)
    runtimes: dict[str, str] = field(default_factory=dict)  # file -> the runtimes it is for
    int8_keeps_detections: bool | None = None
    schema: int = SCHEMA

    @classmethod
    def load(cls, model_dir: str | Path) -> ModelCard:
        """The card of an exported model folder (or the card file itself)."""
        path = Path(model_dir)
        path = path if path.suffix == ".json" else path / FILE
        if not path.is_file():
            raise UserError(
                f"{path.parent} is not an exported model folder (no {FILE}); export one "
                "with python -m pipelines.export"
            )
        try:
            raw = json.loads(path.read_text())
        except ValueError as e:
            raise UserError(f"{path} is not valid JSON ({e})") from None
        try:
            return cls.from_dict(raw)
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{path} is not a model card of this project ({e!r})") from None

    @classmethod
    def from_dict(cls, raw: dict) -> ModelCard:
        raw = dict(raw)
        schema = raw.pop("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA:
            raise UserError(
                f"model card schema {schema} is newer than this code reads ({SCHEMA}); update "
                "the project or re-export the model"
            )
        known = {f.name for f in fields(cls)} - {"extra", "schema"}
        litert = raw.pop("litert", None)
        return cls(
            name=raw.pop("name"),
            architecture=raw.pop("architecture"),
            input_size=tuple(raw.pop("input_size")),
            labels={int(k): v for k, v in raw.pop("labels").items()},
            postprocess=Postprocess(**raw.pop("postprocess")),
            litert=None if litert is None else RawOutputs(**litert),
            **{k: raw.pop(k) for k in list(raw) if k in known},
            extra=raw,
        )

    def to_dict(self) -> dict:
        """The JSON object, in the order people read it: what it is, how to run it, how it was
        made and scored, then how each artifact agrees with the SavedModel."""
        out = {
            "schema": self.schema,
            "name": self.name,
            "architecture": self.architecture,
            "input_size": list(self.input_size),
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
            "postprocess": asdict(self.postprocess),
        }
        if self.litert is not None:
            out["litert"] = asdict(self.litert)
        out.update(training=self.training, eval=self.eval, notes=self.notes, **self.extra)
        if self.parity:
            out["parity"] = self.parity
        if self.files_mb:
            out["files_mb"] = self.files_mb
        if self.runtimes:
            out["runtimes"] = self.runtimes
        if self.int8_keeps_detections is not None or self.parity:
            out["int8_keeps_detections"] = self.int8_keeps_detections
        return out

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / FILE
        atomic_write_json(path, self.to_dict())
        return path


def read_fields(path: Path, flag: str) -> dict:
    """A JSON object of card fields (``pipelines/cards/*.json``) named by ``flag``, or one
    error saying it is not one."""
    try:
        fields = json.loads(Path(path).read_text())
        if not isinstance(fields, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as e:
        raise UserError(f"{flag} {path}: not a JSON object ({e})") from None
    return fields


def main(argv: list[str] | None = None) -> int:
    """Rewrite the cards of the given model folders in the current schema, merging in a JSON
    object first with ``--merge`` (as ``pipelines.export --card`` does)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m handspot.card", description=main.__doc__)
    p.add_argument("folders", nargs="+", metavar="MODEL_FOLDER")
    p.add_argument("--merge", type=Path, help="a JSON object whose fields are set in the card")
    args = p.parse_args(argv)
    try:
        extra = read_fields(args.merge, "--merge") if args.merge else {}
        for folder in args.folders:
            card = ModelCard.from_dict({**ModelCard.load(folder).to_dict(), **extra})
            print(f"wrote {card.save(folder)} (schema {SCHEMA})")
    except UserError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
