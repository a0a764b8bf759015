"""Polygon clean-up, the EgoHands box rule and mask rasterisation (OpenCV)."""

from __future__ import annotations

import math

import cv2
import numpy as np


def clean_polygon(points: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the polygon as an ``(N, 2)`` float64 array without NaN/inf rows, and how many rows
    were dropped. Anything that is not a list of x,y pairs gives an empty array."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.size == 0 or pts.ndim != 2 or pts.shape[1] != 2:
        return np.zeros((0, 2)), 0
    finite = np.isfinite(pts).all(axis=1)
    return pts[finite], int((~finite).sum())


def _clip_edge(pts: np.ndarray, axis: int, bound: float, keep_above: bool) -> np.ndarray:
    inside = pts[:, axis] >= bound if keep_above else pts[:, axis] <= bound
    if inside.all():
        return pts
    out: list[np.ndarray] = []
    n = len(pts)
    for i in range(n):
        p, q = pts[i], pts[(i + 1) % n]
        p_in, q_in = inside[i], inside[(i + 1) % n]
        if p_in:
            out.append(p)
        if p_in != q_in:  # the edge crosses the boundary: add the crossing point
            t = (bound - p[axis]) / (q[axis] - p[axis])
            out.append(p + t * (q - p))
    return np.array(out).reshape(-1, 2)


def clip_polygon(pts: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip a polygon to the image rectangle ``[0, width] x [0, height]`` (Sutherland–Hodgman)."""
    for axis, bound, keep_above in (
        (0, 0.0, True),
        (0, width, False),
        (1, 0.0, True),
        (1, height, False),
    ):
        if len(pts) == 0:
            break
        pts = _clip_edge(pts, axis, float(bound), keep_above)
    return pts


def polygon_area(pts: np.ndarray) -> float:
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def egohands_box(pts: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The official EgoHands box of a clipped polygon: round the extremes and clamp them to
    ``[1, width] x [1, height]``. Hands touching the image edge are kept. ``None`` when the box
    has no area."""
    xmin, ymin = np.round(pts.min(axis=0)).astype(int)
    xmax, ymax = np.round(pts.max(axis=0)).astype(int)
    xmin, xmax = (int(np.clip(v, 1, width)) for v in (xmin, xmax))
    ymin, ymax = (int(np.clip(v, 1, height)) for v in (ymin, ymax))
    if xmax <= xmin or ymax <= ymin:
        return None
    return xmin, ymin, xmax, ymax


def rotated_envelope(
    box: tuple[float, float, float, float], degrees: float, pivot: tuple[float, float]
) -> tuple[float, float, float, float]:
    """The axis-aligned box around ``box`` (x0, y0, x1, y1) turned ``degrees`` clockwise (on
    the screen, y down) about ``pivot``."""
    a = math.radians(degrees)
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])):
        dx, dy = x - pivot[0], y - pivot[1]
        xs.append(pivot[0] + dx * math.cos(a) - dy * math.sin(a))
        ys.append(pivot[1] + dx * math.sin(a) + dy * math.cos(a))
    return min(xs), min(ys), max(xs), max(ys)


def ellipse_polygon(
    cx: float, cy: float, rx: float, ry: float, degrees: float = 0.0, n: int = 48
) -> np.ndarray:
    """An ellipse (centre, radii, turned ``degrees`` clockwise) as an ``(n, 2)`` polygon."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = math.radians(degrees)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([cx + x * math.cos(a) - y * math.sin(a),
                     cy + x * math.sin(a) + y * math.cos(a)], axis=1)  # fmt: skip


def mask_polygons(
    mask: np.ndarray, offset: tuple[float, float] = (0, 0), tolerance: float = 0.0
) -> tuple[np.ndarray, ...]:
    """A 0/1 mask's outer outlines as polygons (pixels, ``offset`` added), one per piece of at
    least 3 points (holes are filled), the largest first; ``tolerance``: simplified to within
    that many pixels (Douglas-Peucker)."""
    contours, _ = cv2.findContours(
        np.ascontiguousarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if tolerance > 0:
        contours = [cv2.approxPolyDP(c, tolerance, True) for c in contours]
    contours = sorted((c for c in contours if len(c) >= 3), key=cv2.contourArea, reverse=True)
    return tuple(
        c.reshape(-1, 2).astype(np.float64) + np.asarray(offset, np.float64) for c in contours
    )


def rasterize(polygons: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Fill polygons (x,y points in pixels) into a ``(height, width)`` uint8 mask of 0/1."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polygons], 1)
    return mask


def mask_to_png(mask: np.ndarray) -> bytes:
    """PNG-encode a 0/1 mask (the OD API's PNG_MASKS format; any value > 0 is foreground)."""
    ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid arrays
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def png_to_mask(data: bytes) -> np.ndarray:
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError("not a PNG mask")
    return (mask > 0).astype(np.uint8)
