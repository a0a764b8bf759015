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

from prep.common import UserError, atomic_write_bytes, fail, read_label_map
from prep.dataset import SPLITS, FrameTask, RawObject, build
from prep.sources import Source
from prep.split import split_by_frame


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


def read_coco(path: Path) -> tuple[list[str], list[tuple[str, list[RawObject]]]]:
    """Parse a COCO instances file into class names and ``(file_name, objects)`` per image.
    Polygon segmentations become masks; boxes come from ``bbox``."""
    try:
        coco = json.loads(Path(path).read_text())
        cats = {c["id"]: c["name"] for c in coco["categories"]}
        images = {im["id"]: im["file_name"] for im in coco["images"]}
        anns = coco.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a COCO instances file ({type(e).__name__}: {e})") from None
    objects: dict[int, list[RawObject]] = defaultdict(list)
    for ann in anns:
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            seg = ann.get("segmentation")
            polys = (
                tuple(np.asarray(p, np.float64).reshape(-1, 2) for p in seg)
                if isinstance(seg, list)
                else ()
            )
            objects[ann["image_id"]].append(
                RawObject(cats[ann["category_id"]], "", polys, (x, y, x + w, y + h))
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: annotation {ann.get('id')} is malformed ({e})") from None
    return [cats[k] for k in sorted(cats)], [(images[i], objects[i]) for i in sorted(images)]


def import_coco(
    json_path: Path,
    images: Path,
    out: Path,
    *,
    ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int = 2,
) -> dict:
    classes, items = read_coco(json_path)
    source = Source(images)
    known = set(source.members)
    tasks = []
    for name, objects in items:
        if name not in known:
            raise UserError(f"{json_path}: image {name} not found in {images}")
        tasks.append(FrameTask(name.replace("/", "_"), name, "", objects))
    masks = bool(tasks) and all(o.polygons for t in tasks for o in t.objects)
    split_of = split_by_frame([t.key for t in tasks], ratios, seed)
    order = {s: i for i, s in enumerate(SPLITS)}
    tasks.sort(key=lambda t: (order[split_of[t.key]], t.key))
    meta = {
        "tool": "prep.coco",
        "source": Path(json_path).name,
        "split_by": "frame",
        "seed": seed,
        "ratios": list(ratios),
        "warnings": [],
    }
    return build(source, tasks, split_of, out, classes, masks=masks, workers=workers, meta=meta)


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
    i = sub.add_parser("import", help="COCO JSON + images -> dataset folder")
    i.add_argument("--json", type=Path, required=True)
    i.add_argument("--images", type=Path, required=True)
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    try:
        if args.cmd == "export":
            coco = export_coco(args.data, args.split, args.out)
            print(
                f"wrote {args.out}: {len(coco['images'])} images, "
                f"{len(coco['annotations'])} annotations"
            )
        else:
            s = import_coco(args.json, args.images, args.out, seed=args.seed, workers=args.workers)
            print(f"wrote {args.out}: {s['totals']['frames']} frames, {s['totals']['boxes']} boxes")
    except UserError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
