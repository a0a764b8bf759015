"""One detector interface over every exported artifact of ``exported/<name>/``.

    detector = load_detector("exported/hands_ssd320", backend="tflite", num_threads=2)
    detections = detector.detect(rgb_image)        # -> Detections (pixels, scores, classes)

Backends: ``saved_model`` (TensorFlow), ``tflite`` (int8) and ``tflite_fp32`` (ai-edge-litert,
the OD API's TFLite graph with its detection post-processing op), ``tflite_raw`` /
``tflite_raw_fp32`` (ai-edge-litert on ``litert/``: the raw-output models the browser's LiteRT.js
runs, decoded and NMS'd here as the page does), ``tfjs`` / ``tfjs_uint8`` (TF.js in Node, wasm
backend as in the browser; for parity tests and comparisons); ``litertjs`` / ``litertjs_1thread``
(the demo page's hands.js on LiteRT.js in headless Chromium, threaded or not: batch use only,
one page for all the images); ``mediapipe`` / ``mediapipe_fp32`` (MediaPipe Tasks'
ObjectDetector, the task Android, iOS and the web run, on the same TFLite files with their
metadata, in MediaPipe's own environment: ``common.mediapipe_env``; ``mediapipe_raw``: on
``litert/model_int8.tflite``, MediaPipe decoding the anchors itself); ``mediapipe_web``,
``mediapipe_web_fp32``, ``mediapipe_web_raw`` (the same task for the web,
``@mediapipe/tasks-vision``, in headless Chromium: batch use only).
Every backend reads its outputs by name and applies the same score threshold; the ones that
decode raw outputs use ``common.decode`` with the card's post-processing (``common.card``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common import UserError
from common.card import FILE, ModelCard
from common.decode import decode_boxes, postprocess
from common.detections import Detections


def resize_like_saved_model(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize as the OD API's SavedModel does it (TF1 ``resize_images``, corners
    aligned: source = destination x scale, no half-pixel shift; MediaPipe's resize too):
    ``cv2.resize``'s half-pixel grid shifts a 1280-wide frame by 1.5 px at 320 and moves
    scores by up to 0.04."""
    h, w = image.shape[:2]
    scale = np.float32([[width / w, 0, 0], [0, height / h, 0]])
    return cv2.warpAffine(
        image, scale, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


class Detector(ABC):
    """Anything that finds things in an image: ``detect`` takes an RGB uint8 ``HxWx3`` image and
    returns Detections at or above ``score_threshold``."""

    backend: str
    labels: dict[int, str]
    score_threshold: float = 0.0
    batched = False  # True: one call of detect_batch is much cheaper than one detect an image

    @abstractmethod
    def detect(self, image: np.ndarray) -> Detections: ...

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(im) for im in images]

    def close(self) -> None:  # noqa: B027 (most detectors hold nothing to free)
        """Free what the detector holds outside this process (a worker process)."""

    @staticmethod
    def _check(image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        return image


class ArtifactDetector(Detector):
    """Runs one artifact of an exported model folder, as its card says."""

    def __init__(self, model_dir: str | Path, card: ModelCard, backend: str, **options):
        self.model_dir = Path(model_dir)
        self.card = card
        self.backend = backend
        self.labels = dict(card.labels)
        self.score_threshold = options.get("score_threshold", 0.0)

    def _postprocess(self, boxes: np.ndarray, scores: np.ndarray, image: np.ndarray) -> Detections:
        """Every anchor's decoded box and scores -> the card's NMS, at this detector's threshold."""
        post = self.card.postprocess
        return postprocess(
            boxes,
            scores,
            self.labels,
            image.shape[1],
            image.shape[0],
            iou_threshold=post.iou_threshold,
            max_detections=post.max_detections,
            min_score=max(self.score_threshold, post.min_score),
        ).above(self.score_threshold)


class SavedModelDetector(ArtifactDetector):
    def __init__(self, model_dir, card, backend="saved_model", **options):
        super().__init__(model_dir, card, backend, **options)
        from common.tfenv import tf

        self._tf = tf
        try:
            loaded = tf.saved_model.load(str(self.model_dir / BACKENDS[backend].artifact))
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


class TFLiteDetector(ArtifactDetector):
    """LiteRT interpreter over the OD API's TFLite SSD graph (input resized to the model size)."""

    def __init__(self, model_dir, card, backend="tflite", *, num_threads=1, **options):
        super().__init__(model_dir, card, backend, **options)
        from ai_edge_litert.interpreter import Interpreter

        path = self.model_dir / BACKENDS[backend].artifact
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
        return resize_like_saved_model(image, self._width, self._height)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        pixels = self._resized(image)
        if self._dtype == np.uint8 and abs(self._scale * 127.5 - 1) < 1e-4:
            return pixels[None]  # uint8 in for [-1, 1]: the pixels as they are, as mobile apps do
        x = pixels.astype(np.float32) / 127.5 - 1.0  # the extractor's preprocessing
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


class RawTFLiteDetector(TFLiteDetector):
    """ai-edge-litert on the raw-output model the browser runs (``litert/``): pixels resized
    to the input, box encodings and scores out, then the same decode + NMS as the page."""

    def __init__(self, model_dir, card, backend="tflite_raw", **options):
        super().__init__(model_dir, card, backend, **options)
        path = self.model_dir / "litert" / "anchors.bin"
        if card.litert is None or not path.is_file():
            raise UserError(f"{self.model_dir} has no litert/anchors.bin or no card entry litert")
        self._anchors = np.fromfile(path, "<f4").reshape(-1, 4)
        self._scales = card.litert.box_coder_scales

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return self._resized(image).astype(self._dtype)[None]  # uint8 (int8 model) or float

    def detect(self, image):
        image = self._check(image)
        out = self._runner(**{self._input_name: self.prepare(image)})
        boxes = decode_boxes(out["box_encodings"][0], self._anchors, self._scales)
        return self._postprocess(boxes, out["scores"][0], image)


class BatchDetector(ArtifactDetector):
    """A runtime started once a batch (Node, a Chromium page): ``detect`` is a batch of one."""

    batched = True

    def detect(self, image):
        return self.detect_batch([image])[0]


class TFJSNodeDetector(BatchDetector):
    """The TF.js graph run by Node (one process per batch, wasm backend): for parity tests."""

    def __init__(self, model_dir, card, backend="tfjs", *, tfjs_backend="wasm", **options):
        super().__init__(model_dir, card, backend, **options)
        self._dir = self.model_dir / BACKENDS[backend].artifact
        self._tfjs_backend = tfjs_backend
        self.last_ms: list[float] = []
        if not (self._dir / "model.json").is_file():
            raise UserError(f"{self._dir} has no model.json")

    def detect_batch(self, images):
        from common.nodejs import run_graph

        images = [self._check(im) for im in images]
        rows, self.last_ms = run_graph(self._dir, images, backend=self._tfjs_backend)
        out = []
        for image, row in zip(images, rows, strict=True):
            ((decoded,),) = row.values()  # [A, 4 + K]: decoded boxes, then class scores
            out.append(self._postprocess(decoded[:, :4], decoded[:, 4:], image))
        return out


class BrowserDetector(BatchDetector):
    """hands.js in headless Chromium, on LiteRT.js (``litertjs``: threads, the page's default
    in an isolated page; ``litertjs_1thread``: the single-threaded fallback). The page gets
    this detector's card, served in place of the folder's file."""

    batched = True

    def __init__(self, model_dir, card, backend="litertjs", **options):
        super().__init__(model_dir, card, backend, **options)
        self._runtime = "litert" if backend.endswith("1thread") else "litert-threads"

    def detect_batch(self, images):
        from common.browser import hands_js_detections

        images = [self._check(im) for im in images]
        pages = hands_js_detections(
            self.model_dir,
            images,
            runtime=self._runtime,
            score_threshold=max(self.score_threshold, self.card.postprocess.min_score),
            card=self.card,
        )
        return [Detections.from_hands_js(found).above(self.score_threshold) for found in pages]


def tasks_detections(found: list[dict], labels: dict[int, str]) -> Detections:
    """MediaPipe Tasks' objects (``{box: [x0, y0, x1, y1], score, label}``, from Python or the
    web) as Detections, class ids by the label (MediaPipe often leaves its index out)."""
    ids = {name: i for i, name in labels.items()}
    return Detections(
        np.array([d["box"] for d in found], np.float32).reshape(-1, 4),
        np.array([d["score"] for d in found], np.float32),
        np.array([ids.get(d["label"], 0) for d in found], np.int64),
        tuple(d["label"] for d in found),
    )


class BrowserTasksDetector(BatchDetector):
    """MediaPipe Tasks' ObjectDetector for the web (``@mediapipe/tasks-vision`` from npm) in
    headless Chromium, on the folder's TFLite file with metadata (webexport/web/tasks.html)."""

    def detect_batch(self, images):
        from common.browser import tasks_js_detections

        images = [self._check(im) for im in images]
        pages = tasks_js_detections(
            self.model_dir,
            images,
            file=BACKENDS[self.backend].artifact,
            score_threshold=max(self.score_threshold, self.card.postprocess.min_score),
            card=self.card,
        )
        return [tasks_detections(found, self.labels).above(self.score_threshold) for found in pages]


def _mediapipe_tasks(model_dir, card, backend, **options) -> ArtifactDetector:
    from common.mediapipe_env import TasksDetector  # MediaPipe runs in a process of its own

    return TasksDetector(model_dir, card, backend, **options)


@dataclass(frozen=True)
class Backend:
    """One way to run an exported model: the artifact it needs and the detector that runs it.
    ``browser`` backends run in headless Chromium: batch use (parity, comparisons), not detect's
    CLIs."""

    artifact: str
    make: Callable[..., ArtifactDetector]
    browser: bool = False


BACKENDS = {
    "saved_model": Backend("saved_model", SavedModelDetector),
    "tflite": Backend("model_int8.tflite", TFLiteDetector),
    "tflite_fp32": Backend("model_fp32.tflite", TFLiteDetector),
    "tflite_raw": Backend("litert/model_int8.tflite", RawTFLiteDetector),
    "tflite_raw_fp32": Backend("litert/model_fp32.tflite", RawTFLiteDetector),
    "tfjs": Backend("tfjs", TFJSNodeDetector),
    "tfjs_uint8": Backend("tfjs_uint8", TFJSNodeDetector),
    "mediapipe": Backend("model_int8.tflite", _mediapipe_tasks),
    "mediapipe_fp32": Backend("model_fp32.tflite", _mediapipe_tasks),
    "mediapipe_raw": Backend("litert/model_int8.tflite", _mediapipe_tasks),
    "litertjs": Backend("litert/model_int8.tflite", BrowserDetector, browser=True),
    "litertjs_1thread": Backend("litert/model_int8.tflite", BrowserDetector, browser=True),
    "mediapipe_web": Backend("model_int8.tflite", BrowserTasksDetector, browser=True),
    "mediapipe_web_fp32": Backend("model_fp32.tflite", BrowserTasksDetector, browser=True),
    "mediapipe_web_raw": Backend("litert/model_int8.tflite", BrowserTasksDetector, browser=True),
}
ARTIFACTS = {k: b.artifact for k, b in BACKENDS.items() if not b.browser}  # detect's choices
BROWSER = {k: b.artifact for k, b in BACKENDS.items() if b.browser}


def available(model_dir: str | Path) -> list[str]:
    return [b for b, p in ARTIFACTS.items() if (Path(model_dir) / p).exists()]


def check_backend(model_dir: str | Path, backend: str, *, card_in_hand: bool = False) -> Backend:
    """The backend, if the folder has what it needs (a card, unless the caller holds it, and
    the artifact); else one clear error naming what is there."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if not card_in_hand and not (Path(model_dir) / FILE).is_file():
        ModelCard.load(model_dir)  # says what is wrong
    spec = BACKENDS[backend]
    if not (Path(model_dir) / spec.artifact).exists():
        raise UserError(
            f"{model_dir} has no {spec.artifact} (backend {backend}); it has: "
            f"{', '.join(available(model_dir)) or 'nothing'}"
        )
    return spec


def load_detector(
    model_dir: str | Path,
    backend: str = "tflite",
    *,
    score_threshold: float = 0.0,
    num_threads: int = 1,
    tfjs_backend: str = "wasm",
    card: ModelCard | None = None,
    **backend_options,
) -> ArtifactDetector:
    """The detector for one artifact of an exported model folder (``card``: the folder's card
    when the caller holds it already, e.g. the exporter before it writes it;
    ``backend_options``: what one backend alone takes, e.g. ``mediapipe``'s ``video`` and
    ``cpus``)."""
    spec = check_backend(model_dir, backend, card_in_hand=card is not None)
    return spec.make(
        model_dir,
        card or ModelCard.load(model_dir),
        backend,
        score_threshold=score_threshold,
        num_threads=num_threads,
        tfjs_backend=tfjs_backend,
        **backend_options,
    )
