"""Draw records (read back from the TFRecords) with their boxes and masks, for a quick look."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from prep.common import atomic_write_bytes
from prep.dataset import SPLITS

PALETTE = [(255, 56, 56), (56, 200, 255), (72, 249, 10), (255, 157, 151), (146, 204, 23)]


def draw(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: list[str],
    masks: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    alpha: float = 0.45,
) -> np.ndarray:
    """Return an RGB copy of ``image`` with masks tinted and boxes + labels drawn."""
    out = image.copy()
    names = sorted(set(labels))
    for i, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        color = PALETTE[names.index(label) % len(PALETTE)]
        if masks is not None and len(masks) > i:
            on = masks[i].astype(bool)
            out[on] = (out[on] * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)
        x0, y0, x1, y1 = (round(v) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, 2)
        text = label if scores is None else f"{label} {scores[i]:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        y = max(y0, th + 4)
        cv2.rectangle(out, (x0, y - th - 4), (x0 + tw + 4, y), color, -1)
        cv2.putText(
            out, text, (x0 + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA
        )
    return out


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
