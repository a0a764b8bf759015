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

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_SAMPLE = SHARED / "egohands-4videos"
WEBCAM = SHARED / "hands-webcam"
HELD_OUT_VIDEO = "CARDS_LIVINGROOM_B_T"  # the EgoHands video the benches hold out
WEBCAM_SETS = ("subhih-webcam", "asl-letters", "finger-gestures")


def split_pictures(split: str, every: int = 1) -> list[Path]:
    """Every ``every``-th picture of each shared source in ``split``: "test" is the held-out
    EgoHands video and each webcam set's test split, "train" the other videos and train
    splits (the sources split by video or by set, never by frame). Empty without the data."""
    import json

    videos = sorted(p for p in DEFAULT_SAMPLE.glob("*/") if p.is_dir())
    videos = [v for v in videos if (v.name == HELD_OUT_VIDEO) == (split == "test")]
    found = [p for v in videos for p in sorted(v.glob("*.jpg"))[::every]]
    for name in WEBCAM_SETS:
        path = WEBCAM / name / "annotations.json"
        if path.is_file():
            images = [im for im in json.loads(path.read_text())["images"] if im["split"] == split]
            found += [WEBCAM / name / "images" / im["file_name"] for im in images[::every]]
    return found


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


def webcam_hands(count: int, root: Path = WEBCAM, pad: float = 0.25) -> list[np.ndarray]:
    """Up to ``count`` real hand crops (RGB) from the held-out (test) split of the shared webcam
    sets, each its labelled box grown by ``pad``, taken in turn from each set."""
    import json

    import cv2

    per_set = []
    for name in WEBCAM_SETS:
        folder = Path(root) / name
        if not (folder / "annotations.json").is_file():
            continue
        coco = json.loads((folder / "annotations.json").read_text())
        images = {im["id"]: im for im in coco["images"] if im["split"] == "test"}
        crops = []
        for a in coco["annotations"]:
            im = images.get(a["image_id"])
            if im is None or len(crops) >= count:
                continue
            x, y, w, h = a["bbox"]
            picture = cv2.imread(str(folder / "images" / im["file_name"]))
            if picture is None or min(w, h) < 40:
                continue
            x0, y0 = max(0, int(x - pad * w)), max(0, int(y - pad * h))
            x1, y1 = int(x + (1 + pad) * w), int(y + (1 + pad) * h)
            crops.append(cv2.cvtColor(picture[y0:y1, x0:x1], cv2.COLOR_BGR2RGB))
        per_set.append(crops)
    mixed = [c for group in zip(*per_set, strict=False) for c in group]
    return mixed[:count]


def moving_hands_clip(
    frames: int = 150,
    hands: int = 2,
    size: tuple[int, int] = (1280, 720),
    sample: Path = DEFAULT_SAMPLE,
    webcam: Path = WEBCAM,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A clip with known hands: real hand crops from the webcam sets' held-out splits, moving
    along smooth paths over a real background (an EgoHands frame's upper part, above its own
    hands, blurred so that no hand of its own is found). Returns RGB frames and, per frame,
    the hands' boxes ``(hands, 4)`` xyxy in track order; None when the shared data is absent."""
    import cv2

    crops = webcam_hands(hands, webcam)
    backs = sorted(Path(sample).rglob("*.jpg"))[::37][:4]
    if len(crops) < hands or not backs:
        return None
    width, height = size
    background = cv2.imread(str(backs[0]))
    background = cv2.resize(background[: background.shape[0] // 3], size)
    background = cv2.cvtColor(cv2.GaussianBlur(background, (0, 0), 6), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(seed)
    side = height * 0.42
    paths = []
    for i, crop in enumerate(crops):
        scale = side / max(crop.shape[:2])
        crop = cv2.resize(crop, (int(crop.shape[1] * scale), int(crop.shape[0] * scale)))
        h, w = crop.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
        mask = np.clip((1.15 - r) / 0.45, 0, 1)  # the hand, feathered into the background
        phase = rng.uniform(0, 2 * np.pi, 2)
        lane = (i + 0.5) / len(crops)
        paths.append((crop, mask[..., None], phase, lane))
    out, truth = [], []
    for t in range(frames):
        frame = background.astype(np.float32)
        boxes = []
        for crop, mask, phase, lane in paths:
            h, w = crop.shape[:2]
            cx = width * (lane + 0.18 * np.sin(2 * np.pi * t / 90 + phase[0]))
            cy = height * (0.5 + 0.25 * np.sin(2 * np.pi * t / 70 + phase[1]))
            x0 = int(np.clip(cx - w / 2, 0, width - w))
            y0 = int(np.clip(cy - h / 2, 0, height - h))
            patch = frame[y0 : y0 + h, x0 : x0 + w]
            patch[:] = patch * (1 - mask) + crop * mask
            pad = 0.25 / 1.5  # the crop's margin around the labelled box
            boxes.append([x0 + pad * w, y0 + pad * h, x0 + w - pad * w, y0 + h - pad * h])
        out.append(frame.astype(np.uint8))
        truth.append(np.array(boxes, np.float32))
    return out, truth
