"""atomic_dir on a disk that fills up (issue 22, case 6: export and prep write through it):
one error naming the output, nothing under its name, an earlier output kept, no temporary
folder left; the same for TensorFlow's errors, which carry the reason only in their text."""

from __future__ import annotations

import errno

import pytest

from common import MARKER, UserError, atomic_dir, disk_full


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
    (out / MARKER).write_text("{}")  # an earlier output
    kept = r"cannot write .*export: .*; nothing was written \(the one there before is kept\)"
    with pytest.raises(UserError, match=kept), atomic_dir(out) as tmp:
        (tmp / "half").write_bytes(b"x" * 100)
        raise error
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert [p.name for p in out.iterdir()] == [MARKER]


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(OSError, match="denied"), atomic_dir(tmp_path / "out"):
        raise OSError(errno.EACCES, "denied")
    assert list(tmp_path.iterdir()) == []
    assert disk_full(ValueError("bad")) is None
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded")) == "Disk quota exceeded"
