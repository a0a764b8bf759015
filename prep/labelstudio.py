"""Label Studio's JSON: tasks with pre-annotations (``predictions``, written by
detect.preannotate), and its JSON export (each task's ``annotations``) read back after correction
into the dataset format.

    python -m prep.labelstudio import --json export.json --images my/images --out data/mine
    python -m prep.labelstudio from-coco --tasks labelstudio.json --coco labels.json --out e.json

Rectangles (``rectanglelabels``; a rotated one becomes the box around it) and polygons
(``polygonlabels``, as masks) are read, in percent of ``original_width``/``original_height``.
A task's annotation is its last one not cancelled; tasks nobody annotated are skipped and
counted. The image is found by the path in its URL (``/data/local-files/?d=...``, an upload's
``/data/upload/N/1a2b3c4d-name.jpg``, or any URL's path), within ``--images``. A task's
``data.split`` (written by detect.preannotate) is its split.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlparse
from xml.sax.saxutils import quoteattr

import numpy as np

from common.folders import check_replaceable
from handspot.errors import UserError, fail
from handspot.files import atomic_write_bytes
from handspot.signals import command
from prep.coco import plan_items, read_coco
from prep.dataset import Plan, RawObject
from prep.geometry import rotated_envelope
from prep.labelled import LabelledImage, add_import_parser, build_import, label_text, read_json
from prep.sources import Source

LOCAL_FILES = "/data/local-files/?d="  # Label Studio's URL for files under its document root


def label_config(classes: list[str], polygons: bool = False) -> str:
    """The labelling interface for boxes (or, ``polygons``, mask outlines) of these classes
    (Settings > Labeling Interface)."""
    labels = "".join(f"    <Label value={quoteattr(c)}/>\n" for c in classes)
    tag = "PolygonLabels" if polygons else "RectangleLabels"
    return (
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <{tag} name="label" toName="image">\n{labels}  </{tag}>\n'
        "</View>\n"
    )


def polygon(rid: str, label: str, points: np.ndarray, width: int, height: int, **extra) -> dict:
    """One ``polygonlabels`` result: a pixel polygon in percent of the image."""
    percent = [[round(100 * x / width, 4), round(100 * y / height, 4)] for x, y in points]
    return {
        "id": rid,
        "from_name": "label",
        "to_name": "image",
        "type": "polygonlabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {"points": percent, "closed": True, "polygonlabels": [label]},
        **extra,
    }


def rectangle(rid: str, label: str, xyxy, width: int, height: int, **extra) -> dict:
    """One ``rectanglelabels`` result: a pixel box in percent of the image, as Label Studio
    stores it (``extra``: e.g. a model's ``score``, or ``origin``)."""
    x0, y0, x1, y1 = xyxy
    value = {
        "x": 100 * x0 / width,
        "y": 100 * y0 / height,
        "width": 100 * (x1 - x0) / width,
        "height": 100 * (y1 - y0) / height,
        "rotation": 0,
        "rectanglelabels": [label],
    }
    return {
        "id": rid,
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": value,
        **extra,
    }


def tasks(images: list[LabelledImage], model: str, url_prefix: str = LOCAL_FILES + "images/"):
    """Label Studio tasks, one per image, the boxes as the model's ``predictions``."""
    out = []
    for im in images:
        result = []
        for i, b in enumerate(im.boxes):
            score = {"score": b.score} if b.score is not None else {}
            if b.polygons:  # the mask's outline (its largest piece)
                result.append(polygon(f"p{i}", b.label, b.polygons[0], im.width, im.height,
                                      **score))  # fmt: skip
            else:
                result.append(rectangle(f"p{i}", b.label, b.xyxy, im.width, im.height, **score))
        scores = [b.score for b in im.boxes if b.score is not None]
        out.append(
            {
                "data": {"image": image_url(url_prefix, im.file_name), "split": im.split},
                "predictions": [
                    {
                        "model_version": model,
                        "score": float(np.mean(scores)) if scores else 0.0,
                        "result": result,
                    }
                ],
            }
        )
    return out


def _envelope(v: dict, w: float, h: float) -> tuple[float, float, float, float]:
    """A (possibly rotated, about its top-left corner, clockwise) rectangle's bounding box."""
    x, y = v["x"] * w / 100, v["y"] * h / 100
    box = (x, y, x + v["width"] * w / 100, y + v["height"] * h / 100)
    return rotated_envelope(box, float(v.get("rotation", 0) or 0), (x, y))


def image_path(url: str, members: set[str]) -> str | None:
    """The member of the images folder a task's image URL names (see the module's notes): its
    path percent-decoded (as written by ``tasks``), or as it stands (a name with ``%20`` or
    ``+`` written unencoded)."""
    for path in _url_paths(url):
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts)):  # the longest tail of the path that is in the folder
            if (name := "/".join(parts[i:])) in members:
                return name
        if parts and (m := re.fullmatch(r"[0-9a-f]{8}-(.+)", parts[-1])) and m[1] in members:
            return m[1]  # an upload: Label Studio prefixes the file's name with 8 hex digits
    return None


