"""Which planner implementation runs: the native extension or the pure-Python fallback.

The native module (``jointdnn_edge._core``, built from ``rust/``) is used
when it imports, unless the environment variable ``JOINTDNN_EDGE_PURE`` is
set to something other than ``""`` or ``"0"`` (as the test suite does to run
the planner cases against the fallback, and as an app can do to compare).
"""

from __future__ import annotations

import os
from types import ModuleType

_module: ModuleType | None = None
_checked = False


def native_module() -> ModuleType | None:
    """The native extension module, or None when it is absent or disabled."""
    global _module, _checked
    if not _checked:
        _checked = True
        if os.environ.get("JOINTDNN_EDGE_PURE", "") in ("", "0"):
            try:
                from .. import _core

                _module = _core
            except ImportError:
                _module = None
    return _module


def native_available() -> bool:
    """True when plans and lookup tables are computed by the native (Rust) core."""
    return native_module() is not None
