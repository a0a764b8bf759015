"""Output folders of the workflow (datasets, exported models, pre-annotations, checkpoints):
written aside and swapped in whole, stamped with what wrote them, and never put over a folder,
or a file in one, that the project did not write."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from handspot.errors import UserError
from handspot.files import atomic_write_json, disk_full, remove_stale

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
