"""The fastest file for the CPU it runs on.

Which of a model's networks is faster depends on the CPU more than on anything else: the int8
network is twice as fast as the float one where the CPU has AVX-512 VNNI (or AVX-VNNI, AMX), and
slower than it on CPUs with AVX2 alone; the same holds for the landmark stage's lite model and
its int8 file. So where nobody chose a backend (or landmark model), the runtime times the
candidates once (a short, interleaved calibration: a few invokes each), picks the faster, and
keeps the choice in a cache file keyed by the CPU (model name, ISA), the LiteRT version, the
files' contents and the thread count. ``--backend`` (or ``HANDSPOT_BACKEND``) and
``--landmark-model`` (or ``HANDSPOT_LANDMARKS``) override it.

    choice = fastest_backend("exported/hands_ssd320", threads=1)
    choice.backend, choice.ms, choice.cached
    pick_landmarks(threads=1)   # ("lite_int8", "landmark model lite_int8: the fastest here ...")
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from handspot.assets import LANDMARK_MODELS, landmark_model
from handspot.backends import BACKENDS, default_backend
from handspot.errors import UserError
from handspot.files import atomic_write_json

CANDIDATES = ("tflite_raw", "tflite_raw_fp32")  # the raw networks: int8, float
LANDMARK_CANDIDATES = ("lite", "lite_int8")  # float first: it stays on a tie
ISA = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "neon",
       "asimddp", "sve")  # fmt: skip
ROUNDS, INVOKES, WARMUP = 6, 2, 2  # interleaved rounds of invokes a candidate; warm-up invokes
TIE = 0.05  # within 5% the first candidate stays (int8 network: the accuracy the card reports)


@dataclass
class Choice:
    """The backend picked and why: median ms per invoke of each candidate, the CPU it was
    measured on, and whether it came from the cache."""

    backend: str
    ms: dict[str, float]
    cpu: str
    cached: bool = False

    def describe(self, what: str = "backend") -> str:
        times = ", ".join(f"{b} {ms:.1f} ms" for b, ms in self.ms.items())
        how = "cached" if self.cached else "calibrated now"
        return f"{what} {self.backend}: the fastest here ({times}; {self.cpu}; {how})"


def cpu() -> str:
    """This CPU: its model name and the ISA extensions that decide the kernels."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:
        pass
    isa = [f for f in ISA if f in flags]
    return f"{name} ({', '.join(isa) or platform.machine()})"


def cache_file() -> Path:
    root = os.environ.get("HANDSPOT_CACHE") or Path.home() / ".cache" / "handspot"
    return Path(root) / "calibration.json"


def fastest_backend(
    model_dir: str | Path,
    threads: int = 1,
    backends: Mapping | None = None,
    candidates: Sequence[str] = CANDIDATES,
) -> Choice | None:
    """The candidate (of those the folder has) that runs fastest on this CPU, from the cache
    or timed now; None where fewer than two candidates are there (nothing to choose)."""
    backends = backends or BACKENDS
    files = {b: Path(model_dir) / backends[b].artifact for b in candidates if b in backends}
    return fastest_file(files, threads)


def fastest_landmarks(threads: int = 1) -> Choice | None:
    """The landmark model (of ``LANDMARK_CANDIDATES``) that runs fastest here, as above."""
    return fastest_file({v: landmark_model(v) for v in LANDMARK_CANDIDATES}, threads)


def fastest_file(files: Mapping[str, Path], threads: int) -> Choice | None:
    """The fastest of ``files`` (name -> file; those that exist) on this CPU, from the cache or
    timed now; None where fewer than two exist. The first stays within ``TIE``."""
    files = {b: f for b, f in files.items() if f.is_file()}
    if len(files) < 2:
        return None
    here = cpu()
    key = cache_key(here, files, threads)
    cache = read_cache()
    if key in cache:
        return Choice(**cache[key], cached=True)
    ms = time_files(files, threads)
    first = next(iter(ms))
    best = min(ms, key=ms.get)
    choice = Choice(best if ms[best] < (1 - TIE) * ms[first] else first, ms, here)
    save(key, choice)
    return choice


