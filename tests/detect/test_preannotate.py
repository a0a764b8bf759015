"""Pre-annotations for labelling tools and their round trips (issue 21): 12 real webcam frames
pre-annotated by the shipped model as COCO, CVAT 1.1 and Label Studio files; each file
"corrected" as the tool exports it (the set's true boxes in place of the model's, in the tool's
documented export format), imported by prep.coco / prep.cvat / prep.labelstudio: every true box
comes back, to the pixel, in the split the pre-annotation gave its frame."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from detect.preannotate import PreannotateOptions, preannotate
from handspot.errors import UserError
from prep.coco import plan_coco
from prep.cvat import plan_cvat, read_cvat
from prep.labelstudio import plan_labelstudio
from prep.tfrecord import read_records, shard_pattern

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frames(webcam_root, tmp_path_factory) -> tuple[Path, dict]:
    """12 subhih-webcam train photos in a folder, with their true boxes (x0, y0, x1, y1)."""
    coco = json.loads((webcam_root / "subhih-webcam" / "annotations.json").read_text())
    chosen = [im for im in coco["images"] if im["split"] == "train"][::97][:12]
    folder = tmp_path_factory.mktemp("photos")
    truth = {}
    for im in chosen:
        shutil.copy(webcam_root / "subhih-webcam" / "images" / im["file_name"], folder)
        truth[im["file_name"]] = [
            (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3])
            for a in coco["annotations"]
            if a["image_id"] == im["id"]
        ]
    return folder, truth


@pytest.fixture(scope="module")
def pre(frames, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pre") / "labels"
    report = preannotate(PreannotateOptions(source=str(frames[0]), out=str(out)))
    return out, report


def imported(plan, tmp_path: Path) -> dict:
    """{file: (split, boxes)} of a plan, built and read back from its records."""
    data = tmp_path / "data"
    plan.build(data, workers=0)
    found = {}
    for split in ("train", "eval", "test"):
        if not list(data.glob(f"{split}.record-*")):
            continue
        for ex in read_records(shard_pattern(data, split)):
            found[ex.filename] = (split, sorted(map(tuple, np.round(ex.boxes, 2).tolist())))
    return found


def expected(truth: dict, splits: dict) -> dict:
    return {f: (splits[f], sorted(tuple(round(v, 2) for v in b) for b in boxes))
            for f, boxes in truth.items()}  # fmt: skip


def test_preannotation_writes_every_format_with_a_held_out_block(pre, frames):
    out, report = pre
    assert report["kept"] == 12 and report["held_out"] == 2 and report["boxes"] >= 10
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(frames[1])
    coco = json.loads((out / "coco.json").read_text())
    splits = [im["split"] for im in coco["images"]]
    assert splits == ["train"] * 10 + ["eval"] * 2  # the last frames, one block
    assert all(0.5 <= a["score"] <= 1 for a in coco["annotations"])
    # the model's boxes, read back from each format without correction, are the same boxes
    model = {}
    for a in coco["annotations"]:
        name = coco["images"][a["image_id"] - 1]["file_name"]
        x, y, w, h = a["bbox"]
        model.setdefault(name, []).append((x, y, x + w, y + h))
    _, items, _ = read_cvat(out / "cvat.xml")
    for name, objects, _, _ in items:
        assert np.allclose(sorted(o.box for o in objects), sorted(model.get(name, [])), atol=0.01)
    tasks = json.loads((out / "labelstudio.json").read_text())
    assert len(tasks) == 12 and all(
        t["predictions"][0]["model_version"] == "hands_ssd320" for t in tasks
    )


def test_coco_round_trip(pre, frames, tmp_path):
    out, _ = pre
    coco = json.loads((out / "coco.json").read_text())
    ids = {im["file_name"]: im["id"] for im in coco["images"]}
    coco["annotations"] = [  # corrected: the true boxes, no scores (as a tool exports them)
        {"id": n, "image_id": ids[f], "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
         "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
        for n, (f, (x0, y0, x1, y1)) in enumerate(
            ((f, b) for f, boxes in frames[1].items() for b in boxes), 1)
    ]  # fmt: skip
    (out.parent / "coco_corrected.json").write_text(json.dumps(coco))
    splits = {im["file_name"]: im["split"] for im in coco["images"]}
    plan = plan_coco(out.parent / "coco_corrected.json", out / "images")
    assert imported(plan, tmp_path) == expected(frames[1], splits)


def test_cvat_round_trip(pre, frames, tmp_path):
    """CVAT's export of the task: the same file with the boxes as a person left them."""
    out, _ = pre
    root = etree.parse(str(out / "cvat.xml")).getroot()
    splits = {}
    for node in root.iterfind("image"):
        for box in node.findall("box"):
            node.remove(box)
        for x0, y0, x1, y1 in frames[1][node.get("name")]:
            etree.SubElement(node, "box", label="hand", source="manual", occluded="0",
                             xtl=f"{x0:.2f}", ytl=f"{y0:.2f}", xbr=f"{x1:.2f}", ybr=f"{y1:.2f}",
                             z_order="0")  # fmt: skip
        splits[node.get("name")] = {"Train": "train", "Validation": "eval"}[node.get("subset")]
    corrected = out.parent / "cvat_export.xml"
    corrected.write_bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    assert imported(plan_cvat(corrected, out / "images"), tmp_path) == expected(frames[1], splits)


