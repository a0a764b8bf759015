import numpy as np
import pytest
from pycocotools import mask as mask_utils

from prep.geometry import (
    clean_polygon,
    clip_polygon,
    egohands_box,
    mask_to_png,
    png_to_mask,
    polygon_area,
    rasterize,
)


def test_clip_keeps_inside_polygon_unchanged():
    square = np.array([[10.0, 10], [50, 10], [50, 50], [10, 50]])
    np.testing.assert_array_equal(clip_polygon(square, 100, 100), square)


def test_clip_cuts_at_the_image_edge():
    square = np.array([[-20.0, 10], [30, 10], [30, 40], [-20, 40]])
    clipped = clip_polygon(square, 100, 100)
    assert clipped[:, 0].min() == 0
    assert polygon_area(clipped) == pytest.approx(30 * 30)


def test_clip_bounds_a_diagonal_sliver_tighter_than_box_intersection():
    # A thin diagonal strip entering the image through the bottom-left corner region:
    # its clipped box is smaller than (unclipped box) ∩ (image).
    strip = np.array([[-100.0, 500], [100, 700], [100, 705], [-100, 505]])
    clipped = clip_polygon(strip, 1280, 720)
    assert clipped[:, 1].min() == pytest.approx(600, abs=0.01)


def test_clip_of_polygon_outside_is_empty():
    far = np.array([[-50.0, -50], [-10, -50], [-10, -10]])
    assert len(clip_polygon(far, 100, 100)) == 0


def test_clean_polygon_drops_nan_rows_and_rejects_bad_shapes():
    pts, dropped = clean_polygon(np.array([[1.0, 2], [np.nan, 3], [4, 5], [6, np.inf]]))
    assert dropped == 2 and pts.tolist() == [[1, 2], [4, 5]]
    assert clean_polygon(np.zeros((0, 0)))[0].shape == (0, 2)
    assert clean_polygon(np.ones((3, 3)))[0].shape == (0, 2)


def test_egohands_box_rounds_and_clamps_and_keeps_edge_hands():
    assert egohands_box(np.array([[10.4, 20.6], [99.5, 50.2]]), 1280, 720) == (10, 21, 100, 50)
    # Touches the left/top edge (coordinates 0 after clipping): kept, clamped to 1.
    assert egohands_box(np.array([[0.0, 0.0], [40, 30]]), 1280, 720) == (1, 1, 40, 30)
    assert egohands_box(np.array([[1270.0, 700], [1280, 720]]), 1280, 720) == (1270, 700, 1280, 720)
    assert egohands_box(np.array([[5.0, 5], [5.2, 9]]), 1280, 720) is None


def test_rasterize_agrees_with_pycocotools():
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    poly = np.stack([200 + 80 * np.cos(t), 150 + 60 * np.sin(t)], 1)
    ours = rasterize([poly], 400, 300)
    rle = mask_utils.frPyObjects([poly.reshape(-1).tolist()], 300, 400)
    theirs = mask_utils.decode(mask_utils.merge(rle))
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert iou > 0.97
    assert abs(int(ours.sum()) - np.pi * 80 * 60) / (np.pi * 80 * 60) < 0.03


def test_png_mask_round_trip():
    mask = rasterize([np.array([[3.0, 3], [30, 5], [20, 25]])], 40, 30)
    assert mask.any()
    np.testing.assert_array_equal(png_to_mask(mask_to_png(mask)), mask)
