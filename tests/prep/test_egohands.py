"""EgoHands prep on a fixture tree built to the documented .mat structure."""

from __future__ import annotations

import csv
import filecmp
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from common.labelmap import read_label_map
from handspot.errors import UserError
from prep.egohands import HAND_TYPES, parse_metadata, parse_polygons, prepare
from prep.fixtures import write_egohands
from prep.geometry import rasterize
from prep.sources import Source
from prep.tfrecord import read_records, shard_pattern

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ("train", "eval", "test")


def records(out: Path) -> dict[str, list]:
    return {s: list(read_records(shard_pattern(out, s))) for s in SPLITS}


def rows(out: Path, split: str) -> list[dict]:
    with open(out / f"{split}_labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def truth_by_key(truth: dict) -> dict[str, dict]:
    return {f"{v}_{p.name}": hands for v, frames in truth.items() for _, p, hands in frames}


def test_mat_files_parse_to_the_documented_structure(egohands_tree):
    root, truth = egohands_tree
    video = next(iter(truth))
    polys = parse_polygons((root / "_LABELLED_SAMPLES" / video / "polygons.mat").read_bytes(), "p")
    assert len(polys) == 8 and set(polys[0]) == set(HAND_TYPES)
    raw = scipy.io.loadmat(root / "_LABELLED_SAMPLES" / video / "polygons.mat")["polygons"]
    assert raw.shape == (1, 8)
    meta = parse_metadata((root / "metadata.mat").read_bytes())
    assert meta[video]["frame_nums"] == [n for n, _, _ in truth[video]]
    assert meta[video]["activity"] == video.split("_")[0]


def test_masks_and_boxes_round_trip(prepared, egohands_tree):
    out, _ = prepared
    hands_of = truth_by_key(egohands_tree[1])
    checked = 0
    for examples in records(out).values():
        for ex in examples:
            hands = hands_of[ex.filename]
            masks = ex.masks()
            assert masks.shape == (len(ex.labels), ex.height, ex.width)
            expected = []
            for ht in HAND_TYPES:
                pts = hands[ht]
                if pts.size == 0:
                    continue
                pts = pts[np.isfinite(pts).all(1)]
                if len(pts) < 3:
                    continue
                expected.append(pts)
            assert len(expected) == len(ex.labels)
            for pts, box, mask in zip(expected, ex.boxes, masks, strict=True):
                # The official rule: round the extremes, clamp to [1, W] x [1, H].
                lo = np.clip(np.round(pts.min(0)), 1, (ex.width, ex.height))
                hi = np.clip(np.round(pts.max(0)), 1, (ex.width, ex.height))
                np.testing.assert_allclose(box, [*lo, *hi], atol=1e-3)
                reference = rasterize([pts], ex.width, ex.height)  # OpenCV clips while drawing
                if (pts >= 0).all() and (pts <= (ex.width, ex.height)).all():
                    np.testing.assert_array_equal(mask, reference)
                else:
                    iou = (mask & reference).sum() / (mask | reference).sum()
                    assert iou > 0.98
                checked += 1
    assert checked > 40


def test_csv_matches_records(prepared):
    out, _ = prepared
    for split, examples in records(out).items():
        table = rows(out, split)
        from_records = [
            (ex.filename, lab, *np.round(b).astype(int).tolist())
            for ex in examples
            for lab, b in zip(ex.labels, ex.boxes, strict=True)
        ]
        from_csv = [
            (r["filename"], r["class"], *(int(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
            for r in table
        ]
        assert from_csv == from_records
        assert all(r["hand_type"] in HAND_TYPES and r["width"] == "1280" for r in table)
        images = sorted(p.name for p in (out / "images" / split).iterdir())
        assert images == sorted({ex.filename for ex in examples})


def test_edge_cases_are_counted_not_fatal(prepared, egohands_tree):
    out, summary = prepared
    first = next(iter(egohands_tree[1]))  # the video the fixture puts its edge cases in
    video = summary.videos[first]
    assert video["skipped"] == {"box:degenerate_polygon": 1, "frame:no_hands": 1}
    assert video["frames"] == 7
    assert summary.totals.skipped_frames == 1
    split = video["split"]
    assert summary.splits[split].fixed["nan_coordinates"] == 1
    border_key = f"{first}_{egohands_tree[1][first][1][1].name}"
    border = [
        r for r in rows(out, split) if r["filename"] == border_key and r["hand_type"] == "myleft"
    ]
    assert len(border) == 1, "a hand running past the image edge is kept"
    assert (border[0]["xmin"], border[0]["ymin"]) == ("1", "1")
    assert any("2 point(s)" in p for p in summary.problems)


def test_split_is_by_video(prepared, egohands_tree):
    out, summary = prepared
    seen = {}
    for split in SPLITS:
        for r in rows(out, split):
            assert seen.setdefault(r["video"], split) == split
    assert set(seen) == set(egohands_tree[1])
    assert sorted(summary.splits[s].videos[0] for s in SPLITS) == sorted(seen)


def test_rerun_is_byte_identical_and_parallel_matches_serial(prepared, egohands_tree, tmp_path):
    out, _ = prepared
    again = tmp_path / "again"
    prepare(Source(egohands_tree[0]), again, workers=2)
    names = sorted(p.name for p in out.iterdir() if p.is_file())
    assert any(n.startswith("train.record-") for n in names)
    _match, mismatch, errors = filecmp.cmpfiles(out, again, names, shallow=False)
    assert mismatch == [] and errors == []


def test_zip_source_gives_the_same_dataset(prepared, egohands_tree, tmp_path):
    root = egohands_tree[0]
    archive = tmp_path / "egohands_data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(root).as_posix())
    out = tmp_path / "from_zip"
    prepare(Source(archive), out, workers=0)
    names = [f"{s}_labels.csv" for s in SPLITS] + [p.name for p in prepared[0].glob("*.record-*")]
    _, mismatch, errors = filecmp.cmpfiles(prepared[0], out, names, shallow=False)
    assert mismatch == [] and errors == []


def test_hand_type_classes(egohands_tree, tmp_path):
    out = tmp_path / "types"
    prepare(Source(egohands_tree[0]), out, classes="hand_type", workers=0)
    assert read_label_map(out / "label_map.pbtxt") == dict(enumerate(HAND_TYPES, 1))
    for examples in records(out).values():
        for ex in examples:
            assert [HAND_TYPES[i - 1] for i in ex.label_ids] == ex.labels


def test_frame_split_option(egohands_tree, tmp_path):
    out = tmp_path / "frames"
    summary = prepare(Source(egohands_tree[0]), out, split_by="frame", workers=0)
    assert summary.meta["split_by"] == "frame"
    assert summary.totals.frames == 23
    assert len(summary.splits["train"].videos) == 3


def test_named_eval_video(egohands_tree, tmp_path):
    video = sorted(egohands_tree[1])[-1]
    summary = prepare(Source(egohands_tree[0]), tmp_path / "o", eval_videos=[video], workers=0)
    assert summary.splits["eval"].videos == [video]
    assert summary.splits["test"].frames == 0
    assert len(summary.splits["train"].videos) == len(egohands_tree[1]) - 1
    assert {r["video"] for r in rows(tmp_path / "o", "eval")} == {video}
    result = run_cli(
        "--source", str(egohands_tree[0]), "--out", str(tmp_path / "x"), "--eval-videos", "NOPE"
    )
    assert result.returncode == 2 and "no video named NOPE" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x").exists()


def _copy_tree(egohands_tree, tmp_path) -> Path:
    dst = tmp_path / "tree"
    shutil.copytree(egohands_tree[0], dst)
    return dst


def test_metadata_frame_numbers_pair_frames(egohands_tree, tmp_path):
    tree = _copy_tree(egohands_tree, tmp_path)
    video = next(iter(egohands_tree[1]))
    folder = tree / "_LABELLED_SAMPLES" / video
    shutil.copy(next(folder.glob("*.jpg")), folder / "frame_0000.jpg")  # an unlabelled frame
    summary = prepare(Source(tree), tmp_path / "out", workers=0)
    assert summary.totals.frames == 23  # the extra frame is not paired with anything
    (tree / "metadata.mat").unlink()
    with pytest.raises(UserError, match=f"video {video}: 9 frames but 8 polygon entries"):
        prepare(Source(tree), tmp_path / "out2", workers=0)


def test_missing_frame_is_an_error_naming_the_video(egohands_tree, tmp_path):
    tree = _copy_tree(egohands_tree, tmp_path)
    video = list(egohands_tree[1])[1]
    sorted((tree / "_LABELLED_SAMPLES" / video).glob("*.jpg"))[2].unlink()
    with pytest.raises(UserError, match=f"video {video}.*missing"):
        prepare(Source(tree), tmp_path / "out", workers=0)
    assert not (tmp_path / "out").exists()


def test_truncated_jpeg_is_a_counted_skip(egohands_tree, tmp_path):
    tree = _copy_tree(egohands_tree, tmp_path)
    video = list(egohands_tree[1])[2]
    frame = sorted((tree / "_LABELLED_SAMPLES" / video).glob("*.jpg"))[0]
    frame.write_bytes(frame.read_bytes()[:5000])
    summary = prepare(Source(tree), tmp_path / "out", workers=0)
    assert summary.videos[video]["skipped"] == {"frame:corrupt_image": 1}
    assert summary.totals.frames == 22
    assert any("truncated JPEG" in p for p in summary.problems)


def test_failure_midway_leaves_previous_output_intact(
    prepared, egohands_tree, tmp_path, monkeypatch
):
    out = tmp_path / "data"
    prepare(Source(egohands_tree[0]), out, workers=0)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    import prep.tfrecord

    calls = {"n": 0}
    real_encode = prep.tfrecord.encode

    def flaky(ex):
        calls["n"] += 1
        if calls["n"] == 10:
            raise RuntimeError("disk full")
        return real_encode(ex)

    monkeypatch.setattr(prep.tfrecord, "encode", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(Source(egohands_tree[0]), out, workers=0)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temp folder left


def test_refuses_to_replace_a_folder_it_did_not_write(egohands_tree, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(UserError, match="not written by this project"):
        prepare(Source(egohands_tree[0]), out, workers=0)
    assert (out / "notes.txt").read_text() == "precious"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "prep" / "egohands_clean.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.parametrize(
    "case", ["corrupt_polygons", "empty_folder", "missing_source", "corrupt_metadata", "not_a_zip"]
)
def test_cli_bad_input_gives_one_clear_error(case, egohands_tree, tmp_path):
    tree = _copy_tree(egohands_tree, tmp_path)
    source, expect = str(tree), ""
    if case == "corrupt_polygons":
        video = next(iter(egohands_tree[1]))
        (tree / "_LABELLED_SAMPLES" / video / "polygons.mat").write_bytes(b"MATLAB 5.0 garbage")
        expect = f"{video}/polygons.mat is not a readable .mat file"
    elif case == "empty_folder":
        source = str(tmp_path / "empty")
        Path(source).mkdir()
        expect = "no EgoHands videos"
    elif case == "missing_source":
        source, expect = str(tmp_path / "nope.zip"), "source not found"
    elif case == "corrupt_metadata":
        (tree / "metadata.mat").write_bytes(b"\x00" * 300)
        expect = "metadata.mat is not a readable .mat file"
    elif case == "not_a_zip":
        source = str(tmp_path / "egohands_data.zip")
        Path(source).write_bytes(b"PK\x03\x04 broken")
        expect = "is not a readable zip archive"
    out = tmp_path / "out"
    result = run_cli("--source", source, "--out", str(out))
    assert result.returncode == 2
    assert expect in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_module_and_script_entry_points_both_work():
    for cmd in (
        [sys.executable, "-m", "prep.egohands_clean", "--help"],
        [sys.executable, "prep/egohands_clean.py", "--help"],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 0 and "--split-by" in result.stdout


def test_fixture_without_metadata_pairs_by_file_order(tmp_path):
    truth = write_egohands(tmp_path / "t", frames_per_video=4, metadata=False, cases={})
    summary = prepare(Source(tmp_path / "t"), tmp_path / "out", workers=0)
    assert summary.totals.frames == 12
    assert any("no metadata.mat" in w for w in summary.warnings)
    assert set(summary.videos) == set(truth)
