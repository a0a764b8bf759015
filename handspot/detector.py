"""The one detector interface: an RGB image in, ``Detections`` out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from handspot.detections import Detections


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
