"""Compare hand detectors on the same held-out frames, per source: COCO AP50 and AP side by
side, and the false detections per image on images that show a face.

    python -m pipelines.compare [--data data/mix] [--limit 100] [--rows saved_model,tflite,...]
    python -m pipelines.compare --records "ego=data/hands4/eval.record-*" --rows tflite,handtrack

Rows (``--rows``, default all): our model through each exported artifact (``saved_model``,
``tflite`` int8, ``tflite_fp32``, ``tflite_raw`` (the browser's int8 model, decoded in NumPy),
``tfjs`` in Node, ``litertjs``: the demo page itself on LiteRT.js in headless Chromium,
``mediapipe`` / ``mediapipe_raw``: MediaPipe Tasks' ObjectDetector on ``model_int8.tflite`` /
``litert/model_int8.tflite``, the phones' runtime, in MediaPipe's environment),
``landmarks`` / ``landmarks_int8`` (``tflite_raw`` followed by the landmark stage,
handspot/landmarks.py, on the lite landmark model / its int8 file),
``mediapipe_hands`` (MediaPipe Hands' own palm + landmark pipeline in MediaPipe's environment,
common/mediapipe_env.py: a box from each hand's keypoints, scored by its handedness confidence
since the API gives no detection score) and ``handtrack`` (handtrack.js 0.1.5's
ssd320fpnlite, its own TF.js graph run in Node: its pre-NMS boxes and class scores through the
same per-class NMS as ours, hand-pose classes (open, closed, pinch, point) merged into "hand",
face and fingertip classes left out; pipelines/handtrack.py). TF.js runs on the wasm backend
(15x the speed of Node's cpu backend; the OD API's NMS inside handtrack.js's graph is wrong on
wasm, which is why its pre-NMS outputs are read). Every row is a detector of the one interface
(``handspot.detector.Detector``), scored by pycocotools on the same ground truth; faces are found
by MediaPipe's face detector (pipelines/faces.py), itself behind that interface.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from common.paths import DEFAULT_MODEL
from handspot.detections import Detections
from handspot.detector import Detector
from handspot.errors import UserError, fail
from handspot.signals import command
from pipelines.backends import load_detector
from prep.tfrecord import read_records


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


ROWS = {
    "saved_model": "ours, SavedModel",
    "tflite": "ours, int8 TFLite",
    "tflite_fp32": "ours, fp32 TFLite",
    "tflite_raw": "ours, int8 raw TFLite + NumPy NMS",
    "tfjs": "ours, TF.js (Node, wasm)",
    "litertjs": "ours, LiteRT.js int8 (Chromium page)",
    "mediapipe": "ours, int8 TFLite in MediaPipe Tasks",
    "mediapipe_raw": "ours, int8 raw TFLite in MediaPipe Tasks",
    "landmarks": "ours, int8 raw TFLite + the landmark stage (lite)",
    "landmarks_int8": "ours, int8 raw TFLite + the landmark stage (lite_int8)",
    "handtrack": "handtrack.js ssd320fpnlite",
    "mediapipe_hands": "MediaPipe Hands (palm + landmarks)",
}


@dataclass
class Row:
    name: str
    per_source: dict[str, dict] = field(default_factory=dict)  # source -> {"AP", "AP50"}
    faces: dict = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str = ""


def make_detector(model: Path, row: str) -> Detector:
    """The detector behind one row, keeping every detection down to score 0.01 (for AP);
    MediaPipe Hands keeps the hands its palm detector finds at 0.1 and up."""
    if row == "handtrack":
        from webexport.handtrack import HandtrackJSDetector

        return HandtrackJSDetector(score_threshold=0.01)
    if row in ("landmarks", "landmarks_int8"):
        from handspot.landmarks import HandLandmarker, LandmarkOptions

        options = LandmarkOptions(model="lite_int8" if row == "landmarks_int8" else "lite")
        boxes = load_detector(model, "tflite_raw", score_threshold=0.01)
        return HandLandmarker(boxes, options)
    if row == "mediapipe_hands":
        from pipelines.mediapipe_env import MediaPipeHands

        return MediaPipeHands(min_confidence=0.1)
    return load_detector(model, row, score_threshold=0.01)


def compare(
    model: Path, sources: dict[str, str], limit: int = 0, rows: list[str] | None = None
) -> tuple[list[Row], dict[str, int]]:
    """Score each row on each source's first ``limit`` frames; return the rows and the frame
    count per source."""
    from pipelines.faces import FaceDetector, FaceFalsePositives

    rows = rows or list(ROWS)
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise UserError(f"--rows: unknown {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    data = {}
    for name, records in sources.items():
        examples = list(islice(read_records(records), limit or None))
        if not examples:
            raise UserError(f"no frames in {records}")
        data[name] = ([ex.image() for ex in examples], [ex.boxes for ex in examples])
    try:
        face_detector = FaceDetector()
        faces = {n: [face_detector.detect(im).boxes for im in ims] for n, (ims, _) in data.items()}
    except UserError:
        faces = None
    results = []
    for key in rows:
        row, t0 = Row(ROWS[key]), time.perf_counter()
        try:
            detector = make_detector(model, key)
            counter = FaceFalsePositives()
            for name, (images, truth) in data.items():
                here = FaceFalsePositives()
                if detector.batched:
                    found = detector.detect_batch(images)
                else:
                    bar = tqdm(images, f"{key} {name}", leave=False)
                    found = [detector.detect(im) for im in bar]
                row.per_source[name] = coco_ap(truth, found)
                for i, det in enumerate(found if faces else []):
                    for c in (counter, here):
                        c.add_faces(faces[name][i], truth[i], det.boxes, det.scores)
                if here.images:
                    row.per_source[name]["faces"] = here.result()
            if counter.images:
                row.faces = counter.result()
            detector.close()
        except UserError as e:
            row.skipped = str(e)
        row.seconds = time.perf_counter() - t0
        results.append(row)
    return results, {n: len(ims) for n, (ims, _) in data.items()}


def sources_of(data: Path) -> dict[str, list[str]]:
    """Each source's held-out records of a ``prep.mix`` folder (``prep.folder`` decides)."""
    from prep.folder import Dataset

    dataset = Dataset.read(data)
    if not dataset.mix:
        raise UserError(
            f"{data} is not a dataset folder written by prep.mix (run python -m prep.mix, or "
            "pass --records)"
        )
    return {name: held for name, s in dataset.sources.items() if (held := s.held_out())}


