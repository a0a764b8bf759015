"""A truncated checkpoint .data or an empty .index: one error naming the file in train
(resume, with how to resume from the checkpoint before), evaluate and export."""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from common.folders import STAMP, atomic_dir

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "exported" / "hands_ssd320"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


@pytest.fixture
def run_dir(tmp_path, prepared) -> Path:
    """A model dir as training leaves it: ckpt-1 (good) and ckpt-2 (the latest), the shipped
    weights under both names, and the as-run config."""
    from pipelines import pipeline_config as cfg

    run = tmp_path / "run"
    run.mkdir()
    for step in (1, 2):
        for f in (SHIPPED / "checkpoint").glob("ckpt-0.*"):
            shutil.copy(f, run / f.name.replace("ckpt-0", f"ckpt-{step}"))
    (run / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-1"\n'
        'all_model_checkpoint_paths: "ckpt-2"\n'
    )
    proto = cfg.load(SHIPPED / "pipeline.config")
    cfg.set_inputs(proto, prepared[0], {})
    proto.train_config.num_steps = 3
    cfg.save(proto, run / "pipeline.config")
    return run


def damage(run: Path, how: str) -> None:
    if how == "truncated data":
        data = run / "ckpt-2.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    else:
        (run / "ckpt-2.index").write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated data", "empty index"])
def test_damaged_checkpoint_is_one_error_everywhere(run_dir, tmp_path, how):
    damage(run_dir, how)
    pipeline = str(run_dir / "pipeline.config")
    calls = (
        (["pipelines.train", "--pipeline", pipeline, "--model-dir", str(run_dir)], "resume from"),
        (["pipelines.evaluate", "--model-dir", str(run_dir)], ""),
        (["pipelines.export", "--checkpoint-dir", str(run_dir), "--out", str(tmp_path / "e")], ""),
    )
    with ThreadPoolExecutor(max_workers=2) as pool:  # each is mostly a single-threaded start-up
        results = list(pool.map(lambda call: cli(*call[0]), calls))
    for (args, extra), result in zip(calls, results, strict=True):
        assert result.returncode == 2, (args[0], result.stderr[-1500:])
        assert "Traceback" not in result.stderr, (args[0], result.stderr[-1500:])
        (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert "is damaged" in line and "ckpt-2" in line and extra in line, line
        if extra:
            assert line.endswith(f"resume from {run_dir / 'ckpt-1'}")


def small_disk(limit: int):
    """``ulimit -f`` in the child (SIGXFSZ ignored, as a shell leaves it): a stand-in for a
    full disk that needs no mount."""
    import resource
    import signal

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_keeps_the_last_checkpoint_and_fails_train_and_prep_cleanly(
    run_dir, egohands_tree, tmp_path
):
    """Issue 22, case 6 (checkpoints, prep), files limited to 2 MB (a checkpoint is ~20 MB).
    Before: train's traceback left a partial ckpt-3; prep ended in a traceback. Now: one error
    each; the last complete checkpoint is kept, and named by the checkpoint list, so the same
    command resumes; nothing half-written under prep's output (the earlier one kept as it was).
    Export goes through the same atomic folder: tests/common/test_atomic.py."""
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name.startswith("ckpt-")}
    before["checkpoint"] = (run_dir / "checkpoint").read_text()
    prep_out = tmp_path / "data"
    with atomic_dir(prep_out, "dataset") as tmp:  # an earlier output of prep: replaceable
        (tmp / "summary.json").write_text("{}")
    calls = (
        ["pipelines.train", "--pipeline", str(run_dir / "pipeline.config"), "--model-dir",
         str(run_dir)],
        ["prep.egohands_clean", "--source", str(egohands_tree[0]), "--out", str(prep_out)],
    )  # fmt: skip

    def limited(args):
        return subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT,
            timeout=600, preexec_fn=small_disk(2 << 20),
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(limited, calls))
    errors = []
    for args, result in zip(calls, results, strict=True):
        assert result.returncode == 2, (args[0], result.stderr[-1500:])
        assert "Traceback" not in result.stderr, (args[0], result.stderr[-1500:])
        (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert line.startswith("error: cannot write") and "File too large" in line, line
        errors.append(line)
    train_error = errors[0]
    assert f"the last complete one, {run_dir / 'ckpt-2'}, is kept" in train_error
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name.startswith("ckpt-")}
    after["checkpoint"] = (run_dir / "checkpoint").read_text()
    assert after == before  # no partial ckpt-3, the list unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run"]  # no temporary folders
    assert sorted(p.name for p in prep_out.iterdir()) == sorted([STAMP, "summary.json"])
