"""SIGTERM is handled as Ctrl-C (issue 22, case 4): one registration for both, exit codes as a
shell reports them."""

import os
import signal

from handspot.signals import Stopped, exit_code, on_stop_signals, restore_signals


def test_both_stop_signals_reach_the_handler_and_the_old_ones_come_back():
    got = []
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    previous = on_stop_signals(lambda signum, _frame: got.append(signum))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    finally:
        restore_signals(previous)
    assert got == [signal.SIGTERM, signal.SIGINT]
    assert {s: signal.getsignal(s) for s in before} == before


def test_exit_codes_follow_the_signal():
    assert exit_code(Stopped(signal.SIGTERM)) == 143
    assert exit_code(Stopped(signal.SIGINT)) == 130
    assert exit_code(KeyboardInterrupt()) == 130  # a plain Ctrl-C
    assert isinstance(Stopped(signal.SIGTERM), KeyboardInterrupt)  # caught where Ctrl-C is
