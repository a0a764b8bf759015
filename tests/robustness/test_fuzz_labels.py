"""Fuzzing the label parsers (Hypothesis, fixed budget, derandomised for CI): any input gives a
clean UserError or a valid result, and any box values give a valid dataset."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from handspot.errors import UserError  # noqa: E402

BUDGET = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PLAUSIBLE = st.floats(-200, 300) | st.integers(-100, 500)  # around an 80x60 image
NUMBERS = st.one_of(
    PLAUSIBLE,
    PLAUSIBLE,
    PLAUSIBLE,
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(10**12), 10**12),
    st.text(max_size=6),
    st.none(),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@BUDGET
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_voc_parser_gives_an_error_or_objects(data):
    from prep.voc import read_voc

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.xml"
        path.write_bytes(data)
        try:
            filename, objects = read_voc(path)
        except UserError:
            return
    assert isinstance(filename, str) and filename
    assert all(len(o.box) == 4 for o in objects)


@BUDGET
@given(JSONISH)
def test_coco_parser_gives_an_error_or_images(document):
    from prep.coco import read_coco

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.json"
        path.write_text(json.dumps(document))
        try:
            classes, items, orphans = read_coco(path)
        except UserError:
            return
    assert isinstance(classes, list) and orphans >= 0
    for name, objects, _split, size in items:
        assert size is None or (size[0] > 0 and size[1] > 0)
        assert all(len(o.box) == 4 for o in objects), name


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz_images")
    cv2.imwrite(str(folder / "a.jpg"), np.full((60, 80, 3), 90, np.uint8))
    return folder


@BUDGET
@given(boxes=st.lists(st.lists(NUMBERS, min_size=4, max_size=4), min_size=1, max_size=4))
@example(boxes=[[0.0, 0.0, 1.0, 6e-224]])  # thinner than the labels table keeps: dropped
def test_any_coco_box_values_give_a_valid_dataset_or_one_error(image_folder, boxes):
    """NaN, infinities, huge, negative or non-numeric bbox values: the import either refuses
    the file in one message or writes boxes that lie inside the image, counting the rest."""
    from prep.coco import import_coco

    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 60}],
        "annotations": [
            {"id": i, "image_id": 1, "category_id": 1, "bbox": b} for i, b in enumerate(boxes, 1)
        ],
        "categories": [{"id": 1, "name": "hand"}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a.json").write_text(json.dumps(coco))
        try:
            summary = import_coco(
                Path(tmp) / "a.json", image_folder, Path(tmp) / "out", workers=0, ratios=(1, 0, 0)
            )
        except UserError as e:
            assert "\n" not in str(e)
            return
        rows = (Path(tmp) / "out" / "train_labels.csv").read_text().splitlines()[1:]
    assert summary.totals.boxes == len(rows) <= len(boxes)
    for row in rows:
        x0, y0, x1, y1 = (float(v) for v in row.split(",")[4:8])
        assert all(math.isfinite(v) for v in (x0, y0, x1, y1))
        assert 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 60
