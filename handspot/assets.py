"""The model files inside the package: the shipped hand detector and MediaPipe's hand landmark
models (Apache-2.0; ``models/README.md`` says where each comes from)."""

from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).resolve().parent / "models"
SHIPPED_MODEL = MODELS / "hands_ssd320"  # the default detector: an exported model folder
LANDMARK_MODELS = {
    "lite": "hand_landmark_lite.tflite",
    "full": "hand_landmark_full.tflite",
    "lite_int8": "hand_landmark_lite_int8.tflite",  # pipelines.quantize_landmarks
}


def landmark_model(variant: str) -> Path:
    """The hand landmark model file of ``variant`` (a key of ``LANDMARK_MODELS``)."""
    return MODELS / LANDMARK_MODELS[variant]
