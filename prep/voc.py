"""Pascal VOC XML (labelImg) import into the dataset format, and export of any split.

python -m prep.voc import --images my/images --annotations my/xml --out data/mine
python -m prep.voc export --data data/egohands --split test --out voc/test
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

from lxml import etree

from common.folders import atomic_dir, check_replaceable
from handspot.errors import UserError, fail
from handspot.signals import command
from prep.dataset import CSV_COLUMNS, SPLITS, FrameTask, Plan, RawObject, sort_tasks
from prep.sources import Source
from prep.split import add_split_by, choose_split, published_split
from prep.summary import DatasetSummary


def read_voc(path: Path) -> tuple[str, list[RawObject]]:
    """Parse one VOC XML file into its image file name and objects (boxes in pixels)."""
    try:
        root = etree.parse(str(path)).getroot()
    except (etree.XMLSyntaxError, OSError) as e:
        raise UserError(f"{path}: not a readable VOC XML file ({e})") from None
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise UserError(f"{path}: no <filename>")
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if not name or bb is None:
            raise UserError(f"{path}: an <object> lacks <name> or <bndbox>")
        try:
            box = tuple(float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise UserError(f"{path}: <bndbox> of {name!r} is not four numbers") from None
        objects.append(RawObject(name, "", (), box))
    return filename, objects


def voc_xml(
    filename: str, width: int, height: int, objects: list[tuple[str, tuple]], folder: str = "images"
) -> bytes:
    """One labelImg-compatible annotation."""
    root = etree.Element("annotation")
    etree.SubElement(root, "folder").text = folder
    etree.SubElement(root, "filename").text = filename
    size = etree.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        etree.SubElement(size, tag).text = str(value)
    etree.SubElement(root, "segmented").text = "0"
    for label, box in objects:
        obj = etree.SubElement(root, "object")
        etree.SubElement(obj, "name").text = label
        etree.SubElement(obj, "pose").text = "Unspecified"
        etree.SubElement(obj, "truncated").text = "0"
        etree.SubElement(obj, "difficult").text = "0"
        bb = etree.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            etree.SubElement(bb, tag).text = str(round(float(value)))
    return etree.tostring(root, pretty_print=True)


def read_image_sets(folder: Path) -> dict[str, str]:
    """``{image stem: our split}`` from a VOC ``ImageSets/Main`` folder (train.txt, val.txt,
    trainval.txt, test.txt; per-class lists such as ``hand_train.txt`` are ignored)."""
    split_of: dict[str, str] = {}
    for name in ("trainval", "train", "val", "test"):  # later lists win over trainval
        path = Path(folder) / f"{name}.txt"
        if path.is_file():
            split = published_split(name, str(path))
            for line in path.read_text().split():
                split_of[line.strip()] = split
    return split_of


def plan_voc(
    images: Path,
    annotations: Path,
    *,
    split_by: str = "auto",
    image_sets: Path | None = None,
    ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    classes: list[str] | None = None,
) -> Plan:
    """Plan a VOC import. ``split_by``: "source" keeps the split of the dataset's
    ``ImageSets/Main`` lists (``image_sets``, default: beside the annotations folder), "frame"
    splits at random (seeded), "auto" is "source" when the lists exist."""
    xmls = sorted(Path(annotations).glob("*.xml"))
    if not xmls:
        raise UserError(f"no .xml files in {annotations}")
    source = Source(images)
    tasks = []
    for xml in xmls:
        filename, objects = read_voc(xml)
        if filename not in source.members:
            raise UserError(f"{xml}: image {filename} not found in {images}")
        tasks.append(FrameTask(filename, filename, "", objects))
    sets_dir = Path(image_sets) if image_sets else Path(annotations).parent / "ImageSets" / "Main"
    published = read_image_sets(sets_dir)
    published = {t.key: published.get(Path(t.key).stem, "") for t in tasks}
    keys = [t.key for t in tasks]
    split_of, split_by = choose_split(keys, published, split_by, ratios, seed, str(sets_dir))
    names = classes or sorted({o.label for t in tasks for o in t.objects})
    sort_tasks(tasks, split_of)
    meta = {
        "tool": "prep.voc",
        "source": Path(annotations).name,
        "split_by": split_by,
        **({"seed": seed, "ratios": list(ratios)} if split_by == "frame" else {}),
        "warnings": [],
    }
    return Plan(source, tasks, split_of, names, False, meta, labels=Path(annotations))


def import_voc(
    images: Path, annotations: Path, out: Path, *, workers: int = 2, **kw
) -> DatasetSummary:
    """Build a dataset folder from VOC XMLs (see :func:`plan_voc` for the split)."""
    check_replaceable(Path(out), "dataset")  # before reading anything
    return plan_voc(images, annotations, **kw).build(out, workers=workers)


def export_voc(data: Path, split: str, out: Path) -> int:
    """Write ``<out>/images/`` and ``<out>/annotations/*.xml`` for one split of a dataset folder."""
    table = Path(data) / f"{split}_labels.csv"
    if not table.is_file():
        raise UserError(f"{table} not found; is {data} a prepared dataset?")
    frames: dict[str, list] = defaultdict(list)
    sizes = {}
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ())[:8] != CSV_COLUMNS[:8]:
            raise UserError(f"{table}: unexpected columns {reader.fieldnames}")
        for row in reader:
            frames[row["filename"]].append(
                (row["class"], tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
            )
            sizes[row["filename"]] = (int(row["width"]), int(row["height"]))
    with atomic_dir(out, "voc", tool="prep.voc export", inputs=[data]) as tmp:
        (tmp / "images").mkdir()
        (tmp / "annotations").mkdir()
        for name, objects in frames.items():
            (tmp / "images" / name).write_bytes((Path(data) / "images" / split / name).read_bytes())
            xml = voc_xml(name, *sizes[name], objects)
            (tmp / "annotations" / f"{Path(name).stem}.xml").write_bytes(xml)
    return len(frames)


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m prep.voc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("import", help="VOC XML + images -> dataset folder")
    i.add_argument("--images", type=Path, required=True)
    i.add_argument("--annotations", type=Path, required=True)
    i.add_argument("--out", type=Path, required=True)
    add_split_by(i, "the dataset's ImageSets/Main lists")
    i.add_argument("--image-sets", type=Path, help="ImageSets/Main folder (default: beside XML)")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--workers", type=int, default=2)
    e = sub.add_parser("export", help="one split of a dataset folder -> VOC XML + images")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--split", choices=SPLITS, required=True)
    e.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        if args.cmd == "import":
            s = import_voc(
                args.images,
                args.annotations,
                args.out,
                split_by=args.split_by,
                image_sets=args.image_sets,
                seed=args.seed,
                workers=args.workers,
            )
            print(f"wrote {args.out}: {s.totals.frames} frames, {s.totals.boxes} boxes")
        else:
            n = export_voc(args.data, args.split, args.out)
            print(f"wrote {n} VOC annotations to {args.out}")
    except UserError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
