"""Export a trained checkpoint to every artifact, with parity measured against the SavedModel.

    python -m pipelines.export --pipeline runs/ssd/pipeline.config --checkpoint-dir runs/ssd \\
        --out exported/hands_ssd320 [--parity-images 20] [--eval-metrics runs/ssd/eval/...json]

Writes, atomically, into ``--out``:
- ``saved_model/``: the OD API exporter's image-tensor SavedModel (uint8 ``[1, H, W, 3]`` in;
  ``detection_boxes/scores/classes``, ``num_detections`` and, for Mask R-CNN,
  ``detection_masks`` out);
- SSD only: ``model_fp32.tflite`` and ``model_int8.tflite`` (full-integer: int8 weights and
  activations, uint8 input, float outputs from the TFLite detection post-processing op;
  representative images from the training TFRecords), from the OD API's TFLite SSD graph, with
  TFLite metadata written by MediaPipe's own writer (input normalisation, labels, the four
  outputs), so MediaPipe Tasks' ObjectDetector (Android, iOS, web, Python) and the TFLite Task
  Library load them as they are;
- SSD only: ``litert/``: ``model_int8.tflite`` (uint8 pixels in, int8 kernels only) and
  ``model_fp32.tflite`` (float pixels in), the network without post-processing: box encodings
  ``[1, A, 4]`` and sigmoid class scores ``[1, A, K]`` out, plus ``anchors.bin`` (float32
  ``[A, 4]`` centre-size yc, xc, h, w). LiteRT.js in the browser runs these (it cannot run the
  TFLite detection post-processing op); the box decoding and NMS run beside it, in JS as in
  Python (``handspot.decode``);
- SSD only: ``tfjs/`` (float) and ``tfjs_uint8/`` (uint8-quantised weights) TF.js graph models
  of the network up to decoded boxes and class scores; the page does the NMS (the TF.js wasm
  backend mis-casts float to bool inside the OD API's NMS graph);
- ``recipe/``, if the folder had one (the training run's configs and results), is kept;
- ``labels.txt``, ``label_map.pbtxt``, ``pipeline.config`` and ``model_card.json`` (architecture,
  input size, classes, training data and steps, eval metrics, file sizes and parity).

Parity: each artifact's detections on held-out images (``litertjs``: the demo page's own, in
headless Chromium on LiteRT.js with threads; ``mediapipe*``: MediaPipe Tasks in Python and, in
Chromium, for the web), matched to the SavedModel's (same class, box IoU >= 0.9, both at
score >= 0.5): the matched fraction and the largest score difference.

    python -m pipelines.export --metadata exported/hands_ssd320

writes the metadata into a folder exported before it existed and adds the MediaPipe parity
rows to its card (the networks' bytes are unchanged).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.folders import atomic_dir
from common.labelmap import read_label_map
from handspot.card import ModelCard, Postprocess, RawOutputs, read_fields
from handspot.detections import match
from handspot.errors import UserError, fail
from handspot.signals import command
from pipelines import pipeline_config as cfg
from pipelines.backends import BACKENDS, BROWSER, PYTHON, load_detector
from pipelines.mediapipe_env import has_metadata, output_order, write_metadata
from pipelines.odapi_compat import tf
from pipelines.results import EvalResult
from prep.tfrecord import read_records
from webexport.browser import chromium_ready
from webexport.nodejs import node_ready

from object_detection import exporter_lib_v2
from object_detection.builders import model_builder, post_processing_builder
from object_detection.export_tflite_graph_lib_tf2 import SSDModule

PARITY_SCORE = 0.5
PARITY_IOU = 0.9
INT8_KEEP = 0.95
TASKS_FILES = ("model_int8.tflite", "model_fp32.tflite")  # with NMS: metadata for MediaPipe
RAW_FILES = ("litert/model_int8.tflite", "litert/model_fp32.tflite")  # raw: metadata + anchors
RUNTIMES = {  # file -> the runtimes it is for (the card's ``runtimes``)
    "saved_model": "TensorFlow 2 (Python, TF Serving): uint8 image in, boxes out",
    "model_int8.tflite": "MediaPipe Tasks ObjectDetector (Android, iOS, web, Python), TFLite "
    "Task Library, any LiteRT/TFLite interpreter: int8, uint8 pixels in, NMS in the graph, "
    "metadata (labels, normalisation); the file for phones",
    "model_fp32.tflite": "the same runtimes as model_int8.tflite, float (3x larger, GPU delegates)",
    "litert/model_int8.tflite": "LiteRT.js (the demo page), interpreters that cannot run "
    "TFLite_Detection_PostProcess, and MediaPipe Tasks ObjectDetector (its metadata holds the "
    "anchors and box coder: MediaPipe decodes and NMSes natively, the faster way there): raw "
    "box encodings and scores, uint8 pixels in",
    "litert/model_fp32.tflite": "as litert/model_int8.tflite, float pixels in",
    "tfjs": "TF.js (browser, Node): decoded boxes and scores, NMS beside it (hands.js)",
    "tfjs_uint8": "TF.js with uint8-quantised weights (4x smaller download)",
}


# ---------------------------------------------------------------- model and checkpoint


def restore(proto, checkpoint_dir: Path):
    """Build the model and restore the latest checkpoint, failing clearly on a mismatch."""
    checkpoint = tf.train.latest_checkpoint(str(checkpoint_dir))
    if checkpoint is None:
        raise UserError(f"no checkpoint in {checkpoint_dir}")
    cfg.verify_checkpoint(checkpoint)
    model = model_builder.build(proto.model, is_training=False)
    size = cfg.input_size(proto)
    images, shapes = model.preprocess(tf.zeros([1, size[0], size[1], 3]))
    model.predict(images, shapes)
    ckpt = tf.train.Checkpoint(model=model)
    try:
        ckpt.restore(checkpoint).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        first = str(e).strip().splitlines()[0][:300]
        raise UserError(
            f"checkpoint {checkpoint} does not match the pipeline config ({first})"
        ) from None
    return model, checkpoint


def step_of(checkpoint: str) -> int:
    """The training step saved in the checkpoint, else the number in its name."""
    reader = tf.train.load_checkpoint(checkpoint)
    if reader.has_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"):
        return int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    tail = checkpoint.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# ---------------------------------------------------------------- artifacts


def export_saved_model(proto, checkpoint_dir: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        exporter_lib_v2.export_inference_graph("image_tensor", proto, str(checkpoint_dir), tmp)
        shutil.move(str(Path(tmp) / "saved_model"), out)


class _NamedTFLiteSSD(tf.Module):
    """The OD API's TFLite SSD graph with named outputs (its own are positional)."""

    def __init__(self, proto, model, max_detections: int):
        super().__init__()
        self._ssd = SSDModule(proto, model, max_detections, False)
        self.model = model

    def serve(self, image):
        # The post-processing op's outputs in the order its TF stand-in returns them (the OD
        # API's docstring lists classes before scores; the converted model has them swapped).
        num, scores, classes, boxes = self._ssd.inference_fn(image)
        return {
            "num_detections": num,
            "detection_classes": classes,
            "detection_scores": scores,
            "detection_boxes": boxes,
        }


