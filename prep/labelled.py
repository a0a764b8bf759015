"""What a labelling tool holds for one image (its file, size, split and boxes), the one type
the pre-annotation writers and the importers of COCO, CVAT and Label Studio files share."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handspot.errors import UserError
from prep.dataset import RawObject


@dataclass
class Box:
    label: str
    xyxy: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in pixels
    score: float | None = None  # a model's (pre-annotations); None when a person drew it
    polygons: tuple[np.ndarray, ...] = ()  # its mask's outline, (N, 2) pixels each; largest first


@dataclass
class LabelledImage:
    file_name: str  # relative to the images folder
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    split: str = ""  # train / eval / test (or a name the tool uses for them); "" for none


def read_json(path: Path, what: str):
    """A labelling tool's JSON file, or one error saying it is not ``what`` (unreadable, not
    JSON, nested too deep)."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:
        why = "nested too deep" if isinstance(e, RecursionError) else str(e)
        raise UserError(f"{path}: not {what} ({why})") from None


def label_text(name, where: str) -> str:
    """A class name: non-empty text, no control characters (no label map or XML holds them)."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{where}: a label must be non-empty text, got {name!r}")
    if not name.isprintable():
        raise UserError(f"{where}: the label {name!r} holds control characters")
    return name.strip()


def to_items(images: list[LabelledImage]) -> list[tuple]:
    """``(file_name, objects, split, size)`` per image: what ``prep.coco.plan_items`` plans."""
    return [
        (
            im.file_name,
            [RawObject(b.label, "", (), tuple(b.xyxy)) for b in im.boxes],
            im.split,
            (im.width, im.height),
        )
        for im in images
    ]


def classes_of(images: list[LabelledImage], classes: list[str] | None = None) -> list[str]:
    """The label names, in the order given, then any others sorted."""
    names = list(classes or [])
    return names + sorted({b.label for im in images for b in im.boxes} - set(names))


def add_import_parser(sub, flag: str, what: str, published: str):
    """The ``import`` sub-command of a labelling tool's module: ``flag`` names its file."""
    from prep.split import add_split_by

    i = sub.add_parser("import", help=f"{what} + images -> dataset folder")
    i.add_argument(flag, type=Path, required=True)
    i.add_argument("--images", type=Path, help="image folder (default: images/ beside the file)")
    i.add_argument("--out", type=Path, required=True)
    add_split_by(i, published)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--workers", type=int, default=2)
    return i


def build_import(plan, out: Path, workers: int) -> None:
    """Write a planned import, say what was skipped and what was written."""
    summary = plan.build(out, workers=workers)
    for warning in plan.meta.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {out}: {summary.totals.frames} frames, {summary.totals.boxes} boxes")
