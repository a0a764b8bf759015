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
