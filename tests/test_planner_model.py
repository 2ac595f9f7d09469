"""The cost model, the paper's schedule patterns, training, and the HiGHS ILP cross-check."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jointdnn_edge import NETWORK_PRESETS, ConfigError, CostTable, CostTableError, InfeasibleError, Network, SolverError
from jointdnn_edge.planner import brute, plan
from jointdnn_edge.planner.usage import dot, weights
from planner_strategies import cost_tables, networks, random_costs


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


# ------------------------------------------------------------------ profiles
def discriminative() -> CostTable:
    """AlexNet-like: activations shrink towards the output, heavy fully connected tail on the mobile."""
    return CostTable.from_layers(
        mobile_ms=[12, 2, 3, 3, 15, 2, 3, 3, 9, 2, 7, 2, 6, 2, 1, 40, 2, 18, 1, 5, 0.1],
        cloud_ms=[0.6, 0.05, 0.1, 0.1, 0.8, 0.05, 0.1, 0.1, 0.5, 0.05, 0.4, 0.05, 0.3, 0.05, 0.05, 1.5, 0.05]
        + [0.7, 0.05, 0.2, 0.01],
        out_bytes=[1161600] * 3
        + [279936]
        + [746496] * 3
        + [173056]
        + [259584] * 4
        + [173056] * 2
        + [36864]
        + [16384] * 4
        + [4000] * 2,
        input_bytes=618348,
        weight_bytes=[139776, 0, 0, 0, 1229824, 0, 0, 0, 3540480, 0, 2655744, 0, 1770496, 0, 0, 151011328, 0]
        + [67125248, 0, 16388000, 0],
    )


def generative() -> CostTable:
    """Chair-like: a small code in, outputs growing to an image."""
    mobile = [20, 0.1, 30, 0.1, 15, 0.5, 10, 1, 3, 1]
    return CostTable.from_layers(
        mobile, [m / 20 for m in mobile], [2048, 2048, 4096, 4096, 65536, 65536, 262144, 262144, 786432, 786432], 400
    )


def autoencoder() -> CostTable:
    """Pix2Pix-like: large input and output, small bottleneck, heavy middle."""
    mobile = [5, 15, 30, 40, 40, 30, 15, 5]
    return CostTable.from_layers(
        mobile, [m / 20 for m in mobile], [262144, 65536, 16384, 4096, 16384, 65536, 262144, 786432], 786432
    )


@pytest.mark.pure
@pytest.mark.parametrize(
    "profile, network, phase, pattern",
    [
        (discriminative, "wifi", "inference", "mobile-cloud"),
        (discriminative, "4g", "inference", "mobile-cloud"),
        (generative, "wifi", "inference", "cloud-mobile"),
        (generative, "4g", "inference", "cloud-mobile"),
        (autoencoder, "wifi", "inference", "mobile-cloud-mobile"),
        (discriminative, "wifi", "training", "mobile-cloud-mobile"),
        (discriminative, "4g", "training", "mobile-cloud-mobile"),
    ],
)
def test_the_papers_schedule_patterns(profile, network, phase, pattern):
    """Section 4 / Fig. 11: discriminative → mobile-cloud, generative → cloud-mobile,
    autoencoder → mobile-cloud-mobile, training of a discriminative model → mobile-cloud-mobile."""
    costs = profile()
    s = plan(costs, network, phase=phase)
    assert s.pattern() == pattern, s.bar()
    # and the joint schedule beats both status-quo baselines
    for force in ("mobile", "cloud"):
        assert s.latency_ms < plan(costs, network, phase=phase, force=force).latency_ms


@pytest.mark.pure
def test_training_downloads_weights_updated_on_the_cloud():
    costs = discriminative()
    t = CostTable.training(costs)
    assert t.n == 2 * costs.n and t.phase == "training" and t.outputs == ()
    assert t.is_chain  # the paper's 2N chain
    net = Network.preset("wifi")
    s = plan(costs, net, phase="training")
    cloud_backward = [layer for layer, p in enumerate(s.placement()) if p == "cloud" and layer >= costs.n]
    mirrored = [2 * costs.n - 1 - layer for layer in cloud_backward]
    weights_down = sum(costs.weight_bytes[f] for f in mirrored)
    # every byte downloaded is either an activation crossing back or those weights
    e = s.evaluate(t, net)
    assert close(s.bytes_down, e.bytes_down)
    activations_down = e.bytes_down - weights_down
    assert activations_down >= 0
    assert weights_down < 1e6  # the planner keeps the huge fc6/fc7 updates off the link


@pytest.mark.pure
def test_training_with_activation_edges_is_exact_on_small_networks():
    costs = random_costs(np.random.default_rng(8), 4, dag=False, extras=False).replace(weight_bytes=[1e4] * 4)
    t = CostTable.training(costs, activation_edges=True)
    net = Network.preset("4g")
    s = plan(t, net, phase="training")
    found = brute.best(t, net)
    assert close(s.latency_ms, dot(weights("latency", net, 1.0), found[1]))


@pytest.mark.pure
def test_too_wide_graphs_fail_with_a_solver_error():
    costs = discriminative().replace(weight_bytes=[1.0] * 21)
    with pytest.raises(SolverError, match=r"cut width|too wide"):
        plan(CostTable.training(costs, activation_edges=True), "wifi", phase="training")


# ---------------------------------------------------------------- ILP (HiGHS)
def _midpoint_bound(values: list[float], frac: float) -> float:
    """A bound halfway between two achievable values, so solver tolerances cannot matter."""
    v = sorted(set(round(x, 9) for x in values))
    if len(v) < 2:
        return v[0] + 1.0
    k = min(int(frac * (len(v) - 1)), len(v) - 2)
    return (v[k] + v[k + 1]) / 2


@given(
    costs=cost_tables(max_n=6, dag=False),
    network=networks(),
    objective=st.sampled_from(["latency", "energy"]),
    which=st.sampled_from([None, "deadline_ms", "energy_budget_mj", "cloud_budget_ms"]),
    frac=st.floats(0.0, 1.0),
)
@settings(max_examples=30)
def test_papers_ilp_agrees_on_chains(costs, network, objective, which, frac):
    metric = {"deadline_ms": "latency", "energy_budget_mj": "energy", "cloud_budget_ms": "cloud"}
    kw = {}
    link = network
    burst = (network.burst_up_bytes, network.burst_down_bytes)
    if which:
        kw[which] = _midpoint_bound(
            [dot(weights(metric[which], link, 1.0), u) for _, u, _ in brute.all_schedules(costs, burst=burst)], frac
        )
    try:
        exact = plan(costs, network, objective=objective, **kw)
    except InfeasibleError:
        with pytest.raises(InfeasibleError):
            plan(costs, network, objective=objective, solver="ilp", **kw)
        return
    ilp = plan(costs, network, objective=objective, solver="ilp", **kw)
    attr = "latency_ms" if objective == "latency" else "mobile_energy_mj"
    assert close(getattr(ilp, attr), getattr(exact, attr), rel=1e-7)


@given(costs=cost_tables(max_n=6), network=networks(), objective=st.sampled_from(["latency", "energy"]))
@settings(max_examples=20)
def test_placement_ilp_agrees_on_dags(costs, network, objective):
    from jointdnn_edge.planner.ilp import solve_ilp

    if network.burst_up_bytes or network.burst_down_bytes:  # outside the placement ILP: it says so
        with pytest.raises(SolverError, match="burst"):
            solve_ilp(costs, network, objective=objective, formulation="placement")
        network = dataclasses.replace(network, burst_up_bytes=0.0, burst_down_bytes=0.0)
    exact = plan(costs, network, objective=objective)
    _, u, _ = solve_ilp(costs, network, objective=objective, formulation="placement")
    assert close(
        dot(weights(objective, network, 1.0), u),
        getattr(exact, {"latency": "latency_ms", "energy": "mobile_energy_mj"}[objective]),
        rel=1e-7,
    )


# ----------------------------------------------------------------- cost model
def test_network_presets_are_the_papers_table_3():
    expected = {
        "3g": (1.1, 2.0275, 868.98, 122.12, 817.88),
        "4g": (5.85, 13.76, 438.39, 51.97, 1288.04),
        "wifi": (18.88, 54.97, 283.17, 137.01, 132.86),
    }
    for name, (up, down, au, ad, beta) in expected.items():
        n = Network.preset(name)
        assert (n.up_mbps, n.down_mbps, n.alpha_up, n.alpha_down, n.beta, n.rtt_ms) == (up, down, au, ad, beta, 0.0)
        assert NETWORK_PRESETS[name] == n
    assert Network.preset("Wi-Fi") == Network.preset("wifi")
    with pytest.raises(ConfigError, match="unknown network preset"):
        Network.preset("5g")


def test_radio_energy_is_power_times_time():
    n = Network.preset("4g")
    b = 1_000_000
    assert close(n.upload_ms(b), 8 * b / (5.85 * 1e6) * 1e3)
    assert close(n.upload_mj(b), (438.39 * 5.85 + 1288.04) * 8 * b / (5.85 * 1e6))
    assert close(n.download_mj(b), (51.97 * 13.76 + 1288.04) * 8 * b / (13.76 * 1e6))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mobile_ms=np.ones((2, 3))), "square"),
        (dict(mobile_ms=[[1.0, np.nan], [0, 1.0]]), r"mobile_ms\[0, 1\] is NaN"),
        (dict(cloud_ms=[[1.0, -2.0], [0, 1.0]]), r"cloud_ms\[0, 1\] = -2.0 is negative"),
        (dict(cloud_ms=[[np.inf, 1.0], [0, 1.0]]), r"cloud_ms\[0, 0\] must be finite"),
        (dict(out_bytes=[1.0]), "out_bytes must have 2 entries"),
        (dict(out_bytes=[1.0, -1.0]), r"out_bytes\[1\]"),
        (dict(input_bytes=float("inf")), "input_bytes"),
        (dict(edges=[(1, 0)]), r"edge \(1, 0\) is invalid"),
        (dict(edges=[(0, 2)]), r"edge \(0, 2\) is invalid"),
        (dict(names=["a"]), "names has 1 entries"),
        (dict(outputs=[5]), "outputs must be layer indices"),
    ],
)
def test_malformed_tables_raise_clear_errors(kwargs, message):
    args = dict(
        mobile_ms=[[1.0, 2.0], [0, 1.0]], cloud_ms=[[0.1, 0.2], [0, 0.1]], out_bytes=[10.0, 10.0], input_bytes=5.0
    )
    args.update(kwargs)
    with pytest.raises(CostTableError, match=message):
        CostTable(args.pop("mobile_ms"), args.pop("cloud_ms"), args.pop("out_bytes"), args.pop("input_bytes"), **args)


def test_bad_plan_arguments_raise_clear_errors():
    costs = generative()
    for kw, msg in [
        (dict(objective="speed"), "objective"),
        (dict(force="edge"), "force"),
        (dict(solver="magic"), "solver"),
        (dict(cloud_slowdown=0.0), "cloud_slowdown"),
        (dict(deadline_ms=-1.0), "deadline_ms"),
        (dict(energy_budget_mj=float("nan")), "energy_budget_mj"),
        (dict(phase="serving"), "phase"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            plan(costs, "4g", **kw)
    with pytest.raises(ConfigError, match="training"):
        plan(CostTable.training(discriminative()), "4g")
    with pytest.raises(ConfigError, match="up_mbps"):
        Network(0.0, 1.0, alpha_up=1, alpha_down=1, beta=1)
    with pytest.raises(ConfigError, match="phase"):
        CostTable([[1.0]], [[0.1]], [10.0], 5.0, phase="serving")
    with pytest.raises(ConfigError, match="costs must be a CostTable"):
        plan("not a table", "4g")  # type: ignore[arg-type]


def test_json_round_trip_is_exact(tmp_path):
    costs = random_costs(np.random.default_rng(5), 7, dag=True)
    costs = costs.replace(names=[f"op{i}" for i in range(7)], meta={"device": "test", "nested": {"a": [1, 2]}})
    path = tmp_path / "c.json"
    costs.save(path)
    back = CostTable.load(path)
    assert back == costs
    assert np.array_equal(back.mobile_ms, costs.mobile_ms)  # inf survives as null
    assert back.meta == costs.meta
    doc = json.loads(path.read_text())
    assert doc["format"] == "jointdnn-edge/costtable" and doc["version"] == 1
    doc["version"] = 7
    path.write_text(json.dumps(doc))
    with pytest.raises(CostTableError, match="version 7"):
        CostTable.load(path)
    path.write_text("{not json")
    with pytest.raises(CostTableError, match="not JSON"):
        CostTable.load(path)


def test_from_layers_sums_groups_and_bounds_their_length():
    costs = CostTable.from_layers([1.0, 2.0, 3.0], [0.1, 0.2, 0.3], [5, 5, 5], 5, max_group=2)
    assert costs.mobile_ms[0, 1] == 3.0 and np.isinf(costs.mobile_ms[0, 2]) and costs.max_group() == 2
    assert close(costs.mobile_mj[1, 2], 5.0 * 7.5)  # default power: 7.5 W
    with pytest.raises(ConfigError, match="mobile_mj or mobile_power_mw"):
        CostTable.from_layers([1.0], [1.0], [1], 1, mobile_mj=[1.0], mobile_power_mw=5.0)


@given(
    costs=cost_tables(min_n=8, max_n=12, extras=True),
    network=networks(),
    objective=st.sampled_from(["latency", "energy"]),
    which=st.sets(st.sampled_from(["deadline_ms", "energy_budget_mj", "cloud_budget_ms"]), min_size=1),
    fractions=st.tuples(*[st.floats(0.3, 1.0)] * 3),
)
@settings(max_examples=25)
def test_constrained_optimum_up_to_12_layers_equals_the_ilp(costs, network, objective, which, fractions):
    """Beyond what enumeration reaches, the HiGHS ILP is the independent oracle for constrained plans."""
    from jointdnn_edge.planner import native_available
    from jointdnn_edge.planner.ilp import solve_ilp

    # the placement ILP models no burst (bursts are checked against enumeration and the paper's ILP)
    network = dataclasses.replace(network, burst_up_bytes=0.0, burst_down_bytes=0.0)
    metric = {"deadline_ms": "latency", "energy_budget_mj": "energy", "cloud_budget_ms": "cloud"}
    attr = {"latency": "latency_ms", "energy": "mobile_energy_mj", "cloud": "cloud_ms"}
    bounds = {}
    for name, f in zip(sorted(which), fractions):
        m = metric[name]
        # between the least value of that metric and its value at the objective's unconstrained optimum
        least = getattr(
            plan(costs, network, objective=m if m != "cloud" else "latency", force="mobile" if m == "cloud" else None),
            attr[m],
        )
        free = getattr(plan(costs, network, objective=objective), attr[m])
        bounds[name] = least + (max(free, least) - least) * f + (1.0 if m == "cloud" else 0.0)
    try:
        _, u, _ = solve_ilp(costs, network, objective=objective, formulation="placement", **bounds)
        expected = dot(weights(objective, network, 1.0), u)
    except InfeasibleError:
        expected = None
    for solver in ["native", "python"] if native_available() else ["python"]:
        if expected is None:
            with pytest.raises(InfeasibleError):
                plan(costs, network, objective=objective, solver=solver, **bounds)
            continue
        s = plan(costs, network, objective=objective, solver=solver, **bounds)
        assert close(getattr(s, attr[objective]), expected, rel=1e-7), (solver, getattr(s, attr[objective]), expected)


def test_the_native_solver_without_the_native_module_is_a_solver_error(monkeypatch):
    from jointdnn_edge.planner import _backend

    monkeypatch.setattr(_backend, "native_module", lambda: None)
    costs = CostTable.from_layers([1.0, 2.0], [0.1, 0.2], [1000, 10], 4000)
    with pytest.raises(SolverError, match="native module"):
        plan(costs, "4g", solver="native")
    assert plan(costs, "4g").solver == "python"  # auto falls back to the pure-Python planner
