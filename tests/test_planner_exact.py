"""The exact planner against independent oracles.

Every solver (native Rust, the pure-Python fallback) must reach the optimum
found by brute-force enumeration on random chains and DAGs, for both
objectives, every combination of constraints and the forced baselines; the
costs a schedule reports must equal its independent evaluation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jointdnn_edge import CostTable, InfeasibleError, Network
from jointdnn_edge.planner import brute, native_available, plan
from jointdnn_edge.planner.usage import dot, weights
from planner_strategies import cost_tables, networks, random_costs

pytestmark = pytest.mark.pure

SOLVERS = ["native", "python"] if native_available() else ["python"]
ATTR = {"latency": "latency_ms", "energy": "mobile_energy_mj", "cloud": "cloud_ms"}


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def assert_consistent(s, costs, network, slowdown=1.0):
    """The schedule's reported costs equal its independent evaluation."""
    e = s.evaluate(costs, network, cloud_slowdown=slowdown)
    for k in ("latency_ms", "mobile_energy_mj", "cloud_ms", "bytes_up", "bytes_down"):
        assert close(getattr(s, k), getattr(e, k)), (k, getattr(s, k), getattr(e, k))
    assert (s.transfers, s.switches) == (e.transfers, e.switches)


@given(
    costs=cost_tables(max_n=12),
    network=networks(),
    objective=st.sampled_from(["latency", "energy"]),
    slowdown=st.floats(0.5, 4.0),
    force=st.sampled_from([None, None, "mobile", "cloud"]),
)
@settings(max_examples=40)
def test_unconstrained_optimum_equals_enumeration_of_placements(costs, network, objective, slowdown, force):
    expected, _ = brute.best_by_placement(costs, network, objective=objective, slowdown=slowdown, force=force)
    for solver in SOLVERS:
        s = plan(costs, network, objective=objective, cloud_slowdown=slowdown, force=force, solver=solver)
        assert close(getattr(s, ATTR[objective]), expected), (solver, s, expected)
        assert_consistent(s, costs, network, slowdown)
        if force:
            assert {p for _, _, p in s.segments} == {force}


@given(
    costs=cost_tables(max_n=9),
    picks=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["latency", "energy"])), min_size=2, max_size=8),
    links=st.lists(networks(), min_size=3, max_size=3),
)
@settings(max_examples=25)
def test_repeated_plans_on_one_table_each_equal_enumeration(costs, picks, links):
    """One compiled table asked again and again, on networks that repeat (a session's pattern): the native
    solver hands out the previous answer's segment and usage tuples when they are equal, so every answer is
    checked against enumeration, and the answers given earlier must not change afterwards."""
    answers = []
    for which, objective in picks:
        network = links[which]
        expected, _ = brute.best_by_placement(costs, network, objective=objective)
        for solver in SOLVERS:
            s = plan(costs, network, objective=objective, solver=solver)
            assert close(getattr(s, ATTR[objective]), expected), (solver, s, expected)
            assert_consistent(s, costs, network)
            answers.append((s, s.segments, list(s.usage), network))
    for s, segments, usage, network in answers:
        assert s.segments == segments and list(s.usage) == usage
        assert_consistent(s, costs, network)


@given(
    costs=cost_tables(max_n=7),
    network=networks(),
    objective=st.sampled_from(["latency", "energy"]),
    which=st.sets(st.sampled_from(["deadline_ms", "energy_budget_mj", "cloud_budget_ms"]), min_size=1),
    fractions=st.tuples(*[st.floats(-0.05, 0.7)] * 3),
    slowdown=st.floats(0.5, 3.0),
)
@settings(max_examples=60)
def test_constrained_optimum_equals_full_enumeration(costs, network, objective, which, fractions, slowdown):
    link = network
    all_usage = [u for _, u, _ in brute.all_schedules(costs)]
    metric_of = {"deadline_ms": "latency", "energy_budget_mj": "energy", "cloud_budget_ms": "cloud"}
    bounds = {}
    for (name, m), f in zip(metric_of.items(), fractions):
        if name in which:
            vals = [dot(weights(m, link, slowdown), u) for u in all_usage]
            bounds[name] = max(0.0, min(vals) + (max(vals) - min(vals)) * f)
    found = brute.best(costs, network, objective=objective, slowdown=slowdown, **bounds)
    for solver in SOLVERS:
        if found is None:
            with pytest.raises(InfeasibleError) as err:
                plan(costs, network, objective=objective, cloud_slowdown=slowdown, solver=solver, **bounds)
            assert err.value.constraint  # names what could not be met
            for part in err.value.constraint.split("+"):
                assert part in bounds
            continue
        s = plan(costs, network, objective=objective, cloud_slowdown=slowdown, solver=solver, **bounds)
        expected = dot(weights(objective, link, slowdown), found[1])
        assert close(getattr(s, ATTR[objective]), expected), (solver, s, expected)
        assert_consistent(s, costs, network, slowdown)
        for name, b in bounds.items():
            assert getattr(s, ATTR[metric_of[name]]) <= b * (1 + 1e-9) + 1e-9


