"""Backends: the ways to run an exported model folder (``exported/<name>/``), each a file of the
folder and the detector that runs it. The registry hands each detector its file.

    detector = load_detector("exported/hands_ssd320", "tflite_raw", num_threads=2)
    detections = detector.detect(rgb_image)        # -> Detections (pixels, scores, classes)

The runtime's backends run on LiteRT (``ai-edge-litert``): ``tflite`` / ``tflite_fp32`` (the OD
API's TFLite graph with its detection post-processing op) and ``tflite_raw`` /
``tflite_raw_fp32`` (the raw network of ``litert/``, the file the browser's LiteRT.js runs,
decoded and NMS'd here as the page does). The workflow adds its own (the SavedModel, TF.js,
the page, MediaPipe Tasks: ``pipelines.backends``) and passes them as ``backends``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from handspot.artifact import ArtifactDetector
from handspot.card import FILE, ModelCard
from handspot.errors import UserError
from handspot.litert import RawTFLiteDetector, TFLiteDetector


@dataclass(frozen=True)
class Backend:
    """One way to run an exported model: the artifact it needs (a path in the folder) and what
    makes its detector, ``make(model_dir, artifact_path, card, backend, **options)``.
    ``browser`` backends run in headless Chromium: batch use (parity, comparisons), not
    detect's CLIs."""

    artifact: str
    make: Callable[..., ArtifactDetector]
    browser: bool = False


BACKENDS: Mapping[str, Backend] = MappingProxyType(
    {
        "tflite_raw": Backend("litert/model_int8.tflite", RawTFLiteDetector),
        "tflite": Backend("model_int8.tflite", TFLiteDetector),
        "tflite_fp32": Backend("model_fp32.tflite", TFLiteDetector),
        "tflite_raw_fp32": Backend("litert/model_fp32.tflite", RawTFLiteDetector),
    }
)


def runnable(backends: Mapping[str, Backend] = BACKENDS) -> list[str]:
    """The backends a command line can run (not the browser's), by name."""
    return sorted(name for name, b in backends.items() if not b.browser)


def available(model_dir: str | Path, backends: Mapping[str, Backend] = BACKENDS) -> list[str]:
    """The backends whose artifact the folder has."""
    return [n for n in runnable(backends) if (Path(model_dir) / backends[n].artifact).exists()]


def default_backend(model_dir: str | Path) -> str:
    """The int8 network with NumPy decoding and NMS where the model has it (about 37% less time
    a frame than the OD API graph, whose TFLite post-processing op is 40% of its latency;
    detect.sizes measures both), else the OD API's int8 graph."""
    return (
        "tflite_raw" if (Path(model_dir) / BACKENDS["tflite_raw"].artifact).is_file() else "tflite"
    )


def check_backend(
    model_dir: str | Path,
    backend: str,
    backends: Mapping[str, Backend] = BACKENDS,
    *,
    card_in_hand: bool = False,
) -> Backend:
    """The backend, if the folder has what it needs (a card, unless the caller holds it, and
    the artifact); else one clear error naming what is there."""
    if backend not in backends:
        raise UserError(f"unknown backend {backend!r}; choose one of {sorted(backends)}")
    if not card_in_hand and not (Path(model_dir) / FILE).is_file():
        ModelCard.load(model_dir)  # says what is wrong
    spec = backends[backend]
    if not (Path(model_dir) / spec.artifact).exists():
        raise UserError(
            f"{model_dir} has no {spec.artifact} (backend {backend}); it has: "
            f"{', '.join(available(model_dir, backends)) or 'nothing'}"
        )
    return spec


def load_detector(
    model_dir: str | Path,
    backend: str | None = None,
    *,
    backends: Mapping[str, Backend] = BACKENDS,
    card: ModelCard | None = None,
    score_threshold: float = 0.0,
    **options,
) -> ArtifactDetector:
    """The detector for one artifact of an exported model folder (``backend``: by default
    ``default_backend``; ``card``: the folder's card when the caller holds it already, e.g. the
    exporter before it writes it; ``options``: what the backend takes, e.g. ``num_threads``)."""
    backend = backend or default_backend(model_dir)
    spec = check_backend(model_dir, backend, backends, card_in_hand=card is not None)
    return spec.make(
        model_dir,
        Path(model_dir) / spec.artifact,
        card or ModelCard.load(model_dir),
        backend,
        score_threshold=score_threshold,
        **options,
    )
