"""Map a host profile onto a modelled device, one factor per operator class.

A profile measured on this machine keeps what only a measurement knows: how
much a group of layers gains over its single layers (fusion, caches), and how
layers of one kind differ from each other (algorithm choice, data-dependent
kernels). What it gets wrong for another device is the balance between layer
kinds: a server GPU speeds up convolutions far more than a memory-bound fully
connected layer or a launch-bound activation. :func:`calibrated_ms` keeps the
first and takes the second from a :mod:`~jointdnn_edge.devices` model:

* per operator class ``c`` (``conv``, ``matmul``, ``elementwise``, and
  ``overhead`` for layers that move no data, whose time is the call itself),
  the factor is the device model's time of the class's single layers over
  the host's measured time of them, summed over the class:
  ``r_c = sum_k model[k] / sum_k host[k, k]``;
* a group ``i..j`` keeps its measured time and its measured gain over its
  singles, and its singles are each scaled by their class factor:
  ``mapped[i, j] = host[i, j] * sum_k host[k, k] * r_c(k) / sum_k host[k, k]``.

So a single layer becomes ``host[k, k] * r_c(k)``, the calibrated singles of
a class sum to the device model's, and one common factor for every class is
a uniform slowdown. See ``docs/devices.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .devices import Device, LayerWork, group_matrix

__all__ = ["CALIBRATION_CLASSES", "calibrated_ms", "class_factors", "class_of"]

#: the classes one factor each is fitted for
CALIBRATION_CLASSES = ("conv", "matmul", "elementwise", "overhead")


def class_of(work: LayerWork) -> str:
    """The calibration class of a layer: its operator class, or ``overhead`` when it does no work."""
    return "overhead" if work.flops == 0 and work.bytes == 0 else work.op_class


def _model_singles(works: Sequence[LayerWork], dev: Device) -> np.ndarray:
    """The device model's time of every layer run alone (call overhead, launch and kernel)."""
    return np.diagonal(group_matrix(works, [None] * len(works), dev, max_group=1)).copy()


def class_factors(
    host_singles: Sequence[float] | np.ndarray, works: Sequence[LayerWork], dev: Device
) -> dict[str, float]:
    """``{class: device-model time / host time}`` over the single layers of each class present."""
    model = _model_singles(works, dev)
    host = np.asarray(host_singles, dtype=np.float64)
    factors: dict[str, float] = {}
    for c in CALIBRATION_CLASSES:
        members = [k for k, w in enumerate(works) if class_of(w) == c]
        if members:
            factors[c] = float(model[members].sum() / host[members].sum())
    return factors


def calibrated_ms(host_ms: np.ndarray, works: Sequence[LayerWork], dev: Device) -> tuple[np.ndarray, dict[str, float]]:
    """The host's group times mapped onto ``dev`` (see the module docs), and the class factors used.

    ``host_ms`` is ``N x N`` with finite single layers (``inf``: not offered, kept).
    """
    host = np.asarray(host_ms, dtype=np.float64)
    singles = np.diagonal(host).copy()
    factors = class_factors(singles, works, dev)
    scaled = singles * np.array([factors[class_of(w)] for w in works])
    s_host = np.concatenate([[0.0], np.cumsum(singles)])
    s_scaled = np.concatenate([[0.0], np.cumsum(scaled)])
    n = host.shape[0]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    upper = j >= i
    ratio = np.ones((n, n))
    ratio[upper] = (s_scaled[j + 1] - s_scaled[i])[upper] / (s_host[j + 1] - s_host[i])[upper]
    out = np.where(upper, host * ratio, np.inf)
    return out, factors
