"""Pre-annotations: a video or an image folder, sampled, with the model's boxes, as imports for
labelling tools, so a person corrects boxes instead of drawing them all.

    python -m detect.preannotate --source clip.mp4 --every 15 --out labels/clip
    python -m detect.preannotate --source photos/ --out labels/photos
    python -m detect.preannotate --source clip.mp4 --detections clip.jsonl --every 15 --out ...

The folder gets ``images/`` (the sampled frames as JPEG, or the folder's own files) and, for
every ``--formats`` entry: ``coco.json`` (COCO instances, each box's ``score``; CVAT, FiftyOne,
Roboflow import it), ``cvat.xml`` (CVAT for images 1.1: upload the images as a task, then
Actions > Upload annotations) and ``labelstudio.json`` (tasks with the boxes as ``predictions``)
with ``labelstudio.xml`` (the labelling interface). Frames are kept every ``--every`` frames,
or when they have changed (``--change``: perceptual-hash bits from the last frame kept); the
last ``--held-out`` of them in time, one block, are held out (``eval``) in every format (COCO's
``split``, CVAT's subset, Label Studio's ``data.split``), so near-identical neighbours do not
end up on both sides. After correction, ``prep.coco``, ``prep.cvat`` or ``prep.labelstudio``
imports the tool's export into a dataset folder, keeping that split; ``--detections``: boxes
from an earlier ``detect ... --json`` run on the same source, no model run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.folders import atomic_dir, check_replaceable
from common.paths import DEFAULT_MODEL
from handspot.api import HandDetectorOptions
from handspot.detections import Detections
from handspot.errors import UserError, fail
from handspot.options import add_options, from_args, option
from handspot.signals import command
from handspot.sources import FrameSource
from pipelines.backends import BACKENDS, PYTHON
from prep.coco import coco_instances
from prep.cvat import cvat_xml
from prep.dedup import phash_gray
from prep.geometry import mask_polygons
from prep.labelled import Box, LabelledImage, label_text
from prep.labelstudio import LOCAL_FILES, label_config, tasks

FORMATS = ("coco", "cvat", "labelstudio")
PHASH_BITS = 64


@dataclass(frozen=True)
class PreannotateOptions:
    source: str = option("", "video file or image folder", type=str)
    out: str = option("", "folder to write (images/ and one file per format)", type=str)
    model: str = option(str(DEFAULT_MODEL), "exported model folder (default: the shipped model)")
    backend: str | None = option(
        None, "artifact to run (default: as detect)", type=str, choices=PYTHON
    )
    score_threshold: float = option(0.5, "boxes below this score are left out")
    every: int = option(1, "keep one frame in N")
    change: int = option(
        0, "keep a frame only when it differs from the last kept by this many pHash bits (0: off)"
    )
    max_frames: int = option(0, "read at most N frames of the source (0: all)")
    held_out: float = option(0.2, "the last fraction of kept frames, held out (0: none)")
    formats: str = option(",".join(FORMATS), "comma-separated: coco, cvat, labelstudio")
    detections: str | None = option(
        None, "boxes from detect --json on the same source, instead of running the model", type=str
    )
    masks: bool = option(
        False,
        "each hand's mask outline too (the landmark stage's GrabCut): COCO segmentation, "
        "CVAT polygons, Label Studio polygonlabels; with --detections, their segmentation",
    )
    url_prefix: str = option(
        LOCAL_FILES + "images/",
        "Label Studio: the image URL before each file name (default: its local-files URL, with "
        "the output folder as LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)",
    )

    def check(self) -> list[str]:
        """Every bad option as one error; returns the formats."""
        if not self.source or not self.out:
            raise UserError("--source and --out are required")
        formats = [f.strip() for f in self.formats.split(",") if f.strip()]
        if not formats or set(formats) - set(FORMATS):
            raise UserError(f"--formats: one or more of {', '.join(FORMATS)}, got {self.formats}")
        if self.every < 1 or self.change < 0 or self.max_frames < 0:
            raise UserError("--every must be at least 1; --change and --max-frames 0 or more")
        if self.change > PHASH_BITS:
            raise UserError(f"--change: a pHash has {PHASH_BITS} bits, so 0 to {PHASH_BITS}, "
                            f"got {self.change}")  # fmt: skip
        if not 0.0 <= self.held_out < 1.0:
            raise UserError(f"--held-out must be from 0 to below 1, got {self.held_out}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise UserError(
                f"--score-threshold must be between 0 and 1, got {self.score_threshold}"
            )
        if Path(self.source).is_file() and Path(self.source).suffix.lower() == ".json":
            raise UserError(f"--source {self.source}: a video or an image folder, not JSON")
        return formats


def read_detections(path: str) -> dict[int, tuple[str, Detections]]:
    """detect's JSON lines by frame index: ``{frame: (file, detections)}``."""
    found, n = {}, 0
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                row = json.loads(line)
                frame = row["frame"]
                if type(frame) is not int or frame < 0:
                    raise ValueError(f"frame must be a whole number from 0, got {frame!r}")
                det = Detections.from_json(row["detections"])
                for label in det.class_names:
                    label_text(label, f"{path}, line {n}")
                found[frame] = (str(row.get("file", "")), det)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError, IndexError, OverflowError) as e:
        raise UserError(f"{path}, line {n}: not a line of detect --json ({e})") from None
    return found


