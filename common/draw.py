"""Boxes, labels and masks drawn on an RGB image (prep's previews, detect's annotated output)."""

from __future__ import annotations

import cv2
import numpy as np

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
