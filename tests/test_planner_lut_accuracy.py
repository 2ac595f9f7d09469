"""Lookup tables under an accuracy budget against plan() under the same budget and against brute force.

The oracles: ``plan(max_accuracy_loss=...)`` (the exact outer search over
assignments, itself checked against brute force in
``test_planner_accuracy.py``) at random points of the box and outside it,
and ``brute.best_with_options`` (every schedule x every option of every
uploaded tensor) directly on tiny tables. A table's answer must cost what
``plan()``'s costs, use only options it names, within the budget, and keep
all of that through its file.
"""

from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from jointdnn_edge import ConfigError, InfeasibleError, LookupTableError, Network
from jointdnn_edge.planner import LookupTable, TransferOption, brute, plan
from jointdnn_edge.planner.schedule import Schedule
from planner_strategies import random_costs
from test_planner_accuracy import chain_with_a_large_cut, random_options, uses_what_it_says

pytestmark = pytest.mark.pure

ATTR = {"latency": "latency_ms", "energy": "mobile_energy_mj"}
UP, DOWN, SLOWDOWN = (0.25, 100.0), (0.5, 200.0), (1.0, 3.0)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def points(rng: np.random.Generator, k: int) -> list[tuple[float, float, float]]:
    """``k`` points spread over the box (log-uniform bandwidths), and two outside it (answered by a solve)."""
    inside = [
        (
            float(np.exp(rng.uniform(*np.log(UP)))),
            float(np.exp(rng.uniform(*np.log(DOWN)))),
            float(rng.uniform(*SLOWDOWN)),
        )
        for _ in range(k)
    ]
    return [*inside, (0.1, 0.2, 1.0), (300.0, 500.0, 4.0)]


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6),
    dag=st.booleans(),
    objective=st.sampled_from(["latency", "energy"]),
    budget=st.sampled_from([0.0, 0.005, 0.01, 0.03]),
    keeps=st.booleans(),
    constrained=st.booleans(),
)
@settings(max_examples=30, deadline=None)
def test_table_answers_equal_plan_under_the_budget_everywhere(seed, n, dag, objective, budget, keeps, constrained):
    rng = np.random.default_rng(seed)
    costs = random_costs(rng, n, dag=dag)
    options = random_options(rng, costs)
    bounds = {}
    if constrained:  # a deadline some points meet only with a lossy transfer, some not at all
        at = Network.preset("4g").with_bandwidth(5.0, 10.0)
        bounds["deadline_ms"] = plan(costs, at).latency_ms * float(rng.uniform(0.6, 1.2))
    lut = LookupTable.build(
        costs, objective=objective, network="4g", up_mbps=UP, down_mbps=DOWN, cloud_slowdown=SLOWDOWN,
        cells=(3, 3, 2), cloud_keeps_tensors=keeps, max_accuracy_loss=budget, accuracy=options, **bounds,
    )  # fmt: skip
    back = LookupTable.from_bytes(lut.to_bytes())
    kw = {"objective": objective, "cloud_keeps_tensors": keeps, "max_accuracy_loss": budget, "accuracy": options}
    for up, down, slowdown in points(rng, 8):
        net = Network.preset("4g").with_bandwidth(up, down)
        try:
            want = plan(costs, net, cloud_slowdown=slowdown, **kw, **bounds)
        except InfeasibleError:
            event("infeasible point")
            for table in (lut, back):
                with pytest.raises(InfeasibleError):
                    table.query(up, down, slowdown)
            continue
        got = lut.query(up, down, slowdown)
        event("lossy answer" if got.lossy else "lossless answer")
        assert close(getattr(got, ATTR[objective]), getattr(want, ATTR[objective])), (up, down, slowdown)
        assert got.exact and got.accuracy_loss <= budget + 1e-12
        uses_what_it_says(got, costs, options, keeps)
        # priced as it runs: the stored usage with the link and slowdown of the point
        again = Schedule.from_usage(got.segments, got.usage, got.transfers, net, slowdown)
        assert close(again.latency_ms, got.latency_ms) and close(again.mobile_energy_mj, got.mobile_energy_mj)
        if "deadline_ms" in bounds:
            assert got.latency_ms <= bounds["deadline_ms"] * (1 + 1e-9)
        loaded = back.query(up, down, slowdown)
        assert loaded.segments == got.segments and loaded.lossy == got.lossy
        assert close(loaded.accuracy_loss, got.accuracy_loss)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 4),
    objective=st.sampled_from(["latency", "energy"]),
    budget=st.sampled_from([0.0, 0.01, 0.03]),
)
@settings(max_examples=20, deadline=None)
def test_table_answers_equal_brute_force_over_cuts_and_options_on_tiny_tables(seed, n, objective, budget):
    rng = np.random.default_rng(seed)
    costs = random_costs(rng, n, dag=bool(seed % 2))
    options = random_options(rng, costs)
    lut = LookupTable.build(
        costs, objective=objective, network="3g", up_mbps=UP, down_mbps=DOWN, cells=(4, 4, 1),
        max_accuracy_loss=budget, accuracy=options,
    )  # fmt: skip
    for up, down, _ in points(rng, 6)[:-1]:
        net = Network.preset("3g").with_bandwidth(up, down)
        found = brute.best_with_options(costs, net, options, budget, objective=objective)
        assert found is not None  # nothing constrains: all-mobile is always there
        want = Schedule.from_usage(found[0], found[1], found[2], net, 1.0)
        got = lut.query(up, down)
        assert close(getattr(got, ATTR[objective]), getattr(want, ATTR[objective]))
        assert got.accuracy_loss <= budget + 1e-12