@given(costs=cost_tables(max_n=10), network=networks())
@settings(max_examples=25)
def test_brute_force_methods_agree(costs, network):
    """The two oracles agree with each other (full enumeration vs placement enumeration)."""
    assume(costs.n <= 7)
    for objective in ("latency", "energy"):
        a = brute.best(costs, network, objective=objective)
        b, _ = brute.best_by_placement(costs, network, objective=objective)
        assert close(dot(weights(objective, network, 1.0), a[1]), b)


def test_single_constraint_infeasibility_reports_least_value():
    costs = random_costs(np.random.default_rng(4), 6, dag=False)
    net = Network.preset("4g")
    fastest = plan(costs, net).latency_ms
    for solver in SOLVERS:
        with pytest.raises(InfeasibleError) as err:
            plan(costs, net, objective="energy", deadline_ms=fastest * 0.9, solver=solver)
        assert err.value.constraint == "deadline_ms"
        assert close(err.value.best, fastest)
        assert "deadline_ms" in str(err.value)


def test_constraint_that_binds_changes_the_answer():
    """A QoS deadline between the energy-optimal and latency-optimal latencies forces a compromise."""
    rng = np.random.default_rng(12)
    for _ in range(50):
        costs = random_costs(rng, 8, dag=False, extras=False)
        net = Network.preset("3g")
        e_opt = plan(costs, net, objective="energy")
        l_opt = plan(costs, net, objective="latency")
        if e_opt.latency_ms > l_opt.latency_ms * 1.05:
            break
    else:
        pytest.skip("no instance with a latency/energy trade-off")
    deadline = (e_opt.latency_ms + l_opt.latency_ms) / 2
    for solver in SOLVERS:
        s = plan(costs, net, objective="energy", deadline_ms=deadline, solver=solver)
        assert s.latency_ms <= deadline * (1 + 1e-9)
        assert s.mobile_energy_mj >= e_opt.mobile_energy_mj - 1e-9
        found = brute.best(costs, net, objective="energy", deadline_ms=deadline)
        assert close(s.mobile_energy_mj, dot(weights("energy", net, 1.0), found[1]))


def test_cloud_slowdown_scales_cloud_time_only():
    costs = random_costs(np.random.default_rng(1), 5, dag=False, extras=False)
    net = Network.preset("wifi")
    s = plan(costs, net, force="cloud")
    s2 = s.evaluate(costs, net, cloud_slowdown=3.0)
    assert close(s2.cloud_ms, 3 * s.cloud_ms)
    assert close(s2.latency_ms - s.latency_ms, 2 * s.cloud_ms)
    assert close(s2.mobile_energy_mj, s.mobile_energy_mj)  # waiting costs the mobile nothing


def test_round_trip_time_is_charged_per_platform_switch():
    costs = random_costs(np.random.default_rng(2), 6, dag=False, extras=False)
    a = Network.preset("4g")
    b = Network.preset("4g", rtt_ms=25.0)
    for s in (plan(costs, a, force="cloud"), plan(costs, a, force="mobile")):
        s2 = s.evaluate(costs, b)
        assert close(s2.latency_ms - s.latency_ms, 25.0 * s.switches)
        assert close(s2.mobile_energy_mj, s.mobile_energy_mj)
    assert plan(costs, a, force="cloud").switches == 2  # up with the input, back with the result
    assert plan(costs, a, force="mobile").switches == 0


def test_forced_baselines_have_the_closed_form_costs():
    """Mobile-only = best grouping on the mobile; cloud-only adds the input upload and result download."""
    n = 5
    per = np.array([3.0, 4.0, 5.0, 6.0, 7.0])
    costs = CostTable.from_layers(per, per / 10, [1e5] * n, 2e5, max_group=1)
    net = Network.preset("wifi")
    m = plan(costs, net, force="mobile")
    assert close(m.latency_ms, per.sum())
    c = plan(costs, net, force="cloud")
    assert close(c.latency_ms, per.sum() / 10 + net.upload_ms(2e5) + net.download_ms(1e5))
    assert close(c.mobile_energy_mj, net.upload_mj(2e5) + net.download_mj(1e5))
    assert (c.bytes_up, c.bytes_down, c.transfers) == (2e5, 1e5, 2)


