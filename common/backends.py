"""One detector interface over every exported artifact of ``exported/<name>/``.

    detector = load_detector("exported/hands_ssd320", backend="tflite", num_threads=2)
    detections = detector.detect(rgb_image)        # -> Detections (pixels, scores, classes)

Backends: ``saved_model`` (TensorFlow), ``tflite`` (int8) and ``tflite_fp32`` (ai-edge-litert,
the OD API's TFLite graph with its detection post-processing op), ``tflite_raw`` /
``tflite_raw_fp32`` (ai-edge-litert on ``litert/``: the raw-output models the browser's LiteRT.js
runs, decoded and NMS'd here as the page does), ``tfjs`` / ``tfjs_uint8`` (TF.js in Node, wasm
backend as in the browser; for parity tests and comparisons); ``litertjs`` / ``litertjs_1thread``
(the demo page's hands.js on LiteRT.js in headless Chromium, threaded or not: batch use only,
one page for all the images).
Every backend reads its outputs by name and applies the same score threshold.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from common import UserError
from common.detections import Detections, nms

ARTIFACTS = {
    "saved_model": "saved_model",
    "tflite": "model_int8.tflite",
    "tflite_fp32": "model_fp32.tflite",
    "tflite_raw": "litert/model_int8.tflite",
    "tflite_raw_fp32": "litert/model_fp32.tflite",
    "tfjs": "tfjs",
    "tfjs_uint8": "tfjs_uint8",
}
# Run in headless Chromium by the demo page: for parity and comparisons, not for detect's CLIs.
BROWSER = {
    "litertjs": "litert/model_int8.tflite",
    "litertjs_1thread": "litert/model_int8.tflite",
}
CARD = "model_card.json"


def read_card(model_dir: str | Path) -> dict:
    path = Path(model_dir) / CARD
    if not path.is_file():
        raise UserError(
            f"{model_dir} is not an exported model folder (no {CARD}); export one "
            "with python -m pipelines.export"
        )
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None


class Detector(ABC):
    """Runs one exported artifact. ``detect`` takes an RGB uint8 ``HxWx3`` image."""

    backend: str

    def __init__(self, model_dir: str | Path, card: dict, score_threshold: float = 0.0):
        self.model_dir = Path(model_dir)
        self.card = card
        self.labels = {int(k): v for k, v in card["labels"].items()}
        self.score_threshold = score_threshold

    @abstractmethod
    def detect(self, image: np.ndarray) -> Detections: ...

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(im) for im in images]

    def _decode_raw(self, boxes: np.ndarray, scores: np.ndarray, image: np.ndarray) -> Detections:
        """Every anchor's box and scores -> the card's NMS, at this detector's threshold."""
        post = self.card["postprocess"]
        return decode_raw(
            boxes,
            scores,
            self.labels,
            image.shape[1],
            image.shape[0],
            iou_threshold=post["iou_threshold"],
            max_detections=post["max_detections"],
            min_score=max(self.score_threshold, 0.05),
        ).above(self.score_threshold)

    def _check(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        return image


class SavedModelDetector(Detector):
    backend = "saved_model"

    def __init__(self, model_dir, card, score_threshold=0.0):
        super().__init__(model_dir, card, score_threshold)
        from common.tfenv import tf

        self._tf = tf
        try:
            loaded = tf.saved_model.load(str(self.model_dir / ARTIFACTS["saved_model"]))
        except (OSError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot load SavedModel from {self.model_dir}: {e}") from None
        self._keep = loaded  # the signature needs its object alive
        self._fn = loaded.signatures["serving_default"]

    def detect(self, image):
        tf = self._tf
        image = self._check(image)
        out = self._fn(input_tensor=tf.constant(image[None]))
        n = int(out["num_detections"][0])
        masks = None
        if "detection_masks" in out:
            masks = self._reframe(
                out["detection_masks"][0][:n],
                out["detection_boxes"][0][:n],
                image.shape[0],
                image.shape[1],
            )
        det = Detections.from_normalized(
            out["detection_boxes"][0][:n].numpy(),
            out["detection_scores"][0][:n].numpy(),
            out["detection_classes"][0][:n].numpy(),
            self.labels,
            image.shape[1],
            image.shape[0],
            masks,
        )
        return det.above(self.score_threshold)

    def _reframe(self, masks, boxes, height, width):
        from object_detection.utils import ops

        if masks.shape[1] == height and masks.shape[2] == width:
            return (masks.numpy() > 0.5).astype(np.uint8)
        full = ops.reframe_box_masks_to_image_masks(masks, boxes, height, width)
        return (full.numpy() > 0.5).astype(np.uint8)


class TFLiteDetector(Detector):
    """LiteRT interpreter over the OD API's TFLite SSD graph (input resized to the model size)."""

    backend = "tflite"

    def __init__(self, model_dir, card, score_threshold=0.0, artifact="tflite", num_threads=1):
        super().__init__(model_dir, card, score_threshold)
        from ai_edge_litert.interpreter import Interpreter

        path = self.model_dir / ARTIFACTS[artifact]
        self.backend = artifact
        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self._runner = self._interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as e:
            raise UserError(f"cannot load {path}: {e}") from None
        ((self._input_name, spec),) = self._runner.get_input_details().items()
        self._height, self._width = (int(v) for v in spec["shape"][1:3])
        self._dtype = spec["dtype"]
        self._scale, self._zero = spec["quantization"]

    def _resized(self, image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (self._width, self._height), interpolation=cv2.INTER_LINEAR)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        x = self._resized(image).astype(np.float32) / 127.5 - 1.0  # the extractor's preprocessing
        if self._dtype != np.float32:
            info = np.iinfo(self._dtype)
            x = np.clip(np.round(x / self._scale + self._zero), info.min, info.max)
        return x.astype(self._dtype)[None]

    def detect(self, image):
        image = self._check(image)
        out = self._runner(**{self._input_name: self.prepare(image)})
        n = int(np.asarray(out["num_detections"]).reshape(-1)[0])
        return Detections.from_normalized(
            out["detection_boxes"][0][:n],
            out["detection_scores"][0][:n],
            np.asarray(out["detection_classes"][0][:n]) + 1,  # TFLite classes are 0-based
            self.labels,
            image.shape[1],
            image.shape[0],
        ).above(self.score_threshold)


def decode_boxes(encodings: np.ndarray, anchors: np.ndarray, scales) -> np.ndarray:
    """Faster R-CNN box coder: ``[A, 4]`` encodings (ty, tx, th, tw) on centre-size anchors
    (yc, xc, h, w) -> normalised ``[A, 4]`` yxyx boxes (as webexport/web/hands.js decodes)."""
    sy, sx, sh, sw = scales
    yc = encodings[:, 0] / sy * anchors[:, 2] + anchors[:, 0]
    xc = encodings[:, 1] / sx * anchors[:, 3] + anchors[:, 1]
    h = np.exp(encodings[:, 2] / sh) * anchors[:, 2]
    w = np.exp(encodings[:, 3] / sw) * anchors[:, 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)


def decode_raw(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: dict[int, str],
    width: int,
    height: int,
    *,
    iou_threshold: float,
    max_detections: int,
    min_score: float = 0.05,
) -> Detections:
    """Every anchor's box (normalised yxyx, ``[A, 4]``) and class scores (``[A, K]``) ->
    per-class NMS, as the browser does it (webexport/web/hands.js)."""
    keep_boxes, keep_scores, keep_ids = [], [], []
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


class RawTFLiteDetector(TFLiteDetector):
    """ai-edge-litert on the raw-output model the browser runs (``litert/``): pixels resized
    to the input, box encodings and scores out, then the same decode + NMS as the page."""

    def __init__(self, model_dir, card, score_threshold=0.0, artifact="tflite_raw", num_threads=1):
        super().__init__(model_dir, card, score_threshold, artifact, num_threads)
        path = self.model_dir / "litert" / "anchors.bin"
        if "litert" not in card or not path.is_file():
            raise UserError(f"{self.model_dir} has no litert/anchors.bin or no card entry litert")
        self._anchors = np.fromfile(path, "<f4").reshape(-1, 4)
        self._scales = card["litert"]["box_coder_scales"]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return self._resized(image).astype(self._dtype)[None]  # uint8 (int8 model) or float

    def detect(self, image):
        image = self._check(image)
        out = self._runner(**{self._input_name: self.prepare(image)})
        boxes = decode_boxes(out["box_encodings"][0], self._anchors, self._scales)
        return self._decode_raw(boxes, out["scores"][0], image)


class TFJSNodeDetector(Detector):
    """The TF.js graph run by Node (one process per batch, wasm backend): for parity tests."""

    def __init__(self, model_dir, card, score_threshold=0.0, artifact="tfjs", tfjs_backend="wasm"):
        super().__init__(model_dir, card, score_threshold)
        self.backend = artifact
        self._dir = self.model_dir / ARTIFACTS[artifact]
        self._tfjs_backend = tfjs_backend
        self.last_ms: list[float] = []
        if not (self._dir / "model.json").is_file():
            raise UserError(f"{self._dir} has no model.json")

    def detect(self, image):
        return self.detect_batch([image])[0]

    def detect_batch(self, images):
        from common.nodejs import run_graph

        images = [self._check(im) for im in images]
        rows, self.last_ms = run_graph(self._dir, images, backend=self._tfjs_backend)
        out = []
        for image, row in zip(images, rows, strict=True):
            ((raw,),) = row.values()
            out.append(self._decode_raw(raw[:, :4], raw[:, 4:], image))
        return out


class BrowserDetector(Detector):
    """hands.js in headless Chromium, on LiteRT.js (``litertjs``: threads, the page's default
    in an isolated page; ``litertjs_1thread``: the single-threaded fallback)."""

    def __init__(self, model_dir, card, score_threshold=0.0, artifact="litertjs"):
        super().__init__(model_dir, card, score_threshold)
        self.backend = artifact
        self._runtime = "litert" if artifact.endswith("1thread") else "litert-threads"

    def detect(self, image):
        return self.detect_batch([image])[0]

    def detect_batch(self, images):
        from common.browser import hands_js_detections

        images = [self._check(im) for im in images]
        pages = hands_js_detections(
            self.model_dir,
            images,
            runtime=self._runtime,
            score_threshold=max(self.score_threshold, 0.05),
        )
        return [Detections.from_hands_js(found).above(self.score_threshold) for found in pages]


def available(model_dir: str | Path) -> list[str]:
    return [b for b, p in ARTIFACTS.items() if (Path(model_dir) / p).exists()]


def load_detector(
    model_dir: str | Path,
    backend: str = "tflite",
    *,
    score_threshold: float = 0.0,
    num_threads: int = 1,
    tfjs_backend: str = "wasm",
) -> Detector:
    """The detector for one artifact of an exported model folder."""
    paths = {**ARTIFACTS, **BROWSER}
    if backend not in paths:
        raise UserError(f"unknown backend {backend!r}; choose one of {sorted(paths)}")
    card = read_card(model_dir)
    if not (Path(model_dir) / paths[backend]).exists():
        raise UserError(
            f"{model_dir} has no {paths[backend]} (backend {backend}); it has: "
            f"{', '.join(available(model_dir)) or 'nothing'}"
        )
    if backend in BROWSER:
        return BrowserDetector(model_dir, card, score_threshold, backend)
    if backend == "saved_model":
        return SavedModelDetector(model_dir, card, score_threshold)
    if backend.startswith("tflite_raw"):
        return RawTFLiteDetector(model_dir, card, score_threshold, backend, num_threads)
    if backend.startswith("tflite"):
        return TFLiteDetector(model_dir, card, score_threshold, backend, num_threads)
    return TFJSNodeDetector(model_dir, card, score_threshold, backend, tfjs_backend)