def representative_images(proto, count: int) -> list[np.ndarray]:
    """Training images resized and normalised as the TFLite input expects."""
    height, width = cfg.input_size(proto)
    patterns = list(proto.train_input_reader.tf_record_input_reader.input_path)
    images = [
        (tf.image.resize(ex.image()[None], (height, width)).numpy() / 127.5 - 1.0).astype(
            np.float32
        )
        for ex in interleave(patterns, count)
    ]
    if not images:
        raise UserError("no training images for the int8 representative dataset")
    return images


def export_tflite(proto, model, out: Path, representative: list[np.ndarray]) -> None:
    height, width = cfg.input_size(proto)
    max_det = proto.model.ssd.post_processing.batch_non_max_suppression.max_total_detections
    module = _NamedTFLiteSSD(proto, model, max_det)
    fn = tf.function(
        module.serve,
        input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="input")],
    )
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=fn.get_concrete_function())
        (out / "model_fp32.tflite").write_bytes(_convert(tmp, custom_ops=True))
        (out / "model_int8.tflite").write_bytes(_convert(tmp, representative, custom_ops=True))


def _convert(
    saved_model: str,
    calibration: list[np.ndarray] | None = None,
    *,
    custom_ops: bool = False,
    int8_only: bool = False,
) -> bytes:
    """A SavedModel to a .tflite: float, or with ``calibration`` full-integer with uint8 input
    (``int8_only``: no float fallback kernels allowed)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.allow_custom_ops = custom_ops
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([im] for im in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
            [] if int8_only else [tf.lite.OpsSet.TFLITE_BUILTINS]
        )
        converter.inference_input_type = tf.uint8
    return converter.convert()


class _EncodedSSD(tf.Module):
    """Pixels (float 0-255, ``[1, H, W, 3]`` at the model's input size) -> box encodings and
    sigmoid class scores of every anchor: the network with no post-processing."""

    def __init__(self, proto, model):
        super().__init__()
        self.model = model
        _, self._score_fn = post_processing_builder.build(proto.model.ssd.post_processing)

    def serve(self, pixels):
        p = self.model.predict(pixels / 127.5 - 1.0, true_image_shapes=None)
        scores = self._score_fn(p["class_predictions_with_background"])[:, :, 1:]
        return {"box_encodings": p["box_encodings"], "scores": scores}

    def anchors(self, height: int, width: int) -> np.ndarray:
        """The anchors as centre-size rows (yc, xc, h, w), normalised."""
        p = self.model.predict(tf.zeros([1, height, width, 3]), true_image_shapes=None)
        y0, x0, y1, x1 = np.split(p["anchors"].numpy().astype(np.float32), 4, axis=1)
        return np.concatenate([(y0 + y1) / 2, (x0 + x1) / 2, y1 - y0, x1 - x0], axis=1)


def export_litert(proto, model, out: Path, representative: list[np.ndarray]) -> RawOutputs:
    """``litert/``: the raw-output models and the anchors; returns the card's ``litert`` entry."""
    height, width = cfg.input_size(proto)
    module = _EncodedSSD(proto, model)
    fn = tf.function(
        module.serve,
        input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="pixels")],
    )
    folder = out / "litert"
    folder.mkdir()
    anchors = module.anchors(height, width)
    (folder / "anchors.bin").write_bytes(anchors.astype("<f4").tobytes())
    # back to pixels, the raw models' input (calibrated on exactly these values when shipped)
    pixels = [((im + 1.0) * 127.5).astype(np.float32) for im in representative]
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=fn.get_concrete_function())
        (folder / "model_fp32.tflite").write_bytes(_convert(tmp))
        (folder / "model_int8.tflite").write_bytes(_convert(tmp, pixels, int8_only=True))
    coder = proto.model.ssd.box_coder.faster_rcnn_box_coder
    return RawOutputs(
        anchors=len(anchors),
        box_coder_scales=[coder.y_scale, coder.x_scale, coder.height_scale, coder.width_scale],
        outputs={
            "box_encodings": [1, len(anchors), 4],
            "scores": [1, len(anchors), cfg.num_classes(proto)],
        },
    )


