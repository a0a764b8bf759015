"""handtrack.js 0.1.5 (MIT), the peer this project is measured against: its npm package (cached),
the names of its graph's outputs, and its ssd320fpnlite behind the detector interface.

    detector = HandtrackJSDetector()          # TF.js in Node, wasm backend
    detections = detector.detect_batch(images)  # hand-pose classes merged into "hand"
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from common.cache import cache_lock
from common.paths import CACHE_DIR
from handspot.decode import nms, postprocess
from handspot.detections import Detections
from handspot.detector import Detector
from handspot.errors import UserError
from webexport.nodejs import run_graph

PACKAGE = "handtrackjs"
VERSION = "0.1.5"
HTJ_CLASSES = ("open", "closed", "pinch", "point", "face", "pointtip", "pinchtip")
HAND_POSES = ("open", "closed", "pinch", "point")
HAND_POSE_IDS = (1, 2, 3, 4)  # their 1-based class ids
CLASS_SETS = {"all": {c: [c] for c in HTJ_CLASSES}, "hand": {"hand": list(HAND_POSES)}}
MODEL_SUBDIR = "models/webmodel/ssd320fpnlite/base"
# The detections of handtrack.js's graph: the OD API exporter's outputs, which TF.js 3.5 named
# Identity_N in the sorted order of their keys (classes are 1-based, num_detections a vector).
DETECTION_OUTPUTS = {
    "detection_boxes": "Identity_1:0",
    "detection_classes": "Identity_2:0",
    "detection_scores": "Identity_4:0",
    "num_detections": "Identity_5:0",
}

# Before its NMS: decoded boxes [1, A, 4] (normalised yxyx) and sigmoid scores [1, A, 1 + 7]
# (column 0 the background).
PRE_NMS_OUTPUTS = {"raw_detection_boxes": "Identity_6:0", "raw_detection_scores": "Identity_7:0"}


def fetch_package(cache_dir: Path = CACHE_DIR, version: str = VERSION) -> Path:
    """``npm pack handtrackjs@<version>`` into the cache (once); return the unpacked package."""
    target = Path(cache_dir) / f"{PACKAGE}-{version}" / "package"
    if (target / MODEL_SUBDIR / "model.json").is_file():
        return target
    with cache_lock(f"{PACKAGE}-{version}"):  # test workers and users may ask at once
        if (target / MODEL_SUBDIR / "model.json").is_file():
            return target
        return _npm_pack(target, version)


def _npm_pack(target: Path, version: str) -> Path:
    if shutil.which("npm") is None:
        raise UserError(
            "npm not found: install Node.js, or pass --package with an unpacked "
            f"{PACKAGE}@{version}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{version}", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            timeout=600,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise UserError(f"npm pack {PACKAGE}@{version} failed: {result.stderr.strip()[-300:]}")
        staging = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(staging, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging / "package"), target)
    return target


class HandtrackJSDetector(Detector):
    """handtrack.js's ssd320fpnlite, its own TF.js graph run in Node on the wasm backend: its
    pre-NMS boxes and class scores (its in-graph NMS is wrong on wasm) through our per-class
    NMS, hand-pose classes (open, closed, pinch, point) merged into one class, hand, and face
    and fingertip classes left out."""

    backend = "handtrack"
    labels = {1: "hand"}  # noqa: RUF012 (a class constant)
    batched = True

    def __init__(self, score_threshold: float = 0.01):
        self.score_threshold = score_threshold
        self._model = fetch_package() / MODEL_SUBDIR

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images):
        names = list(PRE_NMS_OUTPUTS.values())
        images = [self._check(im) for im in images]
        rows, _ = run_graph(self._model, images, outputs=names, backend="wasm")
        labels = dict(enumerate(HTJ_CLASSES, 1))
        out = []
        for image, row in zip(images, rows, strict=True):
            boxes, scores = row[names[0]][0], row[names[1]][0][:, 1:]  # column 0: background
            det = postprocess(
                boxes,
                scores,
                labels,
                image.shape[1],
                image.shape[0],
                iou_threshold=0.6,
                max_detections=100,
                min_score=self.score_threshold,
            )
            det = det[np.isin(det.class_ids, HAND_POSE_IDS)]
            det = Detections(det.boxes, det.scores, np.ones(len(det)), ("hand",) * len(det))
            out.append(det[nms(det.boxes, det.scores, 0.5, 100)] if len(det) else det)  # merged
        return out
