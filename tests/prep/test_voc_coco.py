"""Pascal VOC and COCO import/export, both through the same writer."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from handspot.errors import UserError
from prep.coco import export_coco, import_coco
from prep.tfrecord import read_records, shard_pattern
from prep.voc import export_voc, import_voc, read_voc

SPLITS = ("train", "eval", "test")


def boxes_by_file(data, splits=SPLITS):
    out = {}
    for s in splits:
        with open(data / f"{s}_labels.csv", newline="") as f:
            for r in csv.DictReader(f):
                out.setdefault(r["filename"], []).append(
                    (r["class"], *(round(float(r[k])) for k in ("xmin", "ymin", "xmax", "ymax")))
                )
    return {k: sorted(v) for k, v in out.items()}


def test_voc_export_then_import_keeps_every_box(prepared, tmp_path):
    data, _ = prepared
    voc = tmp_path / "voc"
    n = export_voc(data, "train", voc)
    assert n == len(list((voc / "annotations").glob("*.xml"))) > 0
    name, objects = read_voc(next((voc / "annotations").glob("*.xml")))
    assert (voc / "images" / name).is_file() and objects[0].label == "hand"
    again = tmp_path / "again"
    summary = import_voc(voc / "images", voc / "annotations", again, workers=0)
    assert summary.totals.frames == n
    assert boxes_by_file(again) == boxes_by_file(data, ["train"])
    assert summary.masks is False


def test_voc_bad_xml_is_one_clear_error(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "img").mkdir()
    (tmp_path / "ann" / "a.xml").write_text("<annotation><filename>a.jpg</filename>")
    with pytest.raises(UserError, match="not a readable VOC XML"):
        import_voc(tmp_path / "img", tmp_path / "ann", tmp_path / "out", workers=0)


def test_coco_export_has_boxes_and_masks_that_pycocotools_reads(prepared, tmp_path):
    data, _ = prepared
    path = tmp_path / "test.json"
    export_coco(data, "test", path)
    coco = COCO(str(path))
    examples = list(read_records(shard_pattern(data, "test")))
    assert len(coco.getImgIds()) == len(examples)
    for img_id, ex in zip(sorted(coco.getImgIds()), examples, strict=True):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert len(anns) == len(ex.labels)
        for ann, box, mask in zip(anns, ex.boxes, ex.masks(), strict=True):
            x, y, w, h = ann["bbox"]
            np.testing.assert_allclose([x, y, x + w, y + h], box, atol=0.01)
            np.testing.assert_array_equal(coco.annToMask(ann), mask)


def test_coco_import_with_polygons_builds_masks(tmp_path):
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    img = np.full((120, 200, 3), 90, np.uint8)
    cv2.imwrite(str(images / "a.jpg"), img)
    cv2.imwrite(str(images / "b.png"), img)
    tri = [20.0, 20.0, 80.0, 20.0, 50.0, 90.0]
    coco = {
        "categories": [{"id": 5, "name": "hand"}],
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 200, "height": 120},
            {"id": 2, "file_name": "b.png", "width": 200, "height": 120},
        ],
        "annotations": [
            {
                "id": i,
                "image_id": i,
                "category_id": 5,
                "bbox": [20, 20, 60, 70],
                "segmentation": [tri],
                "area": 2100,
                "iscrowd": 0,
            }
            for i in (1, 2)
        ],
    }
    (tmp_path / "in.json").write_text(json.dumps(coco))
    out = tmp_path / "out"
    summary = import_coco(tmp_path / "in.json", images, out, ratios=(1, 0, 0), workers=0)
    assert summary.masks and summary.totals.frames == 2
    examples = list(read_records(shard_pattern(out, "train")))
    assert sorted(ex.image_format for ex in examples) == ["jpeg", "png"]
    expected = mask_utils.decode(mask_utils.frPyObjects([tri], 120, 200))[..., 0]
    for ex in examples:
        np.testing.assert_allclose(ex.boxes, [[20, 20, 80, 90]], atol=1e-3)
        m = ex.masks()[0]
        # OpenCV and pycocotools differ by half a pixel along the outline of this small shape.
        assert (m & expected).sum() / (m | expected).sum() > 0.9


def test_coco_malformed_is_one_clear_error(tmp_path):
    (tmp_path / "x.json").write_text('{"images": []}')
    with pytest.raises(UserError, match="not a COCO instances file"):
        import_coco(tmp_path / "x.json", tmp_path, tmp_path / "out", workers=0)


def test_exif_orientation_is_applied_once_for_training_and_detection(webcam_root, tmp_path):
    """Issue 22, case 3: TensorFlow's decoder ignores EXIF orientation, OpenCV (detect) and
    labelling tools apply it. A phone photo stored 400x200 and shown 200x400 (orientation 6),
    labelled as shown, was skipped ("box ... is empty"); now its record holds the picture as
    shown. A declared size the pixels do not have is a counted skip that says so."""
    import io
    import json

    from PIL import Image

    from prep.coco import import_coco
    from prep.tfrecord import read_records, shard_pattern

    photo = Image.open(webcam_root / "subhih-webcam" / "images" / "test_1528664299.56_pic00051.jpg")
    stored = photo.convert("RGB").resize((400, 200))
    (tmp_path / "images").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: 200 wide, 400 high
    stored.save(tmp_path / "images" / "phone.jpg", exif=exif)
    stored.save(tmp_path / "images" / "plain.jpg")
    images = [
        {"id": 1, "file_name": "phone.jpg", "width": 200, "height": 400, "split": "train"},
        {"id": 2, "file_name": "plain.jpg", "width": 200, "height": 400, "split": "train"},
    ]
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [20, 250, 150, 120]} for i in (1, 2)]
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "hand"}]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    summary = import_coco(tmp_path / "a.json", None, tmp_path / "out", workers=0)
    assert summary.splits["train"].frames == 1  # the phone photo
    (record,) = read_records(shard_pattern(tmp_path / "out", "train"))
    shown = Image.open(io.BytesIO(record.encoded))  # as TensorFlow decodes it: EXIF ignored
    assert shown.size == (200, 400) and shown.getexif().get(0x0112, 1) == 1
    np.testing.assert_allclose(record.boxes, [[20, 250, 170, 370]], atol=1e-3)
    assert "labels say 200x400, the picture is 400x200" in json.dumps(summary.to_dict())
    from handspot.images import read_image

    assert read_image(tmp_path / "images" / "phone.jpg").shape[:2] == (400, 200)  # detect: same


def tiny_coco(tmp_path, images, categories, annotations):
    (tmp_path / "images").mkdir(exist_ok=True)
    for im in images:
        if isinstance(im.get("file_name"), str):
            Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "images" / im["file_name"])
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"images": images, "categories": categories,
                                "annotations": annotations}))  # fmt: skip
    return path


BOX = {"category_id": 1, "bbox": [4, 4, 20, 20]}


@pytest.mark.parametrize(
    ("images", "categories", "message"),
    [
        # two images with id 1 traded their boxes; a second category 1 relabelled every hand
        ([{"id": 1, "file_name": "a.png"}, {"id": 1, "file_name": "b.png"}],
         [{"id": 1, "name": "hand"}], "image id 1 is given twice"),
        ([{"id": 1, "file_name": "a.png"}],
         [{"id": 1, "name": "hand"}, {"id": 1, "name": "face"}], "category id 1 is given twice"),
        ([{"id": 1, "file_name": "a.png"}], [{"id": 1, "name": 5}], "must be non-empty text"),
        ([{"id": 1, "file_name": ["a.png"]}], [{"id": 1, "name": "hand"}], "must be text"),
        ([{"id": 1, "file_name": "a.png"}], {"id": 1, "name": "hand"}, "list of objects"),
    ],
)  # fmt: skip
def test_coco_ids_and_names_that_would_move_labels_are_refused(tmp_path, images, categories,
                                                               message):  # fmt: skip
    path = tiny_coco(tmp_path, images, categories, [{"id": 1, "image_id": 1, **BOX}])
    with pytest.raises(UserError, match=message):
        import_coco(path, tmp_path / "images", tmp_path / "out", workers=0)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("annotations", [{"1": BOX}, [5], ["x"]])
def test_coco_annotations_not_a_list_of_objects_is_one_error(tmp_path, annotations):
    path = tiny_coco(tmp_path, [{"id": 1, "file_name": "a.png"}], [{"id": 1, "name": "hand"}],
                     annotations)  # fmt: skip
    with pytest.raises(UserError, match="annotations must be a list of objects"):
        import_coco(path, tmp_path / "images", tmp_path / "out", workers=0)


def test_webp_and_bmp_photos_are_imported_as_png(webcam_root, tmp_path):
    """Pre-annotation reads .webp and .bmp; the importers refused them as corrupt_image after a
    person had labelled them. They are stored losslessly as PNG, counted under fixed."""
    photo = Image.open(webcam_root / "subhih-webcam" / "images" / "test_1528664299.56_pic00051.jpg")
    (tmp_path / "images").mkdir()
    photo.save(tmp_path / "images" / "a.webp", lossless=True)
    photo.save(tmp_path / "images" / "b.bmp")
    images = [{"id": i, "file_name": n, "split": "train"} for i, n in ((1, "a.webp"), (2, "b.bmp"))]
    anns = [{"id": i, "image_id": i, **BOX} for i in (1, 2)]
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "hand"}]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    summary = import_coco(tmp_path / "a.json", tmp_path / "images", tmp_path / "out", workers=0)
    assert summary.splits["train"].frames == 2
    assert summary.splits["train"].fixed == {"converted_to_png": 2}
    records = list(read_records(shard_pattern(tmp_path / "out", "train")))
    assert sorted(r.filename for r in records) == ["a.webp.png", "b.bmp.png"]
    assert {r.image_format for r in records} == {"png"}
    for r in records:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.encoded))), np.asarray(photo))
        assert (tmp_path / "out" / "images" / "train" / r.filename).read_bytes() == r.encoded
