"""Ctrl-C and SIGTERM handled alike: outputs closed, checkpoints saved, the shell's exit code."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading

from handspot.errors import UserError, fail

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


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Within the block, SIGTERM raises ``Stopped`` as Ctrl-C does, so the block's ``finally``
    clauses run (temporary folders removed, outputs closed) instead of the process vanishing."""

    def stop(signum, _frame):
        raise Stopped(signum)

    previous = on_stop_signals(stop)
    try:
        yield
    finally:
        restore_signals(previous)


def stopped(stop: KeyboardInterrupt, message: str) -> int:
    """Report a command ended by Ctrl-C or SIGTERM in one line; the shell's code for it."""
    print(f"\n{message}", file=sys.stderr)
    return exit_code(stop)


def command(message: str = "interrupted; nothing was written"):
    """Decorate a command's ``main``: SIGTERM handled as Ctrl-C, and either one reported as
    ``message`` with the shell's code (130, 143) after the work's ``finally`` clauses ran, never
    a traceback; a ``UserError`` that escapes ``main`` is one error line."""

    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                with sigterm_as_ctrl_c():
                    return main(*args, **kwargs)
            except UserError as e:
                return fail(str(e))
            except KeyboardInterrupt as stop:
                return stopped(stop, message)

        return run

    return wrap
