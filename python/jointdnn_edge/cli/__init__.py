"""Command-line interface: ``jointdnn-edge <command>``.

Each concern registers its commands on the shared :data:`app` from its own
module (``cli/plan.py``, ``cli/zoo.py``, ...); importing them here wires
them up.
"""

from __future__ import annotations

from . import accuracy as _accuracy
from . import android as _android
from . import demo as _demo
from . import netlab as _netlab
from . import plan as _plan
from . import profile as _profile
from . import reproduce as _reproduce
from . import serve as _serve
from . import zoo as _zoo
from ._app import app

__all__ = ["app", "main"]
_COMMAND_MODULES = (_accuracy, _android, _demo, _netlab, _plan, _profile, _reproduce, _serve, _zoo)


def main() -> None:
    """Entry point of the ``jointdnn-edge`` script."""
    app(prog_name="jointdnn-edge")


if __name__ == "__main__":  # pragma: no cover
    main()
