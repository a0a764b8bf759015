"""Options written once: the parser a dataclass's fields make, and the options read back."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from handspot.options import add_options, from_args, option


@dataclass(frozen=True)
class Options:
    steps: int | None = option(None, "total steps", type=int)
    rate: float = option(0.5, flags=("--lr",))
    fast: bool = option(False, "go fast")
    kind: str = option("a", choices=("a", "b"), group="more")
    auto: bool | None = option(None, "on, off, or None: decide", type=bool)
    quiet: bool = option(False, cli=False)


def parse(*argv: str, exclude=()) -> Options:
    p = argparse.ArgumentParser()
    add_options(p, Options, exclude=exclude)
    return from_args(Options, p.parse_args(list(argv)))


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        ((), Options()),
        (("--steps", "5", "--fast"), Options(steps=5, fast=True)),
        (("--lr", "0.1", "--kind", "b"), Options(rate=0.1, kind="b")),
        (("--rate", "2"), Options(rate=2.0)),
        (("--auto",), Options(auto=True)),
        (("--no-auto",), Options(auto=False)),
    ],
)
def test_flags_map_to_fields(argv, want):
    assert parse(*argv) == want


@pytest.mark.parametrize("argv", [("--quiet",), ("--kind", "c"), ("--steps", "x"), ("--fast", "1")])
def test_what_the_options_do_not_allow_is_refused(argv):
    with pytest.raises(SystemExit):
        parse(*argv)


def test_excluded_fields_keep_their_defaults():
    with pytest.raises(SystemExit):
        parse("--steps", "3", exclude=("steps",))
    assert parse(exclude=("steps",)) == Options()
