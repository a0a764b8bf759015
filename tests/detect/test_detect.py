"""Both detection scripts on a video the test synthesises from real frames."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from prep.tfrecord import read_records, shard_pattern

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def write_video(path: Path, frames, fps=10, repeat=1) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 360))
    for _ in range(repeat):
        for rgb in frames:
            writer.write(cv2.cvtColor(cv2.resize(rgb, (640, 360)), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def frames(real_data):
    records = read_records(shard_pattern(real_data, "test"))
    return [next(records).image() for _ in range(24)]


def script(name: str, *args: str, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"detect/detect_{name}_threaded.py", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_single_and_multi_agree_frame_by_frame(htj7_export, frames, tmp_path):
    video = write_video(tmp_path / "in.mp4", frames)
    outs = {}
    for name in ("single", "multi"):
        extra = ["--num-workers", "3"] if name == "multi" else []
        result = script(
            name,
            "--source",
            str(video),
            "--model",
            str(htj7_export),
            "--output",
            str(tmp_path / f"{name}.mp4"),
            "--json",
            str(tmp_path / f"{name}.jsonl"),
            "--score-threshold",
            "0.3",
            *extra,
        )
        assert result.returncode == 0, result.stderr
        assert f"{len(frames)} frames in" in result.stdout
        outs[name] = lines(tmp_path / f"{name}.jsonl")
        assert [o["frame"] for o in outs[name]] == list(range(len(frames)))
        assert frame_count(tmp_path / f"{name}.mp4") == len(frames)
    assert outs["single"] == outs["multi"]
    first = next(o for o in outs["single"] if o["detections"])
    assert set(first) == {"frame", "time", "detections"}
    d = first["detections"][0]
    assert set(d) == {"bbox", "score", "class_id", "label"} and len(d["bbox"]) == 4
    assert sum(len(o["detections"]) for o in outs["single"]) >= 5


def test_image_folder_skips_unreadable_images(htj7_export, frames, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, rgb in enumerate(frames[:4]):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (folder / "002b.jpg").write_bytes(b"\xff\xd8 broken")
    result = script(
        "multi",
        "--source",
        str(folder),
        "--model",
        str(htj7_export),
        "--json",
        str(tmp_path / "out.jsonl"),
        "--display",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "1 unreadable image(s) skipped" in result.stdout
    assert "--display ignored" in result.stderr  # headless: said, not crashed
    assert [o["frame"] for o in lines(tmp_path / "out.jsonl")] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("backend", "stop"), [("tflite", signal.SIGINT), ("saved_model", signal.SIGTERM)]
)
def test_ctrl_c_or_sigterm_leaves_a_playable_video(htj7_export, frames, tmp_path, backend, stop):
    """Ctrl-C (or SIGTERM: docker stop, a pod stopped) mid-run: both files are closed, complete
    and in step within 2 s (the workers drop the frames still queued instead of running the
    model on them)."""
    video = write_video(tmp_path / "long.mp4", frames[:8], repeat=60)  # 480 frames
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "detect/detect_multi_threaded.py",
            "--source",
            str(video),
            "--model",
            str(htj7_export),
            "--output",
            str(out),
            "--json",
            str(tmp_path / "out.jsonl"),
            "--backend",
            backend,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120

    def started() -> bool:
        parts = list(tmp_path.glob(".out.mp4.part-*"))  # the video being written
        return bool(parts) and parts[0].stat().st_size > 50_000

    while time.time() < deadline and not started():
        time.sleep(0.05)
    assert started(), "no output after 120 s"
    sent = time.time()
    proc.send_signal(stop)
    proc.wait(timeout=30)
    assert time.time() - sent < 2.0
    assert proc.returncode in (0, 128 + stop)
    written = frame_count(out)
    assert 0 < written < 480 or proc.returncode == 0
    assert len(lines(tmp_path / "out.jsonl")) == written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "9"], "cannot open camera 9"),
        (["--source", "missing.mp4"], "source not found"),
        (["--backend", "tfjs_uint8", "--source", "README.md"], "has no tfjs_uint8"),
    ],
)
def test_bad_input_is_one_clear_error(args, message, htj7_export, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(htj7_export, model, ignore=shutil.ignore_patterns("tfjs_uint8"))
    result = script("single", "--model", str(model), *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_photo_in_gives_an_annotated_picture_out(frames, tmp_path):
    """--output .png/.jpg on an image source writes the picture with its boxes (the shipped
    model), readable by others, next to the JSON line with the same boxes."""
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    result = script(
        "single",
        "--source",
        str(photo),
        "--output",
        str(tmp_path / "out.png"),
        "--json",
        str(tmp_path / "out.jsonl"),
    )
    assert result.returncode == 0, result.stderr[-1000:]
    picture = cv2.imread(str(tmp_path / "out.png"))
    assert picture.shape == frames[0].shape
    assert (tmp_path / "out.png").stat().st_mode & 0o044 == 0o044
    (line,) = lines(tmp_path / "out.jsonl")
    assert line["detections"], "the shipped model finds the hands of a real EgoHands frame"
    x, y, w, _ = (round(v) for v in line["detections"][0]["bbox"])
    original = cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR)
    edge = picture[y, x : x + w].astype(int) - original[y, x : x + w].astype(int)
    assert abs(edge).mean() > 40  # the box is drawn where the JSON says


def test_profile_accounts_for_every_stage(tmp_path):
    """--profile on a short real video with both outputs: every stage took time, the multi
    script draws in its workers, and the outputs equal the single-threaded script's."""
    from detect.bench import make_video
    from handspot.run import DetectOptions, detect
    from prep.samples import DEFAULT_SAMPLE

    video = make_video(tmp_path / "v.mp4", 24, DEFAULT_SAMPLE)
    reports = {}
    for multi in (False, True):
        out = tmp_path / f"{multi}"
        options = DetectOptions(
            source=str(video), output=f"{out}.mp4", json=f"{out}.jsonl", num_workers=2, profile=True
        )
        reports[multi] = detect(options, multi=multi)
    for report in reports.values():
        assert report["frames"] == 24
        assert all(ms > 0 for ms in report["profile_ms"].values()), report["profile_ms"]
    assert "| draw |" in reports[True]["profile_table"]
    assert all(0 < r["detector_runs"] < 24 for r in reports.values())  # video mode paces it
    assert "2 worker(s)" in reports[True]["profile_table"].split("| draw |")[1].split("\n")[0]
    assert (tmp_path / "True.jsonl").read_text() == (tmp_path / "False.jsonl").read_text()