def _url_paths(url: str) -> list[str]:
    """The paths a task's URL may mean: percent-decoded first, then as written (an unencoded
    ``#`` is part of the name, not a fragment)."""
    if (d := re.search(r"[?&]d=(.*)", url)) is not None:  # local files: the d= parameter
        raws = [d[1].split("&")[0], d[1]]  # an unencoded & in the name: all that follows
    else:
        parsed = urlparse(url)
        raws = [parsed.path + (f"#{parsed.fragment}" if parsed.fragment else "")]
    found = [p for raw in raws for p in (unquote(raw), unquote(raw.split("#")[0]), raw)]
    return list(dict.fromkeys(found))


def image_url(prefix: str, file_name: str) -> str:
    """A task's image URL: ``prefix`` + the file's name percent-encoded (``a&b #1.jpg`` ->
    ``a%26b%20%231.jpg``), so Label Studio serves it and the import finds it."""
    return prefix + quote(file_name, safe="/")


SHAPES = ("rectanglelabels", "polygonlabels")


def read_labelstudio(path: Path, images: Path) -> tuple[list[str], list[tuple], dict]:
    """Class names, ``(file_name, objects, split, size)`` per annotated task, and the counts
    of what was skipped."""
    data = read_json(path, "a Label Studio JSON export")
    if not isinstance(data, list) or not all(
        isinstance(t, dict) and isinstance(t.get("data"), dict) for t in data
    ):
        raise UserError(f"{path}: not a Label Studio JSON export (a list of tasks, each with a "
                        "'data' object)")  # fmt: skip
    members = set(Source(images).members)
    items, skipped, seen = [], {"unannotated": 0, "other_shapes": 0}, {}
    for task in data:
        where = f"{path}: task {task.get('id')}"
        try:
            done = _annotations(task)
            if not done:
                skipped["unannotated"] += 1
                continue
            objects, size, other = _objects(done[-1].get("result", []), where)
        except (KeyError, IndexError, TypeError, ValueError, OverflowError) as e:
            raise UserError(f"{where} is malformed ({e})") from None
        skipped["other_shapes"] += other
        url = task["data"].get("image", "")
        name = image_path(url, members) if isinstance(url, str) else None
        if name is None:
            raise UserError(f"{where}: image {url!r} not found in {images}")
        if name in seen:
            raise UserError(f"{path}: image {name} is in tasks {seen[name]} and {task.get('id')}")
        seen[name] = task.get("id")
        items.append((name, objects, str(task["data"].get("split", "") or ""), size))
    classes = sorted({o.label for _, objs, _, _ in items for o in objs})
    return classes, items, {k: v for k, v in skipped.items() if v}


def _annotations(task: dict) -> list[dict]:
    """A task's annotations that were not cancelled."""
    found = task.get("annotations") or []
    if not isinstance(found, list) or not all(isinstance(a, dict) for a in found):
        raise ValueError("'annotations' must be a list of objects")
    return [a for a in found if not a.get("was_cancelled")]


def _objects(result, where: str) -> tuple[list[RawObject], tuple | None, int]:
    """An annotation's rectangles and polygons, the image size they give, and how many other
    shapes (keypoints, brushes, choices) it holds."""
    if not isinstance(result, list):
        raise ValueError("'result' must be a list")
    objects, size, other = [], None, 0
    for r in result:
        if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
            raise ValueError(f"a result item is {r!r:.60}, not an object with a 'value'")
        kind, v = r.get("type"), r["value"]
        if kind not in SHAPES:
            other += 1
            continue
        w, h = _side(r, "original_width"), _side(r, "original_height")
        size = (round(w), round(h))
        label = label_text(v[kind][0], where)
        if kind == "rectanglelabels":
            objects.append(RawObject(label, "", (), _envelope(v, w, h)))
        else:
            poly = np.asarray(v["points"], np.float64).reshape(-1, 2) * [w / 100, h / 100]
            objects.append(RawObject(label, "", (poly,), None))
    return objects, size, other


