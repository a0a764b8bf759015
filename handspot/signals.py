"""Ctrl-C and SIGTERM handled alike: outputs closed, checkpoints saved, the shell's exit code."""

from __future__ import annotations

import signal
import threading

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
