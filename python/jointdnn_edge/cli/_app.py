"""The shared Typer application that every command module registers on."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import JointDNNError


def _width() -> int | None:
    # rich assumes 80 columns when output is not a terminal (pipes, CI logs); tables need more
    return None if sys.stdout.isatty() else 120


#: Console for human output; errors go to stderr.
console = Console(width=_width())
err_console = Console(stderr=True, width=_width())


def os_error_text(e: OSError) -> str:
    """``PATH: reason`` for a file-system error, without Python's ``[Errno N]`` noise."""
    reason = e.strerror or str(e) or type(e).__name__
    return f"{e.filename}: {reason}" if e.filename is not None else reason


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (``raise fail(...)``)."""
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def check_writable(path: Path, option: str) -> None:
    """Fail before any long work when ``path`` cannot be written (missing folder, a directory, no permission)."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise fail(f"{option} {path}: is a directory; give a file name")
    if not parent.is_dir():
        raise fail(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise fail(f"{option} {path}: permission denied")


class _Group(TyperGroup):
    """The root command group: errors that escape a command become one ``error:`` line, not a traceback.

    Commands report their expected errors themselves; this is the safety net
    for the rest of the SDK's errors and for files that cannot be read or
    written (exit status 1).
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except JointDNNError as e:
            raise fail(f"{type(e).__name__}: {e}") from None
        except OSError as e:
            if e.errno == errno.EPIPE:  # output piped into `head`: let click quiet it
                raise
            raise fail(os_error_text(e)) from None


app = typer.Typer(
    name="jointdnn-edge",
    cls=_Group,
    help="Split a DNN between an edge device and the cloud (JointDNN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