class _DecodedSSD(tf.Module):
    """Image (uint8, any size) -> ``[1, anchors, 4 + K]``: decoded boxes (normalised ymin,
    xmin, ymax, xmax) and per-class scores, before NMS. One output (named ``raw``, as shipped),
    so nothing depends on output names."""

    def __init__(self, proto, model):
        super().__init__()
        self.model = model
        _, self._score_fn = post_processing_builder.build(proto.model.ssd.post_processing)

    def serve(self, image):
        images, shapes = self.model.preprocess(tf.cast(image, tf.float32))
        p = self.model.predict(images, shapes)
        boxes, _ = self.model._batch_decode(p["box_encodings"], p["anchors"])
        scores = self._score_fn(p["class_predictions_with_background"])[:, :, 1:]
        return {"raw": tf.concat([boxes, scores], axis=-1)}


def export_tfjs(proto, model, out: Path) -> None:
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs

    module = _DecodedSSD(proto, model)
    fn = tf.function(
        module.serve, input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="image")]
    )
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=fn.get_concrete_function())
        tfjs.convert_tf_saved_model(
            tmp, str(out / "tfjs"), signature_def="serving_default", saved_model_tags="serve"
        )
        tfjs.convert_tf_saved_model(
            tmp,
            str(out / "tfjs_uint8"),
            signature_def="serving_default",
            saved_model_tags="serve",
            quantization_dtype_map={"uint8": True},
        )


# ---------------------------------------------------------------- parity


def held_out_images(proto, count: int) -> list[np.ndarray]:
    """The first held-out images of each eval reader (each source of a mix), taken in turn."""
    readers = list(proto.eval_input_reader) or [proto.train_input_reader]
    patterns = [list(r.tf_record_input_reader.input_path) for r in readers]
    return [ex.image() for ex in interleave(patterns, count)]


