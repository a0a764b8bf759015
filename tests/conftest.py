"""Shared fixtures: an EgoHands-shaped tree built on the fly, and the real sample when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
REAL_SAMPLE = Path(
    os.environ.get("HANDS_SAMPLE", ROOT.parent / "shared" / "data" / "egohands-4videos")
)


@pytest.fixture(scope="session")
def egohands_tree(tmp_path_factory) -> tuple[Path, dict]:
    """Three videos x 8 real JPEG frames, polygons.mat + metadata.mat, with edge cases."""
    from prep.fixtures import write_egohands

    root = tmp_path_factory.mktemp("egohands")
    truth = write_egohands(root, frames_per_video=8, seed=7)
    return root, truth


@pytest.fixture(scope="session")
def prepared(egohands_tree, tmp_path_factory) -> tuple[Path, dict]:
    """The fixture tree run through prep once (in-process), with its summary."""
    from prep.egohands_clean import prepare
    from prep.sources import Source

    out = tmp_path_factory.mktemp("prepared") / "data"
    summary = prepare(Source(egohands_tree[0]), out, workers=0)
    return out, summary


@pytest.fixture(scope="session")
def real_sample() -> Path:
    if not (REAL_SAMPLE / "boxes.csv").is_file():
        pytest.skip(f"real EgoHands sample not found at {REAL_SAMPLE}")
    return REAL_SAMPLE


@pytest.fixture(scope="session")
def real_data(real_sample, tmp_path_factory) -> Path:
    """The real sample prepped once (boxes only; split by video)."""
    from prep.egohands_clean import prepare
    from prep.sources import Source

    out = tmp_path_factory.mktemp("real_data") / "data"
    prepare(Source(real_sample), out, workers=2)
    return out


@pytest.fixture(scope="session")
def handtrackjs_package() -> Path:
    """handtrack.js 0.1.5 from the cache, or npm pack (skipped when neither works)."""
    from pipelines.import_handtrackjs import fetch_package
    from prep.common import UserError

    try:
        return fetch_package()
    except UserError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def htj7_export(handtrackjs_package, real_data, tmp_path_factory) -> Path:
    """handtrack.js's 7-class model imported and exported to every artifact, on real frames."""
    from pipelines import config as cfg
    from pipelines.export import export
    from pipelines.import_handtrackjs import import_handtrackjs
    from prep.tfrecord import shard_pattern

    root = tmp_path_factory.mktemp("htj7")
    import_handtrackjs(root / "ckpt", classes="all", package=handtrackjs_package)
    proto = cfg.load(root / "ckpt" / "pipeline.config")
    for reader, split in (
        (proto.train_input_reader, "train"),
        (proto.eval_input_reader[0], "test"),
    ):
        reader.tf_record_input_reader.input_path[:] = [shard_pattern(real_data, split)]
    cfg.save(proto, root / "pipeline.config")
    export(
        root / "pipeline.config",
        root / "ckpt",
        root / "exported",
        parity_images=12,
        representative=30,
    )
    return root / "exported"