def preannotate(options: PreannotateOptions) -> dict:
    """Sample the source, detect (or read the detections), write the images and each format;
    returns the report (frames read, kept, boxes, what was skipped, the files written)."""
    formats = options.check()
    out = Path(options.out)
    check_replaceable(out, "preannotations")  # before reading anything
    source = FrameSource(options.source, max_frames=options.max_frames)
    given = read_detections(options.detections) if options.detections else None
    if options.masks and given and any(d.masks is None for _, d in given.values() if len(d)):
        raise UserError(f"--masks: {options.detections} has no masks (segmentation); write it "
                        "with detect --masks, or pre-annotate from the source")  # fmt: skip
    detector = None
    if given is None:
        found = HandDetectorOptions(
            model=options.model, backend=options.backend, score_threshold=options.score_threshold,
            masks=options.masks,
        )  # fmt: skip
        detector = found.detector_factory(backends=BACKENDS)()
    images: list[LabelledImage] = []
    skipped = Counter()
    try:
        inputs = [options.source] + ([options.detections] if options.detections else [])
        with atomic_dir(out, "preannotations", tool="detect.preannotate", inputs=inputs) as tmp:
            (tmp / "images").mkdir()
            for frame in sampled(source, options):
                if frame.file and not frame.file.isprintable():
                    skipped["unprintable_name"] += 1  # no XML or JSON tool matches it back
                    continue
                det = (
                    given_detections(given, frame, options)
                    if given is not None
                    else detector.detect(frame.rgb)
                )
                name = save_image(frame, tmp / "images", options.source)
                images.append(labelled(name, frame.rgb.shape, det, skipped, options.masks))
            if not images:
                raise UserError(f"{options.source}: no frame kept (of {source.read} read)")
            warnings = hold_out(images, options.held_out)
            classes = sorted({b.label for im in images for b in im.boxes}) or ["hand"]
            written = write_formats(tmp, images, classes, formats, options)
    finally:
        source.close()
        if detector is not None and hasattr(detector, "close"):
            detector.close()
    return {
        "read": source.read,
        "kept": len(images),
        "held_out": sum(im.split == "eval" for im in images),
        "boxes": sum(len(im.boxes) for im in images),
        "unreadable": source.skipped,
        "skipped": dict(skipped),
        "warnings": warnings,
        "files": written,
    }


def hold_out(images: list[LabelledImage], share: float) -> list[str]:
    """Mark the last ``share`` of the frames (one block in time) held out, keeping at least
    one frame to train on; the warnings when the share could not be met."""
    n = len(images)
    held = min(round(n * share), n - 1)
    for i, im in enumerate(images):
        im.split = "eval" if i >= n - held else "train"
    if share > 0 and held == 0:
        return [f"--held-out {share}: {n} frame(s) kept, none held out; keep more frames"]
    if held < round(n * share):
        return [f"--held-out {share}: {held} of {n} frames held out, one kept to train on"]
    return []