def test_dag_tensor_sent_once_however_many_consumers():
    """Layer 0's output feeds layers 1, 2, 3 on the cloud: one upload, not three."""
    mobile = np.array([1.0, 50.0, 50.0, 50.0])
    costs = CostTable.from_layers(
        mobile,
        mobile / 50,
        [1000.0, 10.0, 10.0, 10.0],
        1e6,
        edges=[(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)],
        max_group=1,
    )
    s = plan(costs, Network.preset("wifi"))
    assert s.placement() == ["mobile", "cloud", "cloud", "cloud"]
    assert s.bytes_up == 1000.0 and s.transfers == 2  # layer 0 up once, the result down


def test_label_search_on_instances_where_the_optimum_is_a_compromise():
    """Constrained optima that are neither the unconstrained optimum nor any single-metric minimum.

    These are the cases only the exact label-setting search solves (the cheap
    shortcuts before it cannot), so they are collected on purpose.
    """
    rng = np.random.default_rng(2024)
    hard = 0
    for _ in range(400):
        n = int(rng.integers(4, 8))
        costs = random_costs(rng, n, dag=bool(rng.integers(0, 2)), extras=False)
        net = Network(float(rng.uniform(1, 20)), float(rng.uniform(2, 40)), alpha_up=400, alpha_down=100, beta=800)
        link = net
        scheds = list(brute.all_schedules(costs))
        lat = np.array([dot(weights("latency", link, 1.0), u) for _, u, _ in scheds])
        en = np.array([dot(weights("energy", link, 1.0), u) for _, u, _ in scheds])
        deadline = float(lat.min() + (lat[en.argmin()] - lat.min()) * rng.uniform(0.2, 0.8))
        feasible = lat <= deadline
        best = int(np.argmin(np.where(feasible, en, np.inf)))
        if math.isclose(en[best], en.min()) or math.isclose(lat[best], lat.min()):
            continue  # a shortcut would find it
        hard += 1
        for solver in SOLVERS:
            s = plan(costs, net, objective="energy", deadline_ms=deadline, solver=solver)
            assert close(s.mobile_energy_mj, en[best]), (solver, s.mobile_energy_mj, en[best])
        if hard >= 25:
            break
    assert hard >= 25, f"only {hard} compromise instances found"


@given(
    costs=cost_tables(max_n=7),
    network=networks(),
    objective=st.sampled_from(["latency", "energy"]),
    deadline_frac=st.one_of(st.none(), st.floats(0.0, 0.6)),
)
@settings(max_examples=50)
def test_stateless_cloud_optimum_equals_full_enumeration(costs, network, objective, deadline_frac):
    """``cloud_keeps_tensors=False`` (a stateless server) against enumeration under the same model."""
    kw = {}
    if deadline_frac is not None:
        link = network
        lat = [
            dot(weights("latency", link, 1.0), u) for _, u, _ in brute.all_schedules(costs, cloud_keeps_tensors=False)
        ]
        kw["deadline_ms"] = min(lat) + (max(lat) - min(lat)) * deadline_frac
    found = brute.best(costs, network, objective=objective, cloud_keeps_tensors=False, **kw)
    for solver in SOLVERS:
        s = plan(costs, network, objective=objective, solver=solver, cloud_keeps_tensors=False, **kw)
        expected = dot(weights(objective, network, 1.0), found[1])
        assert close(getattr(s, ATTR[objective]), expected), (solver, s, expected)
        e = s.evaluate(costs, network, cloud_keeps_tensors=False)
        assert close(s.latency_ms, e.latency_ms) and (s.transfers, s.bytes_up) == (e.transfers, e.bytes_up)
        # a cloud that keeps tensors never does worse
        assert getattr(plan(costs, network, objective=objective, solver=solver, **kw), ATTR[objective]) <= getattr(
            s, ATTR[objective]
        ) * (1 + 1e-9)


def test_stateless_cloud_sends_skip_tensors_down_and_up_again():
    """A large skip tensor held by the cloud across a mobile segment: free when kept, 2x its size when not."""
    mobile = np.array([100.0, 100.0, 1.0, 1.0, 100.0])
    cloud = np.array([1.0, 1.0, 100.0, 100.0, 1.0])
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4)]
    costs = CostTable.from_layers(mobile, cloud, [2e6, 100, 100, 100, 100], 100, edges=edges, max_group=1)
    net = Network(10.0, 20.0, alpha_up=400, alpha_down=100, beta=800)
    for solver in SOLVERS:
        keeps = plan(costs, net, solver=solver)
        assert keeps.pattern() == "cloud-mobile-cloud"
        as_stateless = keeps.evaluate(costs, net, cloud_keeps_tensors=False)
        assert as_stateless.bytes_down - keeps.bytes_down == 2e6 and as_stateless.bytes_up - keeps.bytes_up == 2e6
        stateless = plan(costs, net, solver=solver, cloud_keeps_tensors=False)
        assert keeps.latency_ms < stateless.latency_ms < as_stateless.latency_ms
