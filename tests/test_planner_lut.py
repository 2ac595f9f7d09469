"""Lookup tables and the label-setting search behind them."""

from __future__ import annotations

import dataclasses
import math
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jointdnn_edge import ConfigError, CostTable, InfeasibleError, LookupTableError, Network
from jointdnn_edge.network import Radio
from jointdnn_edge.planner import LookupTable, brute, native_available, plan, reference
from jointdnn_edge.planner.usage import reduce
from planner_strategies import cost_tables, random_costs

pytestmark = pytest.mark.pure

ATTR = {"latency": "latency_ms", "energy": "mobile_energy_mj"}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@given(costs=cost_tables(max_n=6), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=40)
def test_label_search_all_mode_returns_exactly_the_pareto_front(costs, seed):
    """Without bounds, "all" mode must return the Pareto front of all schedules in reduced coordinates."""
    rng = np.random.default_rng(seed)
    radio = Radio(*rng.uniform([200, 50, 100, 0], [900, 150, 1300, 20]))
    g = reference.StateGraph.build(reference.Plain.of(costs))
    lp = reference.LabelProblem(
        graph=g,
        dim=5,
        delta=[list(reduce(t[5], radio)) for t in g.trans],
        allowed=[True] * len(g.trans),
        objective=[1.0, 0, 0, 0, 0],
    )
    found = [v for _, v in reference.label_search(lp, "all")]
    points = [reduce(u, radio) for _, u, _ in brute.all_schedules(costs)]

    def le(a, b):  # a <= b everywhere, up to summation-order rounding
        return all(x <= y + 1e-9 * max(abs(y), 1.0) for x, y in zip(a, b))

    def same(a, b):
        return le(a, b) and le(b, a)

    front = [p for p in points if not any(le(q, p) and not same(q, p) for q in points)]
    assert all(any(same(f, p) for p in front) for f in found), "search returned a dominated schedule"
    assert all(any(same(f, p) for f in found) for p in front), "search missed a Pareto-optimal schedule"
    assert all(not same(a, b) for i, a in enumerate(found) for b in found[:i]), "duplicates"


@given(
    costs=cost_tables(max_n=7, extras=False),
    objective=st.sampled_from(["latency", "energy"]),
    constrained=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=25)
def test_queries_equal_direct_solves_anywhere_in_the_box(costs, objective, constrained, seed):
    rng = np.random.default_rng(seed)
    radio = Network.preset("4g", rtt_ms=float(rng.choice([0.0, 10.0])))
    radio = dataclasses.replace(radio, burst_up_bytes=float(rng.choice([0.0, 9.4e3, 2e5])))
    kw = {}
    if constrained:
        # a deadline that binds somewhere in the box
        mid = plan(costs, radio.with_bandwidth(3.0, 6.0), objective="latency").latency_ms
        kw["deadline_ms"] = mid * float(rng.uniform(1.0, 1.5))
    lut = LookupTable.build(
        costs,
        objective=objective,
        network=radio,
        up_mbps=(0.5, 20.0),
        down_mbps=(1.0, 40.0),
        cloud_slowdown=(1.0, 3.0),
        cells=(4, 4, 2),
        **kw,
    )
    for _ in range(30):
        up = float(np.exp(rng.uniform(np.log(0.5), np.log(20.0))))
        down = float(np.exp(rng.uniform(0.0, np.log(40.0))))
        slow = float(rng.uniform(1.0, 3.0))
        net = radio.with_bandwidth(up, down)
        try:
            direct = plan(costs, net, objective=objective, cloud_slowdown=slow, **kw)
        except InfeasibleError:
            with pytest.raises(InfeasibleError):
                lut.query(up, down, slow)
            continue
        got = lut.query(up, down, slow)
        assert close(getattr(got, ATTR[objective]), getattr(direct, ATTR[objective])), (up, down, slow)
        # and what it reports about the schedule is true
        e = got.evaluate(costs, net, cloud_slowdown=slow)
        assert close(got.latency_ms, e.latency_ms) and close(got.mobile_energy_mj, e.mobile_energy_mj)


def _table(n: int = 8, **kw) -> tuple[CostTable, LookupTable]:
    costs = random_costs(np.random.default_rng(7), n, dag=True)
    return costs, LookupTable.build(costs, network="4g", cells=(6, 6, 1), **kw)


