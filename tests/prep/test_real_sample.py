"""The real EgoHands frames in ../shared (skipped when absent): records decode back to boxes.csv."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import numpy as np
import pytest

from prep.egohands import prepare
from prep.preview import write_previews
from prep.sources import Source
from prep.tfrecord import read_records, shard_pattern

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def real_prepared(real_data):
    """conftest's real_data (the sample prepped once per session) and its summary."""
    return real_data, json.loads((real_data / "summary.json").read_text())


def test_records_decode_back_to_the_csv(real_sample, real_prepared):
    out, summary = real_prepared
    expected = defaultdict(list)
    with open(real_sample / "boxes.csv", newline="") as f:
        for r in csv.DictReader(f):
            key = r["filename"].replace("/", "_")
            expected[key].append([float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
    seen = {}
    for split in ("train", "eval", "test"):
        for ex in read_records(shard_pattern(out, split)):
            seen[ex.filename] = split
            assert (ex.width, ex.height) == (1280, 720)
            np.testing.assert_allclose(ex.boxes, expected[ex.filename], atol=1e-3)
            video, frame = ex.filename.split("_frame_")
            assert ex.encoded == (real_sample / video / f"frame_{frame}").read_bytes()
            assert ex.image().shape == (720, 1280, 3)
            assert ex.labels == ["hand"] * len(ex.boxes) and not ex.masks_png
    assert set(seen) == set(expected) and len(seen) == 400
    assert summary["totals"] == {
        "frames": 400,
        "boxes": 1148,
        "skipped_frames": 0,
        "skipped_boxes": 0,
    }
    by_video = defaultdict(set)
    for key, split in seen.items():
        by_video[key.split("_frame_")[0]].add(split)
    assert all(len(s) == 1 for s in by_video.values()) and len(by_video) == 4


def test_preview_draws_boxes_from_the_records(real_prepared):
    import cv2

    out, _ = real_prepared
    written = write_previews(out, 1)
    assert len(written) == 3
    ex = next(read_records(shard_pattern(out, "test")))
    picture = cv2.cvtColor(cv2.imread(str(written[-1])), cv2.COLOR_BGR2RGB)
    x0, y0, _x1, y1 = (round(v) for v in ex.boxes[0])
    # The box outline is drawn in the first palette colour on the frame.
    edge = picture[(y0 + y1) // 2, x0]
    assert tuple(int(c) for c in edge) == (255, 56, 56)
    assert (picture != ex.image()).mean() < 0.2


def test_bench_polygon_layout_measures_masks(real_sample, tmp_path):
    from prep.samples import polygon_tree

    tree = polygon_tree(real_sample, tmp_path / "poly")
    summary = prepare(Source(tree), tmp_path / "out", workers=0)
    assert summary.masks and summary.totals.boxes == 1148
