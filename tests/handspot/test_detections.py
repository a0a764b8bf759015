"""Detections: construction, indexing, clipping, the JSON forms (ours, hands.js's, supervision's)
and the box geometry, on tiny arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handspot.detections import NO_TRACK, Detections, box_iou, match


def three(**extra) -> Detections:
    """Three detections of two classes, with every optional field."""
    return Detections(
        boxes=[[0, 0, 10, 10], [5, 5, 25, 15], [30, 30, 40, 60]],
        scores=[0.9, 0.8, 0.3],
        class_ids=[1, 2, 1],
        class_names=("hand", "face", "hand"),
        masks=np.eye(3, dtype=np.uint8)[:, :, None] * np.ones((3, 3, 4), np.uint8),
        keypoints=np.arange(3 * 2 * 3, dtype=np.float32).reshape(3, 2, 3),
        track_id=[4, NO_TRACK, 7],
        data={
            "handedness": np.array(["left", "right", "left"]),
            "presence": np.array([0.99, np.nan, 0.5]),
            **extra,
        },
    )


def test_empty_detections_have_every_field_and_no_row():
    empty = Detections()
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.to_json() == []
    assert len(empty.above(0.5)) == 0 and len(empty[np.zeros(0, bool)]) == 0
    assert len(Detections.from_json([])) == 0 and len(Detections.from_hands_js([])) == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scores": [0.9]}, "one row per detection"),
        ({"class_names": ("hand",)}, "one row per detection"),
        ({"masks": np.zeros((2, 3, 3))}, "one mask per detection"),
        ({"keypoints": np.zeros((3, 21))}, "keypoints must be"),
        ({"keypoints": np.zeros((3, 21, 4))}, "keypoints must be"),
        ({"track_id": [1, 2]}, "one track id per detection"),
        ({"data": {"handedness": np.array(["left"])}}, "every data array"),
    ],
)
def test_rows_that_do_not_line_up_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        three().with_(**changes)


@pytest.mark.parametrize(
    ("index", "rows"),
    [
        (0, [0]),
        (-1, [2]),
        (slice(1, None), [1, 2]),
        ([2, 0], [2, 0]),
        (np.array([True, False, True]), [0, 2]),
        (np.zeros(3, bool), []),
    ],
)
def test_indexing_takes_the_same_rows_of_every_field(index, rows):
    det, part = three(), three()[index]
    assert isinstance(part, Detections) and len(part) == len(rows)
    np.testing.assert_array_equal(part.boxes, det.boxes[rows])
    assert part.class_names == tuple(det.class_names[i] for i in rows)
    np.testing.assert_array_equal(part.masks, det.masks[rows])
    np.testing.assert_array_equal(part.keypoints, det.keypoints[rows])
    np.testing.assert_array_equal(part.track_id, det.track_id[rows])
    np.testing.assert_array_equal(part.data["handedness"], det.data["handedness"][rows])


def test_above_keeps_scores_at_the_threshold():
    assert three().above(0.8).scores.tolist() == pytest.approx([0.9, 0.8])


def test_best_keeps_the_highest_scores_in_their_order():
    det = three().with_(scores=np.array([0.3, 0.9, 0.8], np.float32))
    assert det.best(2).class_names == ("face", "hand") and det.best(2).boxes[0, 0] == 5
    assert det.best(1).scores.tolist() == pytest.approx([0.9])
    assert det.best(None) is det and det.best(3) is det


@pytest.mark.parametrize(
    ("n", "rows"), [(1, [1]), (2, [1, 3]), (3, [0, 1, 3]), (4, [0, 1, 2, 3]), (5, [0, 1, 2, 3, 4])]
)
def test_best_is_the_same_in_hands_js(n, rows):
    """Ties go to the earlier row, in both languages."""
    from tests.handspot import hands_js

    scores = [0.5, 0.9, 0.5, 0.7, 0.5]
    det = Detections(np.zeros((5, 4)), scores, np.ones(5), ("hand",) * 5)
    (got,) = hands_js(("best", [[{"score": s, "row": i} for i, s in enumerate(scores)], n]))
    assert [r["row"] for r in got] == rows
    assert det.best(n).scores.tolist() == pytest.approx([scores[i] for i in rows])


@pytest.mark.parametrize(
    ("yxyx", "want"),
    [
        ([0.1, 0.2, 0.5, 0.6], [40, 10, 120, 50]),
        ([-0.5, -0.1, 0.5, 1.7], [0, 0, 200, 50]),  # clipped to the image
        ([1.2, 1.1, 1.5, 1.3], [200, 100, 200, 100]),  # all outside: an empty box on the edge
    ],
)
def test_from_normalized_scales_and_clips_to_the_image(yxyx, want):
    det = Detections.from_normalized([yxyx], [0.5], [1], {1: "hand"}, width=200, height=100)
    np.testing.assert_allclose(det.boxes[0], want, atol=1e-4)


def test_from_normalized_sorts_by_score_and_keeps_ties_in_order():
    boxes = [[0, 0, 0.1, 0.1], [0, 0, 0.2, 0.2], [0, 0, 0.3, 0.3], [0, 0, 0.4, 0.4]]
    det = Detections.from_normalized(boxes, [0.5, 0.9, 0.5, 0.7], [1, 1, 2, 1], {1: "hand"}, 10, 10)
    np.testing.assert_allclose(det.boxes[:, 2], [2, 4, 1, 3])
    assert det.class_names == ("hand", "hand", "hand", "2")  # an id the label map lacks


def test_masks_are_written_as_pycocotools_writes_them():
    pycocotools = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(0)
    masks = (rng.random((5, 37, 53)) < 0.3).astype(np.uint8)
    masks[1] = 0
    masks[2, 10:30, 5:40] = 1
    det = Detections(np.zeros((5, 4)), np.ones(5), np.ones(5), ("hand",) * 5, masks=masks)
    for row, mask in zip(det.to_json(), masks, strict=True):
        theirs = pycocotools.encode(np.asfortranarray(mask))
        assert row["segmentation"] == {"size": [37, 53], "counts": theirs["counts"].decode()}
        np.testing.assert_array_equal(pycocotools.decode({**theirs}), mask)


def test_json_round_trip_keeps_every_field():
    det = three(count=np.array([1, 2, 3]))
    rows = det.to_json()
    assert json.loads(json.dumps(rows)) == rows  # plain JSON: no NaN, no numpy types
    assert rows[0] == {
        "bbox": [0.0, 0.0, 10.0, 10.0],
        "score": 0.9,
        "class_id": 1,
        "label": "hand",
        "keypoints": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
        "track_id": 4,
        "segmentation": {"size": [3, 4], "counts": "012000000"},  # as pycocotools writes it
        "handedness": "left",
        "presence": 0.99,
        "count": 1,
    }
    assert rows[1]["track_id"] is None and rows[1]["presence"] is None
    back = Detections.from_json(rows)
    np.testing.assert_allclose(back.boxes, det.boxes)
    np.testing.assert_allclose(back.keypoints, det.keypoints)
    assert back.track_id.tolist() == [4, NO_TRACK, 7]
    assert back.data["handedness"].tolist() == ["left", "right", "left"]
    np.testing.assert_allclose(back.data["presence"], [0.99, np.nan, 0.5])
    assert back.data["count"].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(back.masks, det.masks)


def test_hands_js_form_is_the_json_with_camel_case_keys():
    det = three()
    found = det.to_hands_js()
    assert set(found[0]) == {
        "bbox", "score", "classId", "label", "keypoints", "trackId", "segmentation",
        "handedness", "presence",
    }  # fmt: skip
    back = Detections.from_hands_js(found)
    assert back.to_json() == det.to_json()
    plain = Detections.from_hands_js(
        [{"bbox": [1, 2, 3, 4], "score": 0.5, "classId": 1, "label": "hand"}]
    )
    assert plain.keypoints is None and plain.track_id is None and plain.data == {}
    np.testing.assert_allclose(plain.boxes, [[1, 2, 4, 6]])


def test_supervision_round_trip_and_its_annotators_take_our_results():
    sv = pytest.importorskip("supervision")
    det = three()
    theirs = det.to_supervision()
    assert isinstance(theirs, sv.Detections) and len(theirs) == 3
    np.testing.assert_allclose(theirs.xyxy, det.boxes)
    assert theirs.tracker_id.tolist() == [4, NO_TRACK, 7]
    assert theirs.data["class_name"].tolist() == ["hand", "face", "hand"]
    assert theirs[np.array([True, False, True])].data["handedness"].tolist() == ["left"] * 2
    back = Detections.from_supervision(theirs)
    assert back.to_json() == det.to_json()
    np.testing.assert_array_equal(back.masks, det.masks)
    scene = np.zeros((64, 64, 3), np.uint8)
    drawn = sv.BoxAnnotator().annotate(scene.copy(), theirs)
    assert drawn[0:11, 0:11].any() and not drawn[50:, 50:].any()
    unnamed = Detections.from_supervision(
        sv.Detections(xyxy=np.array([[0.0, 0, 4, 4]]), class_id=np.array([1])), {1: "hand"}
    )
    assert unnamed.class_names == ("hand",) and unnamed.scores.tolist() == [1.0]


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),  # touching corners
        ([0, 0, 10, 10], [0, 0, 5, 10], 0.5),  # contained
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),
        ([3, 3, 3, 3], [3, 3, 3, 3], 0.0),  # empty boxes: no union
    ],
)
def test_box_iou(a, b, iou):
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(iou)
    assert box_iou(np.array([b]), np.array([a]))[0, 0] == pytest.approx(iou)


def test_box_iou_of_no_boxes_has_the_right_shape():
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert box_iou(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)


def test_match_is_one_to_one_by_class_best_iou_first():
    ref = Detections([[0, 0, 10, 10], [0, 0, 10, 11]], [0.9, 0.8], [1, 1], ("a", "a"))
    other = Detections(
        [[0, 0, 10, 11], [0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.9, 0.9], [1, 1, 2], ("a",) * 3
    )
    pairs = match(ref, other, iou_threshold=0.9)
    assert sorted((r, o) for r, o, _ in pairs) == [(0, 1), (1, 0)]  # class 2 never matches
    assert match(ref, Detections()) == [] and match(ref, other, iou_threshold=1.01) == []
