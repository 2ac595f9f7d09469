"""The shared Typer application that every command module registers on."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="jointdnn-edge",
    help="Split a DNN between an edge device and the cloud (JointDNN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _width() -> int | None:
    # rich assumes 80 columns when output is not a terminal (pipes, CI logs); tables need more
    return None if sys.stdout.isatty() else 120


#: Console for human output; errors go to stderr.
console = Console(width=_width())
err_console = Console(stderr=True, width=_width())
