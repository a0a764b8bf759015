"""Shared fixtures: an EgoHands-shaped tree built on the fly, and the real sample when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The same network on every machine the suite runs on (the runtime would pick the faster of
# int8 and float per CPU: tests/handspot/test_calibrate.py tests that choice).
os.environ.setdefault("HANDSPOT_BACKEND", "tflite_raw")
# Likewise the landmark stage's float lite model (tests/handspot/test_landmarks_int8.py tests
# the int8 file, which the runtime picks where it is faster).
os.environ.setdefault("HANDSPOT_LANDMARKS", "lite")

ROOT = Path(__file__).resolve().parents[1]
REAL_SAMPLE = Path(
    os.environ.get("HANDS_SAMPLE", ROOT.parent / "shared" / "data" / "egohands-4videos")
)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """Groups for ``make test``'s two workers (pytest-xdist, ``--dist loadgroup``): a module's
    tests stay together (its fixtures are built once), and every test of the costly
    ``htj7_export`` fixture (an export to every artifact, minutes) shares one worker."""
    for item in items:
        group = "htj7" if "htj7_export" in item.fixturenames else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))


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
    from prep.egohands import prepare
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
    from prep.egohands import prepare
    from prep.sources import Source

    out = tmp_path_factory.mktemp("real_data") / "data"
    prepare(Source(real_sample), out, workers=2)
    return out


@pytest.fixture(scope="session")
def handtrackjs_package() -> Path:
    """handtrack.js 0.1.5 from the cache, or npm pack (skipped when neither works)."""
    from handspot.errors import UserError
    from webexport.handtrack import fetch_package

    try:
        return fetch_package()
    except UserError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def htj7_export(handtrackjs_package, real_data, tmp_path_factory) -> Path:
    """handtrack.js's 7-class model imported and exported to every artifact, on real frames."""
    from pipelines import pipeline_config as cfg
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


WEBCAM = Path(os.environ.get("HANDS_WEBCAM", ROOT.parent / "shared" / "data" / "hands-webcam"))


@pytest.fixture(scope="session")
def webcam_root() -> Path:
    if not (WEBCAM / "subhih-webcam" / "annotations.json").is_file():
        pytest.skip(f"real webcam hand sets not found at {WEBCAM}")
    return WEBCAM


@pytest.fixture(scope="session")
def webcam_held_out(webcam_root) -> list:
    """Held-out (test split) frames of the three webcam sets, 4 of each (RGB)."""
    import json

    import cv2

    from prep.samples import WEBCAM_SETS

    frames = []
    for folder in WEBCAM_SETS:
        coco = json.loads((webcam_root / folder / "annotations.json").read_text())
        test = [im for im in coco["images"] if im["split"] == "test"][::9][:4]
        for im in test:
            bgr = cv2.imread(str(webcam_root / folder / "images" / im["file_name"]))
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames


def coco_slice(root: Path, out: Path, per_split: dict[str, int]) -> Path:
    """The first N images of each published split of a real COCO set, copied to ``out``."""
    import json
    import shutil

    coco = json.loads((root / "annotations.json").read_text())
    taken, counts = [], dict.fromkeys(per_split, 0)
    for image in coco["images"]:
        if counts.get(image["split"], 1 << 30) < per_split.get(image["split"], 0):
            counts[image["split"]] += 1
            taken.append(image)
    ids = {im["id"] for im in taken}
    (out / "images").mkdir(parents=True)
    for im in taken:
        shutil.copy(root / "images" / im["file_name"], out / "images" / im["file_name"])
    coco["images"] = taken
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    (out / "annotations.json").write_text(json.dumps(coco))
    return out / "annotations.json"


