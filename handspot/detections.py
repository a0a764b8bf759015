"""The one detection result type every backend and stage returns, its JSON forms (detect's JSON
lines, hands.js's objects, MediaPipe Tasks' objects, supervision's ``Detections``), and the box
geometry used to compare results (IoU, one-to-one matching)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from handspot import rle

_KNOWN = {"bbox", "score", "class_id", "label", "keypoints", "track_id", "segmentation"}
NO_TRACK = -1  # the track id of a detection no tracker has (yet) given an id


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections on one image, one row each, best first where a detector made them.

    ``boxes`` are pixels ``xmin, ymin, xmax, ymax``; class ids follow the label map (1-based);
    ``masks``, when present, are ``(N, H, W)`` uint8 0/1 at image size; ``keypoints`` are
    ``(N, K, 2)`` pixels ``x, y`` or ``(N, K, 3)`` with a depth ``z`` where the model gives one;
    ``track_id`` is an id kept across video frames (``NO_TRACK`` where none); ``data`` holds any
    other per-detection arrays (e.g. ``handedness``), one row each, as supervision's does.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    class_names: tuple[str, ...] = ()
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    track_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "boxes", np.asarray(self.boxes, np.float32).reshape(-1, 4))
        set_(self, "scores", np.asarray(self.scores, np.float32).reshape(-1))
        set_(self, "class_ids", np.asarray(self.class_ids).astype(np.int32).reshape(-1))
        set_(self, "class_names", tuple(self.class_names))
        n = len(self.scores)
        if len(self.boxes) != n or len(self.class_ids) != n or len(self.class_names) != n:
            raise ValueError("boxes, scores, class ids and names must have one row per detection")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError("one mask per detection")
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, np.float32)
            if kp.ndim != 3 or len(kp) != n or kp.shape[2] not in (2, 3):
                raise ValueError("keypoints must be (N, K, 2) or (N, K, 3), one row a detection")
            set_(self, "keypoints", kp)
        if self.track_id is not None:
            set_(self, "track_id", np.asarray(self.track_id, np.int64).reshape(-1))
            if len(self.track_id) != n:
                raise ValueError("one track id per detection")
        data = {k: np.asarray(v) for k, v in self.data.items()}
        if any(len(v) != n for v in data.values()):
            raise ValueError("every data array must have one row per detection")
        set_(self, "data", data)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> Detections:
        """Rows by an int, a slice, indices or a boolean mask; always a Detections."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        index = np.arange(len(self))[index]
        take = lambda a: None if a is None else a[index]  # noqa: E731
        return Detections(
            self.boxes[index],
            self.scores[index],
            self.class_ids[index],
            tuple(self.class_names[i] for i in index),
            take(self.masks),
            take(self.keypoints),
            take(self.track_id),
            {k: v[index] for k, v in self.data.items()},
        )

    def with_(self, **changes) -> Detections:
        """A copy with some fields replaced (e.g. ``det.with_(track_id=ids)``)."""
        return replace(self, **changes)

    def above(self, score_threshold: float) -> Detections:
        return self[self.scores >= score_threshold]

    def best(self, n: int | None) -> Detections:
        """The ``n`` highest-scoring rows, in their order (all of them for None)."""
        if n is None or len(self) <= n:
            return self
        return self[np.sort(np.argsort(-self.scores, kind="stable")[:n])]

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
        """From OD API outputs: normalised ``ymin, xmin, ymax, xmax`` boxes, clipped to the
        image; rows sorted by score (ties keep their order)."""
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

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> list[dict]:
        """One dict a detection: ``bbox`` ([x, y, w, h] pixels, as handtrack.js reports
        them), ``score``, ``class_id``, ``label``, then ``keypoints`` ([[x, y(, z)], ...]),
        ``track_id`` (null: none), ``segmentation`` (the mask as COCO's compressed RLE,
        ``{"size": [h, w], "counts": str}``, as pycocotools writes it) and the ``data`` fields,
        where present."""
        out = []
        for i, ((x0, y0, x1, y1), s, c, n) in enumerate(
            zip(self.boxes, self.scores, self.class_ids, self.class_names, strict=True)
        ):
            row = {
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
            if self.keypoints is not None:
                # rounded as round(v, 2) would, at a tenth of the cost (+ 0.0: no -0.0)
                points = self.keypoints[i].astype(np.float64)
                row["keypoints"] = (np.round(points, 2) + 0.0).tolist()
            if self.track_id is not None:
                row["track_id"] = None if self.track_id[i] == NO_TRACK else int(self.track_id[i])
            if self.masks is not None:
                row["segmentation"] = rle.encode(self.masks[i])
            for k, v in self.data.items():
                row[k] = _json_value(v[i])
            out.append(row)
        return out

    @classmethod
    def from_json(cls, rows: list[dict]) -> Detections:
        """The inverse of :meth:`to_json` (e.g. a line of detect's JSON lines)."""
        return cls._from_rows(rows, "class_id", "track_id", lambda k: k)

    def to_hands_js(self) -> list[dict]:
        """As the browser API ``hands.js`` returns them: :meth:`to_json` with camelCase keys
        (``classId``, ``trackId``, ``handednessScore``, ...)."""
        return [{_camel(k): v for k, v in row.items()} for row in self.to_json()]

    @classmethod
    def from_hands_js(cls, found: list[dict]) -> Detections:
        """The browser API's results (``[{bbox: [x, y, w, h], score, classId, label, ...}]``)."""
        return cls._from_rows(found, "classId", "trackId", _snake)

    @classmethod
    def _from_rows(cls, rows, class_key, track_key, to_name) -> Detections:
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in rows)]
        keys = [k for k in (rows[0] if rows else {}) if k not in (class_key, track_key)]
        extra = [k for k in keys if to_name(k) not in _KNOWN]
        keypoints = None
        if "keypoints" in keys:
            keypoints = np.array([d["keypoints"] for d in rows], np.float32)
        track = None
        if rows and track_key in rows[0]:
            track = [NO_TRACK if d.get(track_key) is None else d[track_key] for d in rows]
        masks = None
        if rows and "segmentation" in rows[0]:
            masks = np.stack([rle.decode(d["segmentation"]) for d in rows])
        return cls(
            np.array(xyxy, np.float32).reshape(-1, 4),
            np.array([d["score"] for d in rows], np.float32),
            np.array([d[class_key] for d in rows], np.int32),
            tuple(d["label"] for d in rows),
            masks=masks,
            keypoints=keypoints,
            track_id=track,
            data={to_name(k): _array([d.get(k) for d in rows]) for k in extra},
        )

    @classmethod
    def from_tasks(cls, found: list[dict], labels: dict[int, str]) -> Detections:
        """MediaPipe Tasks' objects (``{box: [x0, y0, x1, y1], score, label}``, from Python or
        the web), class ids by the label (MediaPipe often leaves its index out)."""
        ids = {name: i for i, name in labels.items()}
        return cls(
            np.array([d["box"] for d in found], np.float32).reshape(-1, 4),
            np.array([d["score"] for d in found], np.float32),
            np.array([ids.get(d["label"], 0) for d in found], np.int64),
            tuple(d["label"] for d in found),
        )

    # ------------------------------------------------------------------ supervision

    def to_supervision(self):
        """A ``supervision.Detections`` (its annotators, trackers and sinks then take our
        results): class names in ``data["class_name"]``, keypoints in ``data["keypoints"]``."""
        import supervision as sv

        data = {"class_name": np.array(self.class_names, dtype=str), **self.data}
        if self.keypoints is not None:
            data["keypoints"] = self.keypoints
        return sv.Detections(
            xyxy=self.boxes.astype(np.float32),
            mask=None if self.masks is None else self.masks.astype(bool),
            confidence=self.scores,
            class_id=self.class_ids,
            tracker_id=self.track_id,
            data=data,
        )

    @classmethod
    def from_supervision(cls, detections, labels: dict[int, str] | None = None) -> Detections:
        """From a ``supervision.Detections``; names from its ``data["class_name"]``, else from
        ``labels`` ({class id: name})."""
        n = len(detections)
        data = dict(detections.data)
        names = data.pop("class_name", None)
        class_ids = np.zeros(n, np.int32) if detections.class_id is None else detections.class_id
        if names is None:
            names = [(labels or {}).get(int(c), str(int(c))) for c in class_ids]
        scores = np.ones(n, np.float32) if detections.confidence is None else detections.confidence
        keypoints = data.pop("keypoints", None)
        return cls(
            detections.xyxy,
            scores,
            class_ids,
            tuple(str(s) for s in names),
            None if detections.mask is None else detections.mask.astype(np.uint8),
            keypoints,
            detections.tracker_id,
            data,
        )


def _json_value(v):
    """A numpy scalar as plain JSON: rounded floats, NaN as null."""
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else round(float(v), 4)
    if isinstance(v, np.ndarray):
        return [_json_value(x) for x in v]
    return str(v)


def _array(values: list) -> np.ndarray:
    """A data column back from JSON: numbers (null as NaN) or strings."""
    if all(isinstance(v, (int, float)) or v is None for v in values) and any(
        v is not None for v in values
    ):
        if all(isinstance(v, int) for v in values):
            return np.array(values, np.int64)
        return np.array([np.nan if v is None else v for v in values], np.float32)
    return np.array(values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes (0 where the union is empty)."""
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