def test_label_studio_round_trip(pre, frames, tmp_path):
    """Label Studio's JSON export: each task's annotations (the last one not cancelled), the
    predictions kept beside them; one task nobody annotated (skipped, counted), one image
    uploaded (Label Studio prefixes its name), one first annotation cancelled."""
    out, _ = pre
    tasks = json.loads((out / "labelstudio.json").read_text())
    coco = json.loads((out / "coco.json").read_text())
    coco_sizes = {im["file_name"]: (im["width"], im["height"]) for im in coco["images"]}
    splits = {}
    for n, task in enumerate(tasks, 1):
        task["id"] = n
        name = task["data"]["image"].rsplit("/", 1)[-1]
        splits[name] = task["data"]["split"]
        w, h = coco_sizes[name]
        result = [
            {"id": f"a{i}", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
             "original_width": w, "original_height": h, "image_rotation": 0, "origin": "manual",
             "value": {"x": 100 * x0 / w, "y": 100 * y0 / h, "width": 100 * (x1 - x0) / w,
                       "height": 100 * (y1 - y0) / h, "rotation": 0, "rectanglelabels": ["hand"]}}
            for i, (x0, y0, x1, y1) in enumerate(frames[1][name])
        ]  # fmt: skip
        task["annotations"] = [
            {"id": 2 * n - 1, "result": [], "was_cancelled": True},
            {"id": 2 * n, "result": result, "was_cancelled": False, "ground_truth": False},
        ][(0 if n == 1 else 1) :]
        if n == 2:
            task["data"]["image"] = f"/data/upload/1/0a1b2c3d-{name}"
    tasks.append(
        {"id": 99, "data": {"image": "/data/upload/1/ffffffff-none.jpg"}, "annotations": []}
    )
    (out.parent / "ls_export.json").write_text(json.dumps(tasks))
    plan = plan_labelstudio(out.parent / "ls_export.json", out / "images")
    assert plan.meta["skipped_annotations"] == {"unannotated": 1}
    assert imported(plan, tmp_path) == expected(frames[1], splits)


def test_preannotate_from_detect_json_and_a_video(frames, tmp_path):
    """``--detections``: the boxes of an earlier ``detect --json`` run, no model; a video is
    sampled every N frames, its frames written as JPEG."""
    import cv2

    video = tmp_path / "clip.avi"
    names = sorted(frames[1])
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 384))
    for name in names:
        writer.write(cv2.resize(cv2.imread(str(frames[0] / name)), (512, 384)))
    writer.release()
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(
        json.dumps({"frame": i, "detections": [{"bbox": [10, 20, 30, 40], "score": 0.9,
                                                "class_id": 1, "label": "hand"}]}) + "\n"
        for i in range(len(names))
    ))  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "detect.preannotate", "--source", str(video), "--detections",
         str(jsonl), "--every", "4", "--formats", "cvat", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    assert "3 of 12 frames (1 held out), 3 boxes" in result.stdout
    assert sorted(p.name for p in (tmp_path / "o" / "images").iterdir()) == [
        "clip_000000.jpg", "clip_000004.jpg", "clip_000008.jpg"]  # fmt: skip
    _, items, _ = __import__("prep.cvat", fromlist=["read_cvat"]).read_cvat(
        tmp_path / "o" / "cvat.xml"
    )
    assert [o.box for _, objs, _, _ in items for o in objs] == [(10, 20, 40, 60)] * 3


