"""Hand masks from keypoints (issue 27) on drawn scenes: GrabCut seeded by the keypoints finds a
hand of skin colour on a textured table and stops at the wrist and at a face beside it; bad
inputs give an empty mask, never an error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from handspot.detections import Detections
from handspot.masks import Masker, MaskOptions, draw_hand, hand_length, hand_mask
from tests.handspot.test_landmarks import turned, upright_hand

SKIN, ARM = (205, 150, 125), (200, 148, 122)


def scene(points: np.ndarray, seed: int = 0, face: bool = False):
    """A textured table with a hand of skin colour drawn from ``points`` (its true mask
    returned), a forearm past the wrist and, with ``face``, a skin-coloured face beside it."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 110, (240, 320, 3), np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 2)
    truth = np.zeros(image.shape[:2], np.uint8)
    draw_hand(truth, points[:, :2], 0.45 * hand_length(points[:, :2]), 1)  # fingers wider
    wrist, middle = points[0, :2], points[9, :2]
    elbow = wrist + (wrist - middle) * 3
    cv2.line(image, tuple(np.int32(wrist)), tuple(np.int32(elbow)), ARM, 30)
    if face:
        cv2.circle(image, (int(points[:, 0].max()) + 45, int(points[:, 1].mean())), 45, SKIN, -1)
    image[truth > 0] = SKIN
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


@pytest.mark.parametrize("degrees", [0, 35, -60])
def test_grabcut_finds_the_hand_and_stops_at_the_wrist(degrees):
    points = turned(upright_hand(160, 110, 1.3), degrees, 160, 110)
    image, truth = scene(points)
    mask = hand_mask(image, points, None, MaskOptions())
    assert mask.shape == truth.shape and mask.dtype == np.uint8
    seed = hand_mask(image, points, None, MaskOptions(method="skeleton"))
    assert iou(mask, truth) >= 0.85 and iou(mask, truth) >= iou(seed, truth) + 0.1
    up = (points[9, :2] - points[0, :2]) / hand_length(points[:, :2])
    yy, xx = np.nonzero(mask)
    along = (xx - points[0, 0]) * up[0] + (yy - points[0, 1]) * up[1]
    assert along.min() >= -0.2 * hand_length(points[:, :2])  # nothing of the forearm


def test_a_face_of_the_same_colour_beside_the_hand_stays_out():
    points = upright_hand(130, 120, 1.3)
    image, truth = scene(points, face=True)
    mask = hand_mask(image, points, None, MaskOptions())
    assert iou(mask, truth) >= 0.7
    assert mask[:, int(points[:, 0].max()) + 40 :].sum() == 0  # the face's far side: none


def test_the_skeleton_and_box_floors():
    points = upright_hand(160, 110, 1.3)
    image, truth = scene(points)
    skeleton = hand_mask(image, points, None, MaskOptions(method="skeleton"))
    assert 0.3 <= iou(skeleton, truth) < 0.8
    box = hand_mask(image, None, [10, 20, 30, 60], MaskOptions(method="box"))
    assert box.sum() == 20 * 40 and box[20:60, 10:30].all()


@pytest.mark.parametrize(
    "points",
    [
        None,  # a detection without keypoints
        np.full((21, 3), 50.0),  # all in one pixel
        np.full((21, 3), np.nan),
        upright_hand(-500, -500),  # far outside the image
        upright_hand(100, 100)[:5],  # not 21 keypoints
    ],
)
def test_bad_keypoints_give_an_empty_mask(points):
    image = np.full((120, 160, 3), 90, np.uint8)
    assert hand_mask(image, points, [0, 0, 1, 1], MaskOptions()).sum() == 0


def test_a_hand_cut_by_the_frame_gets_a_mask_inside_the_image():
    points = upright_hand(8, 200, 1.3)  # half of it past the left edge and the bottom
    image, _ = scene(upright_hand(160, 110, 1.3))
    mask = hand_mask(image, points, None, MaskOptions())
    assert mask.shape == image.shape[:2]


def test_the_masker_gives_one_mask_a_detection():
    points = upright_hand(160, 110, 1.3)
    image, _ = scene(points)
    det = Detections([[100, 40, 220, 170], [0, 0, 5, 5]], [0.9, 0.6], [1, 1], ("hand", "hand"),
                     keypoints=np.stack([points, np.full((21, 3), np.nan)]))  # fmt: skip
    masks = Masker().masks(image, det)
    assert masks.shape == (2, 240, 320) and masks[0].sum() > 1000 and masks[1].sum() == 0
    assert Masker().masks(image, det[:0]).shape == (0, 240, 320)
