"""The SDK's one exception hierarchy.

Every error the SDK raises on purpose derives from :class:`JointDNNError`, so an
application (or the Android bridge) can catch one type. Subclasses that describe
bad input also derive from :class:`ValueError`, so generic code that expects
``ValueError`` keeps working. The native module raises these same classes.

Which class for what:

- :class:`ConfigError`: an argument, option or setting is invalid (an unknown
  objective or solver name, a negative bound, a bad network figure, a session,
  client, server or Android option). The error for "you called it wrong".
- :class:`CostTableError`: a cost table itself is malformed (array shapes,
  negative or non-finite costs, edges, a cost-table file).
- :class:`ProtocolError`: a message breaks the Open Inference Protocol or the
  split extension; it carries the HTTP status to answer with.
- :class:`FrameTooLargeError`: a frame would decode to more than the allowed
  bytes (a :class:`CodecError`; the server answers it with 413).
"""

from __future__ import annotations

__all__ = [
    "JointDNNError",
    "CostTableError",
    "InfeasibleError",
    "SolverError",
    "LookupTableError",
    "ModelError",
    "ExecutionError",
    "CodecError",
    "TransportError",
    "CloudUnavailableError",
    "ClientBusyError",
    "RemoteError",
    "DeadlineExceededError",
    "AuthError",
    "ConfigError",
    "FrameTooLargeError",
    "ProtocolError",
    "ServerError",
    "UnknownNameError",
]


class JointDNNError(Exception):
    """Root of every error raised by jointdnn-edge."""


class ConfigError(JointDNNError, ValueError):
    """An argument, option or setting is invalid (planner, network, client, server, session, Android or zoo)."""


class CostTableError(JointDNNError, ValueError):
    """A cost table (its arrays, edges or file) is malformed."""


class InfeasibleError(JointDNNError):
    """No schedule satisfies the constraints.

    ``constraint`` names the binding constraint (``"deadline_ms"``,
    ``"energy_budget_mj"``, ``"cloud_budget_ms"``, a combination joined by
    ``"+"``, or ``"force"``/``"groups"`` when the offered groups leave no
    schedule at all); ``best`` is the smallest value of that constraint any
    schedule reaches, when known.
    """

    def __init__(self, message: str, constraint: str = "", best: float | None = None):
        super().__init__(message)
        self.constraint = constraint
        self.best = best


class SolverError(JointDNNError):
    """The solver cannot handle this instance (for example, a graph too wide for the exact DP)."""


class LookupTableError(JointDNNError, ValueError):
    """A lookup-table file is truncated, corrupt, or of an unknown version."""


class ModelError(JointDNNError, ValueError):
    """A model file cannot be loaded, sliced or run as asked."""


class UnknownNameError(ModelError, KeyError):
    """A model or zoo spec has no tensor or operator of that name (also a ``KeyError``, as a lookup miss)."""

    __str__ = Exception.__str__  # the message as written, not KeyError's quoted form


class ExecutionError(JointDNNError):
    """A runtime failed while executing a model slice."""


class CodecError(JointDNNError, ValueError):
    """An activation frame is malformed, corrupt, or exceeds a size limit."""


class FrameTooLargeError(CodecError):
    """An activation frame would decode to more bytes than the caller allows (``max_bytes``)."""


class ProtocolError(JointDNNError, ValueError):
    """A message breaks the Open Inference Protocol or its split extension.

    ``status`` is the HTTP status a server answers it with (400 malformed,
    409 model mismatch, 413 too large, 422 well-formed but unusable, 502 a
    response the client cannot use).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ServerError(JointDNNError):
    """The cloud endpoint could not be started (a port in use, a server thread that died at start-up)."""


class TransportError(JointDNNError):
    """Talking to the cloud endpoint failed."""


class CloudUnavailableError(TransportError):
    """The cloud could not be reached (connection refused, reset, DNS, TLS)."""


class ClientBusyError(TransportError):
    """Every connection of the client's own pool was busy until the request's deadline.

    Local contention (more concurrent requests than ``CloudClient(max_connections=...)``),
    not a fault of the cloud: the session falls back for this inference, and the
    client's circuit breaker does not count it.
    """


class RemoteError(TransportError):
    """The cloud answered with an error status or an unusable body."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class DeadlineExceededError(TransportError):
    """The cloud did not answer within the request's deadline."""


class AuthError(RemoteError):
    """The cloud refused the request's credentials (HTTP 401/403)."""
