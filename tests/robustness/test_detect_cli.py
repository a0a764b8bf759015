"""detect's CLIs on bad input, as a careless or hostile user runs them: exit code 2 with one
line on stderr, no traceback, no partial output, inputs untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, script: str = "single", timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"detect/detect_{script}_threaded.py", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 6-frame video of real EgoHands frames when the sample is there, else of noise."""
    from tests.conftest import REAL_SAMPLE

    folder = tmp_path_factory.mktemp("clip")
    frames = sorted(REAL_SAMPLE.rglob("*.jpg"))[:6]
    pictures = [cv2.resize(cv2.imread(str(f)), (320, 180)) for f in frames] or [
        np.random.default_rng(i).integers(0, 255, (180, 320, 3), np.uint8) for i in range(6)
    ]
    writer = cv2.VideoWriter(
        str(folder / "in.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 180)
    )
    for p in pictures:
        writer.write(p)
    writer.release()
    return folder / "in.mp4"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_clear_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-800:])
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-800:]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-frames", "-3"], "--max-frames must be 0 (all) or more"),
        (["--score-threshold", "5"], "--score-threshold must be between 0 and 1"),
        (["--width", "0", "--height", "100"], "--width and --height must be at least 2"),
        (["--width", "100"], "--width and --height go together"),
        (["--output", "OUT/out.txt"], "must end in .mp4, .webm, .avi, .jpg, .jpeg, .png"),
        (["--output", "OUT/x.mp4", "--json", "OUT/x.mp4"], "--output and --json are the same file"),
        (["--fps", "0"], "--fps must be above 0"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--output", "OUT"], "is a folder; give a file name"),
        (["--output", "OUT/x.mp4", "--codec", "vp9"], "--codec vp9 does not go in .mp4"),
        (["--json", "OUT/x.jsonl", "--codec", "h264"], "--codec is for a video --output"),
    ],
)
def test_bad_flags_are_one_error_and_write_nothing(clip, tmp_path, flags, message):
    out = tmp_path / "out"
    out.mkdir()
    flags = [f.replace("OUT", str(out)) for f in flags]
    one_clear_error(run("--source", str(clip), *flags), message)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("flag", ["--output", "--json"])
def test_the_source_is_never_an_output(clip, tmp_path, flag):
    victim = tmp_path / "victim.mp4"
    victim.write_bytes(clip.read_bytes())
    before = digest(victim)
    one_clear_error(run("--source", str(victim), flag, str(victim)), "is the source")
    assert digest(victim) == before


def test_unwritable_output_folder_is_one_error(clip, tmp_path):
    if os.geteuid() == 0:
        target = "/proc/hands-test/out.mp4"  # root may write anywhere a mode allows; not here
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "out.mp4")
    one_clear_error(run("--source", str(clip), "--output", target), "cannot write")


