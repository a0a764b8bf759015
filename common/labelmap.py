"""The OD API's ``label_map.pbtxt``, read and written in one place."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from handspot.errors import UserError


def write_label_map(path: Path, classes: Sequence[str]) -> None:
    """Write an OD API ``label_map.pbtxt`` with ids 1..N in the given order."""
    items = [f"item {{\n  id: {i}\n  name: '{name}'\n}}\n" for i, name in enumerate(classes, 1)]
    Path(path).write_text("\n".join(items))


_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+))")


def read_label_map(path: Path) -> dict[int, str]:
    """Parse a label map (``id`` and ``name``/``display_name``) into ``{id: name}``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"label map not found: {path}")
    result: dict[int, str] = {}
    for body in _ITEM.findall(path.read_text()):
        fields = {m[0]: m[1] or m[2] or m[3] for m in _FIELD.findall(body)}
        if "id" not in fields or not (fields.get("name") or fields.get("display_name")):
            raise UserError(f"{path}: every item needs an id and a name")
        result[int(fields["id"])] = fields.get("name") or fields["display_name"]
    if not result:
        raise UserError(f"{path}: no items in label map")
    return result
