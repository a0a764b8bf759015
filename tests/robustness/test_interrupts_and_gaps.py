"""Interrupts and small gaps (issue 29, case 12): pre-annotation stopped by Ctrl-C or SIGTERM
leaves no traceback and no temporary folder; ``export --metadata`` on a corrupt file, or where
the parity images are missing, touches nothing; an unusable cache folder is one error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handspot.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported" / "hands_ssd320"


@pytest.fixture(scope="module")
def many_photos(webcam_root, tmp_path_factory) -> Path:
    """120 real webcam photos: a pre-annotation run of several seconds."""
    folder = tmp_path_factory.mktemp("many")
    for path in sorted((webcam_root / "finger-gestures" / "images").iterdir())[:120]:
        shutil.copy(path, folder)
    return folder


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_preannotate_stopped_midway_leaves_nothing_and_says_so(many_photos, tmp_path, signum):
    """Before: Ctrl-C gave a KeyboardInterrupt traceback, and SIGTERM left a ``.tmp-PID``
    folder of copied images until the next run."""
    out = tmp_path / "labels"
    run = subprocess.Popen(
        [sys.executable, "-m", "detect.preannotate", "--source", str(many_photos),
         "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".labels.tmp-*/images/*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # working: images are being copied into its temporary folder
    assert run.poll() is None, run.communicate()
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 128 + signum, err[-1500:]
    assert "Traceback" not in err and err.strip().endswith("interrupted; nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def corrupt_copy(tmp_path: Path) -> Path:
    """The shipped model's card, config and TFLite files, the fp32 file cut short."""
    folder = tmp_path / "model"
    (folder / "litert").mkdir(parents=True)
    for name in ("model_card.json", "pipeline.config", "label_map.pbtxt", "labels.txt",
                 "model_int8.tflite", "model_fp32.tflite", "litert/model_int8.tflite",
                 "litert/anchors.bin"):  # fmt: skip
        shutil.copy(MODEL / name, folder / name)
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def metadata_run(folder: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.export", "--metadata", str(folder)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def test_export_metadata_touches_nothing_when_it_cannot_finish(tmp_path):
    """A corrupt .tflite was a ValueError traceback; without the dataset the parity rows are
    measured on, the metadata was written into the files and then the run failed."""
    folder = corrupt_copy(tmp_path)
    data = (MODEL / "model_fp32.tflite").read_bytes()
    (folder / "model_fp32.tflite").write_bytes(data[: len(data) // 3])
    before = files(folder)
    result = metadata_run(folder, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-1500:]
    assert "model_fp32.tflite: not a TFLite model LiteRT can load" in result.stderr
    assert files(folder) == before
    shutil.copy(MODEL / "model_fp32.tflite", folder / "model_fp32.tflite")
    before = files(folder)
    result = metadata_run(folder, tmp_path)  # data/mix is not under tmp_path
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-1500:]
    assert "no TFRecord files match data/mix/ego/eval.record" in result.stderr
    assert files(folder) == before


def test_an_unusable_cache_folder_is_one_error(tmp_path, monkeypatch):
    """HANDS_CACHE naming a file, or a folder that cannot be written: one line naming it."""
    import common.cache as cache

    (tmp_path / "a_file").write_text("x")
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "a_file")
    with pytest.raises(UserError, match=r"cannot be used .*set HANDS_CACHE"), cache.cache_lock("e"):
        pass
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "a_file" / "below")
    with pytest.raises(UserError, match="cannot be used"), cache.cache_lock("entry"):
        pass
