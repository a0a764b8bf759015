"""The exported TFLite files on LiteRT (``ai-edge-litert``): the OD API's graph with its detection
post-processing op, and the raw network (``litert/``, what the page runs) decoded here."""

from __future__ import annotations

import cv2
import numpy as np

from handspot.artifact import ArtifactDetector
from handspot.decode import decode_boxes
from handspot.detections import Detections
from handspot.errors import UserError


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


class TFLiteDetector(ArtifactDetector):
    """LiteRT interpreter over the OD API's TFLite SSD graph (input resized to the model size)."""

    def __init__(self, model_dir, artifact, card, backend="tflite", *, num_threads=1, **options):
        super().__init__(model_dir, artifact, card, backend, **options)
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(model_path=str(artifact), num_threads=num_threads)
            self._runner = self._interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as e:
            raise UserError(f"cannot load {artifact}: {e}") from None
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

    def __init__(self, model_dir, artifact, card, backend="tflite_raw", **options):
        super().__init__(model_dir, artifact, card, backend, **options)
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
