"""The compatibility layer: the unmodified PyPI OD API imports and works on this stack."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.odapi_compat import tf


def test_old_gencode_protos_load_and_parse():
    from google.protobuf import text_format

    from object_detection.protos import pipeline_pb2, ssd_pb2

    proto = text_format.Parse(
        "model { ssd { num_classes: 3 } }", pipeline_pb2.TrainEvalPipelineConfig()
    )
    assert proto.model.ssd.num_classes == 3
    assert ssd_pb2.Ssd.DESCRIPTOR.fields_by_name["num_classes"].number == 1
    assert proto.model.ssd.normalize_loss_by_num_matches is True  # proto2 default kept


def test_estimator_stand_in():
    from object_detection import inputs  # imports tf.compat.v1.estimator at module level

    assert inputs.tf_estimator.ModeKeys.TRAIN == "train"
    with pytest.raises(AttributeError, match="Estimator API was removed"):
        inputs.tf_estimator.EstimatorSpec  # noqa: B018


def test_tf_slim_control_flow():
    from tensorflow.python.ops import control_flow_ops

    assert int(control_flow_ops.cond(tf.constant(True), lambda: 1, lambda: 2)) == 1
    assert int(control_flow_ops.case([(tf.constant(False), lambda: 1)], default=lambda: 7)) == 7


def test_pillow_getsize_for_visualization():
    from PIL import ImageFont

    from object_detection.utils import visualization_utils as vu

    font = ImageFont.load_default()
    w, h = font.getsize("hand: 97%")
    assert w > 20 and h > 5
    image = np.zeros((120, 160, 3), np.uint8)
    vu.draw_bounding_box_on_image_array(
        image, 30, 30, 90, 120, display_str_list=["hand: 97%"], use_normalized_coordinates=False
    )
    assert image.any()


def test_tensorflow_io_stand_in_rgb_to_lab():
    import tensorflow_io as tfio

    from object_detection.meta_architectures import deepmac_meta_arch  # noqa: F401

    lab = tfio.experimental.color.rgb_to_lab(tf.constant([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(lab.numpy(), [[100, 0, 0], [53.24, 80.09, 67.20]], atol=0.1)


def test_od_api_decoder_reads_prep_records(prepared):
    """Our records decode with the OD API's own TfExampleDecoder: boxes, classes and masks."""
    from prep.tfrecord import read_records, shard_pattern

    from object_detection.core import standard_fields as fields
    from object_detection.data_decoders import tf_example_decoder
    from object_detection.protos import input_reader_pb2

    out, _ = prepared
    decoder = tf_example_decoder.TfExampleDecoder(
        load_instance_masks=True, instance_mask_type=input_reader_pb2.PNG_MASKS
    )
    raw = next(iter(tf.data.TFRecordDataset(tf.io.gfile.glob(shard_pattern(out, "train")))))
    ours = next(read_records(shard_pattern(out, "train")))
    decoded = decoder.decode(raw)
    boxes = decoded[fields.InputDataFields.groundtruth_boxes].numpy()  # ymin, xmin, ymax, xmax
    scale = np.array([ours.height, ours.width, ours.height, ours.width])
    np.testing.assert_allclose(boxes * scale, ours.boxes[:, [1, 0, 3, 2]], atol=1e-3)
    assert decoded[fields.InputDataFields.groundtruth_classes].numpy().tolist() == ours.label_ids
    masks = decoded[fields.InputDataFields.groundtruth_instance_masks].numpy()
    np.testing.assert_array_equal(masks.astype(np.uint8), ours.masks())
    assert decoded[fields.InputDataFields.image].shape == (ours.height, ours.width, 3)