def sampled(source: FrameSource, options: PreannotateOptions):
    """The source's frames that are kept: one in ``--every``, and with ``--change``, those whose
    pHash moved that many bits from the last kept."""
    last_hash = None
    for frame in tqdm(source, total=len(source) or None, desc="preannotate", unit="frame"):
        if frame.index % options.every:
            continue
        if options.change:
            h = phash_gray(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY))
            if last_hash is not None and int(np.bitwise_count(h ^ last_hash)) < options.change:
                continue
            last_hash = h
        yield frame


def given_detections(given: dict, frame, options: PreannotateOptions) -> Detections:
    """The detections ``--detections`` gives for a frame, checked to be of this source."""
    file, det = given.get(frame.index, ("", Detections()))
    if file and frame.file and file != frame.file:
        raise UserError(
            f"{options.detections}: frame {frame.index} is {file}, the source's is "
            f"{frame.file}: not detections of this source"
        )
    return det.above(options.score_threshold)


def save_image(frame, folder: Path, source: str) -> str:
    """The frame into ``folder``: an image folder's own file as it is, a video's frame as JPEG;
    returns its name."""
    name = frame.file or f"{Path(source).stem}_{frame.index:06d}.jpg"
    if frame.file:
        shutil.copyfile(Path(source) / frame.file, folder / name)
        return name
    bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise UserError(f"cannot encode frame {frame.index}")
    (folder / name).write_bytes(jpeg.tobytes())
    return name


def labelled(
    name: str, shape: tuple, det: Detections, skipped: Counter, masks: bool = False
) -> LabelledImage:
    """A frame's pre-annotation (with ``masks``, each hand's mask outline); a box that is not
    four finite numbers is left out, and with ``masks`` a hand without a mask: both counted."""
    boxes = []
    for i, (xyxy, score, label) in enumerate(
        zip(det.boxes, det.scores, det.class_names, strict=True)
    ):
        if not (np.isfinite(xyxy).all() and np.isfinite(score)):
            skipped["non_finite_box"] += 1
            continue
        outline = ()
        if masks:
            outline = () if det.masks is None else mask_polygons(det.masks[i], tolerance=1.0)
            if not outline:
                skipped["no_mask"] += 1
                continue
        boxes.append(Box(label, tuple(float(v) for v in xyxy), float(score), outline))
    return LabelledImage(name, shape[1], shape[0], boxes)


def write_formats(folder: Path, images, classes, formats, options) -> list[str]:
    model = Path(options.model).name
    files = []
    if "coco" in formats:
        coco = coco_instances(images, classes, f"pre-annotations by {model}")
        (folder / "coco.json").write_text(json.dumps(coco, allow_nan=False))
        files.append("coco.json")
    if "cvat" in formats:
        (folder / "cvat.xml").write_bytes(cvat_xml(images, classes, Path(options.out).name))
        files.append("cvat.xml")
    if "labelstudio" in formats:
        found = tasks(images, model, options.url_prefix)
        (folder / "labelstudio.json").write_text(json.dumps(found, allow_nan=False))
        (folder / "labelstudio.xml").write_text(label_config(classes, polygons=options.masks))
        files += ["labelstudio.json", "labelstudio.xml"]
    return files


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detect.preannotate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, PreannotateOptions)
    args = p.parse_args(argv)
    try:
        report = preannotate(from_args(PreannotateOptions, args))
    except UserError as e:
        return fail(str(e))
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"wrote {args.out}: {report['kept']} of {report['read']} frames ({report['held_out']} "
        f"held out), {report['boxes']} boxes; {', '.join(report['files'])}"
        + (f"; {report['unreadable']} unreadable image(s) skipped" if report["unreadable"] else "")
        + "".join(f"; {n} skipped: {why.replace('_', ' ')}" for why, n in report["skipped"].items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
