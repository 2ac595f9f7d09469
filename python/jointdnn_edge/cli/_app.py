"""The shared Typer application that every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="jointdnn-edge",
    help="Split a DNN between an edge device and the cloud (JointDNN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Console for human output; errors go to stderr.
console = Console()
err_console = Console(stderr=True)