def test_two_runs_on_the_same_outputs_both_finish_whole(clip, tmp_path):
    """Concurrent runs never share a temporary file: both exit 0 and the files are complete."""
    args = ["--source", str(clip), "--output", str(tmp_path / "o.mp4")]
    args += ["--json", str(tmp_path / "o.jsonl")]
    procs = [
        subprocess.Popen(
            [sys.executable, "detect/detect_single_threaded.py", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    lines = (tmp_path / "o.jsonl").read_text().splitlines()
    assert len(lines) == 6
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert not list(tmp_path.glob(".*part*"))


def test_stale_part_files_of_a_killed_run_are_cleaned(clip, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".o.jsonl.part-{dead.pid}-0123abcd.jsonl"
    stale.write_text("half")
    alive = tmp_path / f".o.jsonl.part-{os.getpid()}-0123abcd.jsonl"  # a live run's: kept
    alive.write_text("busy")
    time.sleep(0.1)
    result = run("--source", str(clip), "--json", str(tmp_path / "o.jsonl"))
    assert result.returncode == 0, result.stderr[-800:]
    assert not stale.exists() and alive.exists()


def test_image_folder_lines_name_their_file_and_truncated_images_are_skipped(tmp_path):
    """An unreadable and a half-written JPEG are skipped and counted, as prep skips them;
    every JSON line names its file, so results match back to files."""
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "c.jpg", "d.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (120, 160, 3), np.uint8))
    (folder / "b.jpg").write_bytes(b"not a picture")
    whole = (folder / "c.jpg").read_bytes()
    (folder / "c.jpg").write_bytes(whole[: len(whole) // 2])  # half-written
    result = run("--source", str(folder), "--json", str(tmp_path / "o.jsonl"))
    assert result.returncode == 0, result.stderr[-800:]
    assert "2 unreadable image(s) skipped" in result.stdout
    import json

    lines = [json.loads(ln) for ln in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [(ln["frame"], ln["file"]) for ln in lines] == [(0, "a.jpg"), (1, "d.jpg")]


def test_a_full_disk_is_one_error_with_nothing_half_written(clip, tmp_path):
    """Issue 22, case 6 (detect's outputs): the file-size limit (``ulimit -f``, SIGXFSZ
    ignored as a shell would) stands in for a full disk. Before: a traceback, a truncated mp4
    ("moov atom not found") renamed into the final name, the .part JSON left behind. Now: one
    error line, no output under the final names and no temporary file left."""
    import resource
    import signal

    def small_disk(limit: int):
        def apply():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return apply

    out = tmp_path / "out"
    out.mkdir()
    for flags, limit in ((["--output", str(out / "a.mp4")], 4000),
                         (["--json", str(out / "a.jsonl")], 100)):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "detect/detect_single_threaded.py", "--source", str(clip),
             "--no-landmarks", *flags],
            capture_output=True, text=True, cwd=ROOT, timeout=300, preexec_fn=small_disk(limit),
        )  # fmt: skip
        one_clear_error(result, "cannot write")
    assert list(out.iterdir()) == []


@pytest.fixture
def photos(webcam_root, tmp_path) -> Path:
    """Three real webcam photos and a 0-byte one (a half-copied file)."""
    folder = tmp_path / "P"
    folder.mkdir()
    for path in sorted((webcam_root / "subhih-webcam" / "images").iterdir())[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "zero.jpg").write_bytes(b"")
    return folder


@pytest.mark.parametrize("script", ["single", "multi"])
def test_a_zero_byte_image_is_a_counted_skip_and_all_unreadable_is_one_error(photos, tmp_path,
                                                                            script):  # fmt: skip
    """Before: a cv2.imdecode traceback, and the sinks still committed: an existing --json was
    replaced by an empty one."""
    result = run("--source", str(photos), "--json", str(tmp_path / "a.jsonl"), script=script)
    assert result.returncode == 0 and "1 unreadable image(s) skipped" in result.stdout
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
    empty = tmp_path / "Z"
    empty.mkdir()
    (empty / "a.jpg").write_bytes(b"")
    kept = tmp_path / "kept.jsonl"
    kept.write_text('{"frame": 0}\n')
    picture = tmp_path / "kept.jpg"
    picture.write_bytes(b"old")
    result = run("--source", str(empty), "--json", str(kept), "--output", str(picture),
                 script=script)  # fmt: skip
    one_clear_error(result, "none of the 1 image(s)")
    assert kept.read_text() == '{"frame": 0}\n' and picture.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P", "Z", "a.jsonl", "kept.jpg",
                                                          "kept.jsonl"]  # fmt: skip


def test_preannotate_counts_a_zero_byte_image(photos, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "detect.preannotate", "--source", str(photos), "--out",
         str(tmp_path / "lab")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-800:]
    assert "Traceback" not in result.stderr
    assert "3 of 3 frames" in result.stdout and "1 unreadable image(s) skipped" in result.stdout


def test_a_folder_of_mixed_sizes_gives_a_video_of_every_frame(webcam_root, tmp_path):
    """Before: 3 of 6 frames in the video (OpenCV drops frames of another size), exit 0, while
    the JSON had all 6. Now every frame is fitted into the first frame's size, with a warning."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, path in enumerate(sorted((webcam_root / "subhih-webcam" / "images").iterdir())[:6]):
        picture = cv2.imread(str(path))
        size = (320, 240) if i % 2 == 0 else (200, 300)
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.resize(picture, size))
    for script in ("single", "multi"):
        video = tmp_path / f"{script}.mp4"
        result = run("--source", str(folder), "--output", str(video), "--no-landmarks",
                     script=script)  # fmt: skip
        assert result.returncode == 0, result.stderr[-800:]
        assert "fitted into the first frame's 320x240" in result.stderr
        capture = cv2.VideoCapture(str(video))
        frames = []
        while (got := capture.read())[0]:
            frames.append(got[1])
        capture.release()
        assert len(frames) == 6 and {f.shape for f in frames} == {(240, 320, 3)}
        assert frames[1][:, :40].max() < 30  # the upright photo, letterboxed on black
