"""One box decoding and NMS for Python (webexport/web/hands.js has the same in JS): the SSD box
coder, greedy NMS, and the post-processing of every anchor's boxes and scores into Detections.

"Raw" outputs, throughout the project, are a network's undecoded box encodings and scores per
anchor (``litert/``); "decoded" boxes are those encodings through the box coder (the TF.js graph's
output); both become Detections through :func:`postprocess`.
"""

from __future__ import annotations

import numpy as np

from handspot.detections import Detections, box_iou

MIN_SCORE = 0.05  # anchors scoring below this never reach the NMS (Python and, via the card, JS)


def decode_boxes(encodings: np.ndarray, anchors: np.ndarray, scales) -> np.ndarray:
    """Faster R-CNN box coder: ``[A, 4]`` encodings (ty, tx, th, tw) on centre-size anchors
    (yc, xc, h, w) with ``scales`` (y, x, h, w) -> normalised ``[A, 4]`` yxyx boxes."""
    sy, sx, sh, sw = scales
    yc = encodings[:, 0] / sy * anchors[:, 2] + anchors[:, 0]
    xc = encodings[:, 1] / sx * anchors[:, 3] + anchors[:, 1]
    h = np.exp(encodings[:, 2] / sh) * anchors[:, 2]
    w = np.exp(encodings[:, 3] / sw) * anchors[:, 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best first. Equal scores keep the
    lower index first; a box is dropped when its IoU with a kept one is above the threshold."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while len(order) and len(keep) < max_out:
        i = order[0]
        keep.append(int(i))
        if len(order) == 1:
            break
        iou = box_iou(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][iou <= iou_threshold]
    return np.array(keep, np.int64)


def postprocess(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: dict[int, str],
    width: int,
    height: int,
    *,
    iou_threshold: float,
    max_detections: int,
    min_score: float = MIN_SCORE,
) -> Detections:
    """Every anchor's decoded box (normalised yxyx, ``[A, 4]``) and class scores (``[A, K]``) ->
    per-class NMS over the anchors scoring at least ``min_score``, the best ``max_detections``
    in pixels of a ``width`` x ``height`` image."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32)
    scores = scores[:, None] if scores.ndim == 1 else scores
    keep_boxes, keep_scores, keep_ids = [np.zeros((0, 4), np.float32)], [np.zeros(0)], [[]]
    for c in range(scores.shape[1]):
        idx = np.flatnonzero(scores[:, c] >= min_score)
        kept = idx[nms(boxes[idx], scores[idx, c], iou_threshold, max_detections)]
        keep_boxes.append(boxes[kept])
        keep_scores.append(scores[kept, c])
        keep_ids.append(np.full(len(kept), c + 1))
    scores_all = np.concatenate(keep_scores)
    top = np.argsort(-scores_all, kind="stable")[:max_detections]
    return Detections.from_normalized(
        np.concatenate(keep_boxes)[top],
        scores_all[top],
        np.concatenate(keep_ids)[top],
        labels,
        width,
        height,
    )
