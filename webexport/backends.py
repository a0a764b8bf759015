"""The browser's runtimes as detectors, for parity tests and comparisons (batch use: one runtime
started for many images): ``tfjs`` / ``tfjs_uint8`` (the TF.js graph in Node, wasm backend as in
the browser), ``litertjs`` / ``litertjs_1thread`` (the page's hands.js on LiteRT.js in headless
Chromium, threaded or not), ``mediapipe_web`` (MediaPipe Tasks for the web,
``@mediapipe/tasks-vision``, on the folder's TFLite files with metadata)."""

from __future__ import annotations

from handspot.artifact import ArtifactDetector
from handspot.backends import Backend
from handspot.detections import Detections
from handspot.errors import UserError
from webexport.browser import hands_js_detections, tasks_js_detections
from webexport.nodejs import run_graph


class BatchDetector(ArtifactDetector):
    """A runtime started once a batch (Node, a Chromium page): ``detect`` is a batch of one."""

    batched = True

    def detect(self, image):
        return self.detect_batch([image])[0]


class TFJSNodeDetector(BatchDetector):
    """The TF.js graph run by Node (one process per batch, wasm backend): for parity tests."""

    def __init__(self, model_dir, artifact, card, backend="tfjs", *, tfjs_backend="wasm",
                 **options):  # fmt: skip
        super().__init__(model_dir, artifact, card, backend, **options)
        self._tfjs_backend = tfjs_backend
        self.last_ms: list[float] = []
        if not (self.artifact / "model.json").is_file():
            raise UserError(f"{self.artifact} has no model.json")

    def detect_batch(self, images):
        images = [self._check(im) for im in images]
        rows, self.last_ms = run_graph(self.artifact, images, backend=self._tfjs_backend)
        out = []
        for image, row in zip(images, rows, strict=True):
            ((decoded,),) = row.values()  # [A, 4 + K]: decoded boxes, then class scores
            out.append(self._postprocess(decoded[:, :4], decoded[:, 4:], image))
        return out


class BrowserDetector(BatchDetector):
    """hands.js in headless Chromium, on LiteRT.js (``litertjs``: threads, the page's default
    in an isolated page; ``litertjs_1thread``: the single-threaded fallback). The page gets
    this detector's card, served in place of the folder's file."""

    def __init__(self, model_dir, artifact, card, backend="litertjs", **options):
        super().__init__(model_dir, artifact, card, backend, **options)
        self._runtime = "litert" if backend.endswith("1thread") else "litert-threads"

    def detect_batch(self, images):
        images = [self._check(im) for im in images]
        pages = hands_js_detections(
            self.model_dir,
            images,
            runtime=self._runtime,
            score_threshold=max(self.score_threshold, self.card.postprocess.min_score),
            card=self.card,
        )
        return [Detections.from_hands_js(found).above(self.score_threshold) for found in pages]


class BrowserTasksDetector(BatchDetector):
    """MediaPipe Tasks' ObjectDetector for the web (``@mediapipe/tasks-vision`` from npm) in
    headless Chromium, on the folder's TFLite file with metadata (webexport/web/tasks.html)."""

    def detect_batch(self, images):
        images = [self._check(im) for im in images]
        pages = tasks_js_detections(
            self.model_dir,
            images,
            file=str(self.artifact.relative_to(self.model_dir)),
            score_threshold=max(self.score_threshold, self.card.postprocess.min_score),
            card=self.card,
        )
        return [
            Detections.from_tasks(found, self.labels).above(self.score_threshold) for found in pages
        ]


BACKENDS = {
    "tfjs": Backend("tfjs", TFJSNodeDetector),
    "tfjs_uint8": Backend("tfjs_uint8", TFJSNodeDetector),
    "litertjs": Backend("litert/model_int8.tflite", BrowserDetector, browser=True),
    "litertjs_1thread": Backend("litert/model_int8.tflite", BrowserDetector, browser=True),
    "mediapipe_web": Backend("model_int8.tflite", BrowserTasksDetector, browser=True),
    "mediapipe_web_fp32": Backend("model_fp32.tflite", BrowserTasksDetector, browser=True),
    "mediapipe_web_raw": Backend("litert/model_int8.tflite", BrowserTasksDetector, browser=True),
}
