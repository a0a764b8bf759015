"""The base of every detector that runs one artifact of an exported model folder as its card
says: the labels, the score threshold and the card's post-processing (decode's NMS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handspot.card import ModelCard
from handspot.decode import postprocess
from handspot.detections import Detections
from handspot.detector import Detector


class ArtifactDetector(Detector):
    """Runs ``artifact`` (a file or folder of ``model_dir``, handed in by the backend registry)
    as ``card`` says."""

    def __init__(self, model_dir: str | Path, artifact: Path, card: ModelCard, backend: str,
                 *, score_threshold: float = 0.0, **_):  # fmt: skip
        self.model_dir = Path(model_dir)
        self.artifact = Path(artifact)
        self.card = card
        self.backend = backend
        self.labels = dict(card.labels)
        self.score_threshold = score_threshold

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