def interleave(patterns: list, count: int) -> list:
    """Up to ``count`` examples taken in turn from each pattern (a source of a mix each), so
    calibration and parity see every source, not just the first."""
    iterators = [read_records(p) for p in patterns]
    out: list = []
    while iterators and len(out) < count:
        for it in list(iterators):
            ex = next(it, None)
            if ex is None:
                iterators.remove(it)
            elif len(out) < count:
                out.append(ex)
    return out


def parity(out: Path, card: ModelCard, images: list[np.ndarray], backends: list[str]) -> dict:
    """Each backend's detections matched to the SavedModel's on ``images`` (the card is the
    one being written: the detectors get it from here, not from the folder)."""
    reference = load_detector(out, "saved_model", score_threshold=PARITY_SCORE, card=card)
    ref = [reference.detect(im) for im in tqdm(images, desc="parity: saved_model", leave=False)]
    total = sum(len(d) for d in ref)
    result = {
        "images": len(images),
        "score_threshold": PARITY_SCORE,
        "iou_threshold": PARITY_IOU,
        "saved_model_detections": total,
    }
    for backend in backends:
        detector = load_detector(out, backend, score_threshold=PARITY_SCORE - 0.1, card=card)
        dets = detector.detect_batch(images)
        detector.close()
        matched, score_diff, extra = 0, 0.0, 0
        for r, d in zip(ref, dets, strict=True):
            pairs = match(r, d, PARITY_IOU)
            matched += len(pairs)
            score_diff = max([score_diff, *(abs(r.scores[i] - d.scores[j]) for i, j, _ in pairs)])
            extra += len(d.above(PARITY_SCORE)) - len(pairs)
        result[backend] = {
            "matched_fraction": round(matched / total, 4) if total else None,
            "max_score_diff": round(float(score_diff), 4),
            "unmatched_extra_detections": int(max(extra, 0)),
        }
    return result


# ---------------------------------------------------------------- main


def export(
    pipeline: str | Path,
    checkpoint_dir: str | Path,
    out: str | Path,
    *,
    parity_images: int = 20,
    representative: int = 100,
    eval_metrics: dict | None = None,
    extra_card: dict | None = None,
    formats: tuple[str, ...] = ("saved_model", "tflite", "tfjs"),
) -> ModelCard:
    proto = cfg.load(pipeline)
    checkpoint_dir, out = Path(checkpoint_dir), Path(out)
    arch = cfg.meta_arch(proto)
    label_map = Path(proto.train_input_reader.label_map_path)
    labels = read_label_map(label_map)
    if len(labels) != cfg.num_classes(proto):
        raise UserError(
            f"{pipeline}: num_classes {cfg.num_classes(proto)} but {label_map} has "
            f"{len(labels)} classes"
        )
    model, checkpoint = restore(proto, checkpoint_dir)
    stages = ["saved_model"] + (["tflite", "tfjs"] if arch == "ssd" else [])
    stages = [s for s in stages if s in formats]
    notes, litert = [], None
    if arch != "ssd":
        notes.append(
            "TFLite and TF.js are exported for SSD only: the OD API's TFLite export "
            "supports SSD and CenterNet, not Faster/Mask R-CNN"
        )
    with atomic_dir(out, "model", tool="pipelines.export", inputs=[checkpoint_dir]) as tmp:
        if (out / "recipe").is_dir():  # the run's configs and results, kept across re-exports
            shutil.copytree(out / "recipe", tmp / "recipe")
        bar = tqdm(stages, desc="export", unit="artifact")
        for stage in bar:
            bar.set_postfix_str(stage)
            if stage == "saved_model":
                export_saved_model(proto, checkpoint_dir, tmp / "saved_model")
            elif stage == "tflite":
                calibration = representative_images(proto, representative)
                export_tflite(proto, model, tmp, calibration)
                litert = export_litert(proto, model, tmp, calibration)
                notes += write_tasks_metadata(tmp, labels, litert)
            else:
                export_tfjs(proto, model, tmp)
        (tmp / "checkpoint").mkdir()
        cfg.write_weights(model, tmp / "checkpoint")
        (tmp / "labels.txt").write_text("".join(f"{labels[i]}\n" for i in sorted(labels)))
        shutil.copy(label_map, tmp / "label_map.pbtxt")
        cfg.save(proto, tmp / "pipeline.config")
        card = ModelCard(
            name=out.name,
            architecture=_architecture(proto),
            input_size=cfg.input_size(proto),
            labels=labels,
            postprocess=_postprocess(proto),
            litert=litert,
            training={
                "checkpoint": Path(checkpoint).name,
                "steps": step_of(checkpoint),
                "batch_size": proto.train_config.batch_size,
                "train_records": list(proto.train_input_reader.tf_record_input_reader.input_path),
            },
            eval=eval_metrics or {},
            notes=notes,
        )
        if extra_card:  # training data, licences, recipe: new fields, or ones it replaces
            card = ModelCard.from_dict({**card.to_dict(), **extra_card})
            notes = card.notes
        backends = parity_backends(tmp, notes)
        card.parity = parity(tmp, card, held_out_images(proto, parity_images), backends)
        _file_table(card, tmp)
        int8 = card.parity.get("tflite", {}).get("matched_fraction")
        card.int8_keeps_detections = None if int8 is None else int8 >= INT8_KEEP
        card.save(tmp)
    return card


