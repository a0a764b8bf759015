"""The fastest file for the CPU it runs on (issue 28, part 3): timed once per CPU, model and
thread count, kept in a cache file, overridable; a broken cache costs only a new calibration."""

from __future__ import annotations

import json
import shutil

import pytest

from handspot import calibrate
from handspot.api import HandDetectorOptions
from handspot.assets import SHIPPED_MODEL
from handspot.errors import UserError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDSPOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HANDSPOT_BACKEND", raising=False)
    calibrate._fastest.cache_clear()
    yield tmp_path / "cache" / "calibration.json"
    calibrate._fastest.cache_clear()


def test_the_faster_network_is_chosen_once_and_then_read_from_the_cache(cache):
    first = calibrate.fastest_backend(SHIPPED_MODEL)
    assert set(first.ms) == {"tflite_raw", "tflite_raw_fp32"} and not first.cached
    faster = min(first.ms, key=first.ms.get)
    tie = first.ms[faster] >= (1 - calibrate.TIE) * first.ms["tflite_raw"]
    assert first.backend == ("tflite_raw" if tie else faster)
    assert first.cpu == calibrate.cpu() and "(" in first.cpu  # the model name, then its ISA
    again = calibrate.fastest_backend(SHIPPED_MODEL)
    assert again.cached and again.backend == first.backend and again.ms == first.ms
    (entry,) = json.loads(cache.read_text()).values()
    assert entry["backend"] == first.backend
    # another thread count is another entry, timed anew
    assert not calibrate.fastest_backend(SHIPPED_MODEL, threads=2).cached
    assert len(json.loads(cache.read_text())) == 2


def test_the_cache_decides_and_a_broken_one_is_measured_again(cache):
    calibrate.fastest_backend(SHIPPED_MODEL)
    entries = json.loads(cache.read_text())
    for entry in entries.values():
        entry["backend"] = "tflite_raw_fp32"  # as an AVX2-only CPU finds it
    cache.write_text(json.dumps(entries))
    assert calibrate.pick(SHIPPED_MODEL)[0] == "tflite_raw_fp32"
    assert HandDetectorOptions(landmarks=False).resolved().backend == "tflite_raw_fp32"
    cache.write_text("{not json")
    calibrate._fastest.cache_clear()
    assert not calibrate.fastest_backend(SHIPPED_MODEL).cached


def test_a_cache_that_cannot_be_written_costs_nothing_but_time(cache, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("HANDSPOT_CACHE", str(tmp_path / "a_file" / "cache"))
    assert calibrate.pick(SHIPPED_MODEL)[0] in calibrate.CANDIDATES


def test_handspot_backend_overrides_the_choice(cache, monkeypatch):
    monkeypatch.setenv("HANDSPOT_BACKEND", "tflite")
    assert calibrate.pick(SHIPPED_MODEL) == ("tflite", "backend tflite (HANDSPOT_BACKEND)")
    assert HandDetectorOptions(landmarks=False).resolved().backend == "tflite"
    assert not cache.exists()  # nothing was timed
    assert HandDetectorOptions(backend="tflite_raw").resolved().backend == "tflite_raw"
    monkeypatch.setenv("HANDSPOT_BACKEND", "nope")
    with pytest.raises(UserError, match="unknown backend 'nope'"):
        HandDetectorOptions().check()


def test_a_model_with_one_network_has_nothing_to_choose(cache, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    (model / "litert" / "model_fp32.tflite").unlink()
    assert calibrate.fastest_backend(model) is None
    assert calibrate.pick(model) == ("tflite_raw", "backend tflite_raw (the model's only choice)")


def test_the_landmark_model_is_the_faster_of_lite_and_its_int8_file(cache, monkeypatch):
    monkeypatch.delenv("HANDSPOT_LANDMARKS", raising=False)
    calibrate._landmarks.cache_clear()
    first = calibrate.fastest_landmarks()
    assert set(first.ms) == {"lite", "lite_int8"} and not first.cached
    faster = min(first.ms, key=first.ms.get)
    assert first.backend == ("lite" if first.ms[faster] >= 0.95 * first.ms["lite"] else faster)
    assert calibrate.fastest_landmarks().cached
    name, line = calibrate.pick_landmarks()
    assert name == first.backend and line.startswith(f"landmark model {name}: the fastest here")
    options = HandDetectorOptions(landmarks=True).resolved()
    assert options.landmark_model == name
    assert HandDetectorOptions(landmarks=False).resolved().landmark_model == "auto"  # not timed
    calibrate._landmarks.cache_clear()


def test_handspot_landmarks_overrides_the_landmark_choice(cache, monkeypatch):
    monkeypatch.setenv("HANDSPOT_LANDMARKS", "full")
    assert calibrate.pick_landmarks() == ("full", "landmark model full (HANDSPOT_LANDMARKS)")
    assert HandDetectorOptions(landmarks=True).resolved().landmark_model == "full"
    assert HandDetectorOptions(landmarks=True, landmark_model="lite").resolved().landmark_model \
        == "lite"  # fmt: skip
    monkeypatch.setenv("HANDSPOT_LANDMARKS", "nope")
    with pytest.raises(UserError, match="HANDSPOT_LANDMARKS=nope: choose one of"):
        calibrate.pick_landmarks()
