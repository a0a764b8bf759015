"""prep's CLIs on bad input: exit 2 with one line, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_negative_preview_is_refused_before_anything_is_written(egohands_tree, tmp_path):
    args = ["--source", str(egohands_tree[0]), "--out", str(tmp_path / "out"), "--preview", "-1"]
    result = _prep("prep.egohands_clean", *args)
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
    result = _prep("prep.egohands_clean", *args)
    assert result.returncode == 0, result.stderr[-800:]
    assert not stale.exists() and live.exists() and (tmp_path / "out" / "summary.json").is_file()


def _jpeg(path: Path, width: int = 80, height: int = 60) -> None:
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 120, np.uint8))


def _prep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_boxes_past_the_edge_are_clipped_and_counted_by_every_importer(tmp_path):
    """A box past the right/bottom edge crashed all three importers; now it is clipped."""
    import json

    from prep.voc import voc_xml

    _jpeg(tmp_path / "voc" / "img" / "a.jpg")
    (tmp_path / "voc" / "ann").mkdir()
    xml = voc_xml("a.jpg", 80, 60, [("hand", (10, 10, 5000, 50))])
    (tmp_path / "voc" / "ann" / "a.xml").write_bytes(xml)
    _jpeg(tmp_path / "ego" / "VIDEO_A" / "frame_0001.jpg")
    (tmp_path / "ego" / "boxes.csv").write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\n"
        "VIDEO_A/frame_0001.jpg,80,60,hand,-50,-50,2000,2000\n"
    )
    _jpeg(tmp_path / "coco" / "images" / "a.jpg", 1280, 720)
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 1280, "height": 720}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1200.5, 600, 80, 50]}],
        "categories": [{"id": 1, "name": "hand"}],
    }
    (tmp_path / "coco" / "a.json").write_text(json.dumps(coco))
    runs = {
        "voc": [
            *("prep.voc", "import", "--images", str(tmp_path / "voc" / "img")),
            *("--annotations", str(tmp_path / "voc" / "ann"), "--split-by", "frame"),
        ],
        "ego": ["prep.egohands_clean", "--source", str(tmp_path / "ego"), "--split-by", "frame"],
        "coco": ["prep.coco", "import", "--json", str(tmp_path / "coco" / "a.json")],
    }
    expected = {"voc": [10, 10, 80, 50], "ego": [0, 0, 80, 60], "coco": [1200.5, 600, 1280, 650]}
    for name, args in runs.items():
        out = tmp_path / f"out_{name}"
        result = _prep(*args, "--out", str(out), "--workers", "0")
        assert result.returncode == 0, (name, result.stderr[-800:])
        summary = json.loads((out / "summary.json").read_text())
        split = next(s for s, v in summary["splits"].items() if v["frames"])
        assert summary["splits"][split]["boxes"] == 1
        row = (out / f"{split}_labels.csv").read_text().splitlines()[1].split(",")
        assert [float(v) for v in row[4:8]] == pytest.approx(expected[name], abs=1), name


def test_xml_entities_are_not_expanded(tmp_path):
    """An XXE in a VOC file is refused with one message; no local file is read into labels."""
    _jpeg(tmp_path / "img" / "a.jpg")
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.xml").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<annotation><filename>a.jpg</filename><object><name>&xxe;</name><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>"
    )
    result = _prep(
        "prep.voc",
        "import",
        "--images",
        str(tmp_path / "img"),
        "--annotations",
        str(tmp_path / "ann"),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2 and "not a readable VOC XML file" in result.stderr
    assert "root:" not in result.stderr and not (tmp_path / "out").exists()


def test_traversal_in_labels_reads_nothing_outside_the_source(tmp_path):
    """A label naming ../../etc/passwd is one error, for boxes.csv and for COCO file names."""
    import json

    _jpeg(tmp_path / "ego" / "VIDEO_A" / "frame_0001.jpg")
    (tmp_path / "ego" / "boxes.csv").write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\n../../../etc/passwd,8,8,hand,1,1,5,5\n"
    )
    (tmp_path / "coco" / "images").mkdir(parents=True)
    coco = {
        "images": [{"id": 1, "file_name": "../../../../etc/passwd", "width": 8, "height": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]}],
        "categories": [{"id": 1, "name": "hand"}],
    }
    (tmp_path / "coco" / "a.json").write_text(json.dumps(coco))
    for args, message in (
        (["prep.egohands_clean", "--source", str(tmp_path / "ego")], "which is not in"),
        (["prep.coco", "import", "--json", str(tmp_path / "coco" / "a.json")], "not found in"),
    ):
        result = _prep(*args, "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and message in result.stderr, result.stderr[-500:]
        assert "root:" not in result.stderr and not (tmp_path / "out").exists()
