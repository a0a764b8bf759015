"""The runtime as a user installs it: the wheel built from this checkout, installed into a clean
virtualenv (no TensorFlow), runs ``hands-detect`` on a real frame from an unrelated folder and
gives the checkout's detections, keypoints included. The versions are the checkout's
(``-c requirements.txt``), so the two runs compute the same numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAME = "subhih-webcam/images/test_1528664299.56_pic00051.jpg"  # held out: its test split


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel of this checkout installed; its bin/ folder."""
    root = tmp_path_factory.mktemp("package")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", root / "dist", ROOT)
    (wheel,) = (root / "dist").glob("handspot-*.whl")
    run(sys.executable, "-m", "venv", root / "venv")
    pip = [root / "venv" / "bin" / "python", "-m", "pip", "install", "-q"]
    run(*pip, wheel, "-c", ROOT / "requirements.txt", timeout=900)
    return root / "venv" / "bin"


def site_packages_mb(bin_dir: Path) -> float:
    (site,) = (bin_dir.parent / "lib").glob("python3*/site-packages")
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 2**20


@pytest.mark.slow
def test_the_wheel_runs_without_tensorflow_and_finds_the_checkouts_hands(
    venv, webcam_root, tmp_path
):
    installed = {
        p["name"].lower()
        for p in json.loads(run(venv / "python", "-m", "pip", "list", "--format", "json").stdout)
    }
    assert "handspot" in installed
    assert not installed & {"tensorflow", "tf-keras", "keras", "jax", "torch"}, installed
    print(f"site-packages: {site_packages_mb(venv):.0f} MB, {sorted(installed)}")
    assert site_packages_mb(venv) < 345  # 329 MB measured: OpenCV 152, NumPy 66, LiteRT 59,
    # handspot 26 (the models: int8 and float networks, landmarks), pip and setuptools 21

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(webcam_root / FRAME, elsewhere / "frame.jpg")
    run(venv / "hands-detect", "--source", "frame.jpg", "--json", "out.jsonl", cwd=elsewhere)
    (line,) = (elsewhere / "out.jsonl").read_text().splitlines()

    from handspot import DetectOptions, detect

    mine = tmp_path / "checkout.jsonl"
    detect(DetectOptions(source=str(elsewhere / "frame.jpg"), json=str(mine)), multi=False)
    assert line == mine.read_text().strip()
    found = json.loads(line)["detections"]
    assert found and all(len(d["keypoints"]) == 21 for d in found)
    assert all(d["handedness"] in ("left", "right") for d in found)


def readme_blocks(language: str) -> list[str]:
    """The README's fenced blocks in ``language``, as written."""
    text = (ROOT / "README.md").read_text()
    return [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith(language + "\n")]


@pytest.mark.slow
def test_the_readmes_app_snippets_run_as_written_in_the_clean_venv(venv, webcam_root, tmp_path):
    """Every Python snippet of the README, and its ``hands-detect`` lines, in the wheel's venv
    from an unrelated folder holding the files they name: a real webcam photo and a clip of
    real hands moving."""
    import cv2

    from prep.samples import moving_hands_clip

    shutil.copy(webcam_root / FRAME, tmp_path / "hands.jpg")
    frames, _ = moving_hands_clip(frames=20)
    writer = cv2.VideoWriter(str(tmp_path / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30,
                             frames[0].shape[1::-1])  # fmt: skip
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    snippets = readme_blocks("python")
    assert snippets
    for i, code in enumerate(snippets):
        (tmp_path / f"snippet{i}.py").write_text(code)
        out = run(venv / "python", f"snippet{i}.py", cwd=tmp_path, timeout=300).stdout
        assert "(1, 21, 3)" in out or "(2, 21, 3)" in out, out  # the hands, with keypoints
        ids = out.strip().splitlines()[-1]
        assert ids.startswith("[") and "-1" not in ids, out  # every hand of the clip tracked
    lines = [ln for b in readme_blocks("bash") for ln in b.splitlines()]
    commands = [ln.split("#")[0].split() for ln in lines if ln.startswith("hands-detect ")]
    assert len(commands) >= 2
    for args in commands:
        run(venv / args[0], *args[1:], cwd=tmp_path, timeout=300)
    assert (tmp_path / "hands_drawn.jpg").is_file() and (tmp_path / "video.jsonl").is_file()
