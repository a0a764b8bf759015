"""COCO instances JSON: export any split of a dataset folder (boxes + RLE masks, so CVAT and
FiftyOne open it), and import a COCO dataset into the dataset format.

    python -m prep.coco export --data data/egohands --split test --out test_coco.json
    python -m prep.coco import --json instances.json --images my/images --out data/mine
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from common.folders import check_replaceable
from common.labelmap import read_label_map
from handspot.errors import UserError, fail
from handspot.files import atomic_write_bytes
from handspot.signals import command
from prep.dataset import SPLITS, FrameTask, Plan, RawObject, sort_tasks
from prep.geometry import mask_polygons, polygon_area
from prep.labelled import add_import_parser, build_import, classes_of, label_text, read_json
from prep.sources import Source
from prep.split import choose_split
from prep.summary import DatasetSummary


def to_coco(data: Path, split: str) -> dict:
    """The COCO instances dict of one split, read back from its TFRecords."""
    from prep.tfrecord import read_records, shard_pattern

    data = Path(data)
    label_map = read_label_map(data / "label_map.pbtxt")
    coco = {
        "info": {"description": f"{data.name} {split}"},
        "licenses": [],
        "categories": [{"id": i, "name": n, "supercategory": "hand"} for i, n in label_map.items()],
        "images": [],
        "annotations": [],
    }
    for image_id, ex in enumerate(read_records(shard_pattern(data, split)), 1):
        coco["images"].append(
            {"id": image_id, "file_name": ex.filename, "width": ex.width, "height": ex.height}
        )
        masks = ex.masks() if ex.masks_png else None
        for i, (box, cid) in enumerate(zip(ex.boxes, ex.label_ids, strict=True)):
            x0, y0, x1, y1 = (round(float(v), 2) for v in box)
            ann = {
                "id": len(coco["annotations"]) + 1,
                "image_id": image_id,
                "category_id": int(cid),
                "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
                "area": round((x1 - x0) * (y1 - y0), 2),
                "iscrowd": 0,
            }
            if masks is not None:
                rle = mask_utils.encode(np.asfortranarray(masks[i]))
                ann["area"] = int(mask_utils.area(rle))
                ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
            coco["annotations"].append(ann)
    return coco


def export_coco(data: Path, split: str, out: Path) -> dict:
    coco = to_coco(data, split)
    atomic_write_bytes(Path(out), json.dumps(coco).encode())
    return coco


def coco_instances(images: list, classes: list[str], description: str = "") -> dict:
    """COCO instances of ``prep.labelled.LabelledImage``s: each image with its ``split``, each
    box with its ``score`` when a model drew it (pre-annotations)."""
    names = classes_of(images, classes)
    ids = {n: i for i, n in enumerate(names, 1)}
    coco = {
        "info": {"description": description},
        "licenses": [],
        "categories": [{"id": ids[n], "name": n, "supercategory": "hand"} for n in names],
        "images": [],
        "annotations": [],
    }
    for image_id, im in enumerate(images, 1):
        coco["images"].append(
            {"id": image_id, "file_name": im.file_name, "width": im.width, "height": im.height,
             **({"split": im.split} if im.split else {})}
        )  # fmt: skip
        for b in im.boxes:
            x0, y0, x1, y1 = (round(float(v), 2) for v in b.xyxy)
            area = (x1 - x0) * (y1 - y0)
            if b.polygons:
                area = sum(polygon_area(p) for p in b.polygons)
            coco["annotations"].append(
                {"id": len(coco["annotations"]) + 1, "image_id": image_id,
                 "category_id": ids[b.label], "bbox": [x0, y0, round(x1 - x0, 2),
                 round(y1 - y0, 2)], "area": round(area, 2), "iscrowd": 0,
                 **({"segmentation": [flat_points(p) for p in b.polygons]} if b.polygons else {}),
                 **({"score": round(float(b.score), 4)} if b.score is not None else {})}
            )  # fmt: skip
    return coco


def flat_points(polygon: np.ndarray) -> list[float]:
    """A polygon as COCO writes one: x0, y0, x1, y1, ... (pixels, 2 decimals)."""
    return [round(float(v), 2) for v in np.asarray(polygon).reshape(-1)]


MAX_RLE_PIXELS = 1 << 28  # 16384 x 16384: a mask decoded in memory


def declared_size(image: dict) -> tuple[int, int] | None:
    """An image entry's ``(width, height)``, when it gives two positive integers."""
    w, h = image.get("width"), image.get("height")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h))
    return (w, h) if ok else None


