"""A mask for every hand, from the image and the hand's 21 keypoints, without mask labels.

``grabcut`` (the default): OpenCV's GrabCut on the hand's region, seeded by the keypoints: the
bones drawn ``bone`` x the wrist-to-middle-knuckle length wide and the palm's polygon as
probable hand, their thin core as sure hand, a band ``band`` x that length around them as
probable background and everything further as sure background (so the mask cannot leak into a
face or a table beyond the band), and the forearm past the wrist line as sure background.
``skeleton`` is the seed alone (the bones and the palm filled), ``box`` the filled box: the
floors the measurements compare against.

    masker = Masker(MaskOptions())
    masks = masker.masks(rgb, det)     # (N, H, W) uint8, one a detection (empty without keypoints)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from handspot.draw import HAND_SKELETON
from handspot.options import option

WRIST, MIDDLE_MCP = 0, 9
PALM = (0, 1, 5, 9, 13, 17)  # the palm's outline: wrist, thumb base, the finger bases
METHODS = ("grabcut", "skeleton", "box")


@dataclass(frozen=True)
class MaskOptions:
    """How a hand's mask is made (``python -m detect.masks_bench`` measures the choices)."""

    method: str = option("grabcut", "hand masks: grabcut, skeleton or box", choices=METHODS)
    bone: float = option(0.22, "the bones' width, x the wrist-to-middle-knuckle length")
    core: float = option(0.06, "the sure-hand core's width, x that length")
    band: float = option(0.45, "probable background around the seeds, x that length")
    ring: float = option(0.5, "sure background around the band GrabCut learns from, x that")
    wrist: float = option(0.15, "the forearm is cut this far past the wrist, x that length")
    iterations: int = option(4, "GrabCut's iterations")
    side: int = option(128, "GrabCut runs on the hand's region scaled to at most this side")


@dataclass
class Region:
    """Where a hand is worked on: the image rectangle ``x0, y0, x1, y1`` and the scale from
    image pixels to the work image's."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    @classmethod
    def around(cls, points: np.ndarray, margin: float, shape, side: int) -> Region | None:
        h, w = shape[:2]
        lo, hi = points.min(axis=0) - margin, points.max(axis=0) + margin
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(math.ceil(hi[0]), w), min(math.ceil(hi[1]), h)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        return cls(x0, y0, x1, y1, min(1.0, side / max(x1 - x0, y1 - y0)))

    @property
    def size(self) -> tuple[int, int]:
        """The work image's width and height."""
        return (
            max(1, round((self.x1 - self.x0) * self.scale)),
            max(1, round((self.y1 - self.y0) * self.scale)),
        )

    def to_work(self, points: np.ndarray) -> np.ndarray:
        return (points - [self.x0, self.y0]) * self.scale


def hand_length(points: np.ndarray) -> float:
    """The wrist-to-middle-knuckle length: the hand's scale, however it is turned."""
    return float(np.linalg.norm(points[MIDDLE_MCP] - points[WRIST]))


def draw_hand(canvas: np.ndarray, points: np.ndarray, width: float, value: int) -> None:
    """The bones ``width`` wide and the palm filled, in place."""
    xy = np.round(points).astype(np.int32)
    thick = max(1, round(width))
    for a, b in HAND_SKELETON:
        cv2.line(canvas, tuple(xy[a]), tuple(xy[b]), value, thick)
    cv2.fillPoly(canvas, [cv2.convexHull(xy[list(PALM)])], value)


def seeds(points: np.ndarray, size: tuple[int, int], length: float, o: MaskOptions) -> np.ndarray:
    """GrabCut's starting labels on a work image of ``size`` (points and length in its
    pixels): sure background, a band of probable background, the probable hand, its sure core,
    and the forearm past the wrist line as sure background."""
    labels = np.full((size[1], size[0]), cv2.GC_BGD, np.uint8)
    draw_hand(labels, points, (o.bone + 2 * o.band) * length, cv2.GC_PR_BGD)
    draw_hand(labels, points, o.bone * length, cv2.GC_PR_FGD)
    draw_hand(labels, points, o.core * length, cv2.GC_FGD)
    up = (points[MIDDLE_MCP] - points[WRIST]) / max(length, 1e-6)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    along = (xx - points[WRIST][0]) * up[0] + (yy - points[WRIST][1]) * up[1]
    labels[along < -o.wrist * length] = cv2.GC_BGD
    return labels


def hand_mask(image: np.ndarray, points, box, options: MaskOptions) -> np.ndarray:
    """One hand's ``(H, W)`` uint8 mask from its keypoints (pixels; None, non-finite or a hand
    of under 2 pixels: an empty mask) and box (the ``box`` method)."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    if options.method == "box":
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 1
        return mask
    points = None if points is None else np.asarray(points, np.float64)[:, :2]
    if points is None or len(points) != 21 or not np.isfinite(points).all():
        return mask
    length = hand_length(points)
    if length < 2:
        return mask
    margin = (options.bone / 2 + options.band + options.ring) * length + 2
    region = Region.around(points, margin, image.shape, options.side)
    if region is None:
        return mask
    work_points, work_length = region.to_work(points), length * region.scale
    if options.method == "skeleton":
        found = np.zeros(region.size[::-1], np.uint8)
        draw_hand(found, work_points, options.bone * work_length, 1)
    else:
        found = grabcut(image, region, work_points, work_length, options)
    patch = cv2.resize(found, (region.x1 - region.x0, region.y1 - region.y0),
                       interpolation=cv2.INTER_NEAREST)  # fmt: skip
    mask[region.y0 : region.y1, region.x0 : region.x1] = patch
    return mask


def grabcut(image, region: Region, points, length: float, o: MaskOptions) -> np.ndarray:
    """GrabCut on the region's work image from the keypoints' seeds: 0/1, the part joined to
    the sure core (stray specks dropped)."""
    crop = np.ascontiguousarray(image[region.y0 : region.y1, region.x0 : region.x1])
    work = cv2.resize(crop, region.size, interpolation=cv2.INTER_AREA)
    labels = seeds(points, region.size, length, o)
    if not (labels == cv2.GC_FGD).any() or (labels % 2 == 0).all():
        return (labels % 2).astype(np.uint8)  # nothing to cut between: the seeds as they are
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(work, labels, None, bgd, fgd, o.iterations,
                    cv2.GC_INIT_WITH_MASK)  # fmt: skip
    except cv2.error:  # a region of one colour: GrabCut's models cannot be fitted
        return (labels % 2).astype(np.uint8)
    found = (labels % 2).astype(np.uint8)  # GC_FGD 1 and GC_PR_FGD 3 are odd
    n, parts = cv2.connectedComponents(found)
    core = np.unique(parts[labels == cv2.GC_FGD])
    return np.isin(parts, core[core > 0]).astype(np.uint8) if n > 1 else found


class Masker:
    """Masks for detections that carry keypoints (the landmark stage's), one a detection."""

    def __init__(self, options: MaskOptions | None = None):
        self.options = options or MaskOptions()

    def mask(self, image: np.ndarray, points, box) -> np.ndarray:
        return hand_mask(image, points, box, self.options)

    def masks(self, image: np.ndarray, det) -> np.ndarray:
        h, w = image.shape[:2]
        points = det.keypoints if det.keypoints is not None else [None] * len(det)
        found = [self.mask(image, p, b) for p, b in zip(points, det.boxes, strict=True)]
        return np.stack(found) if found else np.zeros((0, h, w), np.uint8)
