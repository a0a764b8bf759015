"""Left/right that stays on its hand.

The landmark model gives each crop a probability that it shows a left hand; frame by frame it
wavers where a hand is seen edge-on, fisted or half out of the frame. Two rules steady it:

- along a track (video), ``Vote``: the label comes from the track's evidence, each frame's
  log-odds weighted by the hand's presence and fading with a half-life, and turns only when the
  evidence for the other side passes a margin;
- among the hands of one frame, the pair rule (``unsure_of_pair``): two hands of about one size,
  one person's pair as in a selfie, a webcam or a first-person view, that get the same label
  while the model is unsure of one of them, give that one the other label (on a track, it
  stays until the evidence for the first side passes the margin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from handspot.options import option


@dataclass(frozen=True)
class HandednessOptions:
    """How left/right is steadied (defaults measured on the moving-hands clip and EgoHands:
    ``python -m detect.hands_bench``)."""

    half_life: float = option(8.0, "video: frames after which a frame's evidence counts half")
    margin: float = option(3.0, "video: log-odds the other side must lead by to turn a label")
    unsure: float = option(0.8, "a label below this probability is unsure (the pair rule)")
    sure: float = option(0.9, "the pair rule: the other hand's label is at least this sure")
    pair_size: float = option(1.6, "the pair rule: the two hands' sizes within this ratio")


def logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


class Vote:
    """One track's left/right: ``add`` each frame's P(left) and presence; ``label`` and
    ``probability`` from the faded evidence."""

    def __init__(self, options: HandednessOptions):
        self.options = options
        self.decay = 0.5 ** (1.0 / options.half_life)
        self.evidence = 0.0  # summed log-odds of left, faded
        self.weight = 0.0  # summed weights, faded (for the average)
        self.label = ""

    def turn(self) -> None:
        """Take the other side (the pair rule); the evidence must lead by the margin to turn
        it back."""
        self.label = other(self.label)

    def add(self, p_left: float, presence: float) -> str:
        self.evidence = self.decay * self.evidence + presence * logit(p_left)
        self.weight = self.decay * self.weight + presence
        lead = self.evidence if self.label == "right" else -self.evidence
        if not self.label:
            self.label = "left" if self.evidence >= 0 else "right"
        elif lead > self.options.margin:  # the other side leads by the margin: turn
            self.turn()
        return self.label

    @property
    def probability(self) -> float:
        """The label's probability: the weighted mean log-odds (below 0.5 where the pair rule
        gave the label against the model's lean)."""
        mean = self.evidence / self.weight if self.weight > 0 else 0.0
        p_left = 1.0 / (1.0 + math.exp(-mean))
        return p_left if self.label == "left" else 1.0 - p_left


def unsure_of_pair(
    labels: Sequence[str], scores: Sequence[float], boxes: np.ndarray, options: HandednessOptions
) -> int | None:
    """The pair rule: of exactly two hands, sizes within ``pair_size``, one label for both,
    the one below ``unsure`` while the other is at least ``sure`` (its index): it should take
    the other side. None where the rule does not apply."""
    if len(labels) != 2 or labels[0] != labels[1] or not labels[0]:
        return None
    sides = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0).max(axis=1)
    if sides.max() / sides.min() > options.pair_size:
        return None
    weak, strong = (0, 1) if scores[0] < scores[1] else (1, 0)
    if scores[weak] < options.unsure and scores[strong] >= options.sure:
        return weak
    return None


def other(label: str) -> str:
    return "right" if label == "left" else "left"


PER_FRAME = HandednessOptions(half_life=1e-3, margin=0.0, unsure=0.0)  # the model's own labels


def label_changes(found: Sequence) -> dict:
    """How steady left/right is along the tracks of a tracked clip (``Detections`` per frame):
    label changes per track per 100 of its frames, and the share of frames holding a pair
    (the pair rule's: two hands of about one size) whose two hands share a label."""
    last: dict[int, str] = {}
    changes = frames = pairs = shared = 0
    for det in found:
        for tid, label in zip(det.track_id, det.data["handedness"], strict=True):
            frames += 1
            changes += int(tid) in last and last[int(tid)] != label
            last[int(tid)] = label
        if len(det) == 2:
            sides = np.maximum(det.boxes[:, 2:] - det.boxes[:, :2], 1.0).max(axis=1)
            if sides.max() / sides.min() <= HandednessOptions().pair_size:
                pairs += 1
                shared += det.data["handedness"][0] == det.data["handedness"][1]
    return {
        "track_frames": frames,
        "changes": changes,
        "changes_per_100": 100 * changes / frames if frames else float("nan"),
        "pair_frames": pairs,
        "pair_same_label": shared / pairs if pairs else float("nan"),
    }
