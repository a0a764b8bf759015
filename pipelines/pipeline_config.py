"""Pipeline configs as data: load and validate with the OD API's own protos, and fill the
templates in ``pipelines/`` for a dataset folder.

    python -m pipelines.configure --data data/egohands --model ssd --out runs/ssd/pipeline.config
"""

from __future__ import annotations

import glob
import math
from pathlib import Path

from google.protobuf import text_format

from common.labelmap import read_label_map
from handspot.errors import UserError
from handspot.files import atomic_write_bytes
from pipelines import odapi_compat  # the protos need its shims; odapi_compat.tf is TF

from object_detection.protos import pipeline_pb2

HERE = Path(__file__).resolve().parent
TEMPLATES = {
    "ssd": HERE / "ssd_mobilenet_v2_fpnlite_320_hands.config",
    "mask_rcnn": HERE / "mask_rcnn_resnet50_320_hands.config",
}
HAND_TYPES = {"myleft", "myright", "yourleft", "yourright"}
Pipeline = pipeline_pb2.TrainEvalPipelineConfig


def parse(text: str, source: str = "<config>") -> Pipeline:
    """Parse pipeline text; a syntax error or an unknown field is one message naming it."""
    proto = Pipeline()
    try:
        text_format.Merge(text, proto)
    except text_format.ParseError as e:
        raise UserError(f"{source}: invalid pipeline config: {e}") from None
    return proto


def load(path: str | Path) -> Pipeline:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pipeline config not found: {path}")
    return parse(path.read_text(), str(path))


def to_text(proto: Pipeline) -> str:
    return text_format.MessageToString(proto)


def save(proto: Pipeline, path: str | Path) -> None:
    atomic_write_bytes(Path(path), to_text(proto).encode())


def meta_arch(proto: Pipeline) -> str:
    return proto.model.WhichOneof("model")


def num_classes(proto: Pipeline) -> int:
    return getattr(proto.model, meta_arch(proto)).num_classes


def has_masks(proto: Pipeline) -> bool:
    return meta_arch(proto) == "faster_rcnn" and proto.model.faster_rcnn.number_of_stages == 3


def checkpoint_exists(prefix: str) -> bool:
    return bool(prefix) and Path(prefix + ".index").is_file()


def verify_checkpoint(prefix: str, hint: str = "") -> None:
    """Read every tensor of a checkpoint once: a truncated ``.data`` or a damaged ``.index`` is
    one error naming the file (and ``hint``: what to do), not a TensorFlow traceback."""
    tf = odapi_compat.tf
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError) as e:
        files = sorted(Path(prefix).parent.glob(Path(prefix).name + ".*"))
        named = ", ".join(str(f) for f in files) or prefix
        message = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {prefix} is damaged ({message}): {named}{hint}") from None


def check(proto: Pipeline, *, source: str = "<config>", need_eval: bool = False) -> None:
    """Semantic checks the protos cannot do; each failure names the field."""
    arch = meta_arch(proto)
    if arch not in ("ssd", "faster_rcnn"):
        raise UserError(f"{source}: model: expected ssd or faster_rcnn, got {arch}")
    if proto.train_config.batch_size < 1:
        raise UserError(f"{source}: train_config.batch_size must be at least 1")
    readers = [("train_input_reader", proto.train_input_reader)]
    weights = proto.train_input_reader.sample_from_datasets_weights
    paths = proto.train_input_reader.tf_record_input_reader.input_path
    if weights and len(weights) != len(paths):
        raise UserError(
            f"{source}: train_input_reader has {len(paths)} input_path(s) but "
            f"{len(weights)} sample_from_datasets_weights"
        )
    if any(w < 0 for w in weights) or (weights and sum(weights) <= 0):
        raise UserError(f"{source}: sample_from_datasets_weights must be >= 0, not all 0")
    if need_eval:
        if not proto.eval_input_reader:
            raise UserError(f"{source}: eval_input_reader is missing")
        readers += [(f"eval_input_reader[{i}]", r) for i, r in enumerate(proto.eval_input_reader)]
    for name, reader in readers:
        label_map = reader.label_map_path
        if not Path(label_map).is_file():
            raise UserError(f"{source}: {name}.label_map_path: {label_map} not found")
        n = len(read_label_map(Path(label_map)))
        if n != num_classes(proto):
            raise UserError(
                f"{source}: model.{arch}.num_classes is {num_classes(proto)} but "
                f"{label_map} has {n} classes"
            )
        for pattern in reader.tf_record_input_reader.input_path:
            if not glob.glob(pattern):
                raise UserError(
                    f"{source}: {name}.tf_record_input_reader.input_path: no file matches {pattern}"
                )
        if has_masks(proto) and not reader.load_instance_masks:
            raise UserError(f"{source}: {name}.load_instance_masks must be true for a mask model")


