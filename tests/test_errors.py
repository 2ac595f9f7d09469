"""One exception hierarchy: bad arguments anywhere in the SDK raise a JointDNNError subclass."""

from __future__ import annotations

import inspect

import pytest

import jointdnn_edge as jd
from jointdnn_edge import errors


def test_every_error_class_derives_from_the_root_and_is_exported():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert {c.__name__ for c in classes} == set(errors.__all__)
    for c in classes:
        assert issubclass(c, jd.JointDNNError)
        assert getattr(jd, c.__name__) is c


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda: jd.CloudClient("ftp://example.org"), jd.ConfigError),
        (lambda: jd.CloudClient("http://127.0.0.1:1", timeout=0), jd.ConfigError),
        (lambda: jd.BandwidthEstimator(window=0), jd.ConfigError),
        (lambda: jd.Emulation(up_mbps=-1.0), jd.ConfigError),
        (lambda: jd.server.Limits(max_body_bytes=0), jd.ConfigError),
        (lambda: jd.executor_for("onnx", threads=0), jd.ConfigError),
        (lambda: jd.zoo.build("pix2pix", resolution=100), jd.ConfigError),
        (lambda: jd.plan(jd.CostTable.from_layers([1.0], [1.0], [4], 4), "4g", objective="speed"), jd.ConfigError),
    ],
    ids=["url", "timeout", "window", "emulation", "limits", "threads", "zoo", "objective"],
)
def test_bad_arguments_raise_typed_errors_that_are_also_value_errors(call, kind):
    with pytest.raises(kind) as info:
        call()
    assert isinstance(info.value, ValueError) and str(info.value)


def test_missing_files_raise_typed_errors(tmp_path):
    missing = tmp_path / "missing"
    for load, kind in ((jd.CostTable.load, jd.CostTableError), (jd.LookupTable.load, jd.LookupTableError)):
        with pytest.raises(kind, match="cannot read"):
            load(missing)


def test_planner_bounds_accept_numpy_scalars_and_refuse_booleans():
    import numpy as np

    costs = jd.CostTable.from_layers([1.0, 2.0], [0.1, 0.2], [1000, 10], 4000)
    a = jd.plan(costs, "4g", deadline_ms=np.float32(500), cloud_slowdown=np.float64(2.0))
    b = jd.plan(costs, "4g", deadline_ms=500.0, cloud_slowdown=2.0)
    assert a.segments == b.segments and a.latency_ms == b.latency_ms
    for bad in (True, np.bool_(True)):
        with pytest.raises(jd.ConfigError):
            jd.plan(costs, "4g", deadline_ms=bad)
