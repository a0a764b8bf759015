"""Training and one-shot evaluation for real, a few steps on the prep fixture."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from handspot.errors import UserError
from pipelines import pipeline_config as cfg
from pipelines.evaluate import EdgeRecall, HandIoU, evaluate
from pipelines.odapi_compat import tf
from pipelines.results import EvalResult
from pipelines.train import Trainer, train

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def write_config(data: Path, model: str, path: Path, steps: int) -> Path:
    proto = cfg.configure(model, data, batch_size=2, steps=steps, from_scratch=True)
    cfg.save(proto, path)
    return path


@pytest.fixture(scope="module")
def ssd_run(prepared, tmp_path_factory):
    root = tmp_path_factory.mktemp("ssd")
    pipeline = write_config(prepared[0], "ssd", root / "pipeline.config", steps=3)
    result = train(pipeline, root / "run", checkpoint_every=2, quiet=True)
    return pipeline, root / "run", result


def test_ssd_trains_the_exact_step_count_with_checkpoints(ssd_run):
    _, run, result = ssd_run
    assert (result["start_step"], result["step"], result["steps_run"]) == (0, 3, 3)
    assert (run / "ckpt-2.index").is_file() and (run / "ckpt-3.index").is_file()
    assert np.isfinite(result["losses"]["Loss/total_loss"])
    assert cfg.load(run / "pipeline.config").train_config.num_steps == 3
    assert list((run / "train").glob("events.out.tfevents.*"))


def test_ssd_resumes_from_the_last_checkpoint(ssd_run, tmp_path):
    pipeline, run, _ = ssd_run
    again = train(pipeline, run, steps=5, quiet=True)
    assert (again["start_step"], again["step"]) == (3, 5)
    assert tf.train.latest_checkpoint(str(run)).endswith("ckpt-5")
    assert train(pipeline, run, steps=5, quiet=True)["steps_run"] == 0


def test_resuming_with_another_model_config_is_refused(ssd_run, tmp_path):
    """Issue 22, case 7: a 320 run resumed with a 192 config resumed silently (loss 1.38 ->
    3.15) and overwrote the as-run config. Now one error, before anything is built."""
    pipeline, run, _ = ssd_run
    proto = cfg.load(pipeline)
    cfg.set_input_size(proto, 192)
    cfg.save(proto, tmp_path / "192.config")
    as_run = (run / "pipeline.config").read_bytes()
    with pytest.raises(UserError, match=r"another model \(input 320x320 -> 192x192\)"):
        Trainer(tmp_path / "192.config", run)
    assert (run / "pipeline.config").read_bytes() == as_run


def test_evaluate_ssd_once(ssd_run, prepared):
    pipeline, run, _ = ssd_run
    result = evaluate(pipeline, tf.train.latest_checkpoint(str(run)), quiet=True).first
    assert result.examples == prepared[1].splits["eval"].frames
    for key in ("box_AP", "box_AP50", "box_AR100"):
        assert 0.0 <= result.headline[key] <= 1.0
    assert "Loss/total_loss" in result.metrics
    m = result.metrics
    assert m["boxes_edge"] + m["boxes_inside"] == prepared[1].splits["eval"].boxes


def test_evaluate_reports_each_source_of_a_mix(ssd_run, mix_slice, tmp_path):
    _, run, _ = ssd_run
    proto = cfg.configure("ssd", mix_slice[0], batch_size=2, steps=3, from_scratch=True)
    cfg.save(proto, tmp_path / "p.config")
    checkpoint = tf.train.latest_checkpoint(str(run))
    result = evaluate(tmp_path / "p.config", checkpoint, max_examples=2, quiet=True)
    per_source = result.per_source
    assert list(per_source) == ["ego", "subhih", "fingers"]
    assert [r.examples for r in per_source.values()] == [2, 2, 2]
    for r in per_source.values():
        assert 0.0 <= r.headline["box_AP50"] <= 1.0
        assert r.metrics["boxes_edge"] + r.metrics["boxes_inside"] > 0
    assert result.card_eval() == {name: r.headline for name, r in per_source.items()}
    saved = tmp_path / "metrics.json"
    result.save(saved)  # the file as the exporter reads it: the first source at the top level
    assert json.dumps(EvalResult.read(saved).to_dict()) == json.dumps(result.to_dict())
    assert json.loads(saved.read_text())["headline"] == per_source["ego"].headline
    if not result.notes:  # the face model was available: faces were looked for
        assert all("face_images" in r.metrics for r in per_source.values())


def test_missing_fine_tune_checkpoint_says_what_to_do(prepared, tmp_path):
    proto = cfg.configure("ssd", prepared[0])
    cfg.save(proto, tmp_path / "p.config")
    with pytest.raises(UserError, match=r"not found.*--from-scratch"):
        Trainer(tmp_path / "p.config", tmp_path / "run")


def test_mask_rcnn_trains_and_evaluates_masks(prepared, tmp_path):
    pipeline = write_config(prepared[0], "mask_rcnn", tmp_path / "pipeline.config", steps=2)
    result = train(pipeline, tmp_path / "run", quiet=True)
    assert result["step"] == 2 and np.isfinite(result["losses"]["Loss/total_loss"])
    assert "Loss/BoxClassifierLoss/mask_loss" in result["losses"]
    metrics = evaluate(pipeline, result["checkpoint"], max_examples=3, quiet=True).first
    assert metrics.examples == 3
    assert {"box_AP", "mask_AP", "hand_IoU"} <= set(metrics.headline)
    assert 0.0 <= metrics.metrics["hand_iou"] <= 1.0


def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes(prepared, tmp_path):
    pipeline = write_config(prepared[0], "ssd", tmp_path / "pipeline.config", steps=400)
    cmd = [
        sys.executable,
        "-m",
        "pipelines.train",
        "--pipeline",
        str(pipeline),
        "--model-dir",
        str(tmp_path / "run"),
        "--checkpoint-every",
        "1000",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = bytearray()

    def pump():
        while chunk := proc.stderr.read1(4096):
            err.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        done = [int(n) for n in re.findall(rb"\| *(\d+)/400", bytes(err))]
        if done and max(done) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, bytes(err).decode(errors="replace")[-2000:]
    sent = time.time()
    proc.send_signal(signal.SIGTERM)  # what Kubernetes and docker stop send; Ctrl-C alike
    assert proc.wait(timeout=60) == 143
    reader.join(timeout=5)
    assert time.time() - sent < 30
    assert b"run the same command to resume" in bytes(err)
    latest = tf.train.latest_checkpoint(str(tmp_path / "run"))
    step = int(latest.rsplit("-", 1)[1])
    assert step >= 3
    resumed = train(pipeline, tmp_path / "run", steps=step + 2, quiet=True)
    assert (resumed["start_step"], resumed["step"]) == (step, step + 2)


def test_evaluate_cli_without_checkpoint_is_one_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.evaluate", "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 2 and "no checkpoint in" in result.stderr
    assert "Traceback" not in result.stderr


def test_hand_iou_pools_pixels_over_images():
    from object_detection.core import standard_fields as fields

    det = np.zeros((2, 3, 4, 4), np.uint8)
    det[0, 0, :2, :2] = 1  # 4 px, confident
    det[0, 1, 2:, 2:] = 1  # low score: ignored
    det[1, 0, :, :2] = 1  # 8 px
    gt = np.zeros((2, 2, 4, 4), np.uint8)
    gt[0, 0, :2, :] = 1  # 8 px; overlap with det 4
    gt[1, 0, :, :1] = 1  # 4 px; overlap 4
    gt[1, 1, :, 3:] = 1  # padding row beyond num_groundtruth_boxes: ignored
    iou = HandIoU()
    iou.add(
        {
            fields.DetectionResultFields.detection_masks: tf.constant(det),
            fields.DetectionResultFields.detection_scores: tf.constant(
                [[0.9, 0.3, 0.0], [0.8, 0.1, 0.0]]
            ),
            fields.InputDataFields.groundtruth_instance_masks: tf.constant(gt),
            fields.InputDataFields.num_groundtruth_boxes: tf.constant([1, 1]),
        }
    )
    result = iou.result()
    assert result["hand_iou"] == pytest.approx((4 + 4) / (8 + 8))
    assert result["hand_iou_mean_per_image"] == pytest.approx(0.5)


def test_edge_recall_splits_border_boxes_from_the_rest():
    from object_detection.core import standard_fields as fields

    r, i = fields.DetectionResultFields, fields.InputDataFields
    gt = [
        [
            [680.0, 100.0, 720.0, 300.0],  # cut off by the bottom edge, found
            [690.0, 600.0, 720.0, 700.0],  # cut off by the bottom edge, missed (IoU < 0.5)
            [300.0, 300.0, 400.0, 500.0],  # inside, found
            [0.0, 0.0, 0.0, 0.0],  # padding beyond num_groundtruth_boxes
        ]
    ]
    det = [
        [[682.0, 100.0, 720.0, 290.0], [660.0, 500.0, 720.0, 900.0], [300.0, 310.0, 400.0, 500.0]]
    ]
    recall = EdgeRecall()
    recall.add(
        {
            i.groundtruth_boxes: tf.constant(gt),
            i.num_groundtruth_boxes: tf.constant([3]),
            i.original_image_spatial_shape: tf.constant([[720, 1280]]),
            r.detection_boxes: tf.constant(det),
            r.detection_scores: tf.constant([[0.9, 0.9, 0.6]]),
        }
    )
    result = recall.result()
    assert (result["boxes_edge"], result["boxes_inside"]) == (2, 1)
    assert result["recall50_edge"] == 0.5 and result["recall50_inside"] == 1.0


def test_evaluate_follow_evaluates_each_new_checkpoint_and_stops(prepared, tmp_path):
    """The side-car: started before training, it evaluates ckpt-2 once the first run writes it,
    then ckpt-4 from the resumed run, and stops at the config's last step."""
    pipeline = write_config(prepared[0], "ssd", tmp_path / "pipeline.config", steps=4)
    run = tmp_path / "run"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    follower = subprocess.Popen(
        [sys.executable, "-m", "pipelines.evaluate", "--model-dir", str(run), "--follow",
         "--pipeline", str(pipeline), "--poll", "0.5", "--max-examples", "4"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        train(pipeline, run, steps=2, checkpoint_every=2, quiet=True)
        deadline = time.monotonic() + 240
        while not (run / "eval" / "metrics-2.json").exists() and time.monotonic() < deadline:
            assert follower.poll() is None, follower.communicate()
            time.sleep(0.5)
        assert (run / "eval" / "metrics-2.json").exists()
        train(pipeline, run, steps=4, checkpoint_every=2, quiet=True)
        out, err = follower.communicate(timeout=240)
    finally:
        follower.kill()
    assert follower.returncode == 0, err[-2000:]
    assert "reached the last step (4); done" in out
    assert json.loads((run / "eval" / "metrics-4.json").read_text())["step"] == 4
