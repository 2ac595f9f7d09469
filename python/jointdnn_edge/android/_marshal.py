"""What crosses the Java bridge: entry-point error records and Java-friendly argument conversion.

Chaquopy's wording of a Python exception differs between its versions, so
every entry point records its failure per thread (:func:`entry`), and
:func:`last_error` hands that record to the Java facade as JSON.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ..errors import CodecError, ConfigError, InfeasibleError, JointDNNError, RemoteError

F = TypeVar("F", bound=Callable[..., Any])

_local = threading.local()


def describe(e: BaseException) -> dict[str, Any]:
    """An exception as plain JSON: class, message, class hierarchy and the SDK error's own fields."""
    cls = type(e)
    out: dict[str, Any] = {
        "type": cls.__name__,
        "module": cls.__module__,
        "message": str(e),
        "sdk_error": isinstance(e, JointDNNError),
        # the Java side tests membership ("is this a TransportError?") without knowing Python's classes
        "hierarchy": [k.__name__ for k in cls.__mro__ if k not in (object, BaseException)],
    }
    if isinstance(e, InfeasibleError):
        out["constraint"] = e.constraint
        out["best"] = e.best if e.best is None or math.isfinite(e.best) else None
    if isinstance(e, RemoteError):
        out["status"] = e.status
    return out


def entry(fn: F) -> F:
    """Marks a function as a bridge entry point: its failures are recorded for :func:`last_error`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _local.error = None
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            _local.error = describe(e)
            raise

    return cast(F, wrapper)


def last_error() -> str | None:
    """JSON describing the exception the last entry point called on this thread raised, or None.

    Fields: ``type`` (class name, e.g. ``"InfeasibleError"``), ``module``,
    ``message``, ``sdk_error`` (a :class:`~jointdnn_edge.JointDNNError`),
    ``hierarchy`` (class names from the class itself up to ``Exception``),
    and where they apply ``constraint``/``best`` (:class:`InfeasibleError`)
    and ``status`` (:class:`RemoteError`). Reset to None by every successful
    entry-point call on the same thread.
    """
    err = getattr(_local, "error", None)
    return None if err is None else json.dumps(err)


def number(value: Any, name: str, *, positive: bool = False) -> float:
    """``value`` as a finite float (> 0 when ``positive``, else >= 0); ConfigError otherwise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or (x <= 0 if positive else x < 0):
        raise ConfigError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return x


def optional_number(value: Any, name: str) -> float | None:
    """None for a Java ``null``, else :func:`number` (>= 0)."""
    return None if value is None else number(value, name)


def as_bytes(data: Any, what: str) -> bytes:
    """A byte buffer from Java or Python as ``bytes``.

    Accepts ``bytes``, anything with the buffer protocol (``bytearray``,
    ``memoryview``, Chaquopy's ``jarray`` of Java ``byte``) and, as a last
    resort, a sequence of integers, where Java's signed bytes (-128..127)
    stand for 128..255.
    """
    if isinstance(data, bytes):
        return data
    if data is None:
        raise CodecError(f"{what} is null")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        pass
    try:
        return bytes(int(v) & 0xFF for v in data)
    except (TypeError, ValueError):
        raise CodecError(f"{what} must be a byte buffer, got {type(data).__name__}") from None


def parse_json(text: Any, what: str, kind: type, error: type[JointDNNError] = ConfigError) -> Any:
    """``text`` parsed as JSON of type ``kind`` (None or "" give an empty one); ``error`` when it is not."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return kind()
    if not isinstance(text, str):
        text = str(text)  # a Java String arrives as str; anything else by its text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON: {e}") from None
    if not isinstance(value, kind):
        raise error(f"{what} must be a JSON {'object' if kind is dict else 'array'}")
    return value


def finite(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN; Android's org.json refuses it)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def read_file(path: str, what: str, error: type[JointDNNError]) -> bytes:
    """The bytes of ``path``; ``error`` naming ``what`` could not be read."""
    try:
        with open(str(path), "rb") as f:
            return f.read()
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
