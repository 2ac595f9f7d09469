"""jointdnn-edge: split a DNN between an edge device and the cloud, layer by layer.

The public API is re-exported here; each concern lives in its own module
(``costs``, ``planner``, ``models``, ``profiler``, ``codec``, ``transport``,
``server``, ``session``, ``zoo``, ``cli``, ``android``).
"""

from __future__ import annotations

from .costs import DEFAULT_MOBILE_POWER_MW, NETWORK_PRESETS, CostTable, Network
from .errors import (
    AuthError,
    CloudUnavailableError,
    CodecError,
    CostTableError,
    DeadlineExceededError,
    ExecutionError,
    InfeasibleError,
    JointDNNError,
    LookupTableError,
    ModelError,
    RemoteError,
    SolverError,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MOBILE_POWER_MW",
    "NETWORK_PRESETS",
    "AuthError",
    "CloudUnavailableError",
    "CodecError",
    "CostTable",
    "CostTableError",
    "DeadlineExceededError",
    "ExecutionError",
    "InfeasibleError",
    "JointDNNError",
    "LookupTableError",
    "ModelError",
    "Network",
    "RemoteError",
    "SolverError",
    "TransportError",
]
