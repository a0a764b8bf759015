"""Scaled JPEG decoding for training input: same picture, fewer pixels, masks kept aligned."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines import fast_input
from pipelines.odapi_compat import tf
from prep.tfrecord import read_records, shard_pattern


def test_decode_scaled_matches_an_area_downscale(prepared):
    ex = next(read_records(shard_pattern(prepared[0], "train")))
    full = ex.image()
    small = fast_input.decode_scaled(tf.constant(ex.encoded), 320).numpy()
    assert small.shape == (360, 640, 3)  # 1280x720 at 1/2: the short side still covers 320
    reference = cv2.resize(full, (640, 360), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - reference).mean() < 4
    assert fast_input.decode_scaled(tf.constant(ex.encoded), 700).shape == (720, 1280, 3)
    assert fast_input.decode_scaled(tf.constant(ex.encoded), 90).shape == (90, 160, 3)
    png = cv2.imencode(".png", full)[1].tobytes()
    assert fast_input.decode_scaled(tf.constant(png), 320).shape == (720, 1280, 3)


def test_patched_decoder_keeps_masks_aligned_with_the_image(prepared):
    from object_detection.builders import decoder_builder
    from object_detection.core import standard_fields as fields
    from object_detection.protos import input_reader_pb2

    config = input_reader_pb2.InputReader(
        load_instance_masks=True, mask_type=input_reader_pb2.PNG_MASKS
    )
    config.tf_record_input_reader.input_path.append(shard_pattern(prepared[0], "train"))
    raw = next(iter(tf.data.TFRecordDataset(tf.io.gfile.glob(shard_pattern(prepared[0], "train")))))
    full = decoder_builder.build(config).decode(raw)
    with fast_input.scaled_jpeg_decoding(320):
        decoder = decoder_builder.build(config)
    scaled = decoder.decode(raw)
    image = scaled[fields.InputDataFields.image]
    masks = scaled[fields.InputDataFields.groundtruth_instance_masks].numpy()
    assert image.shape == (360, 640, 3)
    assert masks.shape[1:] == (360, 640)
    big = full[fields.InputDataFields.groundtruth_instance_masks].numpy()
    down = np.stack([cv2.resize(m, (640, 360), interpolation=cv2.INTER_NEAREST) for m in big])
    assert (masks == down).mean() > 0.995
    np.testing.assert_allclose(
        scaled[fields.InputDataFields.groundtruth_boxes],
        full[fields.InputDataFields.groundtruth_boxes],
    )
    # Outside the context the OD API decodes at full size again.
    assert decoder_builder.build(config).decode(raw)[fields.InputDataFields.image].shape == (
        720,
        1280,
        3,
    )
