"""The landmark stage's int8 file (``pipelines.quantize_landmarks``): it gives the float lite
model's hands on real held-out crops, and the stage runs on it end to end."""

from __future__ import annotations

import numpy as np
import pytest

from handspot.assets import landmark_model
from handspot.landmarks import LandmarkModel, LandmarkOptions, Roi

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def crops(webcam_root):
    from prep.samples import webcam_hands

    return webcam_hands(45, webcam_root)


def test_the_int8_file_is_int8_and_in_the_package():
    from ai_edge_litert.interpreter import Interpreter

    path = landmark_model("lite_int8")
    assert path.stat().st_size < 0.75 * landmark_model("lite").stat().st_size
    ops = {op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()}
    assert {"QUANTIZE", "DEQUANTIZE", "CONV_2D"} <= ops


def test_int8_keypoints_left_right_and_presence_follow_the_float_model(crops):
    lite, int8 = LandmarkModel("lite"), LandmarkModel("lite_int8")
    errors, same_side, same_presence = [], [], []
    for rgb in crops:
        h, w = rgb.shape[:2]
        roi = Roi.from_box((0, 0, w, h), 1.0)
        a, b = lite.run(rgb, roi), int8.run(rgb, roi)
        same_presence.append((a.presence >= 0.5) == (b.presence >= 0.5))
        if a.presence < 0.5:
            continue
        size = np.ptp(a.keypoints[:, :2], axis=0).max()
        errors.append(np.linalg.norm(a.keypoints[:, :2] - b.keypoints[:, :2], axis=1).mean() / size)
        same_side.append((a.left >= 0.5) == (b.left >= 0.5))
    assert len(errors) >= 30
    # measured: 0.9% of the hand's size on average, 99% the same side (quantize_landmarks)
    assert np.median(errors) < 0.02 and np.mean(errors) < 0.03
    assert np.mean(same_side) >= 0.9 and np.mean(same_presence) >= 0.9


def test_the_stage_and_the_tracking_run_on_the_int8_file(webcam_held_out):
    from handspot.api import HandDetector, HandDetectorOptions

    found = {}
    for variant in ("lite", "lite_int8"):
        detector = HandDetector(HandDetectorOptions(landmark_model=variant, landmarks=True))
        assert detector.options.landmark_options() == LandmarkOptions(model=variant)
        found[variant] = [detector.detect(rgb) for rgb in webcam_held_out[:6]]
        video = [detector.detect_for_video(webcam_held_out[0], 33 * t) for t in range(3)]
        assert len(video[-1]) and (video[-1].track_id > 0).all()
    hands = sum(len(d) for d in found["lite"])
    assert hands >= 4 and sum(len(d) for d in found["lite_int8"]) == hands
    for a, b in zip(found["lite"], found["lite_int8"], strict=True):
        assert list(a.data["handedness"]) == list(b.data["handedness"])
