"""Hostile and odd input at the planner's public API (and the native sparse scatter behind the codec).

The contract: every call either returns a correct answer or raises a
:class:`jointdnn_edge.JointDNNError` subclass; never a pyo3 ``PanicException``,
another exception type, a crash, a hang or an unbounded allocation. Where the
native module is present, its answers (and its errors' classes) are compared
with the pure-Python mirror's.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jointdnn_edge import (
    CodecError,
    ConfigError,
    CostTable,
    CostTableError,
    InfeasibleError,
    JointDNNError,
    LookupTableError,
    Network,
    SolverError,
    codec,
)
from jointdnn_edge.codec import codecs
from jointdnn_edge.network import Radio
from jointdnn_edge.planner import LookupTable, native_available, plan, reference
from jointdnn_edge.planner.usage import DIMS

pytestmark = pytest.mark.pure

INF, NAN = math.inf, math.nan


def outcome(f: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", result)`` or ``("err", exception class)``; any other exception fails the test."""
    try:
        return "ok", f()
    except JointDNNError as e:
        return "err", type(e)
    except BaseException as e:  # a PanicException derives from BaseException
        raise AssertionError(f"untyped error {type(e).__module__}.{type(e).__name__}: {e}") from e


def same_schedule_cost(a: Any, b: Any, objective: str) -> bool:
    attr = {"latency": "latency_ms", "energy": "mobile_energy_mj"}[objective]
    x, y = getattr(a, attr), getattr(b, attr)
    return x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)


# ------------------------------------------------------------------ cost tables
odd_floats = st.one_of(
    st.sampled_from([0.0, -0.0, -1.0, INF, -INF, NAN, 1e308, 5e307, 1e-308, 1e300]),
    st.floats(0.0, 1e4),
)
any_scalar = st.one_of(
    odd_floats,
    st.sampled_from([None, "x", 10**400, -(10**400), True, [1.0], object()]),
)


