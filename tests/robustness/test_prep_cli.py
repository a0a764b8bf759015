"""prep's CLIs on bad input: exit 2 with one line, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_negative_preview_is_refused_before_anything_is_written(egohands_tree, tmp_path):
    args = ["--source", str(egohands_tree[0]), "--out", str(tmp_path / "out"), "--preview", "-1"]
    result = subprocess.run(
        [sys.executable, "-m", "prep.egohands_clean", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "--preview must be 0 (none) or more" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_temporary_folder_is_cleaned_by_the_next_run(egohands_tree, tmp_path):
    """kill -9 leaves ``.<out>.tmp-<pid>-*``; the next run removes it (a live run's stays)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.tmp-{dead.pid}-abc"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "x.jpg").write_bytes(b"x" * 1000)
    import os

    live = tmp_path / f".out.tmp-{os.getpid()}-abc"
    live.mkdir()
    args = ["--source", str(egohands_tree[0]), "--out", str(tmp_path / "out"), "--workers", "0"]
    result = subprocess.run(
        [sys.executable, "-m", "prep.egohands_clean", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-800:]
    assert not stale.exists() and live.exists() and (tmp_path / "out" / "summary.json").is_file()
