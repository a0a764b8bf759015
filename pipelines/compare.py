"""Compare hand detectors on the same held-out frames: COCO AP50 and AP side by side.

    python -m pipelines.compare [--model exported/hands_ssd320] [--records "data/hands4/eval.*"]

Rows: our model through each exported artifact (SavedModel, int8 TFLite, TF.js in Node) and
handtrack.js 0.1.5's ssd320fpnlite run by TF.js in Node, its hand-pose classes (open, closed,
pinch, point) merged into "hand" and face and fingertip classes left out. Its older
ssdlitemobilenetv2 ships in the TF.js 0.x format (tensorflowjs_model.pb), which TF.js 4 cannot
load, so that row says so. Every row is scored by pycocotools on the same ground truth.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from itertools import islice
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detect import DEFAULT_MODEL
from detect.backends import load_detector
from detect.detections import Detections, nms
from prep.common import UserError, fail
from prep.tfrecord import read_records

HAND_POSES = (1, 2, 3, 4)


def coco_ap(truth: list[np.ndarray], found: list[Detections]) -> dict[str, float]:
    """AP and AP50 (class-agnostic 'hand') of detections against ground-truth xyxy boxes."""
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "hand"}]}
    dets = []
    for i, (boxes, det) in enumerate(zip(truth, found, strict=True), 1):
        gt["images"].append({"id": i})
        for b in boxes:
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [float(b[0]), float(b[1]), w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for b, s in zip(det.boxes, det.scores, strict=True):
            dets.append(
                {
                    "image_id": i,
                    "category_id": 1,
                    "score": float(s),
                    "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        if not dets:
            return {"AP": 0.0, "AP50": 0.0}
        evaluation = COCOeval(coco, coco.loadRes(dets), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"AP": float(evaluation.stats[0]), "AP50": float(evaluation.stats[1])}


def handtrack_detections(images: list[np.ndarray]) -> list[Detections]:
    from pipelines.import_handtrackjs import DETECTION_OUTPUTS, MODEL_SUBDIR, fetch_package
    from webexport.nodejs import run_graph

    names = DETECTION_OUTPUTS
    rows, _ = run_graph(fetch_package() / MODEL_SUBDIR, images, outputs=list(names.values()))
    out = []
    for image, row in zip(images, rows, strict=True):
        boxes, classes, scores, num = (
            row[names[k]][0]
            for k in ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
        )
        n = int(np.asarray(num).reshape(-1)[0])
        keep = np.isin(classes[:n].astype(int), HAND_POSES)
        det = Detections.from_normalized(
            boxes[:n][keep],
            scores[:n][keep],
            np.ones(int(keep.sum())),
            {1: "hand"},
            image.shape[1],
            image.shape[0],
        )
        out.append(det[nms(det.boxes, det.scores, 0.5, 100)] if len(det) else det)  # merged
    return out


def compare(model: Path, records: str, limit: int = 0) -> list[tuple[str, dict | str]]:
    examples = list(islice(read_records(records), limit or None))
    if not examples:
        raise UserError(f"no frames in {records}")
    images = [ex.image() for ex in examples]
    truth = [ex.boxes for ex in examples]
    rows: list[tuple[str, dict | str]] = []
    for backend, name in (
        ("saved_model", "ours, SavedModel"),
        ("tflite", "ours, int8 TFLite"),
        ("tfjs", "ours, TF.js (Node)"),
    ):
        try:
            detector = load_detector(model, backend, score_threshold=0.01)
            rows.append((name, coco_ap(truth, detector.detect_batch(images))))
        except UserError as e:
            rows.append((name, f"skipped: {e}"))
    try:
        rows.append(("handtrack.js ssd320fpnlite", coco_ap(truth, handtrack_detections(images))))
    except UserError as e:
        rows.append(("handtrack.js ssd320fpnlite", f"skipped: {e}"))
    rows.append(
        (
            "handtrack.js ssdlitemobilenetv2",
            "skipped: TF.js 0.x format (tensorflowjs_model.pb), not loadable by TF.js 4",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument(
        "--records",
        default="data/hands4/eval.record-?????-of-?????",
        help="held-out TFRecords (default: the held-out video of the shipped model)",
    )
    p.add_argument("--limit", type=int, default=0, help="first N frames only")
    args = p.parse_args(argv)
    try:
        rows = compare(args.model, args.records, args.limit)
    except UserError as e:
        return fail(str(e))
    print(f"\nheld-out frames: {args.records}")
    print("| detector                        | AP50  | AP    |")
    print("|---------------------------------|-------|-------|")
    for name, r in rows:
        if isinstance(r, str):
            print(f"| {name:<31} | {r} |")
        else:
            print(f"| {name:<31} | {r['AP50']:.3f} | {r['AP']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
