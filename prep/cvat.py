"""CVAT's "CVAT for images 1.1" XML: written as pre-annotations (detect.preannotate), read back
after correction into the dataset format.

    python -m prep.cvat import --xml annotations.xml --images my/images --out data/mine

Boxes (``<box>``) are read; polygons (``<polygon>``) too, as masks with their box. Each image's
``subset`` (Train / Validation / Test) is its split; CVAT's "default" subset means none.
Exported from CVAT: Actions > Export task dataset > "CVAT for images 1.1" (with or without the
images; pass the image folder with ``--images``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from lxml import etree

from common.folders import check_replaceable
from handspot.errors import UserError, fail
from prep.coco import plan_items
from prep.dataset import Plan, RawObject
from prep.labelled import LabelledImage, add_import_parser, build_import, classes_of

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
    for c in classes_of(images, classes):
        label = etree.SubElement(labels, "label")
        etree.SubElement(label, "name").text = c
        etree.SubElement(label, "type").text = "rectangle"
        etree.SubElement(label, "attributes")
    for i, im in enumerate(images):
        node = etree.SubElement(
            root, "image", id=str(i), name=im.file_name, subset=SUBSET.get(im.split, im.split),
            width=str(im.width), height=str(im.height),
        )  # fmt: skip
        for b in im.boxes:
            x0, y0, x1, y1 = (f"{v:.2f}" for v in b.xyxy)
            etree.SubElement(
                node, "box", label=b.label, source="auto" if b.score is not None else "manual",
                occluded="0", xtl=x0, ytl=y0, xbr=x1, ybr=y1, z_order="0",
            )  # fmt: skip
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="utf-8")


def read_cvat(path: Path) -> tuple[list[str], list[tuple]]:
    """Class names and ``(file_name, objects, split, size)`` per image of a CVAT 1.1 file."""
    try:
        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False)).getroot()
    except (OSError, etree.XMLSyntaxError) as e:
        raise UserError(f"{path}: not a CVAT XML file ({e})") from None
    if root.tag != "annotations" or root.findtext("version", "").strip() != "1.1":
        raise UserError(f"{path}: not a 'CVAT for images 1.1' file (<annotations>, version 1.1)")
    classes = [n.text.strip() for n in root.iterfind("meta//labels/label/name") if n.text]
    items = []
    for node in root.iterfind("image"):
        where = f"{path}: image {node.get('name')!r}"
        try:
            size = (int(node.get("width")), int(node.get("height")))
            objects = []
            for shape in node:
                if shape.tag == "box":
                    box = tuple(float(shape.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
                    objects.append(RawObject(shape.get("label"), "", (), box))
                elif shape.tag == "polygon":
                    points = [p.split(",") for p in shape.get("points").split(";")]
                    poly = np.asarray(points, np.float64).reshape(-1, 2)
                    objects.append(RawObject(shape.get("label"), "", (poly,), None))
        except (TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{where} is malformed ({e})") from None
        if any(not o.label for o in objects):
            raise UserError(f"{where}: a shape has no label")
        subset = (node.get("subset") or "").strip()
        split = "" if subset.lower() in ("", "default") else subset
        items.append((node.get("name"), objects, split, size))
    names = set(classes)
    return classes + sorted({o.label for _, objs, _, _ in items for o in objs} - names), items


def plan_cvat(xml: Path, images: Path | None = None, **kw) -> Plan:
    """Plan a CVAT import (``kw``: split_by, ratios, seed as for ``prep.coco.plan_coco``);
    ``images`` defaults to ``images/`` beside the XML."""
    classes, items = read_cvat(Path(xml))
    return plan_items(Path(xml), images, classes, items, tool="prep.cvat", **kw)


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
