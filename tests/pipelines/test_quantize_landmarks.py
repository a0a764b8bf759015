"""pipelines.quantize_landmarks: the float16 model read as float32 unchanged, and a small
calibration's int8 file that agrees with the float model on held-out crops."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handspot.assets import landmark_model
from pipelines import quantize_landmarks as ql


def test_the_float32_model_gives_the_lite_models_outputs():
    crops = np.random.default_rng(0).random((3, 224, 224, 3)).astype(np.float32)
    a = ql._outputs(landmark_model("lite").read_bytes(), crops)
    b = ql._outputs(ql.float32_model(landmark_model("lite")), crops)
    for key in ("keypoints", "presence", "left"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.real_data
def test_a_small_calibration_gives_an_int8_file_that_agrees(webcam_root, tmp_path):
    out = tmp_path / "int8.tflite"
    report = ql.build(ql.QuantizeOptions(out=out, calibration_crops=40, every=60))
    agree = report["agreement_with_float"]
    assert agree["hands"] >= 10
    assert agree["keypoint_error_mean"] < 0.03 and agree["same_left_right"] >= 0.85
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(report))
    assert out.stat().st_size < 0.75 * landmark_model("lite").stat().st_size


def test_bad_options_are_one_error_line(capsys):
    assert ql.main(["--calibration-crops", "0"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
