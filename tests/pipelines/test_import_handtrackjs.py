"""The handtrack.js import is proven, not assumed: the imported model, exported with all 7 of
its classes, detects what the original TF.js model detects when Node runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handspot.detections import Detections, match
from pipelines.backends import load_detector
from pipelines.import_handtrackjs import _split_shared, read_graph_weights
from prep.tfrecord import read_records, shard_pattern
from webexport.handtrack import DETECTION_OUTPUTS, HTJ_CLASSES, MODEL_SUBDIR
from webexport.nodejs import node_ready, run_graph

pytestmark = pytest.mark.slow


def test_split_shared_recovers_kernel_and_scales():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(1, 1, 8, 5))
    scales = [rng.uniform(0.2, 2.0, 5) for _ in range(3)]
    kernel, got, error = _split_shared([shared * s for s in scales])
    for s, g in zip(scales, got, strict=True):
        np.testing.assert_allclose(kernel * g, shared * s, rtol=1e-6)
    assert error < 1e-6


def test_imported_model_matches_the_original_tfjs_model(
    handtrackjs_package, htj7_export, real_data
):
    """htj7_export (conftest): the 7-class import exported by pipelines.export."""
    if not node_ready():
        pytest.skip("Node or the TF.js packages are missing (npm ci in webexport/)")
    info = json.loads((htj7_export.parent / "ckpt" / "import.json").read_text())
    assert info["tower_split_max_relative_error"] < 1e-4 and info["variables"] == 384
    ours = load_detector(htj7_export, "saved_model", score_threshold=0.3)
    records = read_records(shard_pattern(real_data, "test"))
    images = [next(records).image() for _ in range(8)]
    rows, _ = run_graph(
        handtrackjs_package / MODEL_SUBDIR, images, outputs=list(DETECTION_OUTPUTS.values())
    )
    labels = dict(enumerate(HTJ_CLASSES, 1))
    compared = 0
    for image, row in zip(images, rows, strict=True):
        out = {k: row[v][0] for k, v in DETECTION_OUTPUTS.items()}
        n = int(out["num_detections"])
        assert np.allclose(out["detection_classes"], np.round(out["detection_classes"]))
        theirs = Detections.from_normalized(
            out["detection_boxes"][:n],
            out["detection_scores"][:n],
            out["detection_classes"][:n],  # 1-based: the OD API exporter adds the offset
            labels,
            image.shape[1],
            image.shape[0],
        ).above(0.3)
        mine = ours.detect(image)
        pairs = match(theirs, mine, iou_threshold=0.9)
        assert len(pairs) == len(theirs) == len(mine), (theirs.to_json(), mine.to_json())
        for i, j, _ in pairs:
            assert abs(theirs.scores[i] - mine.scores[j]) <= 0.02
        compared += len(pairs)
    assert compared >= 3  # real hands were detected and compared


def test_weights_are_read_whatever_the_quantisation(handtrackjs_package):
    base = read_graph_weights(handtrackjs_package / MODEL_SUBDIR)
    for variant, tol in (("fp16", 1e-2), ("int8", 0.05)):
        other = read_graph_weights(handtrackjs_package / MODEL_SUBDIR.replace("base", variant))
        name = (
            "StatefulPartitionedCall/ssd_mobile_net_v2fpn_keras_feature_extractor/model/"
            "block_1_expand/Conv2D_weights"
        )
        a, b = base[name], other[name]
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= tol * np.abs(a).max()


def test_import_after_other_models_in_the_same_process(handtrackjs_package, tmp_path):
    from pipelines.import_handtrackjs import build_model, import_handtrackjs

    build_model(1)  # Keras now numbers the next model's scopes (..._feature_extractor_1/)
    info = import_handtrackjs(tmp_path / "hand", classes="hand", package=handtrackjs_package)
    assert info["variables"] == 384 and list(info["classes"]) == ["hand"]


def test_compare_reads_handtrack_detections_as_hands(handtrackjs_package, real_data):
    from webexport.handtrack import HandtrackJSDetector

    if not node_ready():
        pytest.skip("Node or the TF.js packages are missing (npm ci in webexport/)")
    records = read_records(shard_pattern(real_data, "test"))
    images = [next(records).image() for _ in range(2)]
    found = HandtrackJSDetector().detect_batch(images)
    assert len(found) == 2 and sum(len(d) for d in found) >= 1
    assert all(set(d.class_names) <= {"hand"} for d in found)