@st.composite
def hostile_tables(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ``CostTable``: mostly valid, with odd values, shapes, dtypes and layouts."""
    n = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mm = rng.uniform(1.0, 50.0, (n, n))
    cm = mm / rng.uniform(2.0, 10.0, (n, n))
    kw: dict[str, Any] = {
        "mobile_ms": mm,
        "cloud_ms": cm,
        "out_bytes": rng.uniform(1e3, 1e5, n),
        "input_bytes": float(rng.uniform(1e3, 1e5)),
    }
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        what = draw(
            st.sampled_from(
                ["value", "shape", "dtype", "layout", "vector", "scalar", "edges", "outputs", "mj", "codec", "download"]
            )
        )
        if what == "value":  # NaN, inf, negative, near-overflow entries anywhere
            key = draw(st.sampled_from(["mobile_ms", "cloud_ms"]))
            m = np.array(kw[key], dtype=np.float64)
            if m.shape == (n, n):
                m[draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))] = draw(odd_floats)
                kw[key] = m
        elif what == "shape":
            key = draw(st.sampled_from(["mobile_ms", "cloud_ms"]))
            shape = draw(st.sampled_from([(n, n + 1), (n * n,), (n + 1, n + 1), (0, 0), (n, n, 1), ()]))
            kw[key] = np.ones(shape)
        elif what == "dtype":
            key = draw(st.sampled_from(["mobile_ms", "cloud_ms", "out_bytes"]))
            dtype = draw(st.sampled_from([np.float32, np.int64, np.uint8, np.float16, np.complex128, object, bool]))
            kw[key] = np.asarray(kw[key]).astype(dtype)
        elif what == "layout":  # Fortran order, strided views, read-only memory
            key = draw(st.sampled_from(["mobile_ms", "cloud_ms"]))
            m = np.asarray(kw[key])
            kind = draw(st.sampled_from(["fortran", "strided", "readonly"]))
            if kind == "fortran":
                kw[key] = np.asfortranarray(m)
            elif kind == "strided" and m.ndim == 2:
                big = np.zeros((2 * m.shape[0], 2 * m.shape[1]), m.dtype)
                big[::2, ::2] = m
                kw[key] = big[::2, ::2]
            else:
                m = m.copy()
                m.setflags(write=False)
                kw[key] = m
        elif what == "vector":
            kw["out_bytes"] = draw(
                st.sampled_from([np.ones(n + 1), np.ones(max(n - 1, 0)), np.full(n, NAN), np.full(n, -1.0), "abc"])
            )
        elif what == "scalar":
            kw["input_bytes"] = draw(any_scalar)
        elif what == "edges":
            kw["edges"] = draw(
                st.lists(
                    st.tuples(
                        st.one_of(st.integers(-3, n + 1), st.sampled_from([2**70, INF, "a"])),
                        st.integers(-2, n + 1),
                    ),
                    max_size=4,
                )
            )
        elif what == "outputs":
            kw["outputs"] = draw(st.lists(st.one_of(st.integers(-2, n + 1), st.sampled_from(["a", 2**70])), max_size=3))
        elif what == "mj":
            mj = np.asarray(kw["mobile_ms"], dtype=np.float64) * 7.5
            if draw(st.booleans()) and mj.shape == (n, n) and n > 1:
                mj = mj.copy()
                mj[0, n - 1] = INF  # a group offered in time but not in energy
            kw["mobile_mj"] = mj
            if draw(st.booleans()):
                kw["mobile_power_mw"] = draw(any_scalar)
        elif what == "codec":
            kw["codec_ms"] = draw(st.sampled_from([np.ones((n + 1, 2)), np.ones((n, 2)), np.full((n + 1, 2), NAN)]))
        else:
            kw["cloud_download_bytes"] = draw(st.sampled_from([np.full(n, 1e308), np.ones(n + 2), np.full(n, INF)]))
    return kw


networks = st.one_of(
    st.sampled_from(["4g", "wifi", "3g", "nope", None, 3]),
    st.builds(lambda up, down: (up, down, 1288.04, 0.0), st.floats(0.5, 50.0), st.floats(0.5, 50.0)),
    st.builds(
        lambda up, down, beta, rtt: (up, down, beta, rtt),
        st.one_of(st.floats(0.1, 100.0), st.sampled_from([0.0, -1.0, NAN, INF, 1e-300, 1e300])),
        st.one_of(st.floats(0.1, 100.0), st.sampled_from([0.0, NAN, 1e-300])),
        st.one_of(st.floats(0.0, 2000.0), st.sampled_from([1e300, -1.0, NAN])),
        st.one_of(st.floats(0.0, 50.0), st.sampled_from([INF, -1.0])),
    ),
)


def make_network(spec: Any) -> Any:
    if isinstance(spec, tuple):
        up, down, beta, rtt = spec
        return Network(up, down, alpha_up=438.39, alpha_down=51.97, beta=beta, rtt_ms=rtt)
    return spec


plan_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "objective": st.sampled_from(["latency", "energy", "cloud", "", None]),
        "deadline_ms": st.one_of(st.floats(0.0, 500.0), any_scalar),
        "energy_budget_mj": st.one_of(st.floats(0.0, 2000.0), any_scalar),
        "cloud_budget_ms": st.one_of(st.floats(0.0, 100.0), any_scalar),
        "cloud_slowdown": st.one_of(st.floats(0.1, 10.0), any_scalar),
        "force": st.sampled_from([None, "mobile", "cloud", "gpu", 1]),
        "cloud_keeps_tensors": st.booleans(),
    },
)


@given(table=hostile_tables(), network=networks, kw=plan_kwargs)
@settings(max_examples=200)
def test_hostile_cost_tables_and_plan_arguments_get_typed_errors_or_exact_answers(table, network, kw):
    built = outcome(lambda: CostTable(**table))
    if built[0] == "err":
        return
    costs = built[1]
    net = outcome(lambda: make_network(network))
    if net[0] == "err":
        return
    got = outcome(lambda: plan(costs, net[1], **kw))
    if native_available():
        # the pure-Python mirror gives the same answer, or an error of the same class
        ref = outcome(lambda: plan(costs, net[1], solver="python", **kw))
        assert got[0] == ref[0], (got, ref)
        if got[0] == "ok":
            assert same_schedule_cost(got[1], ref[1], kw.get("objective", "latency")), (got[1], ref[1])
        else:
            assert got[1] is ref[1], (got, ref)


def test_costs_that_overflow_floating_point_are_refused_with_a_cost_table_error():
    big = np.array([[1e308, INF], [INF, 1e308]])
    costs = CostTable(big, [[1.0, INF], [INF, 1.0]], [1e300, 1e300], 1e300, mobile_mj=big)
    radio_hog = Network(5.0, 10.0, alpha_up=400.0, alpha_down=50.0, beta=1e300)
    for solver in ["python"] + (["native"] if native_available() else []):
        # every schedule's energy is infinite: the constraint search has no finite minimum
        with pytest.raises(JointDNNError, match="overflows"):
            plan(costs, radio_hog, energy_budget_mj=1.0, solver=solver)
        with pytest.raises(JointDNNError, match="overflows"):
            plan(costs, "4g", force="mobile", solver=solver)


def test_single_layer_tables_plan_on_every_api():
    costs = CostTable([[3.0]], [[1.0]], [10.0], 1e6)
    assert plan(costs, "4g").segments == ((0, 0, "mobile"),)
    assert plan(costs, "4g", force="cloud").segments == ((0, 0, "cloud"),)
    lut = LookupTable.build(costs, cells=(2, 2, 1))
    assert LookupTable.from_bytes(lut.to_bytes()).query(5.0, 5.0).segments == ((0, 0, "mobile"),)


def test_bad_solver_names_are_refused_after_the_table_was_compiled():
    """plan()'s fast path reads the solvers a table keeps by name: an unknown or unhashable name still gets the
    typed error the checked path gives."""
    costs = CostTable.from_layers([3.0, 2.0], [1.0, 1.0], [10.0, 5.0], 1e6)
    plan(costs, Network.preset("4g"))  # compiled and kept
    for solver in ("nope", ["native"], None):
        with pytest.raises(ConfigError):
            plan(costs, Network.preset("4g"), solver=solver)


def test_a_planned_table_pickles_and_copies_without_what_the_planner_compiled():
    """A CostTable keeps its compiled solvers (native objects, not picklable); pickle and copy leave them out, and the
    copy plans the same optimum with solvers of its own."""
    import copy
    import pickle

    costs = CostTable.from_layers([3.0, 2.0, 4.0], [1.0, 1.0, 0.5], [10.0, 5.0, 2.0], 1e6)
    want = plan(costs, Network.preset("wifi"))
    for twin in (pickle.loads(pickle.dumps(costs)), copy.copy(costs), copy.deepcopy(costs)):
        assert twin == costs and not hasattr(twin, "_planned")
        got = plan(twin, Network.preset("wifi"))
        assert (got.segments, got.latency_ms) == (want.segments, want.latency_ms)
        assert twin._planned["auto"] is not costs._planned["auto"]


def test_large_tables_fail_fast_at_the_graph_limits():
    # 40 parallel branches joined by one layer: 40 tensors live at one cut (limit 31)
    n = 41
    ms = np.full((n, n), INF)
    np.fill_diagonal(ms, 1.0)
    edges = [(-1, v) for v in range(40)] + [(v, 40) for v in range(40)]
    with pytest.raises(SolverError, match="too wide"):
        plan(CostTable(ms, ms, np.ones(n), 1.0, edges=edges), "4g")
    if native_available():  # (the pure-Python build would take a minute to reach the limit)
        n = 1500  # a chain offering every group: ~4.5 million transitions, over the 2^22 limit
        full = np.triu(np.ones((n, n)))
        with pytest.raises(SolverError, match="transitions"):
            plan(CostTable(full, full, np.ones(n), 1.0), "4g")


# ---------------------------------------------------------------- lookup tables
_LUT_CACHE: dict[str, tuple[CostTable, bytes]] = {}


def small_table() -> tuple[CostTable, bytes]:
    """A small DAG's lookup table (with a constraint, so cells differ), built once."""
    if "t" not in _LUT_CACHE:
        rng = np.random.default_rng(3)
        n = 4
        mobile = rng.uniform(5.0, 40.0, n)
        mm = np.full((n, n), INF)
        cm = np.full((n, n), INF)
        for i in range(n):
            for j in range(i, min(n, i + 2)):
                mm[i, j] = mobile[i : j + 1].sum() * 0.9
                cm[i, j] = mm[i, j] / 8
        costs = CostTable(mm, cm, rng.uniform(1e4, 2e5, n), 3e5, edges=[(0, 1), (1, 2), (0, 3), (2, 3)], outputs=[3])
        lut = LookupTable.build(costs, cells=(3, 3, 2), cloud_slowdown=(1.0, 3.0), deadline_ms=150.0)
        _LUT_CACHE["t"] = (costs, lut.to_bytes())
    return _LUT_CACHE["t"]


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


# offsets of the fixed header fields of a table with one constraint (docs/lookup-table-format.md)
_N, _NCON, _RADIO, _RANGES, _AXES, _NCAND = 12, 18, 36, 68, 116, 128


@st.composite
def corrupt_tables(draw: st.DrawFn) -> bytes:
    """A valid file, damaged: random bytes, truncation, or adversarial fields with a recomputed checksum."""
    _, good = small_table()
    kind = draw(st.sampled_from(["flip", "truncate", "field", "random", "splice"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    if kind == "truncate":
        return good[: draw(st.integers(0, len(good) - 1))]
    body = bytearray(good[:-4])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            body[draw(st.integers(0, len(body) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "splice":
        at = draw(st.integers(0, len(body)))
        body[at:at] = draw(st.binary(min_size=1, max_size=12))
    else:
        off, fmt = draw(
            st.sampled_from(
                [
                    (_N, "<I"),
                    (_NCON, "<B"),
                    (_RADIO, "<d"),
                    (_RANGES, "<d"),
                    (_RANGES + 8, "<d"),
                    (_AXES, "<I"),
                    (_AXES + 4, "<I"),
                    (_NCAND, "<I"),
                ]
            )
        )
        if fmt == "<d":
            value: Any = draw(st.sampled_from([NAN, INF, -INF, -1.0, 0.0, 1e-300, 1e300]))
        elif fmt == "<B":
            value = draw(st.integers(0, 255))
        else:
            value = draw(st.sampled_from([0, 1, 2, 7, 2**31, 2**32 - 1]))
        struct.pack_into(fmt, body, off, value)
    return with_crc(bytes(body))


query_points = st.tuples(
    st.one_of(st.floats(0.1, 300.0), st.sampled_from([0.0, -1.0, NAN, INF, 1e-300, 1e300])),
    st.one_of(st.floats(0.1, 300.0), st.sampled_from([0.0, NAN])),
    st.one_of(st.floats(0.5, 4.0), st.sampled_from([0.0, -2.0, INF])),
)


def check_queries(lut: LookupTable, points: list[tuple[float, float, float]]) -> None:
    for p in points:
        outcome(partial(lut.query, *p))
        if native_available():  # native index and pure-Python query agree
            from jointdnn_edge import _core

            fields = lut._index_fields()
            a = outcome(partial(_core.LutIndex(**fields).query, *p))
            b = outcome(partial(reference.LutIndex(**fields).query, *p))
            assert a[0] == b[0] and (a[1] is None) == (b[1] is None), (p, a, b)
            if a[0] == "err":
                assert a[1] is b[1] is InfeasibleError, (p, a, b)
            elif a[1] is not None:
                assert a[1].candidate == b[1].candidate, (p, a, b)
                for name in ("latency_ms", "mobile_energy_mj", "cloud_ms"):
                    x, y = getattr(a[1], name), getattr(b[1], name)
                    assert x == y or math.isclose(x, y, rel_tol=1e-12), (p, name, a, b)


@given(data=corrupt_tables(), points=st.lists(query_points, min_size=1, max_size=4))
@settings(max_examples=150)
def test_corrupt_and_adversarial_lookup_files_are_refused_or_answer_correctly(data, points):
    got = outcome(lambda: LookupTable.from_bytes(data))
    if got[0] == "err":
        assert got[1] is LookupTableError, got
        return
    check_queries(got[1], points)


def test_lookup_files_that_declare_huge_counts_are_refused_without_allocating():
    _, good = small_table()
    for off, value in [(_NCAND, 2**32 - 1), (_AXES, 2**32 - 1), (_N, 2**32 - 1), (_AXES, 0)]:
        body = bytearray(good[:-4])
        struct.pack_into("<I", body, off, value)
        with pytest.raises(LookupTableError):
            LookupTable.from_bytes(with_crc(bytes(body)))
    for not_bytes in (10**12, None, "JDNNLUT", [1, 2]):  # bytes(10**12) would allocate a terabyte
        with pytest.raises(LookupTableError):
            LookupTable.from_bytes(not_bytes)  # type: ignore[arg-type]


@given(points=st.lists(query_points, min_size=1, max_size=6), embedded=st.booleans())
@settings(max_examples=60)
def test_lookup_queries_at_odd_points_get_typed_errors_or_answers(points, embedded):
    _, good = small_table()
    lut = LookupTable.from_bytes(good)
    if not embedded:
        lut._costs_dict = None
    check_queries(lut, points)
    for bad in [("1", 2.0, 1.0), (None, 1.0, 1.0), (10**400, 1.0, 1.0)]:
        assert outcome(lambda bad=bad: lut.query(*bad))[0] == "err"


def test_lookup_indices_with_inconsistent_fields_are_refused():
    kw: dict[str, Any] = dict(
        n=1, objective="latency", constraints=[], force=None, radio=Radio(1.0, 1.0, 1.0, 0.0),
        up_mbps=(1.0, 10.0), down_mbps=(1.0, 10.0), cloud_slowdown=(1.0, 1.0), axes=(1, 1, 1),
        candidates=[(((0, 0, "mobile"),), [1.0] * DIMS, 0)], status=[0], offsets=[0, 1], members=[0],
    )  # fmt: skip
    table = LookupTable(**kw)
    # its schedule carries a credit though its radio has no burst: written in the burst layout, read back the same
    assert struct.unpack_from("<H", table.to_bytes(), 8)[0] == 3
    assert LookupTable.from_bytes(table.to_bytes()).candidates == table.candidates
    for change in [
        {"axes": (0, 1, 1), "status": [], "offsets": [0], "members": []},
        {"up_mbps": (0.0, 10.0)},
        {"radio": Radio(NAN, 1.0, 1.0, 0.0)},
        {"status": [3]},
        {"offsets": [0, 2]},
        {"members": [1]},
        {"candidates": [(((0, 0, "mobile"),), [NAN] * DIMS, 0)]},
        {"candidates": [(((0, 0, "mobile"),), [1.0] * (DIMS - 1) + [2.0], 0)]},  # a credit over its bytes
        {"constraints": [("latency", -1.0)]},
        {"n": 0},
    ]:
        with pytest.raises(LookupTableError):
            LookupTable(**{**kw, **change})


lut_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "cells": st.sampled_from([(1, 1, 1), (2, 2, 1), (0, 1, 1), (2**40, 2**40, 1), ("a", 1, 1), (1, 1), None]),
        "up_mbps": st.sampled_from([(1.0, 10.0), (10.0, 1.0), (0.0, 1.0), (NAN, 1.0), (1.0,), None, ("a", 2)]),
        "cloud_slowdown": st.sampled_from([(1.0, 2.0), (1.0, INF), (-1.0, 1.0)]),
        "cell_work_budget": st.sampled_from([0, 10, 2**70, -1, NAN, "x"]),
        "max_candidates": st.sampled_from([0, 1, 2**70, -1, "x"]),
        "deadline_ms": st.sampled_from([50.0, NAN, -1.0, "x", None]),
        "network": st.sampled_from(["3g", "bogus", 5]),
        "objective": st.sampled_from(["latency", "energy", "cloud"]),
        "force": st.sampled_from([None, "mobile", "gpu"]),
    },
)


@given(kw=lut_kwargs)
@settings(max_examples=40)
def test_lookup_builds_with_odd_arguments_get_typed_errors_or_exact_tables(kw):
    costs, _ = small_table()
    kw = {"up_mbps": (1.0, 10.0), "down_mbps": (1.0, 10.0), "cells": (2, 2, 1), **kw}
    got = outcome(lambda: LookupTable.build(costs, **kw))
    if got[0] == "err":
        return
    lut = got[1]
    # every answer inside the box is the exact optimum there (a zero budget leaves every cell to solves)
    net = Network.preset(kw.get("network", "4g"))
    up = kw["up_mbps"][0]
    s = kw.get("cloud_slowdown", (1.0, 1.0))[0]
    args = {k: kw[k] for k in ("deadline_ms", "objective", "force") if k in kw}
    a = outcome(lambda: lut.query(up, up, s))
    b = outcome(lambda: plan(costs, net.with_bandwidth(up, up), cloud_slowdown=s, **args))
    assert a[0] == b[0], (a, b)
    if a[0] == "ok":
        assert same_schedule_cost(a[1], b[1], kw.get("objective", "latency"))


# ------------------------------------------------------------- sparse expansion
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    dtype=st.sampled_from(["u1", "<f2", "<f4", "<i8", "V3"]),
    damage=st.sampled_from(["none", "bitmap", "values", "header", "truncate"]),
)
@settings(max_examples=80)
def test_sparse_payloads_decode_alike_with_and_without_the_native_scatter(seed, n, dtype, damage):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    raw = rng.integers(1, 256, n * dt.itemsize, dtype=np.uint8)
    raw.reshape(n, dt.itemsize)[rng.random(n) < 0.6] = 0
    flat = raw.view(dt)
    payload = bytearray(b"".join(bytes(p) for p in codecs.encode_payload(flat, (n,), codecs.SPARSE, 0, 1, 0)))
    if damage == "truncate":
        payload = payload[: int(rng.integers(0, len(payload) + 1))]
    elif damage == "header" and len(payload) >= 8:
        struct.pack_into("<I", payload, 0, int(rng.integers(0, n + 2)))
    elif damage != "none" and payload:
        payload[int(rng.integers(0, len(payload)))] ^= 0xFF

    def decode() -> tuple[str, Any]:
        return outcome(lambda: bytes(codecs.decode_payload(memoryview(bytes(payload)), codecs.SPARSE, 0, dt, (n,), n)))

    native = decode()
    pure = without_native(decode)
    assert native == pure
    if native[0] == "err":
        assert native[1] is CodecError
    if damage == "none":
        assert native == ("ok", flat.tobytes())


def without_native(f: Callable[[], Any]) -> Any:
    """Runs ``f`` with the codec's native module hidden (numpy's scatter instead of sparse_expand)."""
    saved = codecs.native_module
    codecs.native_module = lambda: None  # type: ignore[assignment]
    try:
        return f()
    finally:
        codecs.native_module = saved  # type: ignore[assignment]


def test_frames_with_sparse_tensors_round_trip():
    x = np.zeros((3, 5, 7), np.float32)
    x[1, 2, 3] = 2.5
    out = codec.decode(codec.encode({"x": x}, codec="sparse"))
    assert np.array_equal(out["x"], x)


def test_memory_layout_of_the_cost_matrices_does_not_change_the_plan():
    """Regression: a Fortran-ordered matrix was once read in its raw (transposed) order by the native core."""
    m = np.array([[32.2, 14.2], [3.0, 1.8]])
    c = np.array([[3.8, 1.5], [0.4, 0.2]])
    out, inp = np.array([5.5e4, 9.4e4]), 8.2e4
    want = plan(CostTable(m, c, out, inp), "4g", solver="python")
    for mm, cc in ((np.asfortranarray(m), c), (m, np.asfortranarray(c)), (m.T.copy().T, c[:, :])):
        got = plan(CostTable(mm, cc, out, inp), "4g")
        assert got.segments == want.segments == ((0, 1, "mobile"),)
        assert got.latency_ms == pytest.approx(want.latency_ms)
    if native_available():
        from jointdnn_edge import _core

        # straight into the binding, bypassing CostTable's copy into row-major order
        t = CostTable(m, c, out, inp)
        args = [t.mobile_ms, t.cloud_ms, t.mobile_mj, t.out_bytes, t.input_bytes, list(t.edges), list(t.outputs)]
        args[0] = np.asfortranarray(args[0])
        args[2] = np.asfortranarray(args[2])
        prob = _core.Problem(*args, t.cloud_download_bytes, t.codec_ms, t.codec_mj, True)
        direct = prob.solve("latency", Network.preset("4g"), 1.0, None, None, None, None)
        assert direct.segments == ((0, 1, "mobile"),)


def test_a_group_offered_in_time_but_not_in_energy_is_refused_when_the_table_is_built():
    """Both planners see one refusal (native and pure-Python once disagreed: error vs an answer)."""
    mj = np.array([[241.6, np.inf], [22.6, 13.6]])
    with pytest.raises(CostTableError, match=r"mobile_ms\[0, 1\] and mobile_mj\[0, 1\] disagree"):
        CostTable(np.array([[32.2, 14.2], [3.0, 1.8]]), np.array([[3.8, 1.5], [0.4, 0.2]]), [5.5e4, 9.4e4], 8.2e4,
                  mobile_mj=mj)  # fmt: skip