def forced_backend() -> str | None:
    """``HANDSPOT_BACKEND``: a backend for every run that does not name one."""
    return os.environ.get("HANDSPOT_BACKEND") or None


def pick(model_dir: str | Path, threads: int = 1) -> tuple[str, str]:
    """The backend for a run that names none, and why, in one line: ``HANDSPOT_BACKEND``, or
    the fastest of the model's networks here (``fastest_backend``, once a process), or the
    model's default where it has one network."""
    if forced := forced_backend():
        return forced, f"backend {forced} (HANDSPOT_BACKEND)"
    choice = _fastest(str(Path(model_dir).resolve()), threads)
    if choice is None:
        backend = default_backend(model_dir)
        return backend, f"backend {backend} (the model's only choice)"
    return choice.backend, choice.describe()


@functools.lru_cache(maxsize=16)
def _fastest(model_dir: str, threads: int) -> Choice | None:
    return fastest_backend(model_dir, threads)


def forced_landmarks() -> str | None:
    """``HANDSPOT_LANDMARKS``: a landmark model for every run that does not name one."""
    forced = os.environ.get("HANDSPOT_LANDMARKS") or None
    if forced is not None and forced not in LANDMARK_MODELS:
        raise UserError(f"HANDSPOT_LANDMARKS={forced}: choose one of {sorted(LANDMARK_MODELS)}")
    return forced


def pick_landmarks(threads: int = 1) -> tuple[str, str]:
    """The landmark model for a run that names none, and why (as ``pick``): the fastest of the
    lite model and its int8 file here, once a process."""
    if forced := forced_landmarks():
        return forced, f"landmark model {forced} (HANDSPOT_LANDMARKS)"
    return _landmarks(threads)


@functools.lru_cache(maxsize=4)
def _landmarks(threads: int) -> tuple[str, str]:
    choice = fastest_landmarks(threads)
    if choice is None:
        return "lite", "landmark model lite (no int8 file)"
    return choice.backend, choice.describe("landmark model")


def cache_key(here: str, files: Mapping[str, Path], threads: int) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        litert = version("ai-edge-litert")
    except PackageNotFoundError:
        litert = "?"
    digest = hashlib.sha256()
    for backend, path in files.items():
        digest.update(backend.encode() + path.read_bytes())
    return f"{here} | LiteRT {litert} | {threads} thread(s) | {digest.hexdigest()[:16]}"


def time_files(files: Mapping[str, Path], threads: int) -> dict[str, float]:
    """Median ms per invoke of each file, interleaved round by round after a warm-up."""
    from ai_edge_litert.interpreter import Interpreter

    runs = {}
    for backend, path in files.items():
        try:
            it = Interpreter(model_path=str(path), num_threads=threads)
            it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise UserError(f"cannot load {path}: {e}") from None
        spec = it.get_input_details()[0]
        pixels = np.random.default_rng(0).integers(0, 255, spec["shape"])
        it.set_tensor(spec["index"], pixels.astype(spec["dtype"]))
        for _ in range(WARMUP):
            it.invoke()
        runs[backend] = it
    times: dict[str, list[float]] = {b: [] for b in runs}
    for _ in range(ROUNDS):
        for backend, it in runs.items():
            start = time.perf_counter()
            for _ in range(INVOKES):
                it.invoke()
            times[backend].append(1000 * (time.perf_counter() - start) / INVOKES)
    return {b: round(statistics.median(t), 2) for b, t in times.items()}


def read_cache() -> dict:
    try:
        found = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def save(key: str, choice: Choice) -> None:
    """Into the cache file; a cache that cannot be written only costs the next calibration."""
    entries = read_cache()
    entries[key] = {k: v for k, v in asdict(choice).items() if k != "cached"}
    with contextlib.suppress(OSError):
        atomic_write_json(cache_file(), entries)
