"""jointdnn-edge: split a DNN between an edge device and the cloud, layer by layer.

The public API is re-exported here; each concern lives in its own module
(``costs``, ``network``, ``planner``, ``models``, ``profiler``, ``codec``,
``protocol``, ``client``, ``server``, ``session``, ``zoo``, ``cli``, ``android``).

Names are loaded on first use (PEP 562), so ``import jointdnn_edge`` is cheap
and the parts that need no third-party packages (errors, networks, lookup
tables) work where numpy, onnxruntime or LiteRT are not installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthError,
    ClientBusyError,
    CloudUnavailableError,
    CodecError,
    ConfigError,
    CostTableError,
    DeadlineExceededError,
    ExecutionError,
    FrameTooLargeError,
    InfeasibleError,
    JointDNNError,
    LookupTableError,
    ModelError,
    ProtocolError,
    RemoteError,
    ServerError,
    SolverError,
    TransportError,
    UnknownNameError,
)
from .network import NETWORK_PRESETS, Network, Radio

__version__ = "0.1.0"

# public name -> module it lives in (None: the name is a submodule)
_LAZY: dict[str, str | None] = {
    "CostTable": "costs",
    "DEFAULT_MOBILE_POWER_MW": "costs",
    "plan": "planner",
    "Schedule": "planner",
    "LookupTable": "planner",
    "native_available": "planner",
    "load_model": "models",
    "ModelGraph": "models",
    "executor_for": "models",
    "profile": "profiler",
    "DeviceProfile": "profiler",
    "JointSession": "session",
    "CloudClient": "client",
    "BandwidthEstimator": "client",
    "Emulation": "client",
    "RemoteExecutor": "client",
    "create_app": "server",
    "serve": "server",
    "codec": None,
    "devices": None,
    "planner": None,
    "models": None,
    "zoo": None,
    "server": None,
    "session": None,
    "client": None,
}

if TYPE_CHECKING:
    from . import client, codec, devices, models, planner, server, session, zoo
    from .client import BandwidthEstimator, CloudClient, Emulation, RemoteExecutor
    from .costs import DEFAULT_MOBILE_POWER_MW, CostTable
    from .models import ModelGraph, executor_for, load_model
    from .planner import LookupTable, Schedule, native_available, plan
    from .profiler import DeviceProfile, profile
    from .server import create_app, serve
    from .session import JointSession


def __getattr__(name: str) -> Any:
    try:
        where = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'jointdnn_edge' has no attribute {name!r}") from None
    module = importlib.import_module(f".{where or name}", __name__)
    value = module if where is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_MOBILE_POWER_MW",
    "NETWORK_PRESETS",
    "AuthError",
    "BandwidthEstimator",
    "CloudClient",
    "ClientBusyError",
    "CloudUnavailableError",
    "CodecError",
    "ConfigError",
    "CostTable",
    "CostTableError",
    "DeadlineExceededError",
    "DeviceProfile",
    "Emulation",
    "ExecutionError",
    "FrameTooLargeError",
    "InfeasibleError",
    "JointDNNError",
    "JointSession",
    "LookupTable",
    "LookupTableError",
    "ModelError",
    "ProtocolError",
    "ModelGraph",
    "Network",
    "Radio",
    "RemoteError",
    "RemoteExecutor",
    "Schedule",
    "ServerError",
    "SolverError",
    "TransportError",
    "UnknownNameError",
    "client",
    "codec",
    "create_app",
    "devices",
    "executor_for",
    "load_model",
    "models",
    "native_available",
    "plan",
    "planner",
    "profile",
    "serve",
    "server",
    "session",
    "zoo",
]
