"""Labelling tools' files as people and tools really leave them (issue 29, cases 6, 7, 10, 12):
malformed Label Studio, COCO and detect exports give one error line; CVAT's rotated boxes,
ellipses and brush masks and COCO's RLE masks are kept, shapes that are no areas counted; file
names with ``&``, ``+``, ``#``, ``%20`` or a space survive the Label Studio round trip; an
import that keeps no frame says why. Real webcam photos where an image is needed."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from lxml import etree
from pycocotools import mask as mask_utils

from handspot.errors import UserError
from prep.coco import read_coco
from prep.cvat import plan_cvat
from prep.labelstudio import annotate_from_coco, plan_labelstudio, read_labelstudio
from prep.tfrecord import read_records, shard_pattern

ROOT = Path(__file__).resolve().parents[2]
LOCAL = "/data/local-files/?d=images/"


@pytest.fixture(scope="module")
def photo(webcam_root, tmp_path_factory) -> tuple[Path, str, tuple[int, int]]:
    """A folder holding one real webcam photo: (folder, its name, (width, height))."""
    folder = tmp_path_factory.mktemp("one_photo")
    source = sorted((webcam_root / "subhih-webcam" / "images").iterdir())[0]
    shutil.copy(source, folder / "a.jpg")
    h, w = cv2.imread(str(folder / "a.jpg")).shape[:2]
    return folder, "a.jpg", (w, h)


def rect(w: int, h: int, label="hand", **value) -> dict:
    box = {"x": 10, "y": 10, "width": 20, "height": 30, "rotation": 0, "rectanglelabels": [label]}
    return {"type": "rectanglelabels", "original_width": w, "original_height": h,
            "value": box | value}  # fmt: skip


def ls_task(**fields) -> dict:
    return {"id": 1, "data": {"image": LOCAL + "a.jpg"}} | fields


def ls_cases(w: int, h: int) -> dict[str, object]:
    """Label Studio exports that are not what the tool writes: {case: the JSON document}."""
    annotated = lambda *result: ls_task(annotations=[{"result": list(result)}])  # noqa: E731
    return {
        "data null": [{"id": 1, "data": None, "annotations": []}],
        "data a string": [{"id": 1, "data": "a.jpg", "annotations": []}],
        "tasks a dict": {"id": 1, "data": {"image": LOCAL + "a.jpg"}},
        "annotations 5": [ls_task(annotations=5)],
        "annotations [5]": [ls_task(annotations=[5])],
        "result a string": [ls_task(annotations=[{"result": "box"}])],
        "result items strings": [annotated("box", "box")],
        "labels [5]": [annotated(rect(w, h, label=5))],
        "an empty label": [annotated(rect(w, h, label=" "))],
        "a label with a control character": [annotated(rect(w, h, label="ha\x07nd"))],
        "original_width Infinity": [annotated(rect(math.inf, h))],
        "original_width 0": [annotated(rect(0, h))],
    }


def test_malformed_label_studio_exports_are_one_error_each(photo, tmp_path):
    folder, _, (w, h) = photo
    for case, document in ls_cases(w, h).items():
        path = tmp_path / "export.json"
        path.write_text(json.dumps(document))
        with pytest.raises(UserError) as e:
            plan_labelstudio(path, folder).build(tmp_path / "out", workers=0)
        assert "\n" not in str(e.value) and str(path) in str(e.value), case
        assert not (tmp_path / "out").exists(), case
    path.write_text("[" * 100_000 + "]" * 100_000)  # deeper than any parser's stack
    with pytest.raises(UserError, match="nested too deep"):
        read_labelstudio(path, folder)


def test_a_malformed_export_through_the_cli_is_one_line_and_exit_2(photo, tmp_path):
    folder, _, (w, h) = photo
    for case in ("result items strings", "original_width Infinity"):
        path = tmp_path / "export.json"
        path.write_text(json.dumps(ls_cases(w, h)[case]))
        result = subprocess.run(
            [sys.executable, "-m", "prep.labelstudio", "import", "--json", str(path),
             "--images", str(folder), "--out", str(tmp_path / "out")],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, case


def coco_doc(w: int, h: int, **changes) -> dict:
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": w, "height": h}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 60]}],
        "categories": [{"id": 1, "name": "hand"}],
    }
    return doc | changes


def with_rle(w: int | None, h: int | None, rle: dict) -> dict:
    """A COCO file whose annotation has this RLE (an image without a declared size for None)."""
    doc = coco_doc(w, h)
    doc["annotations"][0]["segmentation"] = rle
    if w is None:
        doc["images"] = [{"id": 1, "file_name": "a.jpg"}]
    return doc


def test_malformed_coco_files_are_one_error_each(photo, tmp_path):
    """COCO as ``prep.coco import`` reads it and as ``prep.labelstudio from-coco`` reads it."""
    _, _, (w, h) = photo
    ann = coco_doc(w, h)["annotations"][0]
    cases = {
        "annotations a dict": coco_doc(w, h, annotations={"1": ann}),
        "annotations [5]": coco_doc(w, h, annotations=[5]),
        "file_name a list": coco_doc(w, h, images=[{"id": 1, "file_name": ["a.jpg"]}]),
        "a category name 7": coco_doc(w, h, categories=[{"id": 1, "name": 7}]),
        "an empty category name": coco_doc(w, h, categories=[{"id": 1, "name": ""}]),
        "a bad category": coco_doc(w, h, annotations=[ann | {"category_id": 9}]),
        "a 2-value bbox": coco_doc(w, h, annotations=[ann | {"bbox": [1, 2]}]),
        "an RLE of another size": with_rle(w, h, {"size": [h + 1, w], "counts": [(h + 1) * w]}),
        "an RLE of 10^10 pixels": with_rle(None, None, {"size": [10**5, 10**5], "counts": "0"}),
        "RLE runs that do not cover it": with_rle(w, h, {"size": [h, w], "counts": [5, -3]}),
    }
    for case, document in cases.items():
        path = tmp_path / f"{case}.json"
        path.write_text(json.dumps(document))
        with pytest.raises(UserError) as e:
            read_coco(path)
        assert "\n" not in str(e.value), case
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([ls_task()]))
    from_coco = {
        "an orphan annotation": coco_doc(w, h, annotations=[ann | {"image_id": 5}]),
        "width 0": coco_doc(w, h, images=[{"id": 1, "file_name": "a.jpg", "width": 0}]),
        "a bad category": cases["a bad category"],
        "a 2-value bbox": cases["a 2-value bbox"],
    }
    for case, document in from_coco.items():
        (tmp_path / "c.json").write_text(json.dumps(document))
        with pytest.raises(UserError) as e:
            annotate_from_coco(tasks, tmp_path / "c.json")
        assert "\n" not in str(e.value), case
    tasks.write_text(json.dumps({"data": {}}))
    (tmp_path / "c.json").write_text(json.dumps(coco_doc(w, h)))
    with pytest.raises(UserError, match="not Label Studio tasks"):
        annotate_from_coco(tasks, tmp_path / "c.json")


def records(data: Path) -> list:
    return [ex for s in ("train", "eval", "test") if list(data.glob(f"{s}.record-*"))
            for ex in read_records(shard_pattern(data, s))]  # fmt: skip


def test_coco_rle_masks_are_imported_as_masks(photo, tmp_path):
    """pycocotools' compressed and uncompressed RLE: each comes back as the same mask."""
    folder, _, (w, h) = photo
    mask = np.zeros((h, w), np.uint8)
    mask[40:120, 60:110] = 1
    compressed = mask_utils.encode(np.asfortranarray(mask))
    compressed["counts"] = compressed["counts"].decode()
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    for rle in (compressed, {"size": [h, w], "counts": runs}):
        ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [60, 40, 50, 80],
               "segmentation": rle}  # fmt: skip
        (tmp_path / "c.json").write_text(json.dumps(coco_doc(w, h, annotations=[ann])))
        from prep.coco import import_coco

        out = tmp_path / "data"
        shutil.rmtree(out, ignore_errors=True)
        summary = import_coco(tmp_path / "c.json", folder, out, workers=0, ratios=(1, 0, 0))
        assert summary.masks
        (ex,) = records(out)
        assert np.array_equal(ex.masks()[0], mask)


