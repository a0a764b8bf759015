"""The error every stage reports as one line (``error: ...``, exit code 2), never a traceback."""

from __future__ import annotations

import sys


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line, never a traceback."""


def fail(message: str) -> int:
    """Print ``error: message`` on stderr; the exit code for it (2)."""
    print(f"error: {message}", file=sys.stderr)
    return 2
