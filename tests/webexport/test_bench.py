"""The browser bench runs end to end on a short sample (one round) and prints its table; the
figures are not asserted (speed is the bench's business, not the tests')."""

from __future__ import annotations

import pytest

from common.paths import DEFAULT_MODEL
from webexport.browser import chromium_ready
from webexport.nodejs import node_ready

pytestmark = pytest.mark.slow


def test_bench_interleaves_every_runtime_and_handtrack_in_one_page(handtrackjs_package):
    from webexport.bench import bench, table

    if not chromium_ready() or not node_ready():
        pytest.skip("headless Chromium or the npm packages are missing")
    smallest = DEFAULT_MODEL.parent / "hands_ssd192"
    results = bench(DEFAULT_MODEL, rounds=2, reps=1, warmup=0, also=smallest)
    names = [
        "ours tfjs wasm",
        "ours litert-threads int8",
        "ours litert int8 (1 thread)",
        "ours litert-threads fp32",
        "ours litert-threads int8 + landmarks",
        "ours litert-threads int8 + landmarks lite (float)",
        "ours hands_ssd192 litert-threads int8 (boxes only)",
        "handtrack.js ssd320fpnlite",
    ]
    for mode in ("detect_ms", "video_fps", "moving_fps"):
        rows = results[mode]["rows"]
        assert [r["name"] for r in rows] == names
        assert all(r["n"] == 2 and r["q1"] <= r["median"] <= r["q3"] for r in rows), rows
    details = {r["name"]: r["detail"] for r in results["detect_ms"]["rows"]}
    assert "threads" in details["ours litert-threads int8"]
    assert "1 thread," in details["ours litert int8 (1 thread)"]
    assert details["ours litert-threads int8 + landmarks"].endswith("landmarks lite_int8")
    assert details["ours litert-threads int8 + landmarks lite (float)"].endswith("landmarks lite")
    assert details["ours hands_ssd192 litert-threads int8 (boxes only)"].endswith("input 192x192")
    assert results["detect_ms"]["isolated"] is True
    builds = results["builds_ms"]["rows"]  # every file on every LiteRT.js build, read back
    assert [(r["build"], r["file"]) for r in builds] == [
        (b, f)
        for b in ("compat", "relaxed SIMD", "threads")
        for f in ("network int8", "network fp32", "landmarks lite", "landmarks lite_int8")
    ]
    assert all(r["n"] == 2 and 0 < r["q1"] <= r["median"] <= r["q3"] for r in builds), builds
    assert "litert_wasm_compat_internal.js, 1 thread" in builds[0]["detail"]
    printed = table(results)
    assert printed.count("| handtrack.js ssd320fpnlite |") == 3
    assert printed.count("target >= 10x") == 4 and printed.count("target >= 5x") == 2
    assert printed.count("| compat | 1 thread |") == 1
    assert "the page's network file, int8 (against fp32):" in printed
