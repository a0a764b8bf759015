"""The one detection result type every backend returns, and the matching used for parity."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Detections on one image. Boxes are pixels ``xmin, ymin, xmax, ymax``; class ids follow
    the label map (1-based); masks, when present, are ``(N, H, W)`` uint8 0/1 at image size."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    class_names: tuple[str, ...] = ()
    masks: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or len(self.class_ids) != n or len(self.class_names) != n:
            raise ValueError("boxes, scores, class ids and names must have one row per detection")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError("one mask per detection")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_normalized(
        cls,
        boxes_yxyx,
        scores,
        class_ids,
        labels: dict[int, str],
        width: int,
        height: int,
        masks: np.ndarray | None = None,
    ) -> Detections:
        """From OD API outputs: normalised ``ymin, xmin, ymax, xmax`` boxes, sorted by score."""
        boxes_yxyx = np.asarray(boxes_yxyx, np.float32).reshape(-1, 4)
        scale = np.array([width, height, width, height], np.float32)
        boxes = np.clip(boxes_yxyx[:, [1, 0, 3, 2]], 0.0, 1.0) * scale
        ids = np.asarray(class_ids).astype(np.int32).reshape(-1)
        scores = np.asarray(scores, np.float32).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        return cls(
            boxes[order],
            scores[order],
            ids[order],
            tuple(labels.get(int(i), str(int(i))) for i in ids[order]),
            None if masks is None else masks[order],
        )

    def __getitem__(self, index) -> Detections:
        index = np.arange(len(self))[index]
        return Detections(
            self.boxes[index],
            self.scores[index],
            self.class_ids[index],
            tuple(self.class_names[i] for i in index),
            None if self.masks is None else self.masks[index],
        )

    @classmethod
    def from_hands_js(cls, found: list[dict]) -> Detections:
        """The browser API's results (``[{bbox: [x, y, w, h], score, classId, label}]``)."""
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in found)]
        return cls(
            np.array(xyxy, np.float32).reshape(-1, 4),
            np.array([d["score"] for d in found], np.float32),
            np.array([d["classId"] for d in found], np.int32),
            tuple(d["label"] for d in found),
        )

    def above(self, score_threshold: float) -> Detections:
        return self[self.scores >= score_threshold]

    def to_json(self) -> list[dict]:
        """``[{bbox: [x, y, w, h], score, class_id, label}]``, as handtrack.js reports them."""
        return [
            {
                "bbox": [
                    round(float(x0), 1),
                    round(float(y0), 1),
                    round(float(x1 - x0), 1),
                    round(float(y1 - y0), 1),
                ],
                "score": round(float(s), 4),
                "class_id": int(c),
                "label": n,
            }
            for (x0, y0, x1, y1), s, c, n in zip(
                self.boxes, self.scores, self.class_ids, self.class_names, strict=True
            )
        ]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match(
    reference: Detections, other: Detections, iou_threshold: float = 0.9
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of ``other`` to ``reference`` (same class, IoU >= threshold),
    highest IoU first. Returns ``(reference index, other index, iou)``."""
    if not len(reference) or not len(other):
        return []
    iou = box_iou(reference.boxes, other.boxes)
    iou[reference.class_ids[:, None] != other.class_ids[None, :]] = 0
    pairs = []
    used_r, used_o = set(), set()
    for r, o in zip(*np.unravel_index(np.argsort(-iou, axis=None), iou.shape), strict=True):
        if iou[r, o] < iou_threshold:
            break
        if r in used_r or o in used_o:
            continue
        used_r.add(r)
        used_o.add(o)
        pairs.append((int(r), int(o), float(iou[r, o])))
    return pairs


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best first (also done in JS)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while len(order) and len(keep) < max_out:
        i = order[0]
        keep.append(int(i))
        if len(order) == 1:
            break
        iou = box_iou(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][iou <= iou_threshold]
    return np.array(keep, np.int64)
