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


def test_a_command_ended_by_sigterm_runs_its_finally_and_says_so_in_one_line(capsys):
    """``command``: SIGTERM inside ``main`` unwinds like Ctrl-C (its ``finally`` clauses run:
    temporary folders removed) and ends in one line with the shell's code, no traceback."""
    from handspot.errors import UserError
    from handspot.signals import command

    cleaned = []

    @command("interrupted; nothing was written")
    def main(signum):
        try:
            os.kill(os.getpid(), signum)
            return 0  # not reached: the signal raises
        finally:
            cleaned.append(signum)

    before = signal.getsignal(signal.SIGTERM)
    assert main(signal.SIGTERM) == 143 and main(signal.SIGINT) == 130
    assert cleaned == [signal.SIGTERM, signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) == before
    assert capsys.readouterr().err.split() == ["interrupted;", "nothing", "was", "written"] * 2

    @command()
    def refuses():
        raise UserError("bad input")

    assert refuses() == 2 and capsys.readouterr().err == "error: bad input\n"
