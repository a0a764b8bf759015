"""detect.batch on Apache Beam's DirectRunner (issue 30): real videos and an image folder give
exactly detect's JSON lines, a broken file fails only itself, and a run killed midway is
finished by the same command with nothing lost or written twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

pytest.importorskip("apache_beam")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def write_video(path: Path, frames_rgb) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1280, 720))
    for rgb in frames_rgb:
        writer.write(cv2.cvtColor(cv2.resize(rgb, (1280, 720)), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def archive(real_sample, webcam_root, tmp_path_factory) -> Path:
    """Three real videos (2 and 4 moving held-out webcam hands, EgoHands frames one after the
    other), one in a subfolder, and a folder of webcam photos."""
    from prep.samples import moving_hands_clip, sample_frames

    root = tmp_path_factory.mktemp("archive")
    (root / "day2").mkdir()
    write_video(root / "two.avi", moving_hands_clip(frames=36, hands=2)[0])
    write_video(root / "day2" / "four.avi", moving_hands_clip(frames=36, hands=4)[0])
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in sample_frames(20)]
    write_video(root / "ego.avi", frames)
    photos = root / "photos.d"
    photos.mkdir()
    for path in sorted((webcam_root / "asl-letters" / "images").iterdir())[:4]:
        shutil.copy(path, photos)
    return root


def detect_lines(source: Path, out: Path) -> str:
    done = subprocess.run(
        [sys.executable, "detect/detect_multi_threaded.py", "--source", str(source), "--json",
         str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-1500:]
    return out.read_text()


def batch(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "detect.batch", *map(str, args)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip


def test_batch_writes_detects_lines_for_every_input(archive, tmp_path):
    (archive / "broken.avi").write_bytes(b"not a video at all" * 100)
    out = tmp_path / "out"
    try:
        done = batch("--input", f"{archive}/**/*.avi", "--out", out)
    finally:
        (archive / "broken.avi").unlink()
    assert done.returncode == 1, done.stderr[-2000:]  # one input failed: said, not fatal
    assert "this run's Beam counters: failed 1, frames" in done.stdout
    photos = batch("--input", f"{archive}/*.d", "--out", out)  # image folders, the same out
    assert photos.returncode == 1  # the broken video is still in the summary
    for name, source in (("two.jsonl", "two.avi"), ("day2/four.jsonl", "day2/four.avi"),
                         ("ego.jsonl", "ego.avi"), ("photos.d.jsonl", "photos.d")):  # fmt: skip
        expected = detect_lines(archive / source, tmp_path / "direct.jsonl")
        assert (out / name).read_text() == expected, name
    summary = json.loads((out / "_summary.json").read_text())
    rows = summary["inputs"]
    assert summary["done"] == 4 and summary["failed"] == 1
    assert rows["two.jsonl"]["frames"] == 36 and rows["day2/four.jsonl"]["hands"] >= 100
    assert (
        rows["broken.jsonl"]["status"] == "failed"
        and "cannot open video" in (rows["broken.jsonl"]["reason"])
    )
    assert (out / "_failures.txt").read_text().startswith(f"{archive}/broken.avi: ")
    assert not [p for p in out.rglob(".*")]  # no temporary file left
    again = batch("--input", f"{archive}/**/*.avi", "--out", out)  # nothing left to do
    assert "4 input(s) done, 1 failed" in again.stdout and "skipped 3 done before" in again.stdout
    assert again.returncode == 1  # the failure stays on record until the input is fixed


def test_a_killed_run_is_finished_by_the_same_command(archive, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for k in range(6):
        shutil.copy(archive / "two.avi", videos / f"v{k}.avi")
    out = tmp_path / "out"
    args = ["--input", f"{videos}/*.avi", "--out", out, "--direct_num_workers", "1"]
    run = subprocess.Popen([sys.executable, "-m", "detect.batch", *map(str, args)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while len(list(out.glob("v*.jsonl"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the driver and its workers, mid-run
    run.wait()
    expected = detect_lines(videos / "v0.avi", tmp_path / "direct.jsonl")
    first = sorted(p.name for p in out.glob("v*.jsonl"))
    assert 2 <= len(first) < 6
    assert all((out / name).read_text() == expected for name in first)  # whole, or not there
    done = batch(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "6 input(s) done, 0 failed" in done.stdout
    assert f"this run skipped {len(first)} done before" in done.stdout
    for k in range(6):  # every video once, every frame once
        text = (out / f"v{k}.jsonl").read_text()
        assert text == expected
        assert [json.loads(x)["frame"] for x in text.splitlines()] == list(range(36))
    assert not [p for p in out.rglob(".*")]
    assert json.loads((out / "_summary.json").read_text())["done"] == 6


def test_bad_arguments_are_one_error(tmp_path):
    done = batch("--input", f"{tmp_path}/nothing/*.mp4", "--out", tmp_path / "out")
    assert done.returncode == 2 and "matches nothing" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "a.avi").write_bytes(b"x")
    done = batch("--input", f"{tmp_path}/a.*", "--out", tmp_path / "out")
    assert done.returncode == 2 and "would both write a.jsonl" in done.stderr
    done = batch("--input", f"{tmp_path}/a.mp4", "--out", tmp_path / "out", "--runner",
                 "PrismRunner", "--prism_location", "/nonexistent/prism")  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: the PrismRunner could not run" in done.stderr
