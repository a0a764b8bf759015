"""OD API tf.Example encoding, sharded TFRecord writing and reading back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from common.tfenv import tf
from handspot.errors import UserError
from prep.geometry import png_to_mask


@dataclass
class Example:
    """One image with its objects, as stored in (and read back from) a TFRecord."""

    filename: str
    width: int
    height: int
    encoded: bytes
    boxes: np.ndarray  # (N, 4) float pixels xmin, ymin, xmax, ymax
    labels: list[str]
    label_ids: list[int]
    masks_png: list[bytes] = field(default_factory=list)
    image_format: str = "jpeg"
    dataset: str = ""  # the source this image came from, in a multi-source dataset

    @property
    def source_id(self) -> str:
        return Path(self.filename).stem

    def masks(self) -> np.ndarray:
        """Decoded masks, ``(N, H, W)`` uint8 0/1 (``(0, H, W)`` when the record has none)."""
        if not self.masks_png:
            return np.zeros((0, self.height, self.width), np.uint8)
        return np.stack([png_to_mask(m) for m in self.masks_png])

    def image(self) -> np.ndarray:
        """Decoded RGB image."""
        return tf.io.decode_image(self.encoded, channels=3).numpy()


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def encode(ex: Example) -> bytes:
    """Serialise to the OD API's tf.Example layout (boxes normalised to [0, 1]); deterministic."""
    boxes = np.asarray(ex.boxes, np.float64).reshape(-1, 4)
    scale = np.array([ex.width, ex.height, ex.width, ex.height], np.float64)
    norm = np.clip(boxes / scale, 0.0, 1.0)
    features = {
        "image/height": _ints([ex.height]),
        "image/width": _ints([ex.width]),
        "image/filename": _bytes([ex.filename.encode()]),
        "image/source_id": _bytes([ex.source_id.encode()]),
        "image/key/sha256": _bytes([hashlib.sha256(ex.encoded).hexdigest().encode()]),
        "image/encoded": _bytes([ex.encoded]),
        "image/format": _bytes([ex.image_format.encode()]),
        "image/object/bbox/xmin": _floats(norm[:, 0]),
        "image/object/bbox/ymin": _floats(norm[:, 1]),
        "image/object/bbox/xmax": _floats(norm[:, 2]),
        "image/object/bbox/ymax": _floats(norm[:, 3]),
        "image/object/class/text": _bytes([t.encode() for t in ex.labels]),
        "image/object/class/label": _ints(ex.label_ids),
    }
    if ex.dataset:
        features["image/dataset"] = _bytes([ex.dataset.encode()])
    if ex.masks_png:
        if len(ex.masks_png) != len(ex.labels):
            raise ValueError(f"{ex.filename}: {len(ex.masks_png)} masks for {len(ex.labels)} boxes")
        features["image/object/mask"] = _bytes(ex.masks_png)
    proto = tf.train.Example(features=tf.train.Features(feature=features))
    return proto.SerializeToString(deterministic=True)


def decode(record: bytes) -> Example:
    """Parse a serialised tf.Example written by :func:`encode` (or any OD API record)."""
    proto = tf.train.Example.FromString(record)
    f = proto.features.feature

    def b(key):
        return list(f[key].bytes_list.value) if key in f else []

    def fl(key):
        return np.array(f[key].float_list.value if key in f else [], np.float64)

    width = int(f["image/width"].int64_list.value[0])
    height = int(f["image/height"].int64_list.value[0])
    norm = np.stack([fl(f"image/object/bbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")], 1)
    boxes = norm.reshape(-1, 4) * np.array([width, height, width, height], np.float64)
    fmt = b("image/format")
    return Example(
        filename=b("image/filename")[0].decode(),
        width=width,
        height=height,
        encoded=b("image/encoded")[0],
        boxes=boxes,
        labels=[t.decode() for t in b("image/object/class/text")],
        label_ids=list(f["image/object/class/label"].int64_list.value),
        masks_png=b("image/object/mask"),
        image_format=fmt[0].decode() if fmt else "jpeg",
        dataset=b("image/dataset")[0].decode() if b("image/dataset") else "",
    )


def shard_paths(directory: Path, split: str, num_shards: int) -> list[Path]:
    return [
        Path(directory) / f"{split}.record-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)
    ]


def shard_pattern(directory: Path, split: str) -> str:
    """The glob the OD API's ``input_path`` takes for a split's shards."""
    return str(Path(directory) / f"{split}.record-?????-of-?????")


class ShardedWriter:
    """Writes records round-robin over ``num_shards`` files so every shard mixes all videos."""

    def __init__(self, directory: Path, split: str, num_shards: int):
        self.paths = shard_paths(directory, split, max(1, num_shards))
        self._writers = [tf.io.TFRecordWriter(str(p)) for p in self.paths]
        self.count = 0

    def write(self, record: bytes) -> None:
        self._writers[self.count % len(self._writers)].write(record)
        self.count += 1

    def close(self) -> None:
        for w in self._writers:
            w.close()


def read_records(paths: str | Path | Sequence[str | Path]) -> Iterator[Example]:
    """Iterate over the examples of TFRecord files (a path, a glob, or a list of either)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[str] = []
    for p in paths:
        matched = sorted(tf.io.gfile.glob(str(p)))
        if not matched:
            raise UserError(f"no TFRecord files match {p}")
        files.extend(matched)
    for path in files:
        records = iter(tf.data.TFRecordDataset(path).as_numpy_iterator())
        while True:
            try:
                raw = next(records)
            except StopIteration:
                break
            except tf.errors.OpError:
                raise UserError(
                    f"{path} is not a readable TFRecord file (corrupt or truncated)"
                ) from None
            try:
                example = decode(raw)
            except (KeyError, IndexError, ValueError, DecodeError) as e:
                raise UserError(f"{path}: a record is not an OD API tf.Example ({e})") from None
            yield example
