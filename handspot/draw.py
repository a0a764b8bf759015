"""Boxes, labels, masks and keypoints drawn on an RGB image (prep's previews, detect's annotated
output). ``draw`` takes plain arrays; ``draw_detections`` takes a Detections and also draws its
keypoints (a hand's skeleton for 21 of them), track ids and handedness."""

from __future__ import annotations

import cv2
import numpy as np

PALETTE = [(255, 56, 56), (56, 200, 255), (72, 249, 10), (255, 157, 151), (146, 204, 23)]
# MediaPipe's 21 hand landmarks: wrist 0; thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky
# 17-20 (base to tip); the palm joins the finger bases.
HAND_SKELETON = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19),
    (19, 20),
)  # fmt: skip


def draw(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: list[str],
    masks: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    alpha: float = 0.45,
) -> np.ndarray:
    """Return an RGB copy of ``image`` with masks tinted and boxes + labels drawn."""
    names = sorted(set(labels))
    colors = [PALETTE[names.index(label) % len(PALETTE)] for label in labels]
    texts = [
        label if scores is None else f"{label} {scores[i]:.2f}" for i, label in enumerate(labels)
    ]
    return _draw(image.copy(), boxes, texts, colors, masks, alpha)


def draw_detections(image: np.ndarray, det, alpha: float = 0.45) -> np.ndarray:
    """An RGB copy of ``image`` with ``det`` drawn: masks, boxes, "label score" (then "#id"
    for a tracked one, and its handedness), keypoints. Colours follow the track id where there
    is one, else the label."""
    names = sorted(set(det.class_names))
    colors, texts = [], []
    for i, label in enumerate(det.class_names):
        text = f"{label} {det.scores[i]:.2f}"
        key = names.index(label)
        if det.track_id is not None and det.track_id[i] >= 0:
            text += f" #{det.track_id[i]}"
            key = int(det.track_id[i])
        if "handedness" in det.data:
            text += f" {det.data['handedness'][i]}"
        colors.append(PALETTE[key % len(PALETTE)])
        texts.append(text)
    out = _draw(image.copy(), det.boxes, texts, colors, det.masks, alpha)
    if det.keypoints is not None:
        for points, color in zip(det.keypoints, colors, strict=True):
            draw_keypoints(out, points, color)
    return out


def draw_keypoints(out: np.ndarray, points: np.ndarray, color) -> None:
    """Points (``(K, 2+)`` pixels) in place; a hand's skeleton when there are 21."""
    xy = np.round(points[:, :2]).astype(np.int32)
    thick = max(1, round(max(out.shape[:2]) / 400))
    if len(xy) == 21:
        for a, b in HAND_SKELETON:
            cv2.line(out, tuple(xy[a]), tuple(xy[b]), color, thick, cv2.LINE_AA)
    for p in xy:
        cv2.circle(out, tuple(p), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, tuple(p), thick + 1, color, 1, cv2.LINE_AA)


def tint(out: np.ndarray, mask: np.ndarray, color, alpha: float) -> None:
    """``color`` laid over the mask's pixels, ``alpha`` opaque, in place (only the rectangle
    the mask spans is touched)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    on = mask[y0:y1, x0:x1].astype(bool)
    patch = out[y0:y1, x0:x1]
    patch[on] = (patch[on] * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)


def _draw(out, boxes, texts, colors, masks, alpha) -> np.ndarray:
    for i, (box, text, color) in enumerate(zip(boxes, texts, colors, strict=True)):
        if masks is not None and len(masks) > i:
            tint(out, masks[i], color, alpha)
        x0, y0, x1, y1 = (round(v) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, 2)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        y = max(y0, th + 4)
        cv2.rectangle(out, (x0, y - th - 4), (x0 + tw + 4, y), color, -1)
        cv2.putText(
            out, text, (x0 + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA
        )
    return out
