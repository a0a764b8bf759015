"""detect.avx2_count: its worker runs each file, its table, and one error line without valgrind
(the counting itself, a minute or two a file under valgrind, is the bench's, not the suite's)."""

from __future__ import annotations

from detect import avx2_count
from handspot.assets import landmark_model


def test_the_files_are_the_runtimes_choices_and_the_worker_runs_each(capsys):
    found = avx2_count.files(avx2_count.DEFAULT_MODEL)
    assert {
        "our network int8",
        "our network float",
        "landmarks lite",
        "landmarks lite_int8",
    } <= set(found)
    for path in (landmark_model("lite_int8"), found["our network float"]):
        assert avx2_count.main(["--worker", str(path), "1"]) == 0


def test_the_table_gives_each_file_against_palm():
    printed = avx2_count.table(
        {"our network int8": 273.2e6, "MediaPipe palm_detection_full": 116.9e6}
    )
    assert "| our network int8 | 273.2 | 2.34 |" in printed
    assert "| MediaPipe palm_detection_full | 116.9 | 1.00 |" in printed
    assert "| landmarks lite | 47.7 | - |" in avx2_count.table({"landmarks lite": 47.7e6})


def test_without_valgrind_it_is_one_error_line(monkeypatch, capsys):
    monkeypatch.setattr(avx2_count.shutil, "which", lambda name: None)
    assert avx2_count.main([]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: valgrind is not installed (apt-get install valgrind)"
    )