def test_file_round_trip_is_lossless(tmp_path):
    _costs, lut = _table(deadline_ms=1e9)
    path = tmp_path / "t.lut"
    lut.save(path)
    back = LookupTable.load(path)
    assert back.to_bytes() == lut.to_bytes()
    for up, down in [(0.3, 0.6), (2.0, 9.0), (77.0, 150.0)]:
        assert back.query(up, down).segments == lut.query(up, down).segments


def test_a_table_for_a_link_with_a_burst_is_version_3_and_answers_with_its_burst(tmp_path):
    """A burst changes the file's layout (its radio and usage records), so such a table is written as version 3,
    which older readers refuse; a table without one keeps version 1. Oracle: plan() on the same link."""
    costs = random_costs(np.random.default_rng(7), 8, dag=True)
    link = dataclasses.replace(Network.preset("wifi", rtt_ms=5.0), burst_up_bytes=9.4e3, burst_down_bytes=4.5e3)
    lut = LookupTable.build(costs, network=link, cells=(6, 6, 1), deadline_ms=1e9)
    data = lut.to_bytes()
    assert struct.unpack_from("<H", data, 8)[0] == 3
    back = LookupTable.from_bytes(data)
    assert back.radio == link.radio and back.to_bytes() == data
    plain = LookupTable.build(costs, network=dataclasses.replace(link, burst_up_bytes=0.0, burst_down_bytes=0.0),
                              cells=(6, 6, 1), deadline_ms=1e9)  # fmt: skip
    assert struct.unpack_from("<H", plain.to_bytes(), 8)[0] == 1
    credited = 0
    for up, down in [(0.3, 0.6), (2.0, 9.0), (10.0, 30.0), (77.0, 150.0)]:
        want = plan(costs, link.with_bandwidth(up, down), deadline_ms=1e9)
        got = back.query(up, down)
        assert close(got.latency_ms, want.latency_ms)
        credited += got.latency_ms < plain.query(up, down).latency_ms
    assert credited > 0  # the burst is what the tables differ by


def test_corrupt_truncated_and_foreign_files_are_refused():
    _, lut = _table()
    data = lut.to_bytes()
    with pytest.raises(LookupTableError, match="magic"):
        LookupTable.from_bytes(b"PK\x03\x04" + data[4:])
    with pytest.raises(LookupTableError, match="checksum"):
        LookupTable.from_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x40
    with pytest.raises(LookupTableError):
        LookupTable.from_bytes(bytes(flipped))
    # a future version is refused by name, not misread
    import struct
    import zlib

    newer = bytearray(data[:-4])
    struct.pack_into("<H", newer, 8, 99)
    newer += struct.pack("<I", zlib.crc32(newer))
    with pytest.raises(LookupTableError, match="version 99"):
        LookupTable.from_bytes(bytes(newer))


def test_points_outside_the_box_are_solved_exactly_with_embedded_costs():
    costs, lut = _table()
    net = Network.preset("4g")
    for up, down in [(0.05, 0.1), (500.0, 900.0)]:
        s = lut.query(up, down)
        assert s.exact and s.solver.startswith("lut/")
        assert close(s.latency_ms, plan(costs, net.with_bandwidth(up, down)).latency_ms)


def test_without_embedded_costs_outside_points_are_flagged_inexact():
    costs, lut = _table(embed_costs=False)
    s = lut.query(500.0, 900.0)
    assert not s.exact
    assert s.latency_ms >= plan(costs, Network.preset("4g").with_bandwidth(500.0, 900.0)).latency_ms - 1e-9


def test_infeasible_region_raises_in_every_cell_it_covers():
    costs = random_costs(np.random.default_rng(3), 6, dag=False, extras=False)
    net = Network.preset("3g")
    fastest_at_low = plan(costs, net.with_bandwidth(0.5, 1.0)).latency_ms
    fastest_at_high = plan(costs, net.with_bandwidth(20.0, 40.0)).latency_ms
    assert fastest_at_high < fastest_at_low
    deadline = (fastest_at_low + fastest_at_high) / 2
    lut = LookupTable.build(costs, network=net, deadline_ms=deadline, up_mbps=(0.5, 20.0), down_mbps=(1.0, 40.0))
    with pytest.raises(InfeasibleError) as err:
        lut.query(0.5, 1.0)
    assert err.value.constraint == "deadline_ms"
    assert lut.query(20.0, 40.0).latency_ms <= deadline * (1 + 1e-9)


