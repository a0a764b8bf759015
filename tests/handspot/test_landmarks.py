"""The landmark stage's geometry and fusion on tiny arrays (no model): crops and their inverse,
the turned crop MediaPipe takes from keypoints, handedness for mirrored and plain images, and
how boxes, scores and rejected boxes come out of the fusion."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from handspot.detections import Detections
from handspot.landmarks import SIZE, Hand, LandmarkOptions, Roi, crop_pixels, fuse


def upright_hand(cx=100.0, cy=100.0, scale=1.0) -> np.ndarray:
    """21 keypoints of an open hand, fingers up: wrist below, five fingers fanned above."""
    points = [(0, 40)]  # wrist
    for finger, x in enumerate((-30, -15, 0, 15, 30)):
        base = 10 if finger == 0 else 0
        for joint in range(4):
            points.append((x * (1 + 0.1 * joint), base - 12 * joint - (5 if finger else 0)))
    xy = np.array(points, np.float32) * scale + [cx, cy]
    return np.concatenate([xy, np.zeros((21, 1), np.float32)], axis=1)


def turned(points: np.ndarray, degrees: float, cx=100.0, cy=100.0) -> np.ndarray:
    """The keypoints turned clockwise on the image (y down) around (cx, cy)."""
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    out = points.copy()
    out[:, :2] = (points[:, :2] - [cx, cy]) @ rot.T + [cx, cy]
    return out


@pytest.mark.parametrize("angle", [0.0, 0.7, -2.5, math.pi])
def test_a_crop_and_its_inverse_map_back_and_forth(angle):
    roi = Roi(50.0, 80.0, 112.0, angle)
    corners = np.array([[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE], [SIZE / 2, SIZE / 2]], float)
    m, back = roi.crop_to_image(), roi.image_to_crop()
    image = corners @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(image[4], [50, 80], atol=1e-9)  # the centre
    np.testing.assert_allclose(np.linalg.norm(image[1] - image[0]), 112, atol=1e-9)
    np.testing.assert_allclose(image @ back[:, :2].T + back[:, 2], corners, atol=1e-9)


@pytest.mark.parametrize(
    "roi",
    [Roi(300, 200, 150, 0.4), Roi(20, 30, 200, -2.0), Roi(630, 470, 90, math.pi / 4),
     Roi(900, 900, 100, 0.0), Roi(320, 240, 2000, 0.3)],
    ids=["inside", "over the corner", "at the far corner", "off the image", "larger than it"],
)  # fmt: skip
def test_a_crop_from_the_copied_pixels_is_the_crop_from_the_whole_image(roi):
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    whole = cv2.warpAffine(image, roi.image_to_crop(), (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    got = crop_pixels(image, roi)
    assert got.shape == (SIZE, SIZE, 3)
    # the same pixels but for fixed-point rounding (one level at most)
    assert np.abs(got.astype(int) - whole).max() <= 1
    assert np.mean(got != whole) < 0.05


@pytest.mark.parametrize("degrees", [0, 30, 90, -60, 180])
def test_the_crop_from_keypoints_turns_with_the_hand(degrees):
    roi = Roi.from_keypoints(turned(upright_hand(), degrees))
    wrapped = (math.degrees(roi.angle) - degrees + 180) % 360 - 180  # 180 and -180 are one turn
    assert wrapped == pytest.approx(0, abs=1e-6)
    upright = Roi.from_keypoints(upright_hand())
    assert roi.size == pytest.approx(upright.size, rel=1e-6)  # the same hand, turned
    # the crop's own "up" is the hand's: the middle fingertip lies above the wrist in the crop
    crop = turned(upright_hand(), degrees)[:, :2] @ roi.image_to_crop()[:, :2].T
    crop += roi.image_to_crop()[:, 2]
    assert crop[12, 1] < crop[0, 1] - 40 and abs(crop[12, 0] - crop[0, 0]) < 5


def test_the_crop_from_keypoints_sits_on_the_palm_moved_towards_the_fingers():
    roi = Roi.from_keypoints(upright_hand())
    palm = upright_hand()[[0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18], :2]
    width, height = np.ptp(palm[:, 0]), np.ptp(palm[:, 1])
    assert roi.size == pytest.approx(2 * max(width, height))
    assert roi.cx == pytest.approx(palm[:, 0].min() + width / 2)
    assert roi.cy == pytest.approx(palm[:, 1].min() + height / 2 - 0.1 * height)


def test_the_crop_from_a_box_is_upright_and_square():
    roi = Roi.from_box([10, 20, 50, 120], scale=1.5)
    assert (roi.cx, roi.cy, roi.size, roi.angle) == (30, 70, 150, 0)


@pytest.mark.parametrize(
    ("raw_left", "mirrored", "want"),
    [
        (0.9, True, ("left", 0.9)),
        (0.9, False, ("right", 0.9)),
        (0.2, True, ("right", 0.8)),
        (0.2, False, ("left", 0.8)),
    ],
)
def test_handedness_is_the_persons_own_hand(raw_left, mirrored, want):
    hand = Hand(upright_hand(), 0.9, raw_left, Roi(0, 0, 1))
    label, score = hand.handedness(mirrored)
    assert label == want[0] and score == pytest.approx(want[1])


def hand_at(box, presence, raw_left=0.9) -> Hand:
    x0, y0, x1, y1 = box
    points = upright_hand(scale=1.0)
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    points[:, :2] = (points[:, :2] - lo) / (hi - lo) * [x1 - x0, y1 - y0] + [x0, y0]
    return Hand(points, presence, raw_left, Roi(0, 0, 1))


def detections(*boxes_scores) -> Detections:
    boxes = [b for b, _ in boxes_scores]
    return Detections(boxes, [s for _, s in boxes_scores], [1] * len(boxes), ("hand",) * len(boxes))


def test_fusion_down_weights_what_is_not_a_hand_and_moves_boxes_to_the_keypoints():
    det = detections(([0, 0, 100, 100], 0.9), ([200, 0, 300, 100], 0.8))
    hands = [hand_at([10, 10, 60, 90], 0.95), hand_at([200, 0, 300, 100], 0.1)]
    out = fuse(det, hands, LandmarkOptions(), 640, 480)
    assert out.scores.tolist() == pytest.approx([0.9 * (0.3 + 0.7 * 0.95), 0.8 * (0.3 + 0.7 * 0.1)])
    kp = hands[0].box(0.15)  # overlaps the detector's box: the box moves 0.3 of the way
    moved = np.clip(0.7 * np.array([0, 0, 100, 100]) + 0.3 * kp, 0, None)  # clipped to the image
    np.testing.assert_allclose(out.boxes[0], moved, atol=1e-4)
    np.testing.assert_allclose(out.boxes[1], [200, 0, 300, 100])  # no hand: the box stays
    assert out.keypoints.shape == (2, 21, 3)
    assert out.data["handedness"].tolist() == ["right", "right"]  # plain images: swapped
    assert out.data["presence"].tolist() == pytest.approx([0.95, 0.1])


def test_a_box_far_off_its_hand_takes_the_keypoints_box():
    det = detections(([0, 0, 200, 200], 0.9))  # a box over a face and a hand
    hands = [hand_at([150, 150, 190, 195], 0.9)]
    out = fuse(det, hands, LandmarkOptions(), 640, 480)
    np.testing.assert_allclose(out.boxes[0], hands[0].box(0.15), atol=1e-4)


@pytest.mark.parametrize(
    ("options", "scores"),
    [
        (LandmarkOptions(floor=0.0), [0.9 * 0.95, 0.8 * 0.1]),  # score x presence
        (LandmarkOptions(floor=0.0, drop=True), [0.9 * 0.95]),
        (LandmarkOptions(floor=1.0), [0.9, 0.8]),  # the detector's scores, a choice, not a default
    ],
)
def test_a_box_showing_no_hand_is_dropped_or_down_weighted(options, scores):
    det = detections(([0, 0, 100, 100], 0.9), ([200, 0, 300, 100], 0.8))
    hands = [hand_at([10, 10, 60, 90], 0.95), hand_at([200, 0, 300, 100], 0.1)]
    assert fuse(det, hands, options, 640, 480).scores.tolist() == pytest.approx(scores)


def test_two_boxes_on_one_hand_become_one():
    det = detections(([0, 0, 100, 100], 0.9), ([5, 0, 110, 120], 0.6))
    hands = [hand_at([10, 10, 60, 90], 0.95), hand_at([11, 10, 60, 91], 0.9)]
    out = fuse(det, hands, LandmarkOptions(box="keypoints", pad=0.0), 640, 480)
    assert len(out) == 1 and out.scores.tolist() == pytest.approx([0.9 * (0.3 + 0.7 * 0.95)])


def test_fusion_of_no_detection_has_every_field():
    out = fuse(Detections(), [], LandmarkOptions(), 640, 480)
    assert len(out) == 0 and out.keypoints.shape == (0, 21, 3) and "handedness" in out.data
    assert out.to_json() == []


def test_hands_js_has_the_same_geometry_and_fusion():
    """hands.js's landmark-stage functions on the same tables, in Node."""
    from tests.handspot import hands_js

    points = turned(upright_hand(120, 90, 1.3), 35, 120, 90)
    roi = Roi.from_keypoints(points)
    det = detections(([0, 0, 100, 100], 0.9), ([5, 0, 110, 120], 0.6), ([200, 0, 300, 90], 0.8))
    hands = [hand_at([10, 10, 60, 90], 0.95, 0.2), hand_at([11, 10, 60, 91], 0.9), hand_at(
        [200, 0, 300, 90], 0.1)]  # fmt: skip
    js_hands = [{"keypoints": h.keypoints.tolist(), "presence": h.presence, "left": h.left}
                for h in hands]  # fmt: skip
    got_roi, got_matrix, got_box, got_side, got_fused, got_kept = hands_js(
        ("roiFromKeypoints", [points.tolist()]),
        ("cropToImage", [{"cx": 50, "cy": 80, "size": 112, "angle": 0.7}]),
        ("roiFromBox", [[10, 20, 40, 100], 1.5]),
        ("handedness", [0.2, False]),
        ("fuse", [det.to_hands_js(), js_hands, {"pad": 0.08}, 640, 480]),
        ("fuse", [det.to_hands_js(), js_hands, {"drop": True, "floor": 0}, 640, 480]),
    )
    assert [got_roi[k] for k in ("cx", "cy", "size", "angle")] == pytest.approx(
        [roi.cx, roi.cy, roi.size, roi.angle], abs=1e-4
    )
    m = Roi(50, 80, 112, 0.7).crop_to_image()
    assert got_matrix == pytest.approx([m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2]])
    assert got_box == {"cx": 30, "cy": 70, "size": 150, "angle": 0}
    assert got_side == ["left", pytest.approx(0.8)]
    for options, js in (
        (LandmarkOptions(pad=0.08), got_fused),
        (LandmarkOptions(drop=True, floor=0.0), got_kept),
    ):
        ours = fuse(det, hands, options, 640, 480)
        theirs = Detections.from_hands_js(js)
        assert len(theirs) == len(ours) >= 1
        np.testing.assert_allclose(theirs.boxes, ours.boxes, atol=1e-3)
        np.testing.assert_allclose(theirs.scores, ours.scores, atol=1e-6)
        np.testing.assert_allclose(theirs.keypoints, ours.keypoints, atol=1e-4)
        assert theirs.data["handedness"].tolist() == ours.data["handedness"].tolist()


def test_a_hand_is_drawn_with_its_skeleton_id_and_side():
    from handspot.draw import HAND_SKELETON, draw_detections

    points = upright_hand(100, 110, 1.5)
    det = Detections(
        [[40, 30, 160, 180]], [0.9], [1], ("hand",), keypoints=points[None], track_id=[3],
        data={"handedness": np.array(["left"])},
    )  # fmt: skip
    image = np.zeros((200, 200, 3), np.uint8)
    out = draw_detections(image, det)
    a, b = points[HAND_SKELETON[7][0], :2], points[HAND_SKELETON[7][1], :2]
    middle = np.round((a + b) / 2).astype(int)
    assert out[middle[1], middle[0]].any()  # a bone of the skeleton
    plain = draw_detections(image, det.with_(keypoints=None, track_id=None, data={}))
    label = (slice(0, 30), slice(40, 200))
    assert (out[label] != plain[label]).any()  # "hand 0.90 #3 left" is longer than "hand 0.90"
    assert not plain[middle[1], middle[0]].any()