def cvat_file(path: Path, name: str, w: int, h: int, shapes: str, twice: bool = False) -> Path:
    image = f'<image id="0" name="{name}" width="{w}" height="{h}">{shapes}</image>'
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
        + image
        + (image.replace('id="0"', 'id="1"') if twice else "")
        + "</annotations>"
    )
    return path


def test_cvat_rotated_boxes_ellipses_and_brush_masks_are_kept(photo, tmp_path):
    """A box turned 90 degrees about its centre is the box around it; an ellipse and a brush
    mask are masks; points and a polyline are no areas: skipped and counted."""
    folder, name, (w, h) = photo
    # the brush: 4x3 pixels at (60, 40), the right half of each row painted
    shapes = (
        '<box label="hand" xtl="10" ytl="20" xbr="50" ybr="30" rotation="90" occluded="0"/>'
        '<ellipse label="hand" cx="150" cy="100" rx="30" ry="20" rotation="0" occluded="0"/>'
        '<mask label="hand" rle="2, 2, 2, 2, 2, 2" left="60" top="40" width="4" height="3"/>'
        '<points label="hand" points="5,5;6,6"/><polyline label="hand" points="1,1;9,9"/>'
    )
    plan = plan_cvat(cvat_file(tmp_path / "a.xml", name, w, h, shapes), folder)
    assert plan.meta["skipped_annotations"] == {"other_shapes": 2}
    plan.build(tmp_path / "data", workers=0)
    (ex,) = records(tmp_path / "data")
    boxes = sorted(map(tuple, np.round(ex.boxes, 1).tolist()))
    assert boxes[0] == (25.0, 5.0, 35.0, 45.0)  # the 40x10 box on its side
    assert boxes[1] == (62.0, 40.0, 64.0, 43.0)  # the brush's painted pixels
    assert abs(boxes[2][0] - 120) <= 1 and abs(boxes[2][3] - 120) <= 1  # the ellipse
    only_areas = shapes.split("<box")[0] + shapes.split("/>", 1)[1]  # masks need every shape
    plan_cvat(cvat_file(tmp_path / "m.xml", name, w, h, only_areas), folder).build(
        tmp_path / "masks", workers=0
    )
    (ex,) = records(tmp_path / "masks")
    brush = [m for m in ex.masks() if m[:, :100].any()]
    assert [np.argwhere(m).tolist() for m in brush] == [
        [[y, x] for y in (40, 41, 42) for x in (62, 63)]
    ]
    with pytest.raises(UserError, match="is listed twice"):
        plan_cvat(cvat_file(tmp_path / "b.xml", name, w, h, shapes, twice=True), folder)
    for bad in ('<mask label="hand" rle="5" left="60" top="40" width="4" height="3"/>',
                '<mask label="hand" rle="12" left="-1" top="0" width="4" height="3"/>',
                '<box label="" xtl="1" ytl="1" xbr="5" ybr="5"/>',
                '<box label="hand" xtl="nan" ytl="1" xbr="5" ybr="5"/>'):  # fmt: skip
        with pytest.raises(UserError):
            plan_cvat(cvat_file(tmp_path / "c.xml", name, w, h, bad), folder)


