"""The landmark stage's int8 file: MediaPipe's lite hand landmark model quantized for CPUs whose
int8 kernels are fast (VNNI, ARM dot product).

    python -m pipelines.quantize_landmarks [--out handspot/models/hand_landmark_lite_int8.tflite]

The lite model (float16 weights) is turned into float32, calibrated on the crops the stage
itself takes of the shared sources' training pictures (the upright crop around each detected
box, the turned second pass, the crop tracking takes from the keypoints) and quantized to int8,
weights per channel, float in and out. Its first ``--float-ops`` operations stay float: the
error of the keypoints piles up in the early, high-resolution layers (all int8: 3% of the hand's
size on average; first 14 float: 1%, for 1.3 ms against the float file's 2.2 and the all-int8
1.1 on a VNNI CPU). The agreement with the float model on the held-out pictures' crops is
printed and kept beside the file (``.json``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from handspot.assets import LANDMARK_MODELS, MODELS, landmark_model
from handspot.errors import UserError
from handspot.files import atomic_write_bytes, atomic_write_json
from handspot.signals import command

OUT = MODELS / LANDMARK_MODELS["lite_int8"]
FLOAT_OPS = 14


@dataclass(frozen=True)
class QuantizeOptions:
    out: Path = OUT
    calibration_crops: int = 600  # crops of the training pictures the ranges are taken on
    float_ops: int = FLOAT_OPS  # the first operations kept float
    every: int = 4  # every N-th picture of each source's split
    seed: int = 0


def float32_model(path: Path) -> bytes:
    """``path`` with its float16 weights as float32 constants (the DEQUANTIZE ops gone), which
    the calibrator reads."""
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.read_model(str(path))
    graph = model.subgraphs[0]
    kept = []
    for op in graph.operators:
        src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        name = fu.opcode_to_name(model, op.opcodeIndex)
        if name == "DEQUANTIZE" and src.type == fb.TensorType.FLOAT16:
            weights = np.frombuffer(bytes(model.buffers[src.buffer].data), np.float16)
            buffer = fb.BufferT()
            buffer.data = np.frombuffer(weights.astype(np.float32).tobytes(), np.uint8)
            model.buffers.append(buffer)
            dst.buffer = len(model.buffers) - 1
        else:
            kept.append(op)
    used = sorted({op.opcodeIndex for op in kept})  # an unused DEQUANTIZE v2 fails to load
    model.operatorCodes = [model.operatorCodes[i] for i in used]
    for op in kept:
        op.opcodeIndex = used.index(op.opcodeIndex)
    graph.operators = kept
    return bytes(fu.convert_object_to_bytearray(model))


def stage_crops(pictures: list[Path], desc: str) -> np.ndarray:
    """The crops the landmark stage feeds its model on ``pictures`` (float16, 0..1): the
    upright and turned crops of image mode and, for each hand found, tracking's crop from its
    keypoints."""
    import cv2

    from common.paths import DEFAULT_MODEL
    from handspot.landmarks import HandLandmarker, LandmarkOptions, Roi
    from pipelines.backends import load_detector

    detector = load_detector(DEFAULT_MODEL, "tflite_raw", score_threshold=0.1)
    stage = HandLandmarker(detector, LandmarkOptions(model="lite"))
    crops, run = [], stage.model.run

    def kept(image, roi):
        crops.append(stage.model.crop(image, roi).astype(np.float16))
        return run(image, roi)

    stage.model.run = kept
    for path in tqdm(pictures, desc=desc, unit="picture"):
        bgr = cv2.imread(str(path))
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for points in stage.detect(rgb).above(0.5).keypoints:
            crops.append(stage.model.crop(rgb, Roi.from_keypoints(points)).astype(np.float16))
    return np.stack(crops) if crops else np.zeros((0, 224, 224, 3), np.float16)


def quantize(model: bytes, crops: np.ndarray, float_ops: int = FLOAT_OPS) -> bytes:
    """``model`` in int8 (float in and out), its ranges from ``crops``, the first
    ``float_ops`` operations left float."""
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import convert
    from tensorflow.lite.python.optimize import calibrator

    def batches():
        for crop in tqdm(crops, desc="calibrate", unit="crop"):
            yield [crop[None].astype(np.float32)]

    calibrated = calibrator.Calibrator(model).calibrate(batches)
    it = Interpreter(model_content=model)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    first = [names[op["outputs"][0]] for op in it._get_ops_details()[:float_ops]]
    return convert.mlir_quantize(calibrated, denylisted_nodes=first)


def agreement(reference: bytes, candidate: bytes, crops: np.ndarray) -> dict[str, float]:
    """How ``candidate`` agrees with ``reference`` on ``crops``: where the reference sees a
    hand, the keypoints' mean distance over the hand's size (mean and 95th percentile) and
    the share of same left/right; on all crops, the share of same hand/no hand."""
    ref, cand = _outputs(reference, crops), _outputs(candidate, crops)
    hand = ref["presence"] >= 0.5
    a, b = ref["keypoints"][hand], cand["keypoints"][hand]
    size = np.maximum(np.ptp(a, axis=1).max(axis=1), 1.0)
    err = np.linalg.norm(a - b, axis=2).mean(axis=1) / size
    same = (ref["left"] >= 0.5) == (cand["left"] >= 0.5)
    return {
        "crops": len(crops),
        "hands": int(hand.sum()),
        "keypoint_error_mean": round(float(err.mean()), 4) if len(err) else float("nan"),
        "keypoint_error_p95": round(float(np.percentile(err, 95)), 4) if len(err) else float("nan"),
        "same_presence": round(float(((cand["presence"] >= 0.5) == hand).mean()), 4),
        "same_left_right": round(float(same[hand].mean()), 4) if hand.any() else float("nan"),
    }


def _outputs(model: bytes, crops: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    x = it.get_input_details()[0]["index"]
    out = {d["name"]: d["index"] for d in it.get_output_details()}
    points, presence, left = [], [], []
    for crop in crops:
        it.set_tensor(x, crop[None].astype(np.float32))
        it.invoke()
        points.append(it.get_tensor(out["Identity"]).reshape(21, 3)[:, :2].copy())
        presence.append(it.get_tensor(out["Identity_1"]).item())
        left.append(it.get_tensor(out["Identity_2"]).item())
    return {"keypoints": np.array(points), "presence": np.array(presence),
            "left": np.array(left)}  # fmt: skip


def build(options: QuantizeOptions) -> dict:
    """Calibrate, quantize, measure on the held-out crops; the file and its report written."""
    from prep.samples import split_pictures

    train, test = (split_pictures(s, options.every) for s in ("train", "test"))
    if not train or not test:
        raise UserError("the shared data (EgoHands sample, webcam sets) is needed to calibrate")
    reference = float32_model(landmark_model("lite"))
    crops = stage_crops(train, "training crops")
    pick = np.random.default_rng(options.seed).permutation(len(crops))
    model = quantize(reference, crops[pick[: options.calibration_crops]], options.float_ops)
    held_out = stage_crops(test, "held-out crops")
    report = {"options": {k: v for k, v in asdict(options).items() if k != "out"},
              "agreement_with_float": agreement(reference, model, held_out)}  # fmt: skip
    atomic_write_bytes(options.out, model)
    atomic_write_json(options.out.with_suffix(".json"), report)
    return report


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=OUT, help="the int8 file to write")
    p.add_argument("--calibration-crops", type=int, default=600)
    p.add_argument("--float-ops", type=int, default=FLOAT_OPS,
                   help="the first operations kept float")  # fmt: skip
    p.add_argument("--every", type=int, default=4, help="every N-th picture of each source")
    a = p.parse_args(argv)
    if a.calibration_crops < 1 or a.every < 1 or a.float_ops < 0:
        raise UserError("--calibration-crops and --every must be >= 1, --float-ops >= 0")
    options = QuantizeOptions(a.out, a.calibration_crops, a.float_ops, a.every)
    report = build(options)["agreement_with_float"]
    print(f"wrote {options.out} ({options.out.stat().st_size / 1e6:.2f} MB)")
    print("| against the float model, held-out crops | |\n|---|---|")
    for key, value in report.items():
        print(f"| {key} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
