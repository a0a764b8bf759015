"""The landmark stage on real held-out frames: keypoints and left/right agree with MediaPipe
Hands, labels flip with a flipped image, a real face gets no hand, ids hold on a clip of moving
hands, and detect's outputs carry and draw all of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.paths import DEFAULT_MODEL
from handspot.detections import box_iou
from handspot.errors import UserError
from handspot.landmarks import HandLandmarker, LandmarkModel, Roi
from pipelines.backends import load_detector

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
FACE_FRAME = "test_1528664299.56_pic00045.jpg"  # a man holding up a hand beside his face


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def held_out(webcam_held_out) -> list[np.ndarray]:
    return webcam_held_out


@pytest.fixture(scope="module")
def landmarker() -> HandLandmarker:
    return HandLandmarker(load_detector(DEFAULT_MODEL, "tflite_raw", score_threshold=0.1))


def test_keypoints_and_left_right_agree_with_mediapipe_hands(held_out, landmarker):
    """MediaPipe Hands' own pipeline (palm detector + landmark model) in MediaPipe's own
    environment, which the project makes on first use: PCK@0.1 >= 0.9 and the same hand."""
    from pipelines.mediapipe_env import MediaPipeHands

    try:
        theirs = MediaPipeHands()
    except UserError as e:
        pytest.skip(str(e))
    both = correct = same = 0
    with theirs:
        for image in held_out:
            ours, ref = landmarker.detect(image).above(0.5), theirs.detect(image)
            iou = box_iou(ref.boxes, ours.boxes)
            for j in range(len(ref)):
                if not len(ours) or iou[j].max() < 0.5:
                    continue
                i = int(iou[j].argmax())
                size = np.ptp(ref.keypoints[j, :, :2], axis=0).max()
                dist = np.linalg.norm(ours.keypoints[i, :, :2] - ref.keypoints[j, :, :2], axis=1)
                both += 1
                correct += int((dist <= 0.1 * size).sum())
                same += int(ours.data["handedness"][i] == ref.data["handedness"][j])
    assert both >= 9, f"both find the hand on only {both} of {len(held_out)} frames"
    assert correct / (21 * both) >= 0.9 and same / both >= 0.9, (correct / (21 * both), same)


def test_a_flipped_image_flips_every_label(held_out, landmarker):
    flipped_labels = 0
    for image in held_out:
        here = landmarker.detect(image).above(0.5)
        there = landmarker.detect(np.ascontiguousarray(image[:, ::-1])).above(0.5)
        w = image.shape[1]
        mirrored = there.boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [w, 0, w, 0]
        iou = box_iou(here.boxes, mirrored)
        for i in range(len(here)):
            if not len(there) or iou[i].max() < 0.7:
                continue
            j = int(iou[i].argmax())
            assert {here.data["handedness"][i], there.data["handedness"][j]} == {"left", "right"}
            flipped_labels += 1
    assert flipped_labels >= 10


def test_the_stage_rejects_a_real_face(webcam_root, landmarker):
    """The shipped detector puts a box on the man's face (score >= 0.5); the landmark model
    sees no hand in it, and with the stage no detection lies on the face."""
    from pipelines.faces import FaceDetector

    image = rgb(webcam_root / "subhih-webcam" / "images" / FACE_FRAME)
    try:
        (face,) = FaceDetector().detect(image).boxes
    except UserError as e:
        pytest.skip(str(e))
    crop = LandmarkModel().run(image, Roi.from_box(face, 1.5))
    assert crop.presence < 0.1, crop.presence
    boxes = landmarker.detector.detect(image).above(0.5).boxes
    assert (box_iou(face[None], boxes) >= 0.3).any(), "the detector alone boxes the face"
    kept = landmarker.detect(image).above(0.5)
    assert not (box_iou(face[None], kept.boxes) >= 0.3).any(), kept.boxes
    assert len(kept) == 1 and kept.data["handedness"].tolist() == ["left"]  # his left hand


def test_ids_hold_on_a_clip_of_moving_hands(real_sample, webcam_root):
    """Held-out webcam hands moving over a real background for 120 frames: the video mode's
    ids hold, every hand is found most of the time, and the detector ran on few frames."""
    from handspot.run import DetectOptions
    from handspot.sources import Frame
    from handspot.tracking import id_switches
    from prep.samples import moving_hands_clip

    pictures, truth = moving_hands_clip(frames=120)
    options = DetectOptions(track=True, landmarks=True)
    hook, _ = options.hook(30.0)
    detector = options.detector_factory(stage=False)()
    found = [
        hook(Frame(t, t / 30, im), detector.detect(im) if hook.should_detect(t) else None)
        for t, im in enumerate(pictures)
    ]
    result = id_switches(truth, found)
    assert result["switches"] == 0 and result["found"] >= 0.85, result
    assert hook.detector_runs <= 30  # every 5th frame, then 10th, and a few re-detections


def test_detect_writes_keypoints_left_right_and_ids_and_draws_them(real_sample, tmp_path):
    from detect.bench import make_video

    video = make_video(tmp_path / "v.mp4", 12, real_sample)
    result = subprocess.run(
        [sys.executable, "detect/detect_multi_threaded.py", "--source", str(video),
         "--landmarks", "--track", "--json", str(tmp_path / "o.jsonl"),
         "--output", str(tmp_path / "o.mp4"), "--num-workers", "2"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-800:]
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(12))
    hands = [d for x in lines for d in x["detections"]]
    assert len(hands) >= 12
    for d in hands:
        assert len(d["keypoints"]) == 21 and len(d["keypoints"][0]) == 3
        assert d["handedness"] in ("left", "right") and 0 <= d["handedness_score"] <= 1
        assert isinstance(d["track_id"], int) and 0 <= d["presence"] <= 1
    ids = {d["track_id"] for d in hands}
    assert len(ids) <= 6, ids  # the same few hands, not a new id a frame
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    ok, picture = cap.read()
    assert ok and picture.shape == (720, 1280, 3)


def test_the_single_and_multi_threaded_scripts_write_the_same_lines(real_sample, tmp_path):
    """Video mode paces its detector by the tracks, yet its output does not depend on the
    threads' timing: both scripts, and two runs of each, write the same JSON lines (4 moving
    hands, 48 frames, past the pace's lag)."""
    from detect.hands_bench import write_clip

    clip = write_clip(tmp_path / "clip.mp4", 48, hands=4)
    outputs = []
    for script in ("single", "multi", "multi"):
        out = tmp_path / f"{script}{len(outputs)}.jsonl"
        done = subprocess.run(
            [sys.executable, f"detect/detect_{script}_threaded.py", "--source", str(clip),
             "--json", str(out)],
            capture_output=True, text=True, cwd=ROOT, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-800:]
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == outputs[2]
    assert sum(len(json.loads(x)["detections"]) for x in outputs[0].splitlines()) >= 150


def test_the_app_bench_times_every_call_on_both_clips():
    """``hands_bench``'s app part on a tiny clip: every mode timed each round but the first, on
    both clips, and its table row for each."""
    from detect.hands_bench import API_MODES, api_ms, table
    from prep.samples import moving_hands_clip

    if moving_hands_clip(frames=1) is None:
        pytest.skip("the shared data is needed for the moving-hands clip")
    result = api_ms(DEFAULT_MODEL, frames=3, rounds=1)
    assert len(result) == 2 and all(len(modes) == len(API_MODES) for modes in result.values())
    assert all(len(ms) == 1 and ms[0] > 0 for modes in result.values() for ms in modes.values())
    rows = [row for row in table({"api": result}).splitlines() if row.startswith("| moving")]
    assert len(rows) == 2 * len(API_MODES)
