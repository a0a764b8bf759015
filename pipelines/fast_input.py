"""Cheaper training input: decode JPEGs at a reduced DCT scale.

The OD API decodes every frame at full size and augments it there before resizing to the model
input (320x320). On 2 cores, decoding and augmenting 1280x720 frames steals a fifth of the CPU
from the training step. libjpeg can decode at 1/2, 1/4 or 1/8 scale for a fraction of the cost;
this picks, per image, the smallest scale whose short side still covers the model input, and
scales PNG instance masks to match. Boxes are normalised, so labels are unchanged.

Used by pipelines.train while it builds the training dataset (``--full-res-decode`` turns it
off); evaluation and export decode at full resolution.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pipelines.odapi_compat import tf

from object_detection.builders import dataset_builder, decoder_builder
from object_detection.core import standard_fields as fields
from object_detection.protos import input_reader_pb2
from tf_slim.data import tfexample_decoder as slim_decoder

RATIOS = (1, 2, 4, 8)


def scale_index(height, width, min_side: int):
    """How many halvings (0..3) keep ``min(height, width) >= min_side``."""
    short = tf.minimum(height, width)
    k = tf.constant(0)
    for i in range(1, len(RATIOS)):
        k = tf.where(short // RATIOS[i] >= min_side, tf.constant(i), k)
    return k


def decode_scaled(buffer, min_side: int):
    """Decode an encoded image to uint8 RGB, JPEGs at the smallest DCT scale >= ``min_side``."""

    def jpeg():
        shape = tf.image.extract_jpeg_shape(buffer)
        k = scale_index(shape[0], shape[1], min_side)
        branches = [
            lambda r=r: tf.io.decode_jpeg(buffer, channels=3, ratio=r, dct_method="INTEGER_FAST")
            for r in RATIOS
        ]
        return tf.switch_case(k, branches)

    def other():
        return tf.image.decode_image(buffer, channels=3, expand_animations=False)

    image = tf.cond(tf.strings.substr(buffer, 0, 2) == b"\xff\xd8", jpeg, other)
    image.set_shape([None, None, 3])
    return image


def scaled_size(height, width, min_side: int):
    ratio = tf.gather(tf.constant(RATIOS), scale_index(height, width, min_side))
    return (height + ratio - 1) // ratio, (width + ratio - 1) // ratio  # libjpeg rounds up


class _ScaledImage(slim_decoder.ItemHandler):
    def __init__(self, min_side: int):
        super().__init__(["image/encoded"])
        self.min_side = min_side

    def tensors_to_item(self, keys_to_tensors):
        return decode_scaled(keys_to_tensors["image/encoded"], self.min_side)


def _scaled_masks(decode_masks, min_side: int):
    def handler(keys_to_tensors):
        masks = decode_masks(keys_to_tensors)  # [N, H, W] float at the recorded size
        height = tf.cast(keys_to_tensors["image/height"], tf.int32)
        width = tf.cast(keys_to_tensors["image/width"], tf.int32)
        h, w = scaled_size(height, width, min_side)
        resized = tf.image.resize(masks[..., None], tf.stack([h, w]), method="nearest")
        return tf.squeeze(resized, axis=3)

    return handler


def _fast_decoder(build, min_side: int):
    def patched(input_reader_config):
        decoder = build(input_reader_config)
        handlers = getattr(decoder, "items_to_handlers", None)
        if handlers is None or fields.InputDataFields.image not in handlers:
            return decoder  # not the tf.Example decoder: leave it alone
        handlers[fields.InputDataFields.image] = _ScaledImage(min_side)
        masks = fields.InputDataFields.groundtruth_instance_masks
        if masks in handlers and input_reader_config.mask_type == input_reader_pb2.PNG_MASKS:
            original = handlers[masks]
            handlers[masks] = slim_decoder.ItemHandlerCallback(
                ["image/object/mask", "image/height", "image/width"],
                _scaled_masks(original._func, min_side),
            )
        return decoder

    return patched


@contextlib.contextmanager
def scaled_jpeg_decoding(min_side: int) -> Iterator[None]:
    """While active, datasets built by the OD API decode images at reduced scale."""
    original = decoder_builder.build
    dataset_builder.decoder_builder.build = _fast_decoder(original, min_side)
    try:
        yield
    finally:
        dataset_builder.decoder_builder.build = original


def model_min_side(model_config) -> int:
    """The longer side of a fixed-shape model input (the image must cover it), else 0."""
    arch = getattr(model_config, model_config.WhichOneof("model"))
    resizer = arch.image_resizer
    which = resizer.WhichOneof("image_resizer_oneof")
    if which == "fixed_shape_resizer":
        return max(resizer.fixed_shape_resizer.height, resizer.fixed_shape_resizer.width)
    if which == "keep_aspect_ratio_resizer":
        return resizer.keep_aspect_ratio_resizer.min_dimension
    return 0
