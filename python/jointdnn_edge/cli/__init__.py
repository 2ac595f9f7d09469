"""Command-line interface: ``jointdnn-edge <command>``.

Each concern registers its commands on the shared :data:`app` from its own
module (``cli/plan.py``, ``cli/zoo.py``, ...); this file only wires them up.
"""

from __future__ import annotations

import sys

from ._app import app

# Importing a command module registers its commands on ``app``.
from . import plan as _plan  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``jointdnn-edge`` script."""
    app(prog_name="jointdnn-edge")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
