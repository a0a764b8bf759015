"""atomic_dir on a disk that fills up (issue 22, case 6: export and prep write through it):
one error naming the output, nothing under its name, an earlier output kept, no temporary
folder left; the same for TensorFlow's errors, which carry the reason only in their text."""

from __future__ import annotations

import errno

import pytest

from common.folders import STAMP, atomic_dir, check_not_inside, check_replaceable
from handspot.errors import UserError
from handspot.files import disk_full


class TFError(Exception):  # a TensorFlow file-system error: no errno, the reason in its text
    pass


FULL = [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EFBIG, "File too large"),
    TFError("saved_model/variables/variables.data-00000-of-00001; File too large"),
]


@pytest.mark.parametrize("error", FULL)
def test_a_full_disk_is_one_error_and_nothing_half_written(tmp_path, error):
    out = tmp_path / "export"
    out.mkdir()
    with atomic_dir(out, "model") as tmp:  # an earlier output
        (tmp / "model_card.json").write_text("{}")
    kept = r"cannot write .*export: .*; nothing was written \(the one there before is kept\)"
    with pytest.raises(UserError, match=kept), atomic_dir(out, "model") as tmp:
        (tmp / "half").write_bytes(b"x" * 100)
        raise error
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert sorted(p.name for p in out.iterdir()) == sorted([STAMP, "model_card.json"])


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(OSError, match="denied"), atomic_dir(tmp_path / "out", "dataset"):
        raise OSError(errno.EACCES, "denied")
    assert list(tmp_path.iterdir()) == []
    assert disk_full(ValueError("bad")) is None
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded")) == "Disk quota exceeded"


def test_only_a_folder_this_project_wrote_is_replaced(tmp_path):
    """The stamp lists every file written: the same kind of folder, with nothing added, is
    replaced; a file added anywhere in it, another kind, or no stamp is refused (issue 29)."""
    out = tmp_path / "data"
    with atomic_dir(out, "dataset", tool="prep.mix") as tmp:
        (tmp / "train").mkdir()
        (tmp / "train" / "a.record").write_text("x")
    with atomic_dir(out, "dataset") as tmp:  # its own output: replaced
        (tmp / "summary.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == sorted([STAMP, "summary.json"])
    with pytest.raises(UserError, match=r"holds dataset .*, not model"), atomic_dir(out, "model"):
        pass
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"did not write there \(sub/notes.txt\)"):
        check_replaceable(out, "dataset")
    (out / STAMP).write_text("{")
    with pytest.raises(UserError, match="was not written by this project"):
        check_replaceable(out, "dataset")
    assert (out / "sub" / "notes.txt").read_text() == "mine"


def test_an_output_holding_an_input_is_refused(tmp_path):
    (tmp_path / "lab").mkdir()
    with (
        pytest.raises(UserError, match="holds the input"),
        atomic_dir(tmp_path / "lab", "dataset", inputs=[tmp_path / "lab" / "export.json"]),
    ):
        pass
    check_not_inside(tmp_path / "lab2", [tmp_path / "lab"])  # a sibling is fine
