"""prep.folder: what a dataset folder holds and which records are trained on and held out,
decided once for configure and compare (tiny folders written here)."""

from __future__ import annotations

import json

import pytest

from common.labelmap import write_label_map
from handspot.errors import UserError
from prep.folder import Dataset


def split(frames: int, records: str) -> dict:
    return {"frames": frames, "boxes": 2 * frames, "records": records}


def test_a_mix_holds_out_each_sources_eval_and_test_records_that_have_frames(tmp_path):
    write_label_map(tmp_path / "label_map.pbtxt", ["hand"])
    sources = {
        "ego": {"held_out_whole": False, "splits": {"train": split(30, "ego/train.r"),
                "eval": split(10, "ego/eval.r"), "test": split(0, "ego/test.r")}},
        "cam": {"held_out_whole": True, "splits": {"train": split(0, "cam/train.r"),
                "eval": split(5, "cam/eval.r"), "test": split(4, "cam/test.r")}},
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps({"tool": "prep.mix", "sources": sources}))
    data = Dataset.read(tmp_path)
    assert data.mix and list(data.sources) == ["ego", "cam"] and data.classes == ("hand",)
    ego, cam = data.sources["ego"], data.sources["cam"]
    assert ego.trains() and not cam.trains() and cam.held_out_whole
    assert ego.records("train") == str(tmp_path / "ego" / "train.r")
    assert ego.held_out() == [str(tmp_path / "ego" / "eval.r")]  # its test split is empty
    assert cam.held_out() == [str(tmp_path / "cam" / "eval.r"), str(tmp_path / "cam" / "test.r")]


def test_a_plain_folder_is_one_source_held_out_on_its_eval_split(prepared):
    folder, summary = prepared
    data = Dataset.read(folder)
    assert not data.mix and list(data.sources) == [""]
    (source,) = data.sources.values()
    assert source.records("train") == str(folder / "train.record-?????-of-?????")
    assert source.held_out() == [str(folder / "eval.record-?????-of-?????")]
    assert source.splits["test"].frames == summary.splits["test"].frames


def test_a_folder_without_a_summary_uses_the_standard_names(tmp_path):
    write_label_map(tmp_path / "label_map.pbtxt", ["hand"])
    (source,) = Dataset.read(tmp_path).sources.values()
    assert source.trains() and source.held_out() == [str(tmp_path / "eval.record-?????-of-?????")]


def test_missing_or_broken_folders_are_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="dataset folder not found"):
        Dataset.read(tmp_path / "nope")
    with pytest.raises(UserError, match="label map not found"):
        Dataset.read(tmp_path)
    write_label_map(tmp_path / "label_map.pbtxt", ["hand"])
    (tmp_path / "summary.json").write_text("{")
    with pytest.raises(UserError, match="is not valid JSON"):
        Dataset.read(tmp_path)