def egohands_slice(root: Path, out: Path, videos: int = 3, frames: int = 6) -> Path:
    """The first frames of the first videos of the real EgoHands sample, with their boxes."""
    import csv
    import shutil

    rows = list(csv.reader((root / "boxes.csv").open()))
    names = sorted(p.name for p in root.iterdir() if p.is_dir())[:videos]
    keep = {f"{v}/{f.name}" for v in names for f in sorted((root / v).glob("*.jpg"))[:frames]}
    for member in keep:
        (out / member).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / member, out / member)
    with (out / "boxes.csv").open("w", newline="") as f:
        csv.writer(f).writerows([rows[0]] + [r for r in rows[1:] if r[0] in keep])
    return out


@pytest.fixture(scope="session")
def mix_slice(real_sample, webcam_root, tmp_path_factory) -> tuple[Path, dict]:
    """Small real slices of both shared folders mixed by prep.mix: EgoHands (3 videos x 6
    frames, one held out), subhih-webcam (8 train + 4 test, plus one test image re-encoded and
    shrunk as a train image: a duplicate to drop) and finger-gestures (6 train + 3 valid)."""
    import cv2

    from prep.mix import SourceSpec, mix

    tmp = tmp_path_factory.mktemp("mix_slice")
    ego = egohands_slice(real_sample, tmp / "ego")
    subhih = coco_slice(webcam_root / "subhih-webcam", tmp / "subhih", {"train": 8, "test": 4})
    import json

    coco = json.loads(subhih.read_text())
    test = next(im for im in coco["images"] if im["split"] == "test")
    picture = cv2.imread(str(subhih.parent / "images" / test["file_name"]))
    small = cv2.resize(picture, (test["width"] * 9 // 10, test["height"] * 9 // 10))
    cv2.imwrite(
        str(subhih.parent / "images" / "dup_copy.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 70]
    )
    coco["images"].append(
        {
            **test,
            "id": 10**6,
            "file_name": "dup_copy.jpg",
            "split": "train",
            "width": small.shape[1],
            "height": small.shape[0],
        }
    )
    coco["annotations"].append(
        {
            "id": 10**6,
            "image_id": 10**6,
            "category_id": 1,
            "bbox": [10, 10, 50, 50],
            "area": 2500,
            "iscrowd": 0,
        }
    )
    subhih.write_text(json.dumps(coco))
    fingers = coco_slice(webcam_root / "finger-gestures", tmp / "fingers", {"train": 6, "valid": 3})
    videos = sorted(p.name for p in ego.iterdir() if p.is_dir())
    summary = mix(
        [
            SourceSpec("ego", "egohands", ego),
            SourceSpec("subhih", "coco", subhih),
            SourceSpec("fingers", "coco", fingers),
        ],
        tmp / "mix",
        eval_videos=(videos[0],),
        workers=0,
    )
    return tmp / "mix", summary


@pytest.fixture(scope="session")
def my_frames(webcam_root, tmp_path_factory) -> Path:
    """The README's "Train on your own hands" chain on 12 real webcam photos: pre-annotated
    by the shipped model (10 train, 2 held out), "corrected" to the set's true boxes as a
    Label Studio export, imported by prep.labelstudio: a user's dataset folder."""
    import json
    import shutil

    from detect.preannotate import PreannotateOptions, preannotate
    from prep.labelstudio import annotate_from_coco, plan_labelstudio

    truth = webcam_root / "subhih-webcam" / "annotations.json"
    coco = json.loads(truth.read_text())
    root = tmp_path_factory.mktemp("my_frames")
    (root / "photos").mkdir()
    for im in [im for im in coco["images"] if im["split"] == "train"][5::101][:12]:
        shutil.copy(webcam_root / "subhih-webcam" / "images" / im["file_name"], root / "photos")
    preannotate(PreannotateOptions(source=str(root / "photos"), out=str(root / "labels")))
    done = annotate_from_coco(root / "labels" / "labelstudio.json", truth)
    (root / "export.json").write_text(json.dumps(done))
    plan_labelstudio(root / "export.json", root / "labels" / "images").build(
        root / "data", workers=0
    )
    return root / "data"