def print_table(rows: list[Row], counts: dict[str, int]) -> None:
    names = list(counts)
    head = " | ".join(f"{n} AP50 | {n} AP" for n in names)
    print(f"| detector | {head} | false/face image (on face) | s |")
    print("|---|" + "---|---|" * len(names) + "---|---|")
    for r in rows:
        if r.skipped:
            print(f"| {r.name} | skipped: {r.skipped} |")
            continue
        cells = " | ".join(
            f"{r.per_source[n]['AP50']:.3f} | {r.per_source[n]['AP']:.3f}" for n in names
        )
        face = (
            f"{r.faces['false_per_face_image']:.2f} ({r.faces['face_hits_per_face_image']:.2f})"
            if r.faces
            else "-"
        )
        print(f"| {r.name} | {cells} | {face} | {r.seconds:.0f} |")
    print("frames: " + ", ".join(f"{n} {c}" for n, c in counts.items()))
    shown = [r for r in rows if not r.skipped and r.faces]
    if not shown:
        return
    faced = [n for n in names if any("faces" in r.per_source[n] for r in shown)]
    print("\nfalse detections (score >= 0.5) per image with a face, per source (face images)")
    print("| detector | " + " | ".join(faced) + " |")
    print("|---|" + "---|" * len(faced))
    for r in shown:
        cells = []
        for n in faced:
            f = r.per_source[n].get("faces")
            cells.append(f"{f['false_per_face_image']:.3f} ({f['face_images']})" if f else "-")
        print(f"| {r.name} | " + " | ".join(cells) + " |")


def parse_records(items: list[str]) -> dict[str, str]:
    out = {}
    for i, item in enumerate(items):
        name, sep, glob = item.partition("=")
        out[name if sep else f"records{i + 1}" if len(items) > 1 else "held-out"] = (
            glob if sep else item
        )
    return out


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/mix"),
        help="a prep.mix folder: each source's eval and test records (default: %(default)s)",
    )
    p.add_argument(
        "--records",
        action="append",
        default=[],
        metavar="[NAME=]GLOB",
        help="held-out TFRecords instead of --data (repeat for several sources)",
    )
    p.add_argument("--limit", type=int, default=0, help="first N frames of each source only")
    p.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"comma-separated, from {', '.join(ROWS)} (default: all)",
    )
    args = p.parse_args(argv)
    try:
        if args.limit < 0:
            raise UserError("--limit must be 0 (all) or more")
        sources = parse_records(args.records) if args.records else sources_of(args.data)
        rows = [r.strip() for r in args.rows.split(",") if r.strip()]
        results, counts = compare(args.model, sources, args.limit, rows)
    except UserError as e:
        return fail(str(e))
    print(f"\nmodel: {args.model}")
    print_table(results, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