def _chain_with_a_worthwhile_option():
    """``chain_with_a_large_cut``: lossless keeps everything on the phone over slow links; a 20x smaller option of
    tensor 1 with a 0.005 loss moves layers 1.. to the cloud (a 0.02 one is over the budgets used here)."""
    costs = chain_with_a_large_cut()
    return costs, [TransferOption(1, "pca+q4", 20_000.0, 0.005), TransferOption(1, "q2", 10_000.0, 0.02)]


def test_the_file_keeps_the_options_and_plain_tables_keep_version_1(tmp_path):
    costs, options = _chain_with_a_worthwhile_option()
    lut = LookupTable.build(costs, network="3g", cells=(4, 4, 1), max_accuracy_loss=0.01, accuracy=options)
    plain = LookupTable.build(costs, network="3g", cells=(4, 4, 1))
    assert struct.unpack_from("<HH", plain.to_bytes(), 8) == (1, 1)  # version 1, costs embedded, nothing new
    assert struct.unpack_from("<HH", lut.to_bytes(), 8) == (2, 1 | 4)
    assert lut.options == (options[0],)  # q2 is over the budget
    st = lut.stats()
    assert st["max_accuracy_loss"] == 0.01 and st["lossy_schedules"] >= 1
    assert plain.stats()["max_accuracy_loss"] is None
    lut.save(tmp_path / "a.lut")
    back = LookupTable.load(tmp_path / "a.lut")
    assert back.to_bytes() == lut.to_bytes() and back.max_accuracy_loss == 0.01
    s = back.query(1.0, 2.0)
    assert s.lossy == ((1, "pca+q4"),) and s.accuracy_loss == 0.005 and s.bytes_up == 20_000.0
    assert plain.query(1.0, 2.0).lossy == () and plain.query(1.0, 2.0).pattern() == "mobile"
    # outside the box: the embedded table answers under the budget, with the option
    far = back.query(150.0, 300.0)
    want = plan(costs, Network.preset("3g").with_bandwidth(150.0, 300.0), max_accuracy_loss=0.01, accuracy=options)
    assert far.lossy == want.lossy == ((1, "pca+q4"),) and close(far.latency_ms, want.latency_ms) and far.exact
    # without the embedded table, the best stored schedule (flagged inexact) still names its options
    bare = LookupTable.build(
        costs, network="3g", cells=(4, 4, 1), max_accuracy_loss=0.01, accuracy=options, embed_costs=False
    )
    guess = LookupTable.from_bytes(bare.to_bytes()).query(150.0, 300.0)
    assert not guess.exact and guess.lossy == ((1, "pca+q4"),) and close(guess.latency_ms, want.latency_ms)


def _with_section(data: bytes, edit) -> bytes:
    """``data`` with its transfer-options section (the JSON before the checksum) edited and the checksum redone."""
    body = data[:-4]
    start = body.rindex(b'{"max_accuracy_loss"')
    section = json.loads(body[start:])
    edit(section)
    blob = json.dumps(section).encode()
    out = body[: start - 4] + struct.pack("<I", len(blob)) + blob
    return out + struct.pack("<I", zlib.crc32(out))


def test_malformed_transfer_options_are_refused():
    costs, options = _chain_with_a_worthwhile_option()
    data = LookupTable.build(costs, network="3g", cells=(2, 2, 1), max_accuracy_loss=0.01, accuracy=options).to_bytes()
    assert LookupTable.from_bytes(_with_section(data, lambda s: None)).max_accuracy_loss == 0.01
    for edit, match in [
        (lambda s: s["schedules"].pop(), "lists of options"),
        (lambda s: s["schedules"].__setitem__(0, [7]), "missing transfer option"),
        (lambda s: s.__setitem__("max_accuracy_loss", 0.001), "accuracy budget"),
        (lambda s: s.__setitem__("max_accuracy_loss", -1), "budget"),
        (lambda s: s["options"][0].__setitem__(0, 99), "tensor"),
        (lambda s: s["options"][0].__setitem__(2, "big"), "malformed"),
        (lambda s: s.pop("options"), "malformed"),
    ]:
        with pytest.raises(LookupTableError, match=match):
            LookupTable.from_bytes(_with_section(data, edit))
    # a version-2 file without the flag (or the flag in version 1) is refused, not misread
    for version, flags in [(2, 1), (1, 5)]:
        body = bytearray(data[:-4])
        struct.pack_into("<HH", body, 8, version, flags)
        with pytest.raises(LookupTableError, match="flag"):
            LookupTable.from_bytes(bytes(body) + struct.pack("<I", zlib.crc32(body)))


def test_bad_budget_requests_are_refused():
    costs, options = _chain_with_a_worthwhile_option()
    for kw in (
        {"max_accuracy_loss": 0.01},
        {"accuracy": options},
        {"max_accuracy_loss": -0.1, "accuracy": options},
        {"max_accuracy_loss": 0.01, "accuracy": options, "solver": "ilp"},
        {"max_accuracy_loss": 0.01, "accuracy": "rows"},
    ):
        with pytest.raises(ConfigError):
            LookupTable.build(costs, cells=(2, 2, 1), **kw)
