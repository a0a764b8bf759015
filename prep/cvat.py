"""CVAT's "CVAT for images 1.1" XML: written as pre-annotations (detect.preannotate), read back
after correction into the dataset format.

    python -m prep.cvat import --xml annotations.xml --images my/images --out data/mine

Boxes (``<box>``; a rotated one as the box around it) are read; polygons, ellipses and brush
masks (``<polygon>``, ``<ellipse>``, ``<mask>``) too, as masks with their box; points,
polylines, cuboids, skeletons and tags are no areas: skipped and counted. An image listed twice
is an error. Each image's
``subset`` (Train / Validation / Test) is its split; CVAT's "default" subset means none.
Exported from CVAT: Actions > Export task dataset > "CVAT for images 1.1" (with or without the
images; pass the image folder with ``--images``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from lxml import etree

from common.folders import check_replaceable
from handspot.errors import UserError, fail
from handspot.signals import command
from prep.coco import plan_items
from prep.dataset import Plan, RawObject
from prep.geometry import ellipse_polygon, mask_polygons, rotated_envelope
from prep.labelled import LabelledImage, add_import_parser, build_import, classes_of, label_text

SUBSET = {"train": "Train", "eval": "Validation", "test": "Test", "": "default"}


def cvat_xml(images: list[LabelledImage], classes: list[str], name: str = "hands") -> bytes:
    """The CVAT for images 1.1 file of ``images`` (scores as ``source="auto"`` boxes: CVAT
    keeps no score; a model's box is marked as the model's)."""
    root = etree.Element("annotations")
    etree.SubElement(root, "version").text = "1.1"
    task = etree.SubElement(etree.SubElement(root, "meta"), "task")
    etree.SubElement(task, "name").text = name
    etree.SubElement(task, "size").text = str(len(images))
    labels = etree.SubElement(task, "labels")
    polygons = any(b.polygons for im in images for b in im.boxes)
    for c in classes_of(images, classes):
        label = etree.SubElement(labels, "label")
        etree.SubElement(label, "name").text = c
        etree.SubElement(label, "type").text = "polygon" if polygons else "rectangle"
        etree.SubElement(label, "attributes")
    for i, im in enumerate(images):
        node = etree.SubElement(
            root, "image", id=str(i), name=im.file_name, subset=SUBSET.get(im.split, im.split),
            width=str(im.width), height=str(im.height),
        )  # fmt: skip
        for b in im.boxes:
            source = "auto" if b.score is not None else "manual"
            if b.polygons:  # the mask's outline (its largest piece): CVAT makes the box
                points = ";".join(f"{x:.2f},{y:.2f}" for x, y in b.polygons[0])
                etree.SubElement(node, "polygon", label=b.label, source=source, occluded="0",
                                 points=points, z_order="0")  # fmt: skip
                continue
            x0, y0, x1, y1 = (f"{v:.2f}" for v in b.xyxy)
            etree.SubElement(
                node, "box", label=b.label, source=source,
                occluded="0", xtl=x0, ytl=y0, xbr=x1, ybr=y1, z_order="0",
            )  # fmt: skip
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="utf-8")


def read_cvat(path: Path) -> tuple[list[str], list[tuple], dict]:
    """Class names, ``(file_name, objects, split, size)`` per image of a CVAT 1.1 file, and the
    counts of what was skipped (shapes that are not areas: points, polylines, cuboids, skeletons,
    tags)."""
    try:
        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False)).getroot()
    except (OSError, etree.XMLSyntaxError) as e:
        raise UserError(f"{path}: not a CVAT XML file ({e})") from None
    if root.tag != "annotations" or root.findtext("version", "").strip() != "1.1":
        raise UserError(f"{path}: not a 'CVAT for images 1.1' file (<annotations>, version 1.1)")
    names = (n.text.strip() for n in root.iterfind("meta//labels/label/name") if n.text)
    classes = list(dict.fromkeys(n for n in names if n))  # a name listed twice is one class
    items, other, seen = [], 0, {}
    for node in root.iterfind("image"):
        name, where = node.get("name"), f"{path}: image {node.get('name')!r}"
        if name in seen:
            raise UserError(f"{where} is listed twice (ids {seen[name]} and {node.get('id')}); "
                            "list each image once, with all its shapes")  # fmt: skip
        seen[name] = node.get("id")
        try:
            size = (int(node.get("width")), int(node.get("height")))
            objects = [_shape(shape, size, where) for shape in node]
        except (TypeError, ValueError, AttributeError, OverflowError) as e:
            raise UserError(f"{where} is malformed ({e})") from None
        other += sum(o is None for o in objects)
        subset = (node.get("subset") or "").strip()
        split = "" if subset.lower() in ("", "default") else subset
        items.append((name, [o for o in objects if o is not None], split, size))
    classes += sorted({o.label for _, objs, _, _ in items for o in objs} - set(classes))
    return classes, items, {"other_shapes": other} if other else {}


def _shape(shape, size: tuple[int, int], where: str) -> RawObject | None:
    """One shape of an image: a box (a rotated one as the box around it, CVAT turning it about
    its centre), a polygon, an ellipse or a brush mask as a mask; None for a shape that is no
    area (points, polyline, cuboid, skeleton, tag)."""
    if shape.tag not in AREAS:
        return None
    label = label_text(shape.get("label"), where)
    num = {k: float(v) for k, v in shape.attrib.items() if k in NUMBERS}
    if not all(math.isfinite(v) for v in num.values()):
        raise ValueError(f"a {shape.tag} has a coordinate that is not a finite number")
    if shape.tag == "box":
        box = (num["xtl"], num["ytl"], num["xbr"], num["ybr"])
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        return RawObject(label, "", (), rotated_envelope(box, num.get("rotation", 0.0), centre))
    if shape.tag == "polygon":
        points = [p.split(",") for p in shape.get("points").split(";")]
        return RawObject(label, "", (np.asarray(points, np.float64).reshape(-1, 2),), None)
    if shape.tag == "ellipse":
        e = ellipse_polygon(num["cx"], num["cy"], num["rx"], num["ry"], num.get("rotation", 0.0))
        return RawObject(label, "", (e,), None)
    return _brush(shape, label, size)


AREAS = ("box", "polygon", "ellipse", "mask")
NUMBERS = ("xtl", "ytl", "xbr", "ybr", "rotation", "cx", "cy", "rx", "ry")


def _brush(shape, label: str, size: tuple[int, int]) -> RawObject:
    """A brush ``<mask>`` as its outlines in image pixels and the box around its pixels: its
    ``rle`` is runs of 0 and 1 (0 first), row by row over its ``width`` x ``height`` box at
    ``left``, ``top``."""
    left, top, w, h = (int(shape.get(k)) for k in ("left", "top", "width", "height"))
    if w < 1 or h < 1 or left < 0 or top < 0 or left + w > size[0] or top + h > size[1]:
        raise ValueError(f"a mask's box {left},{top} {w}x{h} is not inside the image {size}")
    runs = [int(r) for r in shape.get("rle").split(",")]
    if any(r < 0 for r in runs) or sum(runs) != w * h:
        raise ValueError(f"a mask's rle does not cover its {w}x{h} box in whole runs")
    values = np.arange(len(runs)) % 2
    mask = np.repeat(values.astype(np.uint8), runs).reshape(h, w)
    rows, cols = np.nonzero(mask)
    if not len(rows):
        raise ValueError("a mask has no pixel")
    box = (left + cols.min(), top + rows.min(), left + cols.max() + 1, top + rows.max() + 1)
    return RawObject(label, "", mask_polygons(mask, (left, top)), tuple(map(float, box)))


def plan_cvat(xml: Path, images: Path | None = None, **kw) -> Plan:
    """Plan a CVAT import (``kw``: split_by, ratios, seed as for ``prep.coco.plan_coco``);
    ``images`` defaults to ``images/`` beside the XML."""
    classes, items, skipped = read_cvat(Path(xml))
    warnings = [f"{n} shape(s) skipped: {why.replace('_', ' ')} (points, polylines, cuboids, "
                "skeletons, tags: not areas)" for why, n in skipped.items()]  # fmt: skip
    return plan_items(
        Path(xml), images, classes, items, tool="prep.cvat", skipped=skipped, warnings=warnings,
        **kw,
    )  # fmt: skip


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m prep.cvat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    add_import_parser(sub, "--xml", "CVAT for images 1.1 XML", "each image's subset")
    args = p.parse_args(argv)
    try:
        check_replaceable(args.out, "dataset")  # before reading anything
        plan = plan_cvat(args.xml, args.images, split_by=args.split_by, seed=args.seed)
        build_import(plan, args.out, args.workers)
    except UserError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