@pytest.mark.parametrize("pure", ["1", "0"], ids=["native-hidden", "native-present"])
def test_table_built_natively_is_read_without_numpy(tmp_path, pure):
    """The same file works on a phone without numpy (Android plan-only mode), with or without the native module;
    the points outside the box are solved on the embedded cost table."""
    _costs, lut = _table(deadline_ms=1e9)
    path = tmp_path / "t.lut"
    lut.save(path)
    probe = [(0.7, 1.3), (4.0, 12.0), (60.0, 100.0), (500.0, 900.0)]
    expected = [lut.query(u, d) for u, d in probe]
    script = f"""
import sys
sys.modules['numpy'] = None  # importing numpy now fails
from jointdnn_edge.planner.lut import LookupTable
from jointdnn_edge.planner import native_available
assert {pure!r} == "0" or not native_available()
lut = LookupTable.load({str(path)!r})
for u, d in {probe!r}:
    s = lut.query(u, d)
    print(repr(s.latency_ms), s.segments)
"""
    env = dict(os.environ, JOINTDNN_EDGE_PURE=pure)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    lines = out.stdout.strip().splitlines()
    for line, s in zip(lines, expected):
        lat, segs = line.split(" ", 1)
        assert close(float(lat), s.latency_ms)
        assert segs == str(s.segments)


@pytest.mark.skipif(not native_available(), reason="compares native and pure-Python builds")
def test_native_and_python_builds_store_the_same_schedules():
    costs = random_costs(np.random.default_rng(11), 7, dag=True)
    kw = dict(network="wifi", cells=(5, 5, 2), cloud_slowdown=(1.0, 2.0), deadline_ms=1e4)
    a = LookupTable.build(costs, solver="native", **kw)
    b = LookupTable.build(costs, solver="python", **kw)
    assert a.status == b.status and a.offsets == b.offsets
    assert [a.candidates[m][0] for m in a.members] == [b.candidates[m][0] for m in b.members]


def test_a_build_on_fewer_threads_is_the_same_table():
    """``threads`` bounds the build's pool, not its answers: one thread, two and the global pool write the same
    bytes, natively and in pure Python (which takes one thread whatever it is given). 72 cells: more than one of
    the build's chunks of 64, so a pool serves two calls. Natively the pools' threads are named by their size
    (``jdlutN-I``), which Linux shows in /proc: the build ran on the pool asked for."""
    costs = random_costs(np.random.default_rng(12), 7, dag=True)
    kw = dict(network="wifi", cells=(6, 6, 2), cloud_slowdown=(1.0, 2.0))
    for solver in ("native", "python") if native_available() else ("python",):
        tables = [LookupTable.build(costs, solver=solver, threads=t, **kw).to_bytes() for t in (None, 1, 2)]
        assert tables[0] == tables[1] == tables[2], solver
    if native_available() and os.path.isdir("/proc/self/task"):
        names = set()
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/comm") as f:
                    names.add(f.read().strip())
            except OSError:
                continue  # a thread that ended meanwhile
        assert {"jdlut1-0", "jdlut2-0", "jdlut2-1"} <= names and "jdlut1-1" not in names, sorted(names)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError):
            LookupTable.build(costs, threads=bad, **kw)


@pytest.mark.skipif(not native_available(), reason="compares the native binding's values with their mirrors")
def test_native_results_are_named_values_with_the_fields_of_their_pure_python_mirrors():
    """The binding returns typed values (``Solution``, ``LutCell``, ``Candidate``, ``LutAnswer``), not tuples."""
    from jointdnn_edge import _core
    from jointdnn_edge.planner import _backend

    costs = random_costs(np.random.default_rng(11), 7, dag=True)
    native, pure = _backend.compile(costs, solver="native"), _backend.compile(costs, solver="python")
    assert native.size == pure.size and native.size.states > 0
    net = Network.preset("wifi")

    def same(a: object, b: object, fields: tuple[str, ...]) -> None:
        assert not isinstance(a, tuple), type(a)
        for name in fields:
            x, y = getattr(a, name), getattr(b, name)
            if isinstance(y, float):
                assert close(x, y), (name, x, y)
            elif name == "usage":
                assert len(x) == len(y) and all(close(p, q) for p, q in zip(x, y)), (x, y)
            else:
                assert x == y, (name, x, y)

    got = native._problem.solve("energy", net, 1.5, 1e4)
    assert isinstance(got, _core.Solution)
    same(got, reference.solve(pure._graph, reference.Request("energy", net, 1.5, 1e4)), reference.Solution._fields)

    spec = reference.LutSpec("latency", [], net.radio, (1.0, 50.0), (1.0, 50.0), (1.0, 2.0), (3, 3, 2))
    cells = list(range(spec.num_cells()))
    for a, b in zip(native.lut_cells(spec, cells), pure.lut_cells(spec, cells), strict=True):
        assert isinstance(a, _core.LutCell) and a.status == b.status and a.status in reference.CELL_STATUSES
        for x, y in zip(a.candidates, b.candidates, strict=True):
            assert isinstance(x, _core.Candidate)
            same(x, y, reference.Candidate._fields)

    table = LookupTable.build(costs, network="wifi", cells=(3, 3, 1))
    fields = table._index_fields()
    for point in ((2.0, 7.0, 1.0), (30.0, 3.0, 1.0)):
        a, b = _core.LutIndex(**fields).query(*point), reference.LutIndex(**fields).query(*point)
        assert isinstance(a, _core.LutAnswer)
        same(a, b, reference.LutAnswer._fields)


