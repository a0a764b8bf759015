"""Every CLI on missing, zero-byte, random and wrong-type inputs: exit code 2, one ``error:``
line, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# {name: (argv with INPUT and OUT placeholders, what INPUT is)}
CLIS = {
    "coco import": (["prep.coco", "import", "--json", "INPUT", "--out", "OUT"], "file"),
    "voc import": (
        ["prep.voc", "import", "--annotations", "INPUT", "--images", "INPUT", "--out", "OUT"],
        "folder",
    ),
    "egohands": (["prep.egohands_clean", "--source", "INPUT", "--out", "OUT"], "either"),
    "mix": (["prep.mix", "--coco", "a=INPUT", "--out", "OUT"], "file"),
    "configure": (["pipelines.configure", "--data", "INPUT", "--out", "OUT/p.config"], "folder"),
    "evaluate": (["pipelines.evaluate", "--checkpoint", "INPUT", "--out", "OUT/m.json"], "file"),
    "export": (["pipelines.export", "--checkpoint-dir", "INPUT", "--out", "OUT"], "folder"),
    "detect": (
        ["detect.detect_single_threaded", "--source", "INPUT", "--json", "OUT/d.jsonl"],
        "file",
    ),
    "compare": (["pipelines.compare", "--records", "INPUT", "--rows", "tflite"], "file"),
}


def make_input(tmp_path: Path, kind: str, what: str) -> Path:
    rng = np.random.default_rng(0)
    if kind == "missing":
        return tmp_path / "does-not-exist"
    if kind == "folder of junk":
        folder = tmp_path / "junk"
        folder.mkdir()
        (folder / "a.xml").write_bytes(rng.bytes(300))
        (folder / "boxes.csv").write_bytes(rng.bytes(300))
        (folder / "summary.json").write_bytes(b"")
        (folder / "label_map.pbtxt").write_text("item { id: 1 }")
        return folder
    path = tmp_path / ("empty.dat" if kind == "zero-byte" else "random.dat")
    path.write_bytes(b"" if kind == "zero-byte" else rng.bytes(5000))
    return path


CASES = [
    (cli, kind)
    for kind in ("missing", "zero-byte", "random bytes", "folder of junk")
    for cli, (_, what) in CLIS.items()
    if kind != "folder of junk" or what != "file" or cli == "detect"  # detect takes folders
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[tuple[str, str], tuple[subprocess.CompletedProcess, Path]]:
    """Every case's CLI run once, two at a time (each is mostly a single-threaded start-up):
    {case: (the finished process, its output path)}."""
    jobs = []
    for cli, kind in CASES:
        tmp = tmp_path_factory.mktemp("bad_input")
        argv, what = CLIS[cli]
        source, out = make_input(tmp, kind, what), tmp / "out"
        args = [a.replace("INPUT", str(source)).replace("OUT", str(out)) for a in argv]
        jobs.append(((cli, kind), args, out))

    def run(args):
        return subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run, [args for _, args, _ in jobs]))
    return {case: (result, out) for (case, _, out), result in zip(jobs, done, strict=True)}


@pytest.mark.parametrize(("cli", "kind"), CASES)
def test_bad_input_is_one_clear_error(cli, kind, runs):
    result, out = runs[cli, kind]
    assert result.returncode == 2, (cli, kind, result.returncode, result.stderr[-1500:])
    assert "Traceback" not in result.stderr, (cli, kind, result.stderr[-1500:])
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, (cli, kind, result.stderr[-1500:])
    assert not out.exists() or not any(out.iterdir()), (cli, kind, list(out.iterdir()))
