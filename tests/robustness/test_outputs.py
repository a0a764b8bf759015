"""detect's outputs where they are not plain files (issue 22, case 1): a device, a FIFO,
/dev/stdout, a link. Before: each was replaced by a regular file renamed over it (as root,
``--json /dev/null`` replaced the system's /dev/null). Now they are written straight and a
link's target gets the content. In-process runs on one real webcam frame."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from handspot.errors import UserError
from handspot.run import DetectOptions, detect
from handspot.sinks import playable

ROOT = Path(__file__).resolve().parents[2]
FRAME = "subhih-webcam/images/test_1528664299.56_pic00051.jpg"  # one hand, held out


@pytest.fixture(scope="module")
def source(webcam_root, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("one_frame")
    shutil.copy(webcam_root / FRAME, folder / "hand.jpg")
    return folder


def run(source: Path, **outputs) -> dict:
    return detect(DetectOptions(source=str(source), landmarks=False, **outputs), multi=False)


def lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]


def test_a_link_keeps_pointing_at_its_file_which_gets_the_output(source, tmp_path):
    (tmp_path / "real").mkdir()
    for name in ("out.jsonl", "out.mp4"):
        (tmp_path / name).symlink_to(tmp_path / "real" / name)
    run(source, json=str(tmp_path / "out.jsonl"), output=str(tmp_path / "out.mp4"))
    assert (tmp_path / "out.jsonl").is_symlink() and (tmp_path / "out.mp4").is_symlink()
    (found,) = lines((tmp_path / "real" / "out.jsonl").read_text())
    assert len(found["detections"]) == 1
    assert playable(tmp_path / "real" / "out.mp4")


def test_a_fifo_streams_and_stays_a_fifo(source, tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    run(source, json=str(fifo))
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    (found,) = lines(got[0])
    assert found["detections"][0]["label"] == "hand"


def test_stdout_and_links_to_it_stream_the_lines(source, tmp_path):
    """``--json /dev/stdout`` is ``/proc/self/fd/1``: here a pipe's ``/proc/self/fd/N``, given
    as it is and through a link (the case of a link to /proc/self/fd/1)."""
    for through_link in (False, True):
        read, write = os.pipe()
        try:
            path = Path(f"/proc/self/fd/{write}")
            if through_link:
                (tmp_path / "out.jsonl").symlink_to(path)
                path = tmp_path / "out.jsonl"
            run(source, json=str(path))
            os.close(write)
            with os.fdopen(read) as stream:
                (found,) = lines(stream.read())
        finally:
            for fd in (read, write):
                with contextlib.suppress(OSError):
                    os.close(fd)
        assert found["frame"] == 0 and len(found["detections"]) == 1
    assert (tmp_path / "out.jsonl").is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_stays_a_device_and_a_full_one_is_one_clear_error(source, tmp_path):
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a copy of /dev/full
    run(source, json=str(null))
    assert stat.S_ISCHR(null.lstat().st_mode)
    with pytest.raises(UserError, match=r"cannot write .*full: No space left on device"):
        run(source, json=str(full))
    assert stat.S_ISCHR(full.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]  # no .part left


def test_json_to_dev_stdout_redirected_to_a_file_keeps_every_line(source, tmp_path):
    """``detect ... --json /dev/stdout >> file``: the lines land after what the file had (a
    second open of /dev/stdout would write over the shell's offset) and stdout carries JSON
    only (the report goes to stderr)."""
    import subprocess
    import sys

    out = tmp_path / "log.jsonl"
    out.write_text("earlier line\n")
    with out.open("a") as stdout:
        done = subprocess.run(
            [sys.executable, "detect/detect_multi_threaded.py", "--source", str(source),
             "--json", "/dev/stdout", "--no-landmarks"],
            stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-1000:]
    first, *rest = out.read_text().splitlines()
    assert first == "earlier line" and len(rest) == 1
    assert json.loads(rest[0])["detections"][0]["label"] == "hand"
    assert "1 frames in" in done.stderr
