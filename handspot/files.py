"""Outputs written so that readers see the old content or the new, never a partial one; devices,
FIFOs and ``/dev/stdout`` written straight; what a killed run left behind cleaned up; a full disk
recognised as such."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from pathlib import Path

_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")


def disk_full(e: BaseException) -> str | None:
    """Why ``e`` means the disk, a quota or the file-size limit (``ulimit -f``) is full: from an
    OSError's errno or a TensorFlow error's text (its file system raises no OSError); None for
    any other error."""
    if isinstance(e, OSError) and e.errno in _DISK_FULL:
        return e.strerror or os.strerror(e.errno)
    return next((t for t in _DISK_FULL_TEXT if t in str(e)), None)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (or cannot be signalled by us); a zombie, killed and not
    yet reaped by its parent, runs no more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): it answered the signal
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def remove_stale(folder: Path, prefix: str) -> list[Path]:
    """Remove ``<prefix><pid>-*`` files and folders in ``folder`` whose process is gone: what a
    killed run of this project left behind. Others' (live) ones are kept."""
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


def part_path(target: Path) -> Path:
    """A temporary name beside ``target``, unique to this process and call (two runs writing the
    same output never share one); stale ones left by killed runs are removed first."""
    remove_stale(target.parent, f".{target.name}.part-")
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return target.parent / f".{target.name}.part-{token}{target.suffix}"


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
    ``output_target``). The file's mode is what ``open`` gives a new file."""
    path, straight = output_target(path)
    if straight:  # appended: a stdout redirected with >> keeps what it had
        with open_straight(path, "ab") as f:
            f.write(data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_path(path)
    try:
        with open(tmp, "xb") as f:  # 0666 less the umask, as open() makes any new file
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj) -> None:
    """``obj`` as indented JSON, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())
