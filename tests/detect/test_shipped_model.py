"""The shipped model in exported/hands_ssd320: it finds real hands, and the main command runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from handspot.detections import Detections, box_iou
from pipelines.backends import load_detector
from pipelines.compare import coco_ap

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "exported" / "hands_ssd320"
HELD_OUT = "CARDS_LIVINGROOM_B_T"


def test_card_records_the_held_out_metrics_and_parity():
    card = json.loads((SHIPPED / "model_card.json").read_text())
    assert card["labels"] == {"1": "hand"}
    assert list(card["eval"]) == ["ego", "subhih", "asl", "fingers"]  # one row a source
    assert card["eval"]["ego"]["box_AP50"] >= 0.85
    assert all(card["eval"][s]["box_AP50"] >= 0.9 for s in ("subhih", "asl", "fingers"))
    assert card["parity"]["tflite"]["matched_fraction"] >= 0.95
    sources = card["training_data"]["sources"]
    assert HELD_OUT in sources["ego"]["held_out"]
    assert all(s["licence"] for s in sources.values())  # every dataset credited
    assert (SHIPPED / "checkpoint" / "ckpt-0.index").is_file()
    from pipelines.pipeline_config import restores_full

    assert restores_full(SHIPPED / "checkpoint" / "ckpt-0")  # retraining keeps the heads


@pytest.mark.real_data
def test_int8_model_finds_the_hands_of_the_held_out_video(real_sample):
    import csv

    import cv2

    truth: dict[str, list] = {}
    with open(real_sample / "boxes.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["filename"].startswith(HELD_OUT):
                truth.setdefault(row["filename"], []).append(
                    [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
                )
    detector = load_detector(SHIPPED, "tflite", score_threshold=0.4)
    found = hit = 0
    for name in sorted(truth)[::5]:  # 20 frames
        rgb = cv2.cvtColor(cv2.imread(str(real_sample / name)), cv2.COLOR_BGR2RGB)
        det = detector.detect(rgb)
        iou = box_iou(np.array(truth[name]), det.boxes)
        hit += int((iou.max(axis=1) >= 0.5).sum()) if len(det) else 0
        found += len(truth[name])
    assert hit / found >= 0.7, f"recall {hit}/{found}"


def test_int8_model_finds_hands_facing_a_webcam(webcam_root):
    """Held-out webcam frames (subhih-webcam's test split): hands held up to the camera."""
    import cv2

    root = webcam_root / "subhih-webcam"
    coco = json.loads((root / "annotations.json").read_text())
    truth: dict[int, list] = {}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        truth.setdefault(a["image_id"], []).append([x, y, x + w, y + h])
    test = [im for im in coco["images"] if im["split"] == "test"][::15]  # 21 frames
    detector = load_detector(SHIPPED, "tflite", score_threshold=0.5)
    found = hit = false = 0
    for im in test:
        rgb = cv2.cvtColor(cv2.imread(str(root / "images" / im["file_name"])), cv2.COLOR_BGR2RGB)
        det = detector.detect(rgb)
        iou = box_iou(np.array(truth[im["id"]]), det.boxes) if len(det) else np.zeros((1, 0))
        hit += int((iou.max(axis=1) >= 0.5).sum()) if len(det) else 0
        false += int((iou.max(axis=0) < 0.5).sum()) if len(det) else 0
        found += len(truth[im["id"]])
    assert hit / found >= 0.9, f"recall {hit}/{found}"
    assert false <= 2, f"{false} false detections on {len(test)} frames"


def test_main_command_runs_detection_on_an_image_folder(tmp_path):
    from prep.fixtures import write_egohands

    write_egohands(tmp_path / "tree", videos=("CARDS_COURTYARD_B_T",), frames_per_video=3, cases={})
    folder = next((tmp_path / "tree" / "_LABELLED_SAMPLES").iterdir())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "detect.demo",
            "--source",
            str(folder),
            "--out",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "demo" / "detections.jsonl").read_text().splitlines()
    assert len(lines) == 3 and (tmp_path / "demo" / "detections.mp4").stat().st_size > 1000


def test_coco_ap_scores_perfect_and_empty_detections():
    truth = [np.array([[10.0, 10, 50, 60], [100, 100, 150, 170]])]
    perfect = Detections(
        truth[0].astype(np.float32),
        np.array([0.9, 0.8], np.float32),
        np.array([1, 1]),
        ("hand", "hand"),
    )
    assert coco_ap(truth, [perfect]) == {"AP": pytest.approx(1.0), "AP50": pytest.approx(1.0)}
    assert coco_ap(truth, [Detections()]) == {"AP": 0.0, "AP50": 0.0}
    half = perfect[[0]]
    assert coco_ap(truth, [half])["AP50"] == pytest.approx(0.5, abs=0.01)


FAMILY = sorted((ROOT / "exported").glob("hands_ssd*"))


@pytest.mark.slow
@pytest.mark.parametrize("model", FAMILY, ids=[m.name for m in FAMILY])
def test_every_size_loads_in_every_backend_and_agrees_on_a_webcam_frame(model, webcam_root):
    """Each exported size: its card's held-out webcam AP50 >= 0.9 and parity rows; every Python
    backend finds the SavedModel's hands on a held-out subhih-webcam frame (IoU >= 0.8)."""
    import cv2

    from pipelines.backends import PYTHON

    card = json.loads((model / "model_card.json").read_text())
    size = card["input_size"][0]
    assert model.name == f"hands_ssd{size}"
    assert all(card["eval"][s]["box_AP50"] >= 0.9 for s in ("subhih", "asl", "fingers"))
    assert card["parity"]["tflite"]["matched_fraction"] >= 0.9
    assert card["parity"]["litertjs"]["matched_fraction"] >= 0.9
    image = cv2.cvtColor(
        cv2.imread(
            str(webcam_root / "subhih-webcam" / "images" / "test_1528664299.56_pic00051.jpg")
        ),
        cv2.COLOR_BGR2RGB,
    )
    ref = load_detector(model, "saved_model", score_threshold=0.5).detect(image)
    assert len(ref) >= 1
    for backend in PYTHON:
        if backend == "saved_model" or backend.startswith("mediapipe"):
            continue  # MediaPipe Tasks: tests/detect/test_mediapipe_tasks.py
        det = load_detector(model, backend, score_threshold=0.3).detect(image)
        iou = box_iou(ref.boxes, det.boxes)
        assert len(det) and (iou.max(axis=1) >= 0.8).all(), (backend, ref, det)