ODD_NAMES = ("a&b.jpg", "c+d.jpg", "e#f.jpg", "g%20h.jpg", "i j.jpg")


def test_file_names_with_url_characters_survive_the_label_studio_round_trip(webcam_root, tmp_path):
    """Pre-annotation writes each image's URL percent-encoded (as Label Studio serves it); the
    import finds every image from it, and from the same URL left unencoded by another tool."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = sorted((webcam_root / "asl-letters" / "images").iterdir())
    for source, name in zip(photos[: len(ODD_NAMES)], ODD_NAMES, strict=True):
        shutil.copy(source, folder / name)
    out = tmp_path / "labels"
    result = subprocess.run(
        [sys.executable, "-m", "detect.preannotate", "--source", str(folder), "--out", str(out),
         "--formats", "labelstudio", "--held-out", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    tasks = json.loads((out / "labelstudio.json").read_text())
    urls = sorted(t["data"]["image"] for t in tasks)
    encoded_names = ("a%26b.jpg", "c%2Bd.jpg", "e%23f.jpg", "g%2520h.jpg", "i%20j.jpg")
    assert urls == sorted(LOCAL + n for n in encoded_names)
    for encoded in (True, False):
        for n, task in enumerate(tasks, 1):
            task["id"] = n
            accepted = [r | {"origin": "manual"} for r in task["predictions"][0]["result"]]
            task["annotations"] = [{"result": accepted}]
            if not encoded:
                from urllib.parse import unquote

                task["data"]["image"] = unquote(task["data"]["image"])
        (tmp_path / "export.json").write_text(json.dumps(tasks))
        _, items, _ = read_labelstudio(tmp_path / "export.json", out / "images")
        assert sorted(name for name, *_ in items) == sorted(ODD_NAMES), encoded
        assert sum(len(objects) for _, objects, _, _ in items) == sum(
            len(t["predictions"][0]["result"]) for t in tasks
        )


def test_an_import_that_keeps_no_frame_says_why_and_writes_nothing(photo, tmp_path):
    folder, _, (w, h) = photo
    (tmp_path / "c.json").write_text(json.dumps(coco_doc(w, h, annotations=[])))
    result = subprocess.run(
        [sys.executable, "-m", "prep.coco", "import", "--json", str(tmp_path / "c.json"),
         "--images", str(folder), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "every one of the 1 frames was skipped: 1 no hands" in result.stderr
    assert not (tmp_path / "out").exists()


def detect_line(frame, label="hand", box=(10, 20, 30, 40), file="") -> str:
    det = [{"bbox": list(box), "score": 0.9, "class_id": 1, "label": label}]
    return json.dumps({"frame": frame, "file": file, "detections": det}) + "\n"


def test_preannotate_detections_files_that_are_not_detect_json_are_one_error(photo, tmp_path):
    folder = photo[0]
    cases = {
        "frame Infinity": detect_line(math.inf),
        "a null line": "null\n",
        "frame -1": detect_line(-1),
        "a label with a control character": detect_line(0, label="ha\x1bnd"),
        "an empty label": detect_line(0, label=""),
        "not UTF-8": None,
    }
    for case, text in cases.items():
        path = tmp_path / "d.jsonl"
        path.write_bytes(b"\xff\xfe{}\n" if text is None else text.encode())
        result = subprocess.run(
            [sys.executable, "-m", "detect.preannotate", "--source", str(folder),
             "--detections", str(path), "--out", str(tmp_path / "o")],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr, (case, result.stderr)
        assert result.stderr.startswith(f"error: {path}"), (case, result.stderr)
        assert not (tmp_path / "o").exists()


def strict_json(text: str):
    """JSON as a browser's JSON.parse reads it: no NaN or Infinity."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_preannotate_writes_strict_json_and_escaped_xml(photo, tmp_path):
    """A NaN box is left out and counted; label names with XML's special characters are kept
    in every file, which a strict JSON or XML parser reads."""
    folder, name, _ = photo
    label = 'left <"hand"> & co'
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"frame": 0, "file": name, "detections": [
        {"bbox": [10, 20, 30, 40], "score": 0.9, "class_id": 1, "label": label},
        {"bbox": [float("nan"), 20, 30, 40], "score": 0.8, "class_id": 1, "label": label},
    ]}) + "\n")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "detect.preannotate", "--source", str(folder), "--detections",
         str(path), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 skipped: non finite box" in result.stdout
    coco = strict_json((tmp_path / "o" / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == [label] and len(coco["annotations"]) == 1
    tasks = strict_json((tmp_path / "o" / "labelstudio.json").read_text())
    assert tasks[0]["predictions"][0]["result"][0]["value"]["rectanglelabels"] == [label]
    config = etree.fromstring((tmp_path / "o" / "labelstudio.xml").read_bytes())
    assert [e.get("value") for e in config.iter("Label")] == [label]
    cvat = etree.parse(str(tmp_path / "o" / "cvat.xml")).getroot()
    assert [b.get("label") for b in cvat.iter("box")] == [label]


def test_preannotate_names_and_shares_it_cannot_honour(photo, tmp_path):
    """A file name that is not printable text (not UTF-8, or a control character) is skipped
    and counted; a held-out share that would hold every frame keeps one to train on, with a
    warning; ``--change`` above a pHash's 64 bits is refused."""
    folder, name, _ = photo
    odd = tmp_path / "odd"
    odd.mkdir()
    for target in (b"b.jpg", b"c\xff.jpg", b"d\x01.jpg"):
        shutil.copy(folder / name, bytes(odd) + b"/" + target)
    result = subprocess.run(
        [sys.executable, "-m", "detect.preannotate", "--source", str(odd), "--held-out", "0.99",
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    assert "2 skipped: unprintable name" in result.stdout
    assert "warning: --held-out 0.99: 1 frame(s) kept, none held out" in result.stderr
    assert sorted(p.name for p in (tmp_path / "o" / "images").iterdir()) == ["b.jpg"]
    result = subprocess.run(
        [sys.executable, "-m", "detect.preannotate", "--source", str(folder), "--change", "65",
         "--out", str(tmp_path / "p")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "a pHash has 64 bits" in result.stderr


def test_a_cvat_label_listed_twice_is_one_class(tmp_path):
    from prep.cvat import read_cvat

    meta = (
        "<meta><task><labels>" + "<label><name>hand</name></label>" * 2 + "</labels></task></meta>"
    )
    path = tmp_path / "a.xml"
    path.write_text(f"<annotations><version>1.1</version>{meta}</annotations>")
    assert read_cvat(path)[0] == ["hand"]


def test_from_coco_into_a_folder_that_cannot_be_written_is_one_error(photo, tmp_path):
    _, _, (w, h) = photo
    (tmp_path / "t.json").write_text(json.dumps([ls_task()]))
    (tmp_path / "c.json").write_text(json.dumps(coco_doc(w, h)))
    (tmp_path / "a_file").write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "prep.labelstudio", "from-coco", "--tasks", str(tmp_path / "t.json"),
         "--coco", str(tmp_path / "c.json"), "--out", str(tmp_path / "a_file" / "e.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: cannot write") and done.stderr.count("\n") == 1


def test_preannotate_masks_from_detections_without_masks_is_one_error(photo, tmp_path):
    folder, name, _ = photo
    path = tmp_path / "d.jsonl"
    path.write_text(detect_line(0, file=name))
    done = subprocess.run(
        [sys.executable, "-m", "detect.preannotate", "--source", str(folder), "--detections",
         str(path), "--masks", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "has no masks (segmentation)" in done.stderr and not (tmp_path / "o").exists()
