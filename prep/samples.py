"""The real frames the project's demo and benchmarks run on: the shared EgoHands sample.

frames = sample_frames(50)    # BGR 1280x720, in file order (seeded noise without the sample)
polygon_tree(DEFAULT_SAMPLE, out)   # the same frames laid out as the official dataset
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.io

from prep.fixtures import HAND_TYPES, _struct_array

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "egohands-4videos"


def sample_frames(count: int, sample: Path = DEFAULT_SAMPLE, size=(1280, 720)) -> list:
    """Up to ``count`` real EgoHands frames (BGR) at ``size`` for the speed benches, in file
    order; 10 frames of seeded noise when the shared sample is absent."""
    import cv2

    found = sorted(Path(sample).rglob("*.jpg"))[:count]
    if not found:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 255, (size[1], size[0], 3), np.uint8) for _ in range(10)]
    return [cv2.resize(cv2.imread(str(f)), size) for f in found]


def ellipse(box, n: int = 48) -> np.ndarray:
    x0, y0, x1, y1 = box
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack(
        [(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(t), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(t)], 1
    )


def polygon_tree(sample: Path, out: Path) -> Path:
    """Lay the sample's frames out as ``_LABELLED_SAMPLES/<VIDEO>/`` with a ``polygons.mat``."""
    boxes: dict[str, list] = defaultdict(list)
    with open(sample / "boxes.csv", newline="") as f:
        for row in csv.DictReader(f):
            boxes[row["filename"]].append([float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
    by_video: dict[str, list[str]] = defaultdict(list)
    for name in sorted(boxes):
        by_video[name.split("/")[0]].append(name)
    for video, names in by_video.items():
        folder = out / "_LABELLED_SAMPLES" / video
        folder.mkdir(parents=True)
        records = []
        for name in names:
            os.symlink(sample / name, folder / Path(name).name)
            hands = dict.fromkeys(HAND_TYPES, np.zeros((0, 0)))
            for ht, box in zip(HAND_TYPES, boxes[name], strict=False):
                hands[ht] = ellipse(box)
            records.append(hands)
        scipy.io.savemat(folder / "polygons.mat", {"polygons": _struct_array(records, HAND_TYPES)})
    return out
