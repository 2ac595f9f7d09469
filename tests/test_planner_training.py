"""Exact training schedules: the position DP against brute force, the HiGHS ILP and the state-graph planner."""

from __future__ import annotations

import random

import pytest

import jointdnn_edge as jd
from jointdnn_edge.costs import CostTable
from jointdnn_edge.errors import ConfigError
from jointdnn_edge.network import Network
from jointdnn_edge.planner.brute import best
from jointdnn_edge.planner.training import exact_training_table, plan_training
from jointdnn_edge.planner.usage import dot, weights

KEY = {"latency": "latency_ms", "energy": "mobile_energy_mj"}


def _random_chain(rng: random.Random, n: int, max_group: int | None) -> CostTable:
    return CostTable.from_layers(
        [rng.uniform(1, 50) for _ in range(n)],
        [rng.uniform(0.1, 5) for _ in range(n)],
        [rng.uniform(1e3, 1e6) for _ in range(n)],
        rng.uniform(1e3, 1e6),
        weight_bytes=[rng.choice([0.0, rng.uniform(1e3, 1e6)]) for _ in range(n)],
        max_group=max_group,
    )


@pytest.mark.parametrize("seed", range(12))
def test_dp_equals_brute_force_and_ilp(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 4)
    table = exact_training_table(_random_chain(rng, n, rng.choice([None, 1, 2])), trainable_from=rng.randint(0, n - 1))
    for net in ("3g", "wifi"):
        link = Network.preset(net)
        for objective in ("latency", "energy"):
            dp = plan_training(table, net, objective=objective, solver="dp")
            _, usage, _ = best(table, link, objective=objective)
            want = dot(weights(objective, link, 1.0), usage)
            assert getattr(dp, KEY[objective]) == pytest.approx(want, rel=1e-9)
            ilp = plan_training(table, net, objective=objective, solver="ilp")
            assert getattr(ilp, KEY[objective]) == pytest.approx(want, rel=1e-7)
            # the schedule re-evaluates to its costs on the exact table
            again = dp.schedule.evaluate(table, link)
            assert again.latency_ms == pytest.approx(dp.latency_ms, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_dp_equals_the_state_graph_planner_on_six_layers(seed: int) -> None:
    """A second formulation: CostTable.training(activation_edges=True) solved by the exact state-graph planner."""
    rng = random.Random(100 + seed)
    forward = _random_chain(rng, 6, None)
    table = CostTable.training(forward, activation_edges=True)
    for objective in ("latency", "energy"):
        ref = jd.plan(table, "wifi", objective=objective, phase="training", solver="python")
        dp = plan_training(forward, "wifi", objective=objective)
        assert getattr(dp, KEY[objective]) == pytest.approx(getattr(ref, KEY[objective]), rel=1e-9)
        forced = plan_training(forward, "wifi", objective=objective, force="cloud")
        assert forced.schedule.placement() == ["cloud"] * 12


def test_activation_moved_for_the_backward_pass_only() -> None:
    """Forward all on the mobile, last layer's backward forced cheap on the cloud: its input is moved and reported."""
    forward = CostTable.from_layers([1.0, 1.0], [100.0, 100.0], [1000.0, 10.0], 10.0, weight_bytes=[0.0, 0.0])
    backward = CostTable.from_layers([100.0, 0.1], [0.1, 0.1], [10.0, 10.0], 10.0)
    step = plan_training(forward, "wifi", backward=backward)
    assert all(p == "mobile" for _, _, p in step.forward)
    assert step.backward[0] == (1, 1, "cloud")
    moved = {m.tensor: m for m in step.activation_moves}
    assert 1 in moved and moved[1].to == "cloud" and moved[1].bytes == 1000.0 and 1 in moved[1].readers
    # the paper's chain does not pay for it
    chain = jd.plan(CostTable.training(forward, backward), "wifi", phase="training")
    assert chain.latency_ms + Network.preset("wifi").upload_ms(1000.0) <= step.latency_ms * (1 + 1e-9)


def test_requests_checked() -> None:
    forward = CostTable.from_layers([1.0, 2.0], [1.0, 1.0], [10.0, 10.0], 10.0, weight_bytes=[1.0, 1.0])
    with pytest.raises(ConfigError):
        plan_training(forward, "wifi", trainable_from=2)
    with pytest.raises(ConfigError):
        plan_training(forward, "wifi", solver="brute")
    with pytest.raises(ConfigError):
        plan_training(forward, "wifi", solver="dp", deadline_ms=10.0)
    bounded = plan_training(forward, "wifi", deadline_ms=1e6)
    assert bounded.solver == "ilp"


def test_the_loss_reading_the_model_output_is_not_an_activation_move() -> None:
    """Forward on the cloud, backward on the mobile: the output comes down for the loss as on the paper's chain.

    Only layer 1's stored input (tensor 1, left on the cloud by the forward pass) is moved for the backward pass
    alone; the model input is on the mobile already and the output's transfer is the chain's own edge.
    """
    forward = CostTable.from_layers([100.0, 100.0], [1.0, 1.0], [1000.0, 10.0], 10.0, weight_bytes=[0.0, 0.0])
    backward = CostTable.from_layers([1.0, 1.0], [100.0, 100.0], [10.0, 10.0], 10.0)
    step = plan_training(forward, "wifi", backward=backward)
    assert all(p == "cloud" for _, _, p in step.forward) and all(p == "mobile" for _, _, p in step.backward)
    assert [(m.tensor, m.to, m.readers) for m in step.activation_moves] == [(1, "mobile", (1,))]


def test_training_steps_are_priced_without_the_links_burst() -> None:
    """A training step moves whole activations and weights: both training planners price it at the link's rate
    (docs/planner.md), so a burst changes neither answer. Oracle: the same plans on the link without it."""
    import dataclasses

    rng = random.Random(7)
    forward = _random_chain(rng, 5, None)
    plain = Network.preset("wifi", rtt_ms=5.0)
    bursty = dataclasses.replace(plain, burst_up_bytes=5e5, burst_down_bytes=5e5)
    for objective in ("latency", "energy"):
        a = jd.plan(forward, bursty, objective=objective, phase="training")
        b = jd.plan(forward, plain, objective=objective, phase="training")
        assert a.segments == b.segments and a.latency_ms == b.latency_ms
        assert a.usage is not None and a.usage[-2:] == (0.0, 0.0)
        c, d = plan_training(forward, bursty, objective=objective), plan_training(forward, plain, objective=objective)
        assert c.schedule.segments == d.schedule.segments and c.latency_ms == d.latency_ms
    # a training lookup table, and a training schedule evaluated again, price it the same way (found in review)
    lut = jd.LookupTable.build(forward, network=bursty, phase="training", cells=(2, 2, 1))
    assert lut.radio.burst_up_bytes == 0.0
    a = jd.plan(forward, bursty.with_bandwidth(5.0, 20.0), phase="training")
    got = lut.query(5.0, 20.0)
    assert got.latency_ms == pytest.approx(a.latency_ms, rel=1e-9)
    again = a.evaluate(CostTable.training(forward), bursty.with_bandwidth(5.0, 20.0))
    assert again.latency_ms == pytest.approx(a.latency_ms, rel=1e-9)
    # an inference plan on the same link does credit it
    assert jd.plan(forward, bursty).latency_ms < jd.plan(forward, plain).latency_ms