def test_build_reports_progress():
    costs = random_costs(np.random.default_rng(1), 5, dag=False)
    seen = []
    LookupTable.build(costs, cells=(8, 8, 1), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (64, 64)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_stateless_tables_answer_for_a_stateless_cloud_and_keep_the_flag_in_the_file(tmp_path):
    costs = random_costs(np.random.default_rng(21), 7, dag=True)
    lut = LookupTable.build(costs, network="wifi", cells=(4, 4, 1), cloud_keeps_tensors=False)
    back = LookupTable.from_bytes(lut.to_bytes())
    assert back.cloud_keeps_tensors is False and back.to_bytes() == lut.to_bytes()
    net = Network.preset("wifi")
    for up, down in [(0.3, 0.7), (5.0, 9.0), (80.0, 190.0), (400.0, 900.0)]:
        direct = plan(costs, net.with_bandwidth(up, down), cloud_keeps_tensors=False)
        assert close(back.query(up, down).latency_ms, direct.latency_ms)


def _queries_match_plan(lut: LookupTable, costs: CostTable, network: Network, seed: int, **kw) -> None:
    """Answers at random points of the table's box equal a direct plan() there."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        up = math.exp(rng.uniform(math.log(lut.up_mbps[0]), math.log(lut.up_mbps[1])))
        down = math.exp(rng.uniform(math.log(lut.down_mbps[0]), math.log(lut.down_mbps[1])))
        got = lut.query(up, down)
        want = plan(costs, network.with_bandwidth(up, down), **kw)
        assert close(got.latency_ms, want.latency_ms), (up, down, got.segments, want.segments)


def test_cells_over_the_work_budget_fall_back_to_exact_solves_alike_in_both_builds():
    costs = random_costs(np.random.default_rng(5), 7, dag=True)
    kw = dict(network="wifi", up_mbps=(0.1, 1000.0), down_mbps=(0.1, 1000.0), cells=(3, 3, 1))
    tables = [LookupTable.build(costs, solver="python", cell_work_budget=60, **kw)]
    if native_available():
        tables.append(LookupTable.build(costs, solver="native", cell_work_budget=60, **kw))
        assert tables[0].status == tables[1].status and tables[0].offsets == tables[1].offsets
    unbudgeted = LookupTable.build(costs, solver="python", **kw)
    assert unbudgeted.stats()["solve_cells"] == 0
    solve_cells = tables[0].stats()["solve_cells"]
    assert 0 < solve_cells < 9, "the budget should cut some cells, not all"
    for lut in tables:
        _queries_match_plan(lut, costs, Network.preset("wifi"), seed=3)


@pytest.mark.skipif(not native_available(), reason="a wide-cell build is slow in pure Python")
def test_wide_cells_on_an_additive_cost_table_build_and_answer_exactly():
    """Regression: 4 x 4 cells over 0.1-1000 Mbit/s once took minutes to enumerate (groups cost the sum of layers)."""
    rng = np.random.default_rng(1)
    n = 21
    mobile = rng.uniform(2.0, 20.0, n)
    out = np.round(rng.uniform(2e3, 4e5, n) * np.linspace(1.0, 0.05, n))
    costs = CostTable.from_layers(mobile, mobile / 10, out, 6e5, mobile_power_mw=2500.0, max_group=8)
    for keeps in (True, False):
        lut = LookupTable.build(
            costs, network="wifi", up_mbps=(0.1, 1000.0), down_mbps=(0.1, 1000.0), cells=(4, 4, 1),
            cloud_keeps_tensors=keeps,
        )  # fmt: skip
        _queries_match_plan(lut, costs, Network.preset("wifi"), seed=7, cloud_keeps_tensors=keeps)
