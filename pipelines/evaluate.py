"""Evaluate one checkpoint once and return: COCO box AP/AP50/AR, and for a mask model mask AP
and hand IoU. No waiting for new checkpoints (``model_main_tf2``'s eval mode waits 300 s).

    python -m pipelines.evaluate --model-dir runs/ssd [--checkpoint runs/ssd/ckpt-2000]
        [--pipeline runs/ssd/pipeline.config] [--out metrics.json] [--max-examples N]
    python -m pipelines.evaluate --model-dir runs/ssd --follow     # beside a training run

``--follow`` is the evaluation side-car: it evaluates each new checkpoint as soon as the
trainer has written it (polling the folder every ``--poll`` seconds), skips the ones that
already have metrics, and stops after the training's last step.

A ``prep.mix`` dataset is evaluated per source (one eval reader each) and printed as one table.
Metrics are written to ``<model-dir>/eval/metrics-<step>.json`` (or ``--out``) and to TensorBoard.
Hand IoU pools, over all images, the pixels of the union of detected masks (score >= 0.5) and
of the ground-truth masks: intersection / union, as hand segmentation papers report it; the
mean of per-image IoUs is given too. On images that show a face (MediaPipe's face detector),
``fp_face_img`` is the false detections (score >= 0.5, no hand at IoU 0.5) per image and
``on_face`` those lying on the face (see pipelines/faces.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from handspot.errors import UserError, fail
from handspot.signals import command
from pipelines import pipeline_config as cfg
from pipelines.odapi_compat import no_autograph, tf
from pipelines.results import EvalResult, SourceEval

from object_detection import eval_util, inputs, model_lib, model_lib_v2
from object_detection.builders import model_builder
from object_detection.core import standard_fields as fields
from object_detection.utils import config_util, label_map_util

HEADLINE = {
    "DetectionBoxes_Precision/mAP": "box_AP",
    "DetectionBoxes_Precision/mAP@.50IOU": "box_AP50",
    "DetectionBoxes_Precision/mAP@.75IOU": "box_AP75",
    "DetectionBoxes_Recall/AR@100": "box_AR100",
    "DetectionMasks_Precision/mAP": "mask_AP",
    "DetectionMasks_Precision/mAP@.50IOU": "mask_AP50",
    "hand_iou": "hand_IoU",
    "recall50_edge": "recall_edge",
    "recall50_inside": "recall_in",
    "false_per_face_image": "fp_face_img",
    "face_hits_per_face_image": "on_face",
}


class HandIoU:
    """Pixel IoU of the union of hand masks, pooled over images and averaged per image."""

    def __init__(self, score_threshold: float = 0.5):
        self.threshold = score_threshold
        self.intersection = self.union = 0
        self.per_image: list[float] = []

    def add(self, eval_dict: dict) -> None:
        det = eval_dict[fields.DetectionResultFields.detection_masks].numpy()
        scores = eval_dict[fields.DetectionResultFields.detection_scores].numpy()
        gt = eval_dict[fields.InputDataFields.groundtruth_instance_masks].numpy()
        n_gt = eval_dict[fields.InputDataFields.num_groundtruth_boxes].numpy()
        for b in range(det.shape[0]):
            pred = (det[b][scores[b] >= self.threshold] > 0).any(axis=0)
            truth = (gt[b][: int(n_gt[b])] > 0).any(axis=0)
            if pred.shape != truth.shape:
                pred = (
                    tf.image.resize(
                        pred[..., None].astype(np.uint8), truth.shape, "nearest"
                    ).numpy()[..., 0]
                    > 0
                )
            inter, union = int((pred & truth).sum()), int((pred | truth).sum())
            self.intersection += inter
            self.union += union
            if union:
                self.per_image.append(inter / union)

    def result(self) -> dict[str, float]:
        return {
            "hand_iou": self.intersection / self.union if self.union else float("nan"),
            "hand_iou_mean_per_image": float(np.mean(self.per_image))
            if self.per_image
            else float("nan"),
        }


class EdgeRecall:
    """Recall at IoU >= 0.5 and score >= 0.5, split into boxes touching the image border and
    the rest: where a detector misses cut-off hands (in egocentric video, the wearer's own hands
    at the bottom edge), COCO AP alone does not say so."""

    def __init__(self, score_threshold: float = 0.5, margin: float = 0.01):
        self.threshold, self.margin = score_threshold, margin
        self.found = {"edge": 0, "inside": 0}
        self.total = {"edge": 0, "inside": 0}

    def add(self, eval_dict: dict) -> None:
        from handspot.detections import box_iou

        r = fields.DetectionResultFields
        gt = eval_dict[fields.InputDataFields.groundtruth_boxes].numpy()
        shape = eval_dict[fields.InputDataFields.original_image_spatial_shape].numpy()
        boxes, scores = eval_dict[r.detection_boxes].numpy(), eval_dict[r.detection_scores].numpy()
        n_gt = eval_dict[fields.InputDataFields.num_groundtruth_boxes].numpy()
        for b in range(boxes.shape[0]):  # boxes are absolute [ymin, xmin, ymax, xmax]
            h, w = shape[b]
            truth = gt[b][: int(n_gt[b])]
            det = boxes[b][scores[b] >= self.threshold]
            iou = box_iou(truth, det) if len(det) else np.zeros((len(truth), 0))
            hit = (iou >= 0.5).any(axis=1)
            y0, x0, y1, x1 = (truth / [h, w, h, w]).T
            m = self.margin
            edge = (y0 <= m) | (x0 <= m) | (y1 >= 1 - m) | (x1 >= 1 - m)
            for name, sel in (("edge", edge), ("inside", ~edge)):
                self.total[name] += int(sel.sum())
                self.found[name] += int(hit[sel].sum())

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in ("edge", "inside"):
            out[f"boxes_{name}"] = self.total[name]
            out[f"recall50_{name}"] = (
                self.found[name] / self.total[name] if self.total[name] else float("nan")
            )
        return out


def resolve_checkpoint(model_dir: Path | None, checkpoint: str | None) -> str:
    if checkpoint:
        if Path(checkpoint).is_dir():
            model_dir, checkpoint = Path(checkpoint), None
        elif not cfg.checkpoint_exists(checkpoint):
            raise UserError(f"checkpoint {checkpoint} not found (expected {checkpoint}.index)")
        else:
            return checkpoint
    latest = tf.train.latest_checkpoint(str(model_dir)) if model_dir else None
    if not latest:
        raise UserError(f"no checkpoint in {model_dir}; train first (python -m pipelines.train)")
    return latest


def evaluate(
    pipeline: str | Path,
    checkpoint: str,
    *,
    max_examples: int | None = None,
    summary_dir: Path | None = None,
    quiet: bool = False,
    faces: bool = True,
) -> EvalResult:
    """COCO metrics (+ hand IoU for masks) of ``checkpoint`` on every eval input of ``pipeline``
    (a ``prep.mix`` dataset has one per source), and false detections per image on images that
    show a face (``faces``; skipped with a note when the face model cannot be had).

    Returns the ``EvalResult`` (one ``SourceEval`` an eval input)."""
    proto = cfg.load(pipeline)
    cfg.check(proto, source=str(pipeline), need_eval=True)
    configs = config_util.create_configs_from_pipeline_proto(proto)
    model_config, eval_config = configs["model"], configs["eval_config"]
    eval_config.batch_size = 1
    cfg.verify_checkpoint(checkpoint)
    model = model_builder.build(model_config, is_training=False)
    ckpt = tf.train.Checkpoint(model=model, step=tf.Variable(0, dtype=tf.int64))
    try:
        ckpt.restore(checkpoint).expect_partial()
    except (tf.errors.NotFoundError, ValueError, AssertionError) as e:
        raise UserError(f"checkpoint {checkpoint} does not match {pipeline}: {e}") from None
    step = int(ckpt.step.numpy())

    @tf.function(autograph=False)  # graph-mode OD API code (odapi_compat.no_autograph)
    def compute(features, labels):
        unstacked = model_lib.unstack_batch(dict(labels), unpad_groundtruth_tensors=True)
        losses, predictions = model_lib_v2._compute_losses_and_predictions_dicts(
            model,
            features,
            unstacked,
            training_step=None,
            add_regularization_loss=configs["train_config"].add_regularization_loss,
        )
        detections = model.postprocess(
            predictions, features[fields.InputDataFields.true_image_shape]
        )
        keep = (
            fields.InputDataFields.image,
            fields.InputDataFields.original_image,
            fields.InputDataFields.original_image_spatial_shape,
            fields.InputDataFields.true_image_shape,
            inputs.HASH_KEY,
        )
        return losses, detections, labels, {k: features[k] for k in keep}

    face_detector, notes = None, []
    if faces:
        try:
            from pipelines.faces import FaceDetector

            face_detector = FaceDetector()
        except UserError as e:
            notes.append(f"false detections on faces not measured: {e}")
    per_source = {}
    readers = configs["eval_input_configs"]
    for i, reader in enumerate(readers):
        name = reader.name or ("eval" if len(readers) == 1 else f"eval{i}")
        with no_autograph():
            dataset = inputs.eval_input(eval_config, reader, model_config, model=model)
        if max_examples:
            dataset = dataset.take(max_examples)
        per_source[name] = _evaluate_input(
            proto, eval_config, reader, dataset, compute, face_detector, name, quiet
        )
    result = EvalResult(checkpoint, step, per_source, notes)
    if summary_dir is not None:
        with tf.summary.create_file_writer(str(summary_dir)).as_default():
            for name, r in per_source.items():
                prefix = f"{name}/" if len(per_source) > 1 else ""
                for k, v in r.metrics.items():
                    tf.summary.scalar(prefix + k, v, step=step)
    return result


def _evaluate_input(proto, eval_config, reader, dataset, compute, face_detector, name, quiet):
    categories = list(
        label_map_util.create_category_index_from_labelmap(reader.label_map_path).values()
    )
    evaluators = eval_util.get_evaluators(
        eval_config, categories, eval_util.evaluator_options_from_eval_config(eval_config)
    )
    hand_iou = HandIoU() if cfg.has_masks(proto) else None
    edge_recall = EdgeRecall()
    face_fp = None
    if face_detector is not None:
        from pipelines.faces import FaceFalsePositives

        face_fp = FaceFalsePositives(face_detector)
    loss_sums: dict[str, float] = {}
    n = 0
    for features, labels in tqdm(dataset, desc=f"eval {name}", unit="image", disable=quiet):
        losses, detections, groundtruth, eval_features = compute(features, labels)
        eval_dict, _ = model_lib_v2.prepare_eval_dict(detections, dict(groundtruth), eval_features)
        for evaluator in evaluators:
            evaluator.add_eval_dict(eval_dict)
        if hand_iou is not None:
            hand_iou.add(eval_dict)
        edge_recall.add(eval_dict)
        if face_fp is not None:
            face_fp.add(*_face_inputs(eval_dict))
        for k, v in losses.items():
            loss_sums[k] = loss_sums.get(k, 0.0) + float(v)
        n += 1
    if n == 0:
        raise UserError(f"eval input {name} has no examples")
    metrics: dict[str, float] = {}
    for evaluator in evaluators:
        metrics.update({str(k): float(v) for k, v in evaluator.evaluate().items()})
    metrics.update({k: v / n for k, v in loss_sums.items()})
    if hand_iou is not None:
        metrics.update(hand_iou.result())
    metrics.update(edge_recall.result())
    if face_fp is not None:
        metrics.update(face_fp.result())
    headline = {short: round(metrics[k], 4) for k, short in HEADLINE.items() if k in metrics}
    return SourceEval(n, headline, metrics)


def _face_inputs(eval_dict: dict):
    """The image at its original size, truth and detections (pixels xyxy) of a batch-1 eval
    dict. The OD API keeps the "original" image resized to the model input (320x320): it is
    resized back, so that faces are found undistorted and in the boxes' pixel frame."""
    import cv2

    r = fields.DetectionResultFields
    image = eval_dict[fields.InputDataFields.original_image].numpy()[0]
    h, w = (int(v) for v in eval_dict[fields.InputDataFields.original_image_spatial_shape][0])
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    n_gt = int(eval_dict[fields.InputDataFields.num_groundtruth_boxes].numpy()[0])
    yxyx = eval_dict[fields.InputDataFields.groundtruth_boxes].numpy()[0][:n_gt]
    det = eval_dict[r.detection_boxes].numpy()[0]
    scores = eval_dict[r.detection_scores].numpy()[0]
    return image, yxyx[:, [1, 0, 3, 2]], det[:, [1, 0, 3, 2]], scores