def test_bad_label_files_are_one_clear_error(tmp_path, frames):
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotations><version>1.0</version></annotations>")
    with pytest.raises(UserError, match=r"not a 'CVAT for images 1\.1' file"):
        plan_cvat(bad, frames[0])
    bad.write_text('[{"data": {"image": "/data/local-files/?d=images/missing.jpg"}, '
                   '"annotations": [{"result": []}]}]')  # fmt: skip
    with pytest.raises(UserError, match=r"missing\.jpg' not found in"):
        plan_labelstudio(bad, frames[0])


def test_change_keeps_a_frame_only_when_the_picture_moved(frames, tmp_path):
    """``--change BITS``: a video holding each of three photos for 4 frames keeps 3 frames, the
    first of each photo (the pHash of a repeated frame does not move)."""
    import cv2

    video = tmp_path / "still.avi"
    names = sorted(frames[1])[:3]
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 384))
    for name in names:
        picture = cv2.resize(cv2.imread(str(frames[0] / name)), (512, 384))
        for _ in range(4):
            writer.write(picture)
    writer.release()
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    options = PreannotateOptions(
        source=str(video), out=str(tmp_path / "o"), change=10, detections=str(empty),
        formats="coco",
    )  # fmt: skip
    report = preannotate(options)
    assert (report["read"], report["kept"]) == (12, 3)
    kept = sorted(p.name for p in (tmp_path / "o" / "images").iterdir())
    assert kept == ["still_000000.jpg", "still_000004.jpg", "still_000008.jpg"]


def test_masks_round_trip_through_every_format(frames, tmp_path):
    """Issue 27: ``--masks`` writes each hand's mask outline as COCO segmentation, a CVAT
    polygon and a Label Studio polygon; each importer reads it back as a mask that covers what
    detect --masks finds on the same photo (IoU >= 0.9: the outline is simplified to a pixel),
    ready for the Mask R-CNN config."""
    from handspot.api import HandDetector, HandDetectorOptions
    from prep.tfrecord import read_records, shard_pattern

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in sorted(frames[1])[:4]:
        shutil.copy(frames[0] / name, photos / name)
    out = tmp_path / "labels"
    report = preannotate(PreannotateOptions(source=str(photos), out=str(out), masks=True,
                                            held_out=0.25))  # fmt: skip
    assert report["boxes"] >= 3 and not report["skipped"]
    import cv2

    with HandDetector(HandDetectorOptions(masks=True)) as hands:
        expected = {}
        for name in sorted(p.name for p in photos.iterdir()):
            rgb = cv2.cvtColor(cv2.imread(str(photos / name)), cv2.COLOR_BGR2RGB)
            expected[name] = hands.detect(rgb).masks
    tasks = json.loads((out / "labelstudio.json").read_text())
    for task in tasks:  # accepted as the model drew them
        task["annotations"] = [{"result": task["predictions"][0]["result"]}]
    (out.parent / "ls_export.json").write_text(json.dumps(tasks))
    assert '<PolygonLabels name="label"' in (out / "labelstudio.xml").read_text()
    plans = {
        "coco": plan_coco(out / "coco.json", out / "images"),
        "cvat": plan_cvat(out / "cvat.xml", out / "images"),
        "labelstudio": plan_labelstudio(out.parent / "ls_export.json", out / "images"),
    }
    for fmt, plan in plans.items():
        assert plan.masks, fmt
        data = tmp_path / f"data_{fmt}"
        plan.build(data, workers=0)
        found = 0
        for split in ("train", "eval"):
            for ex in read_records(shard_pattern(data, split)):
                for mask in ex.masks():
                    ious = [np.logical_and(mask, m).sum() / np.logical_or(mask, m).sum()
                            for m in expected[ex.filename]]  # fmt: skip
                    assert max(ious) >= 0.9, (fmt, ex.filename, ious)
                    found += 1
        assert found == report["boxes"], fmt