def write_tasks_metadata(
    folder: Path, labels: dict[int, str], litert: RawOutputs | None
) -> list[str]:
    """MediaPipe's object-detector metadata into the folder's TFLite files (the raw ones with
    the anchors and box coder, so MediaPipe decodes them itself); the card notes to add (none,
    or why the files have none: MediaPipe's environment could not be made)."""
    names = [labels[i] for i in sorted(labels)]
    files = [f for f in (*TASKS_FILES, *RAW_FILES) if (folder / f).is_file()]
    try:
        for name in tqdm(files, desc="TFLite metadata", leave=False):
            if name in RAW_FILES:
                write_metadata(
                    folder / name,
                    names,
                    mean=0.0,  # pixels in, 0-255
                    std=1.0,
                    anchors=folder / "litert" / "anchors.bin",
                    scales_xywh=litert.scales_xywh,
                )
            else:
                write_metadata(folder / name, names)
    except UserError as e:
        print(f"warning: TFLite files written without metadata: {e}", file=sys.stderr)
        return [f"no TFLite metadata (MediaPipe Tasks will refuse the files): {e}"]
    return []


def parity_backends(folder: Path, notes: list[str]) -> list[str]:
    """Every backend the folder's files and this machine can run, but the SavedModel; a note
    for each group left out."""
    backends = [
        b for b in PYTHON if b != "saved_model" and (folder / BACKENDS[b].artifact).exists()
    ]
    tasks = [b for b in BACKENDS if b.startswith("mediapipe")]
    files = [f for f in (*TASKS_FILES, *RAW_FILES) if (folder / f).exists()]
    if not all(has_metadata(folder / f) for f in files):
        backends = [b for b in backends if b not in tasks]
        notes.append("parity of MediaPipe Tasks not measured: the TFLite files have no metadata")
    else:  # MediaPipe Tasks for the web, in headless Chromium
        web = ("mediapipe_web", "mediapipe_web_raw")
        backends += [b for b in web if BACKENDS[b].artifact in files]
    if (folder / BACKENDS["litertjs"].artifact).exists():
        backends.append("litertjs")  # the page's default runtime, in headless Chromium
    if not node_ready():
        skipped = [b for b in backends if b.startswith(("tfjs", "litertjs", "mediapipe_web"))]
        backends = [b for b in backends if b not in skipped]
        if skipped:
            notes.append(f"parity of {', '.join(skipped)} not measured: npm packages missing")
    browser = [b for b in backends if b in BROWSER]
    if browser and not chromium_ready():
        backends = [b for b in backends if b not in browser]
        notes.append(f"parity of {', '.join(browser)} not measured: headless Chromium missing")
    return backends


def _file_table(card: ModelCard, folder: Path) -> None:
    """The card's file sizes and which runtime each file is for."""
    files = dict.fromkeys([*(BACKENDS[b].artifact for b in PYTHON), "litert/anchors.bin"])
    card.files_mb = {f: round(_size(folder / f) / 2**20, 2) for f in files if (folder / f).exists()}
    card.runtimes = {f: what for f, what in RUNTIMES.items() if (folder / f).exists()}


