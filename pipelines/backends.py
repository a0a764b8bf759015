"""Every backend the workflow runs an exported folder with: the runtime's (LiteRT), the
SavedModel (TensorFlow), the browser's (``webexport.backends``) and MediaPipe Tasks'
ObjectDetector in Python (the task Android, iOS and the web run, on the same TFLite files with
their metadata, in MediaPipe's own environment: ``pipelines.mediapipe_env``).

    detector = load_detector("exported/hands_ssd320", "saved_model")
"""

from __future__ import annotations

import functools
from types import MappingProxyType

import numpy as np

from handspot import backends as runtime
from handspot.artifact import ArtifactDetector
from handspot.backends import Backend
from handspot.detections import Detections
from handspot.errors import UserError
from pipelines.mediapipe_env import TasksDetector
from webexport import backends as web


class SavedModelDetector(ArtifactDetector):
    """The OD API's SavedModel (uint8 image tensor in), its masks reframed to the image."""

    def __init__(self, model_dir, artifact, card, backend="saved_model", **options):
        super().__init__(model_dir, artifact, card, backend, **options)
        from common.tfenv import tf

        self._tf = tf
        try:
            loaded = tf.saved_model.load(str(artifact))
        except (OSError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot load SavedModel from {self.model_dir}: {e}") from None
        self._keep = loaded  # the signature needs its object alive
        self._fn = loaded.signatures["serving_default"]

    def detect(self, image):
        image = self._check(image)
        out = self._fn(input_tensor=self._tf.constant(image[None]))
        n = int(out["num_detections"][0])
        boxes = out["detection_boxes"][0][:n]
        masks = None
        if "detection_masks" in out:
            masks = self._reframe(out["detection_masks"][0][:n], boxes, *image.shape[:2])
        det = Detections.from_normalized(
            boxes.numpy(),
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


BACKENDS = MappingProxyType(
    {
        **runtime.BACKENDS,
        "saved_model": Backend("saved_model", SavedModelDetector),
        **web.BACKENDS,
        "mediapipe": Backend("model_int8.tflite", TasksDetector),
        "mediapipe_fp32": Backend("model_fp32.tflite", TasksDetector),
        "mediapipe_raw": Backend("litert/model_int8.tflite", TasksDetector),
    }
)
PYTHON = runtime.runnable(BACKENDS)  # what detect's CLIs run
BROWSER = sorted(name for name, b in BACKENDS.items() if b.browser)
load_detector = functools.partial(runtime.load_detector, backends=BACKENDS)
check_backend = functools.partial(runtime.check_backend, backends=BACKENDS)
