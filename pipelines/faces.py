"""Do detections land on faces? A hand detector that fires on faces is useless on a webcam.

Faces are found by MediaPipe's BlazeFace short-range model (``face_detection_short_range.tflite``
from the mediapipe wheel, cached), run with LiteRT; on each image with a face, the false
detections (score >= 0.5, no hand at IoU >= 0.5) are counted, and those lying on a face (at
least half of the box inside a face box) counted apart.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from common.cache import MEDIAPIPE, wheel_file
from handspot.detections import Detections
from handspot.detector import Detector

MODEL = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
SIZE = 128


@functools.cache
def _anchors() -> np.ndarray:
    """BlazeFace short-range SSD anchor centres (896, 2): 16x16 cells x 2, 8x8 cells x 6."""
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                centres += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
    return np.array(centres, np.float32)


class FaceDetector(Detector):
    """MediaPipe's BlazeFace behind the detector interface: ``detect(rgb)`` -> Detections of
    class ``face`` (pixels xyxy, scores)."""

    backend = "blazeface_short_range"
    labels = {1: "face"}  # noqa: RUF012 (a class constant)

    def __init__(self, score_threshold: float = 0.5, iou_threshold: float = 0.3):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(wheel_file(MEDIAPIPE, MODEL)), num_threads=2)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self.scores, self.boxes = outputs[0]["index"], outputs[1]["index"]  # [.., 1], [.., 16]
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold

    def detect(self, rgb: np.ndarray) -> Detections:
        from handspot.decode import nms

        h, w = self._check(rgb).shape[:2]
        side = max(h, w)  # letterbox to a square, as MediaPipe does
        square = np.zeros((side, side, 3), np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = rgb
        x = cv2.resize(square, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        self.interpreter.set_tensor(self.input, (x[None].astype(np.float32) / 127.5) - 1.0)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.boxes)[0]
        logits = self.interpreter.get_tensor(self.scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = scores >= self.score_threshold
        centre = raw[keep, :2] / SIZE + _anchors()[keep]
        size = raw[keep, 2:4] / SIZE
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * side
        boxes = np.clip(boxes - [left, top, left, top], 0, [w, h, w, h])
        kept = nms(boxes, scores[keep], self.iou_threshold, 10)
        n = len(kept)
        return Detections(boxes[kept], scores[keep][kept], np.ones(n), ("face",) * n)


def false_detections(
    truth: np.ndarray, boxes: np.ndarray, scores: np.ndarray, faces: np.ndarray, threshold=0.5
) -> tuple[int, int]:
    """``(false detections, of which on a face)`` on one image; boxes are pixels xyxy."""
    from handspot.detections import box_iou

    det = boxes[scores >= threshold]
    det = det[np.argsort(-scores[scores >= threshold], kind="stable")]
    if not len(det):
        return 0, 0
    iou = box_iou(det, truth) if len(truth) else np.zeros((len(det), 0))
    used, false = set(), []
    for i in range(len(det)):  # greedy, by score, as COCO matches
        free = [j for j in np.argsort(-iou[i]) if iou[i, j] >= 0.5 and j not in used]
        if free:
            used.add(free[0])
        else:
            false.append(det[i])
    if not false or not len(faces):
        return len(false), 0
    false = np.array(false)
    x0 = np.maximum(false[:, None, 0], faces[None, :, 0])
    y0 = np.maximum(false[:, None, 1], faces[None, :, 1])
    x1 = np.minimum(false[:, None, 2], faces[None, :, 2])
    y1 = np.minimum(false[:, None, 3], faces[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (false[:, 2] - false[:, 0]) * (false[:, 3] - false[:, 1])
    on_face = (inter / np.maximum(area, 1e-9)[:, None] >= 0.5).any(axis=1)
    return len(false), int(on_face.sum())


class FaceFalsePositives:
    """Accumulates false detections per image over the images that show a face."""

    def __init__(self, detector: FaceDetector | None = None):
        self.detector = detector  # None: only add_faces is used
        self.images = self.false = self.on_face = 0

    def add(self, rgb: np.ndarray, truth: np.ndarray, boxes: np.ndarray, scores: np.ndarray):
        self.add_faces(self.detector.detect(rgb).boxes, truth, boxes, scores)

    def add_faces(self, faces: np.ndarray, truth, boxes, scores) -> None:
        """As :meth:`add`, with the image's face boxes (pixels xyxy) already found."""
        if not len(faces):
            return
        false, on_face = false_detections(truth, boxes, scores, faces)
        self.images += 1
        self.false += false
        self.on_face += on_face

    def result(self) -> dict[str, float]:
        n = self.images
        return {
            "face_images": n,
            "false_per_face_image": self.false / n if n else float("nan"),
            "face_hits_per_face_image": self.on_face / n if n else float("nan"),
        }
