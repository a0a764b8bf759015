"""The family table runs on a short sample (figures are the bench's business, not asserted)."""

from __future__ import annotations

import pytest

from common.paths import DEFAULT_MODEL

pytestmark = pytest.mark.slow


def test_sizes_table_has_a_row_per_model_and_the_reference(capsys):
    from detect.sizes import main

    assert main(["--models", str(DEFAULT_MODEL), "--rounds", "2", "--frames", "12",
                 "--fps-rounds", "1", "--no-browser"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| hands_ssd320 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "320" and cells[2] == "12804"
    assert cells[3] == "0.855 / 0.998 / 0.999 / 0.988"  # the card's held-out AP50
    assert float(cells[6]) > 0 and float(cells[10]) > 0  # the float network timed; detect multi ran
    assert "| MediaPipe palm_detection_full |" in out