def read_coco(path: Path) -> tuple[list[str], list[tuple], int]:
    """Parse a COCO instances file into class names, ``(file_name, objects, split, size)`` per
    image (``split`` is the image's own ``split`` field, or ""; ``size`` its declared width and
    height, or None), and the number of annotations that name no image. Polygon segmentations
    become masks; boxes come from ``bbox``."""
    coco = read_json(path, "a COCO instances file")
    try:
        unique_ids(path, "category", coco["categories"])
        unique_ids(path, "image", coco["images"])
        cats = {
            c["id"]: label_text(c["name"], f"{path}: category {c['id']}")
            for c in coco["categories"]
        }
        images = {
            im["id"]: (file_name(path, im), str(im.get("split", "")), declared_size(im))
            for im in coco["images"]
        }
        anns = coco.get("annotations", [])
        if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
            raise TypeError("annotations must be a list of objects")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{path}: not a COCO instances file ({type(e).__name__}: {e})") from None
    ids_of: dict[str, list] = defaultdict(list)
    for i, (name, _, _) in images.items():
        ids_of[name].append(i)
    twice = {name: ids for name, ids in ids_of.items() if len(ids) > 1}
    if twice:
        name, ids = next(iter(twice.items()))
        raise UserError(
            f"{path}: image {name} is listed {len(ids)} times (ids {', '.join(map(str, ids))})"
            + (f", and {len(twice) - 1} more file name(s) too" if len(twice) > 1 else "")
            + "; list each image once, with all its annotations"
        )
    objects: dict[int, list[RawObject]] = defaultdict(list)
    orphans = 0
    for ann in anns:
        try:
            if ann["image_id"] not in images:
                orphans += 1
                continue
            if ann.get("category_id") not in cats:
                raise ValueError(f"category_id {ann.get('category_id')!r} is not in categories")
            x, y, w, h = (float(v) for v in ann["bbox"])
            polys = polygons(ann.get("segmentation"), images[ann["image_id"]][2])
            objects[ann["image_id"]].append(
                RawObject(cats[ann["category_id"]], "", polys, (x, y, x + w, y + h))
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise UserError(f"{path}: annotation {ann.get('id')} is malformed ({e})") from None
    items = [(images[i][0], objects[i], images[i][1], images[i][2]) for i in sorted(images)]
    return list(dict.fromkeys(cats[k] for k in sorted(cats))), items, orphans


def unique_ids(path: Path, what: str, entries) -> None:
    """Refuse a list of COCO entries that is not a list of objects, or gives one id twice
    (two images with id 1 would trade their boxes; two categories, their labels)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"{path}: {what} entries must be a list of objects")
    seen: set = set()
    for entry in entries:
        if entry.get("id") in seen:
            raise UserError(f"{path}: {what} id {entry['id']!r} is given twice; ids must differ")
        seen.add(entry.get("id"))


def polygons(segmentation, size: tuple[int, int] | None = None) -> tuple[np.ndarray, ...]:
    """An annotation's mask as polygons (pixels, one ``(N, 2)`` array each): COCO's polygon
    lists as they are; an RLE (compressed or not, pycocotools' forms) traced along its outline,
    its ``size`` the image's declared ``(width, height)`` when given; none for no
    segmentation."""
    if isinstance(segmentation, list):
        return tuple(np.asarray(p, np.float64).reshape(-1, 2) for p in segmentation)
    if not isinstance(segmentation, dict):
        return ()
    h, w = (int(v) for v in segmentation["size"])
    if (size is not None and (w, h) != size) or not 0 < h * w <= MAX_RLE_PIXELS:
        raise ValueError(f"its RLE size {[h, w]} is not the image's height and width")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if any(type(c) is not int or c < 0 for c in counts) or sum(counts) != h * w:
            raise ValueError("its RLE counts are not whole runs covering the image")
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, str):
        rle = {"size": [h, w], "counts": counts.encode()}
    else:
        raise ValueError(f"its RLE counts are {type(counts).__name__}, not a list or text")
    return mask_polygons(mask_utils.decode(rle))


def file_name(path: Path, image: dict) -> str:
    name = image["file_name"]
    if not isinstance(name, str) or not name:
        raise UserError(f"{path}: image {image.get('id')!r}: file_name must be text, got {name!r}")
    return name


def unique_key(name: str, used: set[str]) -> str:
    """The flat file name of a member (``a/b.jpg`` -> ``a_b.jpg``), made unique among ``used``
    (``a_b.jpg`` beside it becomes ``a_b-2.jpg``), and recorded there."""
    key = name.replace("/", "_")
    stem, suffix = Path(key).stem, Path(key).suffix
    n = 1
    while key in used:
        n += 1
        key = f"{stem}-{n}{suffix}"
    used.add(key)
    return key


def plan_coco(
    json_path: Path,
    images: Path | None = None,
    *,
    split_by: str = "auto",
    ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
) -> Plan:
    """Plan a COCO import. ``split_by``: "source" keeps each image's own ``split`` field
    (train/valid/test), "frame" splits at random (seeded), "auto" is "source" when the file
    gives a split. ``images`` defaults to the ``images/`` folder beside the JSON."""
    json_path = Path(json_path)
    classes, items, orphans = read_coco(json_path)
    skipped = {"unknown_image": orphans} if orphans else {}
    warnings = [f"{orphans} annotation(s) name an image_id that is not in images; skipped"]
    return plan_items(
        json_path, images, classes, items, tool="prep.coco", split_by=split_by, ratios=ratios,
        seed=seed, skipped=skipped, warnings=warnings if orphans else [],
    )  # fmt: skip


def plan_items(
    path: Path,
    images: Path | None,
    classes: list[str],
    items: list[tuple],
    *,
    tool: str,
    split_by: str = "auto",
    ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    skipped: dict | None = None,
    warnings: list[str] | None = None,
) -> Plan:
    """The plan of a labelling tool's file (COCO, CVAT, Label Studio) read as ``items``:
    ``(file_name, objects, split, size)`` per image (``split``: the file's own, or "").
    ``images`` defaults to the ``images/`` folder beside ``path``."""
    images = Path(images) if images is not None else Path(path).parent / "images"
    if not items:
        raise UserError(f"{path}: lists no images; the source is empty")
    source = Source(images)
    known = set(source.members)
    tasks, published, used = [], {}, set()
    for name, objects, split, size in items:
        if name not in known:
            raise UserError(f"{path}: image {name} not found in {images}")
        task = FrameTask(unique_key(name, used), name, "", objects, size)
        tasks.append(task)
        published[task.key] = split
    keys = [t.key for t in tasks]
    split_of, split_by = choose_split(keys, published, split_by, ratios, seed, str(path))
    sort_tasks(tasks, split_of)
    masks = bool(tasks) and all(o.polygons for t in tasks for o in t.objects)
    meta = {
        "tool": tool,
        "source": Path(path).name,
        "split_by": split_by,
        **({"seed": seed, "ratios": list(ratios)} if split_by == "frame" else {}),
        "skipped_annotations": skipped or {},
        "warnings": warnings or [],
    }
    return Plan(source, tasks, split_of, classes, masks, meta, labels=Path(path))


def import_coco(
    json_path: Path, images: Path | None, out: Path, *, workers: int = 2, **kw
) -> DatasetSummary:
    return plan_coco(json_path, images, **kw).build(out, workers=workers)


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m prep.coco",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="one split of a dataset folder -> COCO JSON")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--split", choices=SPLITS, required=True)
    e.add_argument("--out", type=Path, required=True)
    add_import_parser(sub, "--json", "COCO JSON", "each image's own split field")
    args = p.parse_args(argv)
    try:
        if args.cmd == "export":
            coco = export_coco(args.data, args.split, args.out)
            print(
                f"wrote {args.out}: {len(coco['images'])} images, "
                f"{len(coco['annotations'])} annotations"
            )
        else:
            check_replaceable(args.out, "dataset")  # before reading anything
            plan = plan_coco(args.json, args.images, split_by=args.split_by, seed=args.seed)
            build_import(plan, args.out, args.workers)
    except UserError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