def _side(result: dict, key: str) -> float:
    value = float(result[key])
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"{key} must be a positive number of pixels, got {result[key]!r}")
    return value


def annotate_from_coco(tasks_path: Path, coco_path: Path) -> list[dict]:
    """Label Studio's JSON export of pre-annotation tasks as a person would leave it after
    replacing every task's boxes with a COCO file's for the same image (matched by file name):
    labels made elsewhere, or the stand-in for the person in the README's measured case."""
    found = read_json(tasks_path, "Label Studio tasks")
    if not isinstance(found, list) or not all(
        isinstance(t, dict) and isinstance(t.get("data"), dict) for t in found
    ):
        raise UserError(f"{tasks_path}: not Label Studio tasks (a list of tasks, each with a "
                        "'data' object)")  # fmt: skip
    sizes, boxes = coco_boxes(coco_path)
    for i, task in enumerate(found, 1):
        url = task["data"].get("image")
        name = image_path(url, set(sizes)) if isinstance(url, str) else None
        if name is None:
            raise UserError(f"{coco_path} has no image {url!r} (task {i})")
        w, h = sizes[name]
        result = [
            rectangle(f"a{j}", label, (x, y, x + bw, y + bh), w, h, origin="manual")
            for j, (label, (x, y, bw, bh)) in enumerate(boxes.get(name, []))
        ]
        task.setdefault("id", i)
        task["annotations"] = [{"id": i, "result": result, "was_cancelled": False}]
    return found


def coco_boxes(path: Path) -> tuple[dict[str, tuple[int, int]], dict[str, list]]:
    """A COCO file's image sizes and ``(label, [x, y, w, h])`` boxes, by file name."""
    _, items, orphans = read_coco(path)
    if orphans:
        raise UserError(f"{path}: {orphans} annotation(s) name an image_id that is not in images")
    sizes, boxes = {}, {}
    for name, objects, _, size in items:
        if size is None:
            raise UserError(f"{path}: image {name} gives no positive width and height")
        sizes[name] = size
        boxes[name] = [(o.label, [o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]])
                       for o in objects if o.box is not None]  # fmt: skip
    return sizes, boxes


def plan_labelstudio(json_path: Path, images: Path | None = None, **kw) -> Plan:
    """Plan a Label Studio import (``kw`` as for ``prep.coco.plan_coco``)."""
    json_path = Path(json_path)
    images = Path(images) if images is not None else json_path.parent / "images"
    classes, items, skipped = read_labelstudio(json_path, images)
    warnings = [f"{n} task(s) skipped: {why.replace('_', ' ')}" for why, n in skipped.items()]
    return plan_items(
        json_path, images, classes, items, tool="prep.labelstudio", skipped=skipped,
        warnings=warnings, **kw,
    )  # fmt: skip


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m prep.labelstudio",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    add_import_parser(sub, "--json", "Label Studio's JSON export", "each task's data.split")
    c = sub.add_parser(
        "from-coco", help="pre-annotation tasks + a COCO file's boxes -> Label Studio's export"
    )
    c.add_argument("--tasks", type=Path, required=True, help="labelstudio.json of preannotate")
    c.add_argument("--coco", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.cmd == "from-coco":
        try:
            done = annotate_from_coco(args.tasks, args.coco)
            atomic_write_bytes(args.out, json.dumps(done).encode())
        except UserError as e:
            return fail(str(e))
        except OSError as e:
            return fail(f"cannot write {args.out}: {e.strerror or e}")
        print(f"wrote {args.out}: {len(done)} annotated tasks")
        return 0
    try:
        check_replaceable(args.out, "dataset")  # before reading anything
        plan = plan_labelstudio(args.json, args.images, split_by=args.split_by, seed=args.seed)
        build_import(plan, args.out, args.workers)
    except UserError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