def add_metadata(folder: str | Path) -> ModelCard:
    """Metadata into an exported folder's TFLite files (each replaced atomically) and the
    parity rows of the backends that run those files, file sizes and runtimes into its card:
    what a re-export adds, for a folder exported before the metadata existed (parity on as
    many images as the card's; the other rows are kept, the networks being unchanged)."""
    folder = Path(folder)
    card = ModelCard.load(folder)
    parity_images = card.parity.get("images", 20)
    missing = [f for f in TASKS_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"{folder} has no {', '.join(missing)}: nothing to write metadata into")
    proto = cfg.load(folder / "pipeline.config")
    for name in (*TASKS_FILES, *RAW_FILES):  # every file loads, before any is touched
        if (folder / name).is_file():
            output_order(folder / name)
    images = held_out_images(proto, parity_images)  # the data is here, before writing
    if notes := write_tasks_metadata(folder, card.labels, card.litert):
        raise UserError(notes[0])
    notes = [n for n in card.notes if "MediaPipe" not in n]
    # the rows metadata changes (MediaPipe's) and any the card lacks; the networks are the same
    backends = [
        b
        for b in parity_backends(folder, notes)
        if b.startswith("mediapipe") or b not in card.parity
    ]
    rows = parity(folder, card, images, backends)
    card.parity = {**card.parity, **{b: rows[b] for b in backends}}
    card.notes = notes
    _file_table(card, folder)
    card.save(folder)
    return card


def _size(path: Path) -> int:
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )


def _architecture(proto) -> str:
    if cfg.meta_arch(proto) == "ssd":
        return f"SSD {proto.model.ssd.feature_extractor.type} (OD API)"
    fr = proto.model.faster_rcnn
    kind = "Mask R-CNN" if cfg.has_masks(proto) else "Faster R-CNN"
    return f"{kind} {fr.feature_extractor.type} (OD API)"


def _postprocess(proto) -> Postprocess:
    arch = getattr(proto.model, cfg.meta_arch(proto))
    nms = (
        arch.post_processing if cfg.meta_arch(proto) == "ssd" else arch.second_stage_post_processing
    ).batch_non_max_suppression
    return Postprocess(
        iou_threshold=round(nms.iou_threshold, 4),
        max_detections=nms.max_total_detections,
        score="sigmoid" if cfg.meta_arch(proto) == "ssd" else "softmax",
    )


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pipeline", help="pipeline.config (default: <checkpoint-dir>/pipeline.config)")
    p.add_argument("--checkpoint-dir", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--metadata",
        type=Path,
        metavar="FOLDER",
        help="only write the TFLite metadata into an exported folder and add its parity rows",
    )
    p.add_argument("--parity-images", type=int)
    p.add_argument("--representative-images", type=int, default=100)
    p.add_argument("--eval-metrics", type=Path, help="metrics JSON from pipelines.evaluate")
    p.add_argument(
        "--card",
        type=Path,
        help="a JSON object merged into model_card.json (training data and licences, recipe)",
    )
    p.add_argument("--no-tfjs", action="store_true")
    args = p.parse_args(argv)
    if args.metadata is None and (args.checkpoint_dir is None or args.out is None):
        p.error("--checkpoint-dir and --out are required (or --metadata FOLDER)")
    if args.metadata is not None and args.parity_images is not None:
        p.error("--metadata measures on as many images as the card's other parity rows")
    try:
        if args.metadata is not None:
            card = add_metadata(args.metadata)
            _print_parity(args.metadata, card)
            return 0
        pipeline = args.pipeline or args.checkpoint_dir / "pipeline.config"
        metrics = EvalResult.read(args.eval_metrics).card_eval() if args.eval_metrics else None
        extra = read_fields(args.card, "--card") if args.card else None
        card = export(
            pipeline,
            args.checkpoint_dir,
            args.out,
            parity_images=args.parity_images or 20,
            representative=args.representative_images,
            eval_metrics=metrics,
            extra_card=extra,
            formats=("saved_model", "tflite")
            if args.no_tfjs
            else ("saved_model", "tflite", "tfjs"),
        )
    except UserError as e:
        return fail(str(e))
    _print_parity(args.out, card)
    return 0


def _print_parity(folder: Path, card: ModelCard) -> None:
    print(f"wrote {folder}: {', '.join(card.files_mb)}")
    for backend, figures in card.parity.items():
        if isinstance(figures, dict):
            print(
                f"  parity {backend:<18} matched {figures['matched_fraction']}  "
                f"max score diff {figures['max_score_diff']}"
            )


if __name__ == "__main__":
    sys.exit(main())
