"""The CPU table's AVX2-only row where no such CPU is at hand: instructions per invoke with
XNNPACK's AVX2 kernels, counted by valgrind.

    python -m detect.avx2_count [--model exported/hands_ssd320] [--invokes 4]

valgrind's virtual CPU has AVX2 but neither AVX-512 nor VNNI, so LiteRT (XNNPACK) takes the
kernels an AVX2-only CPU runs; callgrind counts the instructions inside ``Interpreter::Invoke``
(the first invoke dropped: one run with 1 invoke, one with 1 + ``--invokes``, subtracted).
Counts, not seconds: the same on every run, and on these kernels they follow time (the 320
network against MediaPipe's palm detector: 2.34x in instructions here, 2.3x in ms measured on
an AVX2-only EPYC). One to two minutes a file; needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from common.paths import DEFAULT_MODEL
from handspot.assets import landmark_model
from handspot.errors import UserError
from handspot.signals import command


def files(model: Path) -> dict[str, Path]:
    """The files the runtime chooses between, and MediaPipe's palm detector to compare with."""
    from detect.bench import palm_model

    found = {
        "our network int8": model / "litert" / "model_int8.tflite",
        "our network float": model / "litert" / "model_fp32.tflite",
        "landmarks lite": landmark_model("lite"),
        "landmarks lite_int8": landmark_model("lite_int8"),
    }
    if (palm := palm_model()) is not None:
        found["MediaPipe palm_detection_full"] = Path(palm)
    return {name: path for name, path in found.items() if path.is_file()}


def invoke(path: Path, invokes: int) -> None:
    """The worker: load ``path``, invoke it 1 + ``invokes`` times on a fixed random input."""
    from detect.bench import Invoker

    Invoker(path).turn(1 + invokes, keep=False)


def counted(path: Path, invokes: int, work: Path) -> int:
    """Instructions inside the interpreter's invokes of one worker run under callgrind."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work / 'callgrind.out'}",
         "--collect-atstart=no", "--toggle-collect=*Interpreter*Invoke*",
         sys.executable, "-m", "detect.avx2_count", "--worker", str(path), str(invokes)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or not found:
        raise UserError(f"valgrind on {path.name}: {result.stderr.strip()[-300:]}")
    return int(found[1])


def per_invoke(path: Path, invokes: int, work: Path) -> float:
    return (counted(path, invokes, work) - counted(path, 0, work)) / invokes


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--invokes", type=int, default=4, help="invokes counted a file")
    p.add_argument("--worker", nargs=2, metavar=("FILE", "N"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        invoke(Path(a.worker[0]), int(a.worker[1]))
        return 0
    if shutil.which("valgrind") is None:
        raise UserError("valgrind is not installed (apt-get install valgrind)")
    if a.invokes < 1:
        raise UserError("--invokes must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        targets = tqdm(files(a.model).items(), desc="valgrind", unit="file")
        counts = {name: per_invoke(path, a.invokes, Path(tmp)) for name, path in targets}
    print(table(counts))
    return 0


def table(counts: dict[str, float]) -> str:
    lines = [
        "instructions per invoke, XNNPACK's AVX2 kernels (valgrind), LiteRT, 1 thread",
        "",
        "| file | million instructions | x palm_detection_full |",
        "|---|---|---|",
    ]
    palm = counts.get("MediaPipe palm_detection_full")
    for name, n in counts.items():
        lines.append(f"| {name} | {n / 1e6:.1f} | {f'{n / palm:.2f}' if palm else '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