def print_table(per_source: dict[str, SourceEval]) -> None:
    """One row per source, one column per headline metric."""
    keys = [k for k in HEADLINE.values() if any(k in r.headline for r in per_source.values())]
    print("| source | images | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, r in per_source.items():
        cells = [f"{r.headline[k]:.3f}" if k in r.headline else "-" for k in keys]
        print(f"| {name} | {r.examples} | " + " | ".join(cells) + " |")


def follow(
    model_dir: Path | None, pipeline: str | None, max_examples: int | None, poll: float = 5.0
) -> int:
    """Evaluate every checkpoint the trainer writes into ``model_dir`` until its last step."""
    import time

    if model_dir is None:
        raise UserError("--follow needs --model-dir (the training folder)")
    if poll <= 0:
        raise UserError("--poll must be > 0")
    model_dir = Path(model_dir)
    eval_dir = model_dir / "eval"
    print(f"following {model_dir} (Ctrl-C to stop)", flush=True)
    last = None
    while True:
        checkpoint = tf.train.latest_checkpoint(str(model_dir))  # listed once fully written
        config = Path(pipeline) if pipeline else model_dir / "pipeline.config"
        if checkpoint and checkpoint != last and config.is_file():
            last = checkpoint
            step = int(checkpoint.rsplit("-", 1)[-1])
            out = eval_dir / f"metrics-{step}.json"
            if not out.exists():
                try:
                    result = evaluate(
                        config, checkpoint, max_examples=max_examples, summary_dir=eval_dir
                    )
                except UserError as e:  # removed by max_to_keep meanwhile, or damaged
                    print(f"skipped {checkpoint}: {e}", flush=True)
                    continue
                result.save(out)
                print(f"{checkpoint} (step {step})", flush=True)
                print_table(result.per_source)
            if step >= cfg.load(config).train_config.num_steps:
                print(f"reached the last step ({step}); done")
                return 0
        time.sleep(poll)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model-dir",
        type=Path,
        help="training folder (its latest checkpoint and its as-run pipeline.config are used)",
    )
    p.add_argument("--checkpoint", help="a checkpoint prefix such as runs/ssd/ckpt-2000")
    p.add_argument("--pipeline", help="pipeline.config (default: <model-dir>/pipeline.config)")
    p.add_argument("--out", type=Path, help="metrics JSON (default: <model-dir>/eval/...)")
    p.add_argument("--max-examples", type=int)
    p.add_argument(
        "--follow", action="store_true", help="evaluate each new checkpoint of --model-dir"
    )
    p.add_argument("--poll", type=float, default=5.0, help="--follow: seconds between looks")
    return p


@command()
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.follow:
        try:
            return follow(args.model_dir, args.pipeline, args.max_examples, args.poll)
        except UserError as e:
            return fail(str(e))
        except KeyboardInterrupt:
            return 130
    try:
        if not args.model_dir and not args.checkpoint:
            raise UserError("pass --model-dir or --checkpoint")
        checkpoint = resolve_checkpoint(args.model_dir, args.checkpoint)
        model_dir = args.model_dir or Path(checkpoint).parent
        pipeline = args.pipeline or model_dir / "pipeline.config"
        result = evaluate(
            pipeline, checkpoint, max_examples=args.max_examples, summary_dir=model_dir / "eval"
        )
        out = args.out or model_dir / "eval" / f"metrics-{result.step}.json"
        result.save(out)
    except UserError as e:
        return fail(str(e))
    print(f"{checkpoint} (step {result.step})")
    print_table(result.per_source)
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