def configure(
    model: str,
    data: Path,
    *,
    batch_size: int | None = None,
    steps: int | None = None,
    checkpoint: str | None = None,
    from_scratch: bool = False,
    learning_rate: float | None = None,
    weights: dict[str, float] | None = None,
    input_size: int | None = None,
) -> Pipeline:
    """Fill a template for a dataset folder written by prep (label map, records, class count).
    For a ``prep.mix`` folder, ``weights`` (default 1 each) sets how often each source is
    sampled in training, and every source gets its own eval reader. ``input_size`` (SSD: a
    multiple of 32 from 128) is the square the model resizes images to; the weights do not
    depend on it, so any size fine-tunes from any other's checkpoint."""
    if model not in TEMPLATES:
        raise UserError(f"--model must be one of {sorted(TEMPLATES)}")
    proto = load(TEMPLATES[model])
    data = Path(data)
    label_map = data / "label_map.pbtxt"
    classes = read_label_map(label_map)
    arch = getattr(proto.model, meta_arch(proto))
    arch.num_classes = len(classes)
    set_inputs(proto, data, weights or {})
    train = proto.train_config
    if set(classes.values()) & HAND_TYPES:  # a mirror image swaps left and right hands
        kept = [
            o
            for o in train.data_augmentation_options
            if o.WhichOneof("preprocessing_step") != "random_horizontal_flip"
        ]
        del train.data_augmentation_options[:]
        train.data_augmentation_options.extend(kept)
    if batch_size is not None:
        if batch_size < 1:
            raise UserError("--batch-size must be at least 1")
        train.batch_size = batch_size
    if steps is not None:
        if steps < 1:
            raise UserError("--steps must be at least 1")
        train.num_steps = steps
    schedule = cosine_schedule(proto)
    if schedule is not None:
        schedule.total_steps = train.num_steps
        schedule.warmup_steps = min(schedule.warmup_steps, max(0, train.num_steps // 10))
        if learning_rate is not None:
            if not (math.isfinite(learning_rate) and learning_rate > 0):
                raise UserError(f"--learning-rate must be a number above 0, not {learning_rate}")
            schedule.learning_rate_base = learning_rate
            schedule.warmup_learning_rate = min(schedule.warmup_learning_rate, learning_rate)
    if input_size is not None:
        set_input_size(proto, input_size)
    if checkpoint is not None:
        train.fine_tune_checkpoint = checkpoint
        if restores_full(checkpoint):
            # Our imports and exports carry a head for these classes: restore everything, not
            # just the feature extractor (the OD API's "detection" type re-initialises SSD's heads).
            train.fine_tune_checkpoint_type = "full"
    if from_scratch:
        make_from_scratch(proto)
    return proto


# Peak memory of SSD training on CPU, GB = base + per image x batch at 320x320 (per image in
# proportion to the input's pixels): `python -m pipelines.bench --memory` on this machine.
MEMORY_SSD_320 = (1.89, 0.155)


def memory_estimate(proto: Pipeline, batch: int | None = None) -> float | None:
    """Peak GB training ``proto`` is expected to take in one process holding ``batch`` images
    (default: the config's batch); SSD only, None for another architecture."""
    if meta_arch(proto) != "ssd":
        return None
    h, w = input_size(proto)
    base, per_image = MEMORY_SSD_320
    batch = proto.train_config.batch_size if batch is None else batch
    return base + per_image * batch * (h * w) / (320 * 320)


def available_memory_gb() -> float | None:
    """MemAvailable from /proc/meminfo (None where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_warning(
    proto: Pipeline, available_gb: float | None, batch: int | None = None
) -> str | None:
    """A warning when training ``proto`` (``batch`` images in this process) is expected to need
    more memory than is free."""
    batch = proto.train_config.batch_size if batch is None else batch
    need = memory_estimate(proto, batch)
    if need is None or available_gb is None or need <= available_gb:
        return None
    fits = max(1, int((available_gb - MEMORY_SSD_320[0]) / (need - MEMORY_SSD_320[0]) * batch))
    return (
        f"batch {batch} at {'x'.join(map(str, input_size(proto)))} needs about {need:.1f} GB "
        f"(measured: python -m pipelines.bench --memory), {available_gb:.1f} GB is free: it "
        f"will likely be killed for memory; --batch-size {fits} fits"
    )


def batch_warning(proto: Pipeline, data: Path) -> str | None:
    """A warning when the batch is larger than the dataset folder's training frames (each
    step then repeats frames, and memory grows with the batch, not with the data)."""
    from prep.folder import Dataset

    counts = [s.splits["train"].frames for s in Dataset.read(data).sources.values()]
    if any(c is None for c in counts):
        return None
    frames, batch = sum(counts), proto.train_config.batch_size
    need = memory_estimate(proto)
    cost = f" (about {need:.0f} GB at this one)" if need else ""
    if batch > frames:
        return (
            f"batch {batch} is larger than the {frames} training frame(s): every step repeats "
            f"frames, and memory grows with the batch{cost}; --batch-size "
            f"{max(1, min(frames, 8))} is plenty"
        )
    return None


def eval_reader(template, name: str, label_map: str, patterns: list[str]):
    """An eval input reader like ``template``, named ``name``, over ``patterns``."""
    reader = type(template)()
    reader.CopyFrom(template)
    reader.name = name
    reader.label_map_path = label_map
    del reader.tf_record_input_reader.input_path[:]
    reader.tf_record_input_reader.input_path.extend(patterns)
    return reader


def set_inputs(proto: Pipeline, data: Path, weights: dict[str, float]) -> None:
    """Point the train and eval readers at a dataset folder's records (``prep.folder`` says
    which). A ``prep.mix`` folder trains on every source's train records, sampled by weight,
    and has one eval reader per source (named after it) over its held-out records."""
    from prep.folder import Dataset

    dataset = Dataset.read(data)
    label_map = str(dataset.label_map)
    train, template = proto.train_input_reader, proto.eval_input_reader[0]
    train.label_map_path = label_map
    del train.tf_record_input_reader.input_path[:]
    del train.sample_from_datasets_weights[:]
    if weights and not dataset.mix:
        raise UserError("--weights needs a dataset folder written by prep.mix")
    unknown = sorted(set(weights) - set(dataset.sources))
    if unknown:
        raise UserError(
            f"--weights: no source named {', '.join(unknown)}; sources: {list(dataset.sources)}"
        )
    idle = sorted(n for n, w in weights.items() if w > 0 and not dataset.sources[n].trains())
    if idle:
        raise UserError(
            f"--weights: {', '.join(idle)} has no training frames (held out whole): a weight "
            "for it would be ignored; drop it"
        )
    readers = []
    for name, source in dataset.sources.items():
        if source.trains() and weights.get(name, 1.0) > 0:
            train.tf_record_input_reader.input_path.append(source.records("train"))
            if dataset.mix:
                train.sample_from_datasets_weights.append(weights.get(name, 1.0))
        if held := source.held_out():
            readers.append(eval_reader(template, name, label_map, held))
    if not train.tf_record_input_reader.input_path:
        raise UserError(f"{data}: no source has training frames with a weight above 0")
    del proto.eval_input_reader[:]  # a config made for a mix had one reader a source
    proto.eval_input_reader.extend(readers)


def restores_full(checkpoint: str | Path) -> bool:
    """True for checkpoints this project wrote: an import (import.json beside it) or the
    ``checkpoint/`` folder of an exported model (model_card.json one level up)."""
    folder = Path(checkpoint).parent
    return (folder / "import.json").is_file() or (folder.parent / "model_card.json").is_file()


def write_weights(model, folder: Path) -> None:
    """The model's weights only (no optimizer slots) as ``folder/ckpt-0`` with its ``checkpoint``
    index: what imports and exports ship as a fine-tune start (see ``restores_full``)."""
    ckpt = odapi_compat.tf.train.Checkpoint(model=model)
    ckpt.save_counter.assign(0)  # saved too, so a strict restore of the folder matches
    ckpt.write(str(folder / "ckpt-0"))
    (folder / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-0"\nall_model_checkpoint_paths: "ckpt-0"\n'
    )


def make_from_scratch(proto: Pipeline) -> None:
    """No fine-tune checkpoint; let batch norm learn its statistics."""
    proto.train_config.fine_tune_checkpoint = ""
    if meta_arch(proto) == "ssd":
        proto.model.ssd.freeze_batchnorm = False
    else:
        proto.model.faster_rcnn.feature_extractor.batch_norm_trainable = True


def cosine_schedule(proto: Pipeline):
    """The cosine-decay learning-rate message of the optimizer (None for another schedule)."""
    opt = proto.train_config.optimizer
    which = opt.WhichOneof("optimizer")
    if which is None:
        return None
    lr = getattr(opt, which).learning_rate
    return (
        lr.cosine_decay_learning_rate
        if lr.WhichOneof("learning_rate") == "cosine_decay_learning_rate"
        else None
    )


def set_input_size(proto: Pipeline, size: int) -> None:
    resizer = getattr(proto.model, meta_arch(proto)).image_resizer
    if resizer.WhichOneof("image_resizer_oneof") != "fixed_shape_resizer":
        raise UserError("--input-size applies to fixed-size (SSD) models only")
    if size < 128 or size % 32:
        raise UserError(f"--input-size must be a multiple of 32, at least 128 (got {size})")
    resizer.fixed_shape_resizer.height = resizer.fixed_shape_resizer.width = size


def input_size(proto: Pipeline) -> tuple[int, int]:
    """``(height, width)`` the model resizes images to (the longest side for aspect-keeping)."""
    resizer = getattr(proto.model, meta_arch(proto)).image_resizer
    which = resizer.WhichOneof("image_resizer_oneof")
    if which == "fixed_shape_resizer":
        return resizer.fixed_shape_resizer.height, resizer.fixed_shape_resizer.width
    if which == "keep_aspect_ratio_resizer":
        side = resizer.keep_aspect_ratio_resizer.max_dimension
        return side, side
    raise UserError(f"unsupported image_resizer {which}")
