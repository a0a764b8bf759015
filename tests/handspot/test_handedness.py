"""Left/right that stays on its hand (issue 28, part 4), on tiny scripted tracks: a flicker does
not turn a track's label, sustained evidence does (once), no-presence frames count for nothing,
and the unsure hand of one person's pair takes the other side."""

from __future__ import annotations

import itertools

import numpy as np

from handspot.handedness import HandednessOptions, Vote, label_changes, unsure_of_pair
from handspot.landmarks import Hand, Roi
from tests.handspot.test_landmarks import upright_hand
from tests.handspot.test_tracking import World, track


def labels(p_left: list[float], presence: float = 1.0) -> list[str]:
    vote = Vote(HandednessOptions())
    return [vote.add(p, presence) for p in p_left]


def changes(seq: list[str]) -> int:
    return sum(a != b for a, b in itertools.pairwise(seq))


def test_a_flicker_does_not_turn_the_label():
    seq = labels([0.9] * 5 + [0.3] + [0.9] * 5 + [0.45, 0.2, 0.45] + [0.9] * 3)
    assert set(seq) == {"left"}


def test_a_wrong_start_turns_once_and_early():
    seq = labels([0.45] + [0.95] * 10)
    assert seq[0] == "right" and changes(seq) == 1 and seq.index("left") <= 2


def test_sustained_evidence_turns_the_label_once_within_a_third_of_a_second():
    seq = labels([0.9] * 30 + [0.1] * 30)
    assert changes(seq) == 1 and 30 < seq.index("right") <= 30 + 12


def test_frames_without_a_hand_count_for_nothing():
    vote = Vote(HandednessOptions())
    for _ in range(10):
        vote.add(0.95, 1.0)
    for _ in range(50):
        vote.add(0.0, 0.0)  # presence 0: no evidence, and the old fades without turning
    assert vote.label == "left" and vote.probability > 0.9


def boxes(*sides: float) -> np.ndarray:
    return np.array([[100 * i, 0, 100 * i + s, s] for i, s in enumerate(sides)], np.float32)


def test_the_pair_rule_turns_only_the_unsure_hand_of_a_pair():
    o = HandednessOptions()
    assert unsure_of_pair(["left", "left"], [0.95, 0.6], boxes(80, 90), o) == 1
    assert unsure_of_pair(["right", "right"], [0.7, 0.99], boxes(80, 90), o) == 0
    assert unsure_of_pair(["left", "left"], [0.95, 0.92], boxes(80, 90), o) is None  # both sure
    assert unsure_of_pair(["left", "left"], [0.7, 0.6], boxes(80, 90), o) is None  # both unsure
    assert unsure_of_pair(["left", "left"], [0.95, 0.6], boxes(40, 90), o) is None  # two sizes
    assert unsure_of_pair(["left", "right"], [0.95, 0.6], boxes(80, 90), o) is None
    three = ["left"] * 3, [0.95, 0.6, 0.9], boxes(80, 90, 85)
    assert unsure_of_pair(*three, o) is None


class Handed(World):
    """The scripted world, its landmark model giving each hand a scripted P(left) per frame
    (MediaPipe's raw value, for a mirrored image)."""

    def __init__(self, frames, p_left):
        super().__init__(frames)
        self.p_left = p_left  # [frame][hand]

    def run(self, image, roi: Roi) -> Hand:
        for k, (x, y, s) in enumerate(self.hands()):
            if abs(roi.cx - x) < s / 2 and abs(roi.cy - y) < s / 2:
                return Hand(upright_hand(x, y - 10, s / 100), 0.95, self.p_left[self.now][k], roi)
        return Hand(upright_hand(roi.cx, roi.cy), 0.05, 0.5, roi)


def test_a_tracked_pair_gets_two_sides_and_keeps_them():
    """Two hands of one size; the model is sure one is the person's left and wavers on the
    other (its raw value 0.4-0.6 for a frame not mirrored): the unsure one is the right, on
    every frame, and neither label changes along its track."""
    frames = [[(150 + i, 240, 100), (450 - i, 240, 105)] for i in range(60)]
    rng = np.random.default_rng(0)
    raw = [[0.05, float(rng.uniform(0.4, 0.6))] for _ in frames]  # not mirrored: 1 - P(left)
    found = track(Handed(frames, raw))
    sides = [dict(zip(d.track_id.tolist(), d.data["handedness"], strict=True)) for d in found]
    assert all(sorted(s.values()) == ["left", "right"] for s in sides)
    assert label_changes(found)["changes"] == 0
    assert label_changes(found)["pair_same_label"] == 0.0


def test_the_page_steadies_left_right_as_python_does():
    """hands.js's vote and pair rule (in Node) give Python's labels on random tracks."""
    from tests.handspot import hands_js

    rng = np.random.default_rng(1)
    tracks = [(rng.uniform(0, 1, 40).round(3), rng.choice([0.0, 0.6, 1.0], 40)) for _ in range(20)]
    pairs = []
    for _ in range(40):
        scores = rng.uniform(0.5, 1.0, 2).round(3).tolist()
        sides = rng.uniform(40, 120, 2)
        xywh = [[0, 0, float(sides[0]), float(sides[0])], [200, 0, float(sides[1]), 90.0]]
        pairs.append((["left", "left"], scores, xywh))
    found = hands_js(
        *[("steadyLabels", [p.tolist(), w.tolist()]) for p, w in tracks],
        *[("unsureOfPair", [labels, scores, xywh]) for labels, scores, xywh in pairs],
    )
    assert found[: len(tracks)] == [_python_labels(p, w) for p, w in tracks]
    o = HandednessOptions()
    expected = []
    for lab, scores, xywh in pairs:
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in xywh], np.float32)
        weak = unsure_of_pair(lab, scores, xyxy, o)
        expected.append(-1 if weak is None else weak)
    assert found[len(tracks) :] == expected
    assert {-1} < set(expected)  # the rule both held back and turned a hand


def _python_labels(p_left, presence) -> list[str]:
    vote = Vote(HandednessOptions())
    return [vote.add(float(p), float(w)) for p, w in zip(p_left, presence, strict=True)]
