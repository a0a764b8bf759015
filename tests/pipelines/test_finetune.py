"""pipelines.finetune (issue 21): the rule, the replay share the training input draws, and the
command on a small real slice (head-only: the heads move, the backbone stays)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from common.paths import DEFAULT_MODEL
from handspot.errors import UserError
from pipelines.finetune import FinetuneOptions, FinetuneReport, build_config, rule

ROOT = Path(__file__).resolve().parents[2]


def test_the_rule():
    assert rule(100, 8, 0.5) == (300, 0.002, 30)  # 12 passes at 4 of my frames a step
    assert rule(10, 8, 0.5) == (200, 0.002, 20)  # at least 200 steps
    assert rule(100_000, 16, 0.0) == (3000, 0.004, 300)  # at most 3,000; the rate with the batch


def test_replay_share_is_drawn_and_every_held_out_set_scored(my_frames, mix_slice):
    """Half of what training reads comes from the replay sources, by their weights (subhih,
    weighted 0, never); the user's held-out frames and every replay source's are scored."""
    from pipelines.odapi_compat import tf
    from prep.tfrecord import decode

    from object_detection.builders import dataset_builder

    options = FinetuneOptions(data=str(my_frames), out="unused", replay=str(mix_slice[0]),
                              replay_weights="subhih=0")  # fmt: skip
    proto, plan = build_config(options)
    assert (plan.train_frames, plan.steps, plan.learning_rate) == (10, 200, 0.002)
    assert [r.name for r in proto.eval_input_reader] == ["mine", "ego", "subhih", "fingers"]
    train = proto.train_config
    assert train.fine_tune_checkpoint == str(DEFAULT_MODEL / "checkpoint" / "ckpt-0")
    reader = proto.train_input_reader
    reader.num_epochs = 0
    tf.random.set_seed(0)
    records = dataset_builder.read_dataset(
        tf.data.TFRecordDataset, list(reader.tf_record_input_reader.input_path), reader
    )
    drawn = Counter(decode(r).dataset or "mine" for r in records.take(600).as_numpy_iterator())
    assert set(drawn) == {"mine", "ego", "fingers"}
    assert drawn["mine"] / 600 == pytest.approx(0.5, abs=0.06)
    assert drawn["ego"] / 600 == pytest.approx(0.25, abs=0.06)


def test_bad_options_are_one_clear_error(my_frames, mix_slice, tmp_path):
    def build(**kw):
        return build_config(FinetuneOptions(data=str(my_frames), out="x", **kw))

    with pytest.raises(UserError, match="no source nope"):
        build(replay=str(mix_slice[0]), replay_weights="nope=1")
    with pytest.raises(UserError, match=r"not a folder written by prep\.mix"):
        build(replay=str(my_frames))
    with pytest.raises(UserError, match="not an exported model"):
        build(base=str(tmp_path))
    with pytest.raises(UserError, match="--replay-share must be from 0 to below 1"):
        FinetuneOptions(data="a", out="b", replay_share=1.0).check()
    for bad in (0, -1):
        with pytest.raises(UserError, match="--max-eval must be at least 1"):
            FinetuneOptions(data="a", out="b", max_eval=bad).check()
    with pytest.raises(UserError, match="--replay is none"):
        FinetuneOptions(data="a", out="b", replay="none", replay_weights="ego=1").check()


def test_no_replay_set_is_refused_with_the_command_that_makes_it(my_frames, monkeypatch, tmp_path):
    """A fresh clone has no data/mix: fine-tuning would forget silently, so it stops and says
    how to build the replay set (or to pass --replay none)."""
    import pipelines.finetune as finetune

    monkeypatch.setattr(finetune, "ROOT", tmp_path)
    with pytest.raises(UserError) as e:
        build_config(FinetuneOptions(data=str(my_frames), out="x"))
    assert "python -m prep.mix --out data/mix --egohands ego=" in str(e.value)
    assert "--replay none" in str(e.value) and "\n" not in str(e.value)


def test_a_run_folder_holds_one_run_at_a_time(tmp_path):
    """The same run resumes; other data, base or plan is refused (before: the finished
    checkpoint was "fine-tuned" and scored on the new data); a second process is refused while
    the first holds the folder; a file or a folder of other things is no run folder."""
    import fcntl

    from pipelines.finetune import run_folder

    out = tmp_path / "run"
    first = {"data": "/d/mine", "base": "/m", "seed": 0, "replay_weights": "",
             "plan": {"steps": 300, "learning_rate": 0.002}}  # fmt: skip
    with run_folder(out, first):
        (out / "train").mkdir()
    with run_folder(out, first):  # the same command: resumes
        pass
    other = first | {"data": "/d/other", "plan": first["plan"] | {"steps": 500}}
    with (
        pytest.raises(UserError, match=r"another data, plan\.steps; the same command resumes"),
        run_folder(out, other),
    ):
        pass
    with open(out / ".finetune.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with (
            pytest.raises(UserError, match="another fine-tune is running in"),
            run_folder(out, first),
        ):
            pass
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(UserError, match="exists and is not a folder"),
        run_folder(tmp_path / "file", first),
    ):
        pass
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with (
        pytest.raises(UserError, match=r"holds files of another kind \(notes\.txt\)"),
        run_folder(tmp_path / "mine", first),
    ):
        pass


@pytest.mark.slow
def test_finetune_command_head_only_on_a_real_slice(my_frames, tmp_path):
    """3 steps at batch 2, head-only: the box predictor's weights move, the backbone's and
    FPN's do not; finetune.json holds both models' AP50 on the held-out frames (no replay
    here, to keep CI short: what replay draws is the test above)."""
    from pipelines.odapi_compat import tf

    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.finetune", "--data", str(my_frames), "--out", str(out),
         "--replay", "none", "--steps", "3", "--batch-size", "2", "--max-eval", "2",
         "--head-only", "--no-export"],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = FinetuneReport.load(out)
    assert set(report.rows) == {"mine"}
    assert report.plan.head_only and report.plan.steps == 3
    assert "| mine | 2 |" in result.stdout
    base = tf.train.load_checkpoint(str(DEFAULT_MODEL / "checkpoint" / "ckpt-0"))
    tuned = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(out / "train")))
    moved, kept = Counter(), Counter()
    for key in base.get_variable_to_shape_map():
        if "OPTIMIZER_SLOT" in key or not key.startswith("model/"):
            continue
        changed = not np.array_equal(base.get_tensor(key), tuned.get_tensor(key))
        part = "heads" if "_box_predictor" in key else "backbone"
        (moved if changed else kept)[part] += 1
    assert moved["heads"] > 10 and moved["backbone"] == 0, (moved, kept)
    assert json.loads((out / "finetune.json").read_text())["plan"]["replay"] is None
    again = subprocess.run(  # the same folder, a longer plan: refused, the run left as it was
        [sys.executable, "-m", "pipelines.finetune", "--data", str(my_frames), "--out", str(out),
         "--replay", "none", "--steps", "5", "--batch-size", "2", "--no-export"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert again.returncode == 2 and "another plan.steps" in again.stderr, again.stderr[-800:]
    assert FinetuneReport.load(out) == report
