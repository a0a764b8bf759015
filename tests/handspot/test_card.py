"""The model card: one typed class reads and writes it, every shipped card round-trips through it
unchanged, and hands.js accepts exactly the schema Python writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handspot.card import SCHEMA, ModelCard
from handspot.errors import UserError
from tests.handspot import hands_js

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "exported").glob("hands_ssd*"))


@pytest.mark.parametrize("model", SHIPPED, ids=[m.name for m in SHIPPED])
def test_every_shipped_card_round_trips_byte_for_byte(model, tmp_path):
    card = ModelCard.load(model)
    assert card.schema == SCHEMA and card.labels == {1: "hand"}
    assert card.input_size == (int(model.name.removeprefix("hands_ssd")),) * 2
    assert card.litert.scales_xywh == [10.0, 10.0, 5.0, 5.0]
    assert card.postprocess.min_score == 0.05 and "training_data" in card.extra
    card.save(tmp_path)
    assert (tmp_path / "model_card.json").read_bytes() == (model / "model_card.json").read_bytes()


def minimal(**changes) -> dict:
    card = {
        "name": "m",
        "architecture": "SSD",
        "input_size": [320, 320],
        "labels": {"1": "hand", "2": "face"},
        "postprocess": {"iou_threshold": 0.6, "max_detections": 100, "score": "sigmoid"},
        "litert": {"anchors": 4, "box_coder_scales": [10, 9, 5, 4], "outputs": {}},
        "recipe": {"train": "python -m pipelines.train ..."},
    }
    return {**card, **changes}


def test_a_schema_1_card_reads_with_the_default_minimum_score():
    card = ModelCard.from_dict(minimal())
    assert card.postprocess.min_score == 0.05 and card.labels == {1: "hand", 2: "face"}
    assert card.litert.scales_xywh == [9, 10, 4, 5]  # MediaPipe's order: x, y, w, h
    out = card.to_dict()
    assert out["schema"] == SCHEMA and out["recipe"] == minimal()["recipe"]  # extras kept
    head = ["schema", "name", "architecture", "input_size", "labels", "postprocess"]
    assert list(out)[:6] == head
    assert ModelCard.from_dict(out).to_dict() == out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not valid JSON"),
        (json.dumps({"name": "m"}), "is not a model card"),
        (json.dumps(minimal(schema=SCHEMA + 1)), "newer than this code reads"),
    ],
)
def test_a_bad_card_is_one_clear_error(tmp_path, text, message):
    (tmp_path / "model_card.json").write_text(text)
    with pytest.raises(UserError, match=message):
        ModelCard.load(tmp_path)
    with pytest.raises(UserError, match="not an exported model folder"):
        ModelCard.load(tmp_path / "elsewhere")


def test_hands_js_reads_exactly_the_schema_python_writes():
    current = ModelCard.from_dict(minimal()).to_dict()
    ok, old, new = hands_js(
        ("checkCard", [current]), ("checkCard", [minimal()]), ("checkCard", [{"schema": 99}])
    )
    assert ok["name"] == "m" and ok["postprocess"]["min_score"] == 0.05
    assert "older than this hands.js" in old["error"] and "python -m handspot.card" in old["error"]
    assert "newer than this hands.js" in new["error"]


def test_upgrade_command_rewrites_an_old_card(tmp_path):
    from handspot.card import main

    (tmp_path / "model_card.json").write_text(json.dumps(minimal()))
    assert main([str(tmp_path)]) == 0
    assert json.loads((tmp_path / "model_card.json").read_text())["schema"] == SCHEMA
    assert main([str(tmp_path / "missing")]) == 2
    (tmp_path / "more.json").write_text(json.dumps({"landmark_stage": {"ego": 0.8}, "name": "x"}))
    assert main(["--merge", str(tmp_path / "more.json"), str(tmp_path)]) == 0
    card = ModelCard.load(tmp_path)
    assert card.name == "x" and card.extra["landmark_stage"] == {"ego": 0.8}
    (tmp_path / "bad.json").write_text("[1]")
    assert main(["--merge", str(tmp_path / "bad.json"), str(tmp_path)]) == 2
