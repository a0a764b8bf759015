"""Draw records (read back from the TFRecords) with their boxes and masks, for a quick look."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2

from handspot.draw import draw
from handspot.files import atomic_write_bytes
from prep.dataset import SPLITS


def write_previews(data_dir: Path, per_split: int) -> list[Path]:
    """Draw the first ``per_split`` records of each split to ``<data_dir>/preview/*.png``."""
    from prep.tfrecord import read_records, shard_pattern

    written = []
    for split in SPLITS:
        pattern = shard_pattern(data_dir, split)
        if not list(Path(data_dir).glob(f"{split}.record-*")):
            continue
        for ex in islice(read_records(pattern), per_split):
            masks = ex.masks() if ex.masks_png else None
            picture = draw(ex.image(), ex.boxes, ex.labels, masks)
            _ok, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            path = Path(data_dir) / "preview" / f"{split}_{Path(ex.filename).stem}.png"
            atomic_write_bytes(path, png.tobytes())
            written.append(path)
    return written
