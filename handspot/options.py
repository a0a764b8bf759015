"""Typed options written once: a dataclass whose fields carry their command-line help, so that a
CLI's parser and the library function it calls read the same definition.

    @dataclass(frozen=True)
    class Options:
        steps: int | None = option(None, "total steps", type=int)
        quiet: bool = option(False, "no progress bar", cli=False)

    add_options(parser, Options)                 # --steps N
    options = from_args(Options, parser.parse_args())
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def option(
    default: Any,
    help: str = "",
    *,
    type: Any = None,
    flags: tuple[str, ...] = (),
    choices: Any = None,
    metavar: str | None = None,
    group: str | None = None,
    cli: bool = True,
):
    """A dataclass field with its flag: ``--name-with-dashes`` plus ``flags`` (aliases). A bool
    defaulting to False is a switch; ``type=bool`` with default None is ``--name`` /
    ``--no-name``, None meaning "decide for me"; ``type`` is needed where the default is None;
    ``cli=False`` keeps a field out of the parser (library use only)."""
    meta = {"help": help, "type": type, "flags": flags, "choices": choices, "metavar": metavar}
    meta.update(group=group, cli=cli)
    return dataclasses.field(default=default, metadata=meta)


def add_options(
    parser: argparse.ArgumentParser,
    cls,
    *,
    exclude: tuple[str, ...] = (),
    choices: dict[str, Any] | None = None,
) -> None:
    """One argument per CLI field of ``cls``, in field order, in its named group if any;
    ``choices`` sets a field's allowed values where the caller knows them (a registry's names)."""
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli", False) or f.name in exclude:
            continue
        target = parser
        if meta["group"]:
            target = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        names = [f"--{f.name.replace('_', '-')}", *meta["flags"]]
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"] or None}
        if f.default is False:
            target.add_argument(*names, action="store_true", **kwargs)
            continue
        if meta["type"] is bool:
            action = argparse.BooleanOptionalAction
            target.add_argument(*names, action=action, default=f.default, **kwargs)
            continue
        kind = meta["type"] or (type(f.default) if f.default is not None else str)
        allowed = (choices or {}).get(f.name, meta["choices"])
        kwargs.update(type=kind, default=f.default, choices=allowed)
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        target.add_argument(*names, **kwargs)


def from_args(cls, namespace: argparse.Namespace, **overrides):
    """The options instance for parsed arguments (fields the parser lacks keep defaults)."""
    values = {
        f.name: getattr(namespace, f.name)
        for f in dataclasses.fields(cls)
        if hasattr(namespace, f.name)
    }
    return cls(**{**values, **overrides})


def parse_names(text: str) -> tuple[str, ...]:
    """``A,B, C`` -> ``("A", "B", "C")`` (a comma-separated CLI value)."""
    return tuple(n.strip() for n in text.split(",") if n.strip())
