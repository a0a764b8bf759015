"""Hand masks measured without mask labels: the stage's variants on held-out frames of every
shared source, by proxies, and their cost.

    python -m detect.masks_bench [--images 40] [--json masks.json]

On the held-out frames of each source (EgoHands' CARDS_LIVINGROOM_B_T video, each webcam set's
test split), the shipped detector with the landmark stage finds the hands; each found hand that
matches a labelled box (IoU >= 0.5) gets a mask from every variant below, and each variant is
scored by:
- box IoU: the IoU of the mask's own bounding box with the labelled box (a mask that leaks
  into the arm, a face or the table, or misses fingers, moves its box);
- inside: the share of the mask's pixels inside the labelled box (leaks fall outside);
- fill: the mask's area over the labelled box's (a hand fills part of its box: a filled box
  is 1.0);
- agreement: the mean IoU of the variant's mask with the default's;
- ms a hand (this CPU, the variant alone, after the stage).
The shared sets hold no mask labels: these proxies catch leaks and misses, not every error;
a set of real masks kept aside measures the result.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from handspot.calibrate import cpu
from handspot.detections import box_iou
from handspot.errors import UserError, fail
from handspot.masks import Masker, MaskOptions
from prep.samples import DEFAULT_SAMPLE, HELD_OUT_VIDEO, WEBCAM, WEBCAM_SETS

VARIANTS = {
    "grabcut (default)": MaskOptions(),
    "grabcut, band 0.3": MaskOptions(band=0.3),
    "grabcut, band 0.6": MaskOptions(band=0.6),
    "grabcut, no wrist cut": MaskOptions(wrist=99.0),
    "grabcut, no sure ring": MaskOptions(ring=0.0),
    "grabcut, 96 px a side": MaskOptions(side=96),
    "grabcut, 192 px a side": MaskOptions(side=192),
    "skeleton (the seed)": MaskOptions(method="skeleton"),
    "box (filled)": MaskOptions(method="box"),
}
DEFAULT = "grabcut (default)"


def labelled_frames(per_source: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Held-out frames of each shared source with their labelled boxes (xyxy): RGB."""
    out: dict[str, list] = {}
    csv_path = DEFAULT_SAMPLE / "boxes.csv"
    if csv_path.is_file():
        boxes: dict[str, list] = {}
        with open(csv_path) as f:
            for row in csv.DictReader(f):
                if row["filename"].startswith(f"{HELD_OUT_VIDEO}/"):
                    box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
                    boxes.setdefault(row["filename"], []).append(box)
        names = sorted(boxes)[::2][:per_source]
        out["ego (first person)"] = [(read(DEFAULT_SAMPLE / n), np.array(boxes[n])) for n in names]
    names = ("subhih (webcam)", "asl (signs)", "fingers (phone)")
    for name, folder in zip(names, WEBCAM_SETS, strict=True):
        path = WEBCAM / folder / "annotations.json"
        if not path.is_file():
            continue
        coco = json.loads(path.read_text())
        test = [im for im in coco["images"] if im["split"] == "test"][::5][:per_source]
        by_image: dict[int, list] = {}
        for a in coco["annotations"]:
            x, y, w, h = a["bbox"]
            by_image.setdefault(a["image_id"], []).append([x, y, x + w, y + h])
        out[name] = [
            (read(WEBCAM / folder / "images" / im["file_name"]), np.array(by_image[im["id"]]))
            for im in test
            if im["id"] in by_image
        ]
    if not out:
        raise UserError(f"no shared data found under {DEFAULT_SAMPLE} or {WEBCAM}")
    return out


def read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def proxies(mask: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The variant-free scores of one mask against its labelled box."""
    x0, y0, x1, y1 = (round(v) for v in truth)
    area = max((x1 - x0) * (y1 - y0), 1)
    total = int(mask.sum())
    box = mask_box(mask)
    inside = int(mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)].sum())
    return {
        "box_iou": 0.0 if box is None else float(box_iou(box[None], truth[None])[0, 0]),
        "inside": inside / total if total else 0.0,
        "fill": total / area,
    }


def measure(frames: dict[str, list], variants: dict[str, MaskOptions] = VARIANTS) -> dict:
    """``{source: {variant: {box_iou, inside, fill, agreement, ms, hands}}}``."""
    from handspot.api import HandDetectorOptions

    detector = HandDetectorOptions().detector_factory()()
    maskers = {name: Masker(o) for name, o in variants.items()}
    result = {}
    for source, items in frames.items():
        scores: dict[str, dict[str, list]] = {v: {} for v in variants}
        for rgb, truth in tqdm(items, desc=source, leave=False):
            det = detector.detect(rgb)
            if not len(det):
                continue
            iou = box_iou(det.boxes, truth.astype(np.float32))
            for i in np.flatnonzero(iou.max(axis=1) >= 0.5):
                label = truth[int(iou[i].argmax())].astype(np.float32)
                masks = {}
                for name, masker in maskers.items():
                    start = time.perf_counter()
                    masks[name] = masker.mask(rgb, det.keypoints[i], det.boxes[i])
                    took = 1000 * (time.perf_counter() - start)
                    row = proxies(masks[name], label) | {"ms": took}
                    for k, v in row.items():
                        scores[name].setdefault(k, []).append(v)
                for name, mask in masks.items():
                    both = np.logical_and(mask, masks[DEFAULT]).sum()
                    either = np.logical_or(mask, masks[DEFAULT]).sum()
                    scores[name].setdefault("agreement", []).append(both / either if either else 1)
        result[source] = {
            v: {k: float(statistics.mean(xs)) for k, xs in s.items()}
            | {"hands": len(s.get("ms", []))}
            for v, s in scores.items()
        }
    return result


def table(result: dict) -> str:
    lines = [f"CPU: {cpu()}", "",
             "| source | variant | hands | box IoU | inside | fill | agreement | ms a hand |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for source, variants in result.items():
        for name, r in variants.items():
            if not r["hands"]:
                continue
            lines.append(
                f"| {source} | {name} | {r['hands']} | {r['box_iou']:.3f} | {r['inside']:.3f} "
                f"| {r['fill']:.2f} | {r['agreement']:.3f} | {r['ms']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detect.masks_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--images", type=int, default=40, help="held-out frames a source")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    try:
        if args.images < 1:
            raise UserError("--images must be at least 1")
        result = measure(labelled_frames(args.images))
        if args.json:
            from handspot.files import atomic_write_json

            atomic_write_json(args.json, result)
    except UserError as e:
        return fail(str(e))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
