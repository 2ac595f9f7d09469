"""The phone side of the wire: the cloud client, the bandwidth estimator, link emulation and split calls.

* :class:`CloudClient` talks to one cloud endpoint (split and standard
  inference requests, deadlines, safe retries, the endpoint's health);
* :class:`BandwidthEstimator` turns its transfers into the link the session
  plans on;
* :class:`Emulation` describes a slower link and :class:`EmulatedTransport`
  emulates it by wrapping the real httpx transport (demos and tests over the
  loopback);
* :class:`CircuitBreaker` is the client's view of the endpoint's health
  (closed / open / half-open, capped back-off with full jitter);
* :func:`as_model_tensor` checks an input's shape and casts it to the
  model's dtype within its kind (inputs are checked before anything is sent);
* :class:`SliceCall` is the client side of one split call (encode, send,
  check, decode), used by the session and by :class:`RemoteExecutor`, the
  executor that runs layer ranges on the server.

This package uses :mod:`jointdnn_edge.protocol` for the wire format and never
imports the server.
"""

from __future__ import annotations

from ._breaker import CircuitBreaker
from ._client import CloudClient, SliceResponse, is_cloud_failure
from ._emulation import EmulatedTransport, Emulation
from ._estimator import BandwidthEstimator
from ._inputs import as_model_tensor
from ._remote import RemoteExecutor
from ._slices import SliceCall, decode_slice_outputs

__all__ = [
    "BandwidthEstimator",
    "CircuitBreaker",
    "CloudClient",
    "EmulatedTransport",
    "Emulation",
    "RemoteExecutor",
    "SliceCall",
    "SliceResponse",
    "as_model_tensor",
    "decode_slice_outputs",
    "is_cloud_failure",
]
