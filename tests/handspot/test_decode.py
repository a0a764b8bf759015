"""The one decode + NMS a language: common/decode.py and hands.js give the same results on the
same tables of boxes and scores (run in Node), including ties, thresholds and empty inputs."""

from __future__ import annotations

import numpy as np
import pytest

from handspot.decode import MIN_SCORE, decode_boxes, nms, postprocess
from handspot.detections import Detections
from tests.handspot import hands_js

SQUARE = [0, 0, 10, 10]

NMS_CASES = {
    "empty": ([], [], 0.5, 10, []),
    "one": ([SQUARE], [0.3], 0.5, 10, [0]),
    "ties keep the lower index first": (
        [SQUARE, [20, 20, 30, 30], SQUARE], [0.5] * 3, 0.5, 10, [0, 1]
    ),
    "overlap above the threshold is dropped": ([SQUARE, [0, 0, 10, 12]], [0.6, 0.9], 0.5, 10, [1]),
    "overlap at the threshold is kept": ([SQUARE, [5, 0, 15, 10]], [0.9, 0.8], 1 / 3, 10, [0, 1]),
    "max_out": ([SQUARE, [20, 0, 30, 10], [40, 0, 50, 10]], [0.7, 0.9, 0.8], 0.5, 2, [1, 2]),
}  # fmt: skip


@pytest.mark.parametrize("case", NMS_CASES, ids=list(NMS_CASES))
def test_nms(case):
    boxes, scores, iou, max_out, want = NMS_CASES[case]
    got = nms(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores), iou, max_out)
    assert got.tolist() == want


def test_nms_in_hands_js_keeps_the_same_boxes():
    """hands.js's nms works on normalised yxyx rows with K scores an anchor; one class here."""
    calls = []
    for boxes, scores, iou, max_out, _ in NMS_CASES.values():
        yxyx = [v / 100 for b in boxes for v in (b[1], b[0], b[3], b[2])]
        opts = {"scoreThreshold": 0, "minScore": 0, "iouThreshold": iou, "maxDetections": max_out}
        calls.append(("nms", [yxyx, scores, 1, opts]))
    for (_, _, _, _, want), got in zip(NMS_CASES.values(), hands_js(*calls), strict=True):
        assert [d["anchor"] for d in got] == want


def test_decode_boxes_on_zero_encodings_gives_the_anchors():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4], [0.1, 0.9, 0.1, 0.1]], np.float32)
    got = decode_boxes(np.zeros((2, 4), np.float32), anchors, [10, 10, 5, 5])
    np.testing.assert_allclose(got, [[0.4, 0.3, 0.6, 0.7], [0.05, 0.85, 0.15, 0.95]], atol=1e-6)


def test_decode_boxes_is_the_same_in_hands_js():
    rng = np.random.default_rng(0)
    enc = rng.normal(0, 1, (6, 4)).astype(np.float32)
    anchors = np.concatenate([rng.uniform(0.2, 0.8, (6, 2)), rng.uniform(0.05, 0.3, (6, 2))], 1)
    scales = [10.0, 10.0, 5.0, 5.0]
    want = decode_boxes(enc, anchors.astype(np.float32), scales)
    (got,) = hands_js(("decodeBoxes", [enc.ravel().tolist(), anchors.ravel().tolist(), scales]))
    np.testing.assert_allclose(np.array(got).reshape(-1, 4), want, atol=1e-5)


def random_anchors(seed: int, anchors: int, classes: int):
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0, 1, (anchors, 2))
    size = rng.uniform(0.05, 0.5, (anchors, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)  # some past the edges
    scores = rng.uniform(0, 1, (anchors, classes)) ** 3
    scores[rng.integers(0, anchors, 5)] = 0.5  # ties
    return boxes.astype(np.float32), scores.astype(np.float32)


POST_CASES = {  # anchors, classes, score threshold, min score, iou, max detections
    "one class": (200, 1, 0.0, MIN_SCORE, 0.6, 100),
    "three classes, few kept": (300, 3, 0.3, MIN_SCORE, 0.5, 7),
    "threshold below the minimum score": (100, 2, 0.01, 0.2, 0.6, 100),
    "nothing scores": (50, 1, 0.99999, MIN_SCORE, 0.6, 100),
}


@pytest.mark.parametrize("case", POST_CASES, ids=list(POST_CASES))
def test_postprocess_in_python_and_hands_js_gives_the_same_detections(case):
    anchors, classes, threshold, min_score, iou, max_det = POST_CASES[case]
    boxes, scores = random_anchors(anchors, anchors, classes)
    labels = {c + 1: f"class{c + 1}" for c in range(classes)}
    ours = postprocess(
        boxes,
        scores,
        labels,
        640,
        480,
        iou_threshold=iou,
        max_detections=max_det,
        min_score=max(threshold, min_score),
    ).above(threshold)
    opts = {
        "scoreThreshold": threshold,
        "minScore": min_score,
        "iouThreshold": iou,
        "maxDetections": max_det,
    }
    (found,) = hands_js(
        (
            "postprocess",
            [boxes.ravel().tolist(), scores.ravel().tolist(), classes, 640, 480, opts,
             {str(k): v for k, v in labels.items()}],
        )
    )  # fmt: skip
    theirs = Detections.from_hands_js(found)
    assert len(theirs) == len(ours) and theirs.class_names == ours.class_names
    np.testing.assert_allclose(theirs.boxes, ours.boxes, atol=1e-3)
    np.testing.assert_allclose(theirs.scores, ours.scores, atol=1e-6)
    if case == "nothing scores":
        assert len(ours) == 0
    else:
        assert len(ours) >= 1 and (ours.boxes >= 0).all() and (ours.boxes[:, 2] <= 640).all()


def test_postprocess_of_no_anchors_is_empty():
    det = postprocess(np.zeros((0, 4)), np.zeros((0, 1)), {1: "hand"}, 10, 10,
                      iou_threshold=0.5, max_detections=10)  # fmt: skip
    assert len(det) == 0
