"""A loaded model slice ready to run: what an executor's ``prepare`` returns (see :mod:`.executor`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

from ..errors import ExecutionError

__all__ = ["PreparedRun"]


class PreparedRun:
    """A loaded slice (or whole model) ready to run: ``prepared(feeds) -> outputs``.

    ``input_names``/``output_names`` are the slice's; calling it checks that
    every input is fed (extra feeds are ignored) and returns outputs by name.
    """

    __slots__ = ("_fn", "input_names", "output_names", "what")

    def __init__(
        self,
        fn: Callable[[Mapping[str, Any]], dict[str, np.ndarray]],
        input_names: list[str],
        output_names: list[str],
        what: str,
    ) -> None:
        self._fn = fn
        self.input_names = input_names
        self.output_names = output_names
        self.what = what

    def __call__(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run once with ``feeds`` (by input name)."""
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ExecutionError(f"{self.what}: missing inputs {missing}")
        return self._fn(feeds)

    def __repr__(self) -> str:
        return f"PreparedRun({self.what}, inputs={self.input_names}, outputs={self.output_names})"
