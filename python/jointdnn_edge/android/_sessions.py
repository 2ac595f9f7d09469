"""Full-mode sessions and plan-only cloud clients, built from the options Java passes as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, ModelError, TransportError
from . import _planning


def cloud_client(url: str, token: str | None, timeout: float | None) -> Any:
    """A :class:`~jointdnn_edge.client.CloudClient`; TransportError when it cannot be made."""
    try:
        from ..client import CloudClient
    except ImportError as e:
        raise TransportError(f"the cloud client needs httpx and numpy ({e})") from None
    try:
        return CloudClient(str(url), token=token or None, timeout=30.0 if timeout is None else float(timeout))
    except ValueError as e:  # a malformed URL or timeout
        raise TransportError(str(e)) from None


def _session_kwargs(opts: Mapping[str, Any]) -> dict[str, Any]:
    """JointSession keyword arguments from the JSON options (see ``open_session``)."""
    kw = dict(opts)
    for key in ("token", "timeout"):
        kw.pop(key, None)
    if "battery_mj" in kw:
        kw["energy_budget_mj"] = kw.pop("battery_mj")
    costs = kw.get("costs")
    if costs == "loaded":
        kw["costs"] = _planning.loaded_cost_table()
    elif isinstance(costs, str):
        from ..costs import CostTable

        kw["costs"] = CostTable.load(costs)
    radio = kw.get("radio")
    if isinstance(radio, Mapping):
        kw["radio"] = _planning.session_radio(radio)
    net = kw.get("network")
    if isinstance(net, Mapping):
        kw["network"] = _planning.fixed_network(net)
    for key in ("request_slack", "lut_cells"):
        if isinstance(kw.get(key), list):
            kw[key] = tuple(kw[key])
    return kw


def open_session(model_path: str, cloud_url: str | None, opts: Mapping[str, Any]) -> Any:
    """A :class:`~jointdnn_edge.session.JointSession` for ``model_path`` (see ``open_session``)."""
    try:
        from ..session import JointSession
    except ImportError as e:
        raise ModelError(f"full mode needs numpy and a model runtime installed ({e})") from None
    kw = _session_kwargs(opts)
    cloud = cloud_client(cloud_url, opts.get("token"), opts.get("timeout")) if cloud_url else None
    try:
        return JointSession(str(model_path), cloud, close_cloud=True, **kw)
    except TypeError as e:  # an unknown option
        if cloud is not None:
            cloud.close()
        raise ConfigError(f"bad session option: {e}") from None
    except BaseException:
        if cloud is not None:
            cloud.close()
        raise
