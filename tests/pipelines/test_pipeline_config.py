"""Pipeline templates, the configure tool and config validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from handspot.errors import UserError
from pipelines import pipeline_config as cfg

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["ssd", "mask_rcnn"])
def test_templates_parse_and_configure_for_a_dataset(model, prepared):
    data, _ = prepared
    proto = cfg.configure(model, data, batch_size=2, steps=50)
    cfg.check(proto, need_eval=True)
    assert cfg.num_classes(proto) == 1
    assert proto.train_config.batch_size == 2 and proto.train_config.num_steps == 50
    assert proto.train_input_reader.tf_record_input_reader.input_path == [
        str(data / "train.record-?????-of-?????")
    ]
    lr = cfg.cosine_schedule(proto)
    assert lr.total_steps == 50 and lr.warmup_steps <= 5
    assert proto.train_config.fine_tune_checkpoint_type == "detection"
    if model == "mask_rcnn":
        assert cfg.has_masks(proto) and proto.model.faster_rcnn.number_of_stages == 3
        assert proto.eval_input_reader[0].load_instance_masks


def test_hand_type_classes_set_num_classes_and_drop_the_flip(egohands_tree, tmp_path):
    from prep.egohands import prepare
    from prep.sources import Source

    data = tmp_path / "types"
    prepare(Source(egohands_tree[0]), data, classes="hand_type", workers=0)
    proto = cfg.configure("ssd", data)
    assert cfg.num_classes(proto) == 4
    steps = [
        o.WhichOneof("preprocessing_step") for o in proto.train_config.data_augmentation_options
    ]
    assert "random_horizontal_flip" not in steps and "random_crop_pad_image" in steps
    flip = [
        o.WhichOneof("preprocessing_step")
        for o in cfg.load(cfg.TEMPLATES["ssd"]).train_config.data_augmentation_options
    ]
    assert "random_horizontal_flip" in flip


def test_from_scratch_clears_the_checkpoint_and_unfreezes_batch_norm(prepared):
    proto = cfg.configure("ssd", prepared[0], from_scratch=True)
    assert proto.train_config.fine_tune_checkpoint == ""
    assert proto.model.ssd.freeze_batchnorm is False


def test_invalid_config_names_the_field(tmp_path):
    bad = tmp_path / "bad.config"
    bad.write_text("model { ssd { num_clases: 1 } }")
    with pytest.raises(UserError, match="num_clases"):
        cfg.load(bad)


def test_semantic_errors_name_the_field(prepared, tmp_path):
    data, _ = prepared
    proto = cfg.configure("ssd", data)
    proto.model.ssd.num_classes = 3
    with pytest.raises(UserError, match=r"model\.ssd\.num_classes is 3 but .* has 1 classes"):
        cfg.check(proto)
    proto = cfg.configure("ssd", data)
    proto.train_input_reader.tf_record_input_reader.input_path[0] = str(tmp_path / "none-*")
    with pytest.raises(UserError, match=r"train_input_reader\.tf_record_input_reader\.input_path"):
        cfg.check(proto)


def test_configure_cli(prepared, tmp_path):
    out = tmp_path / "run" / "pipeline.config"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.configure",
            "--data",
            str(prepared[0]),
            "--model",
            "mask_rcnn",
            "--steps",
            "10",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "does not exist yet" in result.stdout
    assert cfg.load(out).train_config.num_steps == 10
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.configure",
            "--data",
            str(tmp_path / "nope"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert bad.returncode == 2 and "label map not found" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("name", ["model_main_tf2", "exporter_main_v2"])
def test_od_api_mains_run_through_the_shims(name):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.odapi_main", name, "--helpfull"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert "pipeline_config_path" in result.stdout + result.stderr
    assert "Descriptors cannot be created directly" not in result.stderr
    assert "Traceback" not in result.stderr
