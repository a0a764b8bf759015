"""Folders the project did not write are never deleted (issue 29, cases 1 and 2): a folder holding
a file named ``summary.json`` of the user's, and the labelling loop, where a tool's export lands in
the pre-annotation folder and an import may name that folder as its output. Real webcam photos;
the CLIs as a person runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-1500:]
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    return line


@pytest.fixture(scope="module")
def photos(webcam_root, tmp_path_factory) -> Path:
    """Four real webcam photos (the issue's ``P``)."""
    folder = tmp_path_factory.mktemp("P")
    for path in sorted((webcam_root / "subhih-webcam" / "images").iterdir())[:4]:
        shutil.copy(path, folder)
    return folder


def test_a_folder_with_a_summary_json_of_its_own_is_never_replaced(photos, tmp_path):
    """Before: preannotate took the name ``summary.json`` as proof the folder was its own and
    deleted ``proj/src`` (exit 0); every importer had the same guard."""
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "summary.json").write_text('{"acc": 0.9}')
    (proj / "src" / "main.py").write_text("code\n")
    before = snapshot(proj)
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    for args in (
        ["detect.preannotate", "--source", str(photos), "--out", str(proj)],
        ["prep.coco", "import", "--json", str(ROOT / "missing.json"), "--out", str(proj)],
        ["prep.mix", "--out", str(proj), "--coco", f"a={coco}"],
    ):
        line = one_error(run(*args))
        assert "was not written by this project" in line, (args[0], line)
        assert snapshot(proj) == before, args[0]


@pytest.fixture
def labelled(photos, tmp_path) -> Path:
    """The README's loop: pre-annotations in lab/, then the tools' exports saved beside them."""
    lab = tmp_path / "lab"
    result = run("detect.preannotate", "--source", str(photos), "--out", str(lab))
    assert result.returncode == 0, result.stderr[-1500:]
    done = run("prep.labelstudio", "from-coco", "--tasks", str(lab / "labelstudio.json"),
               "--coco", str(lab / "coco.json"), "--out", str(lab / "export.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-1500:]
    (lab / "annotations.xml").write_bytes((lab / "cvat.xml").read_bytes())  # CVAT's export
    return lab


def test_preannotate_again_keeps_the_persons_exports(labelled, photos):
    """Before: re-running preannotate on lab/ deleted export.json and annotations.xml silently."""
    before = snapshot(labelled)
    line = one_error(run("detect.preannotate", "--source", str(photos), "--out", str(labelled)))
    assert "did not write there (annotations.xml, export.json)" in line, line
    assert snapshot(labelled) == before


def test_an_import_into_the_folder_it_reads_is_refused(labelled):
    """Before: ``prep.labelstudio import --json lab/export.json --out lab`` deleted its own input
    and the images of the tasks nobody annotated. The import into another folder works."""
    before = snapshot(labelled)
    for tool, flag, name in (("prep.labelstudio", "--json", "export.json"),
                             ("prep.cvat", "--xml", "annotations.xml")):  # fmt: skip
        line = one_error(run(tool, "import", flag, str(labelled / name), "--out", str(labelled)))
        assert "holds" in line and "choose another --out" in line, line
        assert snapshot(labelled) == before, tool
    data = labelled.parent / "data"
    result = run("prep.labelstudio", "import", "--json", str(labelled / "export.json"),
                 "--out", str(data), "--workers", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    assert (data / "summary.json").is_file() and snapshot(labelled) == before
