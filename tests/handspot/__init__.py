"""Fast unit tests of the runtime package (tiny arrays, no TensorFlow)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "webexport" / "node" / "hands_core.mjs"


def hands_js(*calls: tuple[str, list]) -> list:
    """Call hands.js's pure functions in Node: ``hands_js(("nms", [...]), ...)``; each result,
    or ``{"error": message}``."""
    if shutil.which("node") is None:
        pytest.skip("node not found")
    payload = json.dumps([{"fn": fn, "args": args} for fn, args in calls])
    done = subprocess.run(
        ["node", str(RUNNER)], input=payload, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [r.get("result", r) for r in json.loads(done.stdout)]
