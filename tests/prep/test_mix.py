"""prep.mix: several real sources into one dataset, splits kept, duplicates dropped, records
tagged; the importers' published splits; perceptual hashes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from handspot.errors import UserError
from prep.coco import import_coco
from prep.dedup import near_pairs, phash
from prep.tfrecord import read_records, shard_pattern
from prep.voc import import_voc, voc_xml

ROOT = Path(__file__).resolve().parents[2]


def test_mix_keeps_each_sources_split_and_tags_every_record(mix_slice):
    data, summary = mix_slice
    s = summary.sources
    assert (s["ego"].splits["train"].frames, s["ego"].splits["eval"].frames) == (12, 6)
    assert s["ego"].split_by == "video"
    # subhih: 8 train + 1 planted duplicate of a test image (dropped), 4 test, no eval
    assert [s["subhih"].splits[k].frames for k in ("train", "eval", "test")] == [8, 0, 4]
    assert [s["fingers"].splits[k].frames for k in ("train", "eval", "test")] == [6, 3, 0]
    assert s["subhih"].split_by == s["fingers"].split_by == "source"
    for name in ("ego", "subhih", "fingers"):
        for split in ("train", "eval", "test"):
            if s[name].splits[split].frames:
                tags = {ex.dataset for ex in read_records(shard_pattern(data / name, split))}
                assert tags == {name}
    assert (data / "label_map.pbtxt").read_text().count("item") == 1
    assert summary.totals.frames == 12 + 6 + 12 + 9


def test_mix_drops_a_train_copy_of_a_held_out_image(mix_slice):
    data, summary = mix_slice
    assert summary.sources["subhih"].dropped_duplicates == 1
    assert summary.duplicates["dropped_train_near_held_out"] == 1
    rows = list(csv.DictReader((data / "duplicates.csv").open()))
    planted = [r for r in rows if "dup_copy.jpg" in r["a"] + r["b"]]
    assert len(planted) == 1 and planted[0]["action"].startswith("dropped subhih/dup_copy.jpg")
    train = [ex.filename for ex in read_records(shard_pattern(data / "subhih", "train"))]
    assert "dup_copy.jpg" not in train and len(train) == 8


def test_phash_survives_resize_and_reencoding_and_separates_frames(real_sample):
    frames = sorted(real_sample.rglob("*.jpg"))
    a, b = frames[0], frames[-1]  # different videos
    picture = cv2.imread(str(a))
    shrunk = cv2.imencode(".jpg", cv2.resize(picture, (640, 400)), [cv2.IMWRITE_JPEG_QUALITY, 60])
    ha, hb, hs = phash(a.read_bytes()), phash(b.read_bytes()), phash(shrunk[1].tobytes())
    assert np.bitwise_count(ha ^ hs) <= 4 < np.bitwise_count(ha ^ hb)
    assert phash(b"not an image") is None


def test_near_pairs_on_tiny_hashes():
    h = [np.uint64(0), np.uint64(0b111), np.uint64(0xFFFF_FFFF), np.uint64(0b1)]
    assert near_pairs(h, 1) == [(0, 3, 1)]
    assert sorted(near_pairs(h, 3)) == [(0, 1, 3), (0, 3, 1), (1, 3, 2)]


def test_a_1x1_image_is_a_counted_skip_not_a_crash(webcam_root, tmp_path):
    """Issue 22, case 8: a 1x1 PNG in a COCO source crashed prep.mix's pHash (OpenCV's reduced
    decode asserts on it); now it is hashed, then skipped and counted as too small."""
    from prep.mix import SourceSpec, mix
    from tests.conftest import coco_slice

    annotations = coco_slice(
        webcam_root / "subhih-webcam", tmp_path / "src", {"train": 4, "test": 2}
    )
    coco = json.loads(annotations.read_text())
    cv2.imwrite(str(annotations.parent / "images" / "tiny.png"), np.full((1, 1, 3), 200, np.uint8))
    coco["images"].append(
        {"id": 99, "file_name": "tiny.png", "width": 1, "height": 1, "split": "train"}
    )
    coco["annotations"].append({"id": 99, "image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1],
                                "area": 1, "iscrowd": 0})  # fmt: skip
    annotations.write_text(json.dumps(coco))
    assert phash((annotations.parent / "images" / "tiny.png").read_bytes()) is not None
    summary = mix([SourceSpec("subhih", "coco", annotations)], tmp_path / "mix", workers=0)
    assert summary.totals.skipped_frames == 1
    assert summary.sources["subhih"].splits["train"].frames == 4
    built = json.loads((tmp_path / "mix" / "subhih" / "summary.json").read_text())
    assert "tiny_image" in json.dumps(built)


def _image(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (60, 80, 3), np.uint8))


def test_coco_import_keeps_the_published_split_and_counts_orphans(tmp_path):
    (tmp_path / "images").mkdir()
    images, anns = [], []
    for i, split in enumerate(["train", "train", "valid", "test"], 1):
        _image(tmp_path / "images" / f"{i}.jpg", i)
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 80, "height": 60, "split": split})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [5, 5, 20, 20]})
    anns.append({"id": 9, "image_id": 99, "category_id": 1, "bbox": [5, 5, 20, 20]})
    # a box past the right and bottom edges is clipped, not a crash
    anns.append({"id": 10, "image_id": 1, "category_id": 1, "bbox": [70.5, 50, 80, 50]})
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "hand"}]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    s = import_coco(tmp_path / "a.json", None, tmp_path / "out", workers=0)
    assert [s.splits[k].frames for k in ("train", "eval", "test")] == [2, 1, 1]
    assert s.meta["split_by"] == "source" and s.meta["skipped_annotations"] == {"unknown_image": 1}
    assert s.splits["train"].boxes == 3
    images[0]["split"] = "holdout"
    (tmp_path / "b.json").write_text(json.dumps(coco))
    with pytest.raises(UserError, match="unknown split 'holdout'"):
        import_coco(tmp_path / "b.json", None, tmp_path / "out2", workers=0)


def test_colliding_file_names_keep_both_images_and_a_name_listed_twice_is_one_error(
    webcam_root, tmp_path
):
    """Issue 22, case 2: ``a/b.jpg`` and ``a_b.jpg`` both became ``a_b.jpg`` (one picture over
    the other, two label rows); now each keeps its own file. One name listed twice is one
    error naming it."""
    import shutil

    coco = json.loads((webcam_root / "subhih-webcam" / "annotations.json").read_text())
    first, second = coco["images"][:2]
    (tmp_path / "images" / "a").mkdir(parents=True)
    shutil.copy(
        webcam_root / "subhih-webcam" / "images" / first["file_name"],
        tmp_path / "images" / "a" / "b.jpg",
    )
    shutil.copy(
        webcam_root / "subhih-webcam" / "images" / second["file_name"],
        tmp_path / "images" / "a_b.jpg",
    )
    images = [{**first, "file_name": "a/b.jpg", "split": "train"},
              {**second, "file_name": "a_b.jpg", "split": "train"}]  # fmt: skip
    anns = [a for a in coco["annotations"] if a["image_id"] in (first["id"], second["id"])]
    (tmp_path / "a.json").write_text(json.dumps({**coco, "images": images, "annotations": anns}))
    summary = import_coco(tmp_path / "a.json", None, tmp_path / "out", workers=0)
    assert summary.splits["train"].frames == 2
    train = tmp_path / "out" / "images" / "train"
    assert sorted(p.name for p in train.iterdir()) == ["a_b-2.jpg", "a_b.jpg"]
    # each file is its own picture, at its own size, with its own label rows
    assert cv2.imread(str(train / "a_b.jpg")).shape[:2] == (first["height"], first["width"])
    assert cv2.imread(str(train / "a_b-2.jpg")).shape[:2] == (second["height"], second["width"])
    rows = list(csv.DictReader((tmp_path / "out" / "train_labels.csv").open()))
    assert {r["filename"] for r in rows} == {"a_b.jpg", "a_b-2.jpg"} and len(rows) == len(anns)
    twice = [images[0], {**images[1], "file_name": "a/b.jpg"}]
    (tmp_path / "b.json").write_text(json.dumps({**coco, "images": twice, "annotations": anns}))
    with pytest.raises(UserError, match=r"image a/b\.jpg is listed 2 times"):
        import_coco(tmp_path / "b.json", None, tmp_path / "out2", workers=0)


def test_voc_import_follows_image_sets(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    for i in range(4):
        _image(tmp_path / "JPEGImages" / f"im{i}.jpg", i)
        xml = voc_xml(f"im{i}.jpg", 80, 60, [("hand", (5, 5, 30, 30))])
        (tmp_path / "Annotations" / f"im{i}.xml").write_bytes(xml)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("im0\nim1\n")
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("im2\n")
    (tmp_path / "ImageSets" / "Main" / "test.txt").write_text("im3\n")
    s = import_voc(tmp_path / "JPEGImages", tmp_path / "Annotations", tmp_path / "out", workers=0)
    assert [s.splits[k].frames for k in ("train", "eval", "test")] == [2, 1, 1]
    (tmp_path / "ImageSets" / "Main" / "test.txt").write_text("")
    with pytest.raises(UserError, match=r"1 image\(s\) have no published split \(e.g. im3.jpg\)"):
        import_voc(tmp_path / "JPEGImages", tmp_path / "Annotations", tmp_path / "o2", workers=0)


def _mix_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prep.mix", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--coco", "a=x.json", "--hold-out", "b"], "no such source"),
        (["--coco", "bad name=x.json"], "letters, digits"),
        (["--voc", "v=annotations"], "NAME=ANNOTATIONS_FOLDER,IMAGES_FOLDER"),
        ([], "no sources"),
        (["--coco", "a=missing.json"], "cannot read missing.json"),
    ],
)
def test_mix_cli_bad_input_is_one_error(tmp_path, args, message):
    result = _mix_cli("--out", str(tmp_path / "o"), *args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_mix_hold_out_puts_a_whole_source_in_eval(mix_slice, tmp_path):
    from prep.mix import SourceSpec, mix

    root = mix_slice[0].parent
    s = mix(
        [
            SourceSpec("ego", "egohands", root / "ego"),
            SourceSpec("f", "coco", root / "fingers" / "annotations.json"),
        ],
        tmp_path / "m",
        hold_out=("f",),
        workers=0,
    )
    assert s.sources["f"].held_out_whole
    assert [s.sources["f"].splits[k].frames for k in ("train", "eval", "test")] == [
        0,
        9,
        0,
    ]


def test_a_source_given_twice_or_empty_is_one_error_that_says_so(mix_slice, tmp_path):
    """Issue 22, case 11: the same folder as two sources ended in "no frames to write", an
    empty COCO source in "0 item(s) cannot be split ... need more videos"."""
    import shutil

    from prep.mix import SourceSpec, mix

    fingers = mix_slice[0].parent / "fingers"
    ego = SourceSpec("ego", "egohands", mix_slice[0].parent / "ego")
    twice = [ego, SourceSpec("a", "coco", fingers / "annotations.json"),
             SourceSpec("b", "coco", fingers / "annotations.json")]  # fmt: skip
    with pytest.raises(UserError, match="sources a and b are the same"):
        mix(twice, tmp_path / "m1", workers=0)
    shutil.copytree(fingers, tmp_path / "copy")  # the same pictures under another name
    copied = [*twice[:2], SourceSpec("b", "coco", tmp_path / "copy" / "annotations.json")]
    summary = mix(copied, tmp_path / "m2", workers=0)  # b keeps its held-out copies only
    assert summary.sources["b"].splits["train"].frames == 0
    assert any("trains nothing" in w for w in summary.sources["b"].warnings)
    coco = json.loads((fingers / "annotations.json").read_text())
    all_train = {**coco, "images": [{**im, "split": "train"} for im in coco["images"]]}
    (tmp_path / "copy" / "annotations.json").write_text(json.dumps(all_train))
    with pytest.raises(UserError, match="source b: de-duplication removed every frame"):
        mix(copied, tmp_path / "m4", workers=0)
    (tmp_path / "empty.json").write_text(json.dumps({**coco, "images": [], "annotations": []}))
    empty = [ego, SourceSpec("e", "coco", tmp_path / "empty.json", fingers / "images")]
    with pytest.raises(UserError, match="lists no images; the source is empty"):
        mix(empty, tmp_path / "m3", workers=0)
    assert not any((tmp_path / m).exists() for m in ("m1", "m3", "m4"))
