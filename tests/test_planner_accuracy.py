"""Planning under an accuracy budget against brute force over schedules × transfer options.

The oracle (``brute.best_with_options``) enumerates every schedule and, for
each tensor the phone uploads, every option of it (or none), and keeps the
best whose summed loss fits the budget; the planner (native and pure-Python
compiled solvers, through the outer search over assignments) must reach the
same optimum, and the schedule it returns must cost what it says and use the
options it names.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jointdnn_edge import ConfigError, InfeasibleError, Network
from jointdnn_edge.planner import TransferOption, brute, native_available, plan, transfer_options
from jointdnn_edge.planner.schedule import Schedule, evaluate_usage, tensor_sends
from planner_strategies import networks, random_costs

pytestmark = pytest.mark.pure

SOLVERS = ["native", "python"] if native_available() else ["python"]
ATTR = {"latency": "latency_ms", "energy": "mobile_energy_mj"}


def random_options(rng: np.random.Generator, costs, per_tensor: int = 3) -> list[TransferOption]:
    """A few options for a few tensors: smaller than lossless (some not), with losses in 0..3 points."""
    out = []
    for t in range(costs.n + 1):
        if rng.random() < 0.4:
            continue
        lossless = costs.input_bytes if t == 0 else float(costs.out_bytes[t - 1])
        for j in range(int(rng.integers(1, per_tensor + 1))):
            frac = float(rng.choice([0.01, 0.05, 0.2, 1.2]))
            loss = float(rng.choice([0.0, 0.005, 0.01, 0.02, 0.03]))
            out.append(TransferOption(t, f"o{j}", round(lossless * frac), loss))
    return out


def uses_what_it_says(s: Schedule, costs, options, keeps: bool) -> None:
    """Independent check of a planned schedule: its usage is the lossless usage with the named options' bytes on
    every upload of their tensors, its loss their sum, and it names only uploaded tensors the phone produced."""
    by = {(o.tensor, o.option): o for o in options}
    used = [by[x] for x in s.lossy]
    u, _ = evaluate_usage(costs, s.segments, cloud_keeps_tensors=keeps)
    sends = tensor_sends(costs, s.segments, cloud_keeps_tensors=keeps)
    place = s.placement()
    for o in used:
        assert (o.tensor, 0) in sends and (o.tensor == 0 or place[o.tensor - 1] == "mobile")
        lossless = costs.input_bytes if o.tensor == 0 else costs.out_bytes[o.tensor - 1]
        u[3] += sends.count((o.tensor, 0)) * (o.bytes - float(lossless))
    assert math.isclose(s.bytes_up, u[3], rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(s.accuracy_loss, sum(o.loss for o in used), abs_tol=1e-12)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6),
    dag=st.booleans(),
    network=networks(),
    objective=st.sampled_from(["latency", "energy"]),
    budget=st.sampled_from([0.0, 0.005, 0.01, 0.02, 0.05]),
    keeps=st.booleans(),
    force=st.sampled_from([None, None, None, "cloud", "mobile"]),
)
@settings(max_examples=60, deadline=None)
def test_budgeted_optimum_equals_brute_force_over_cuts_and_options(
    seed, n, dag, network, objective, budget, keeps, force
):
    rng = np.random.default_rng(seed)
    costs = random_costs(rng, n, dag=dag)
    options = random_options(rng, costs)
    found = brute.best_with_options(
        costs, network, options, budget, objective=objective, force=force, cloud_keeps_tensors=keeps
    )
    assert found is not None
    _, v, _, _, loss = found
    want = Schedule.from_usage(found[0], v, found[2], network, 1.0)
    for solver in SOLVERS:
        s = plan(
            costs, network, objective=objective, force=force, solver=solver, cloud_keeps_tensors=keeps,
            max_accuracy_loss=budget, accuracy=options,
        )  # fmt: skip
        assert math.isclose(getattr(s, ATTR[objective]), getattr(want, ATTR[objective]), rel_tol=1e-9), solver
        assert s.accuracy_loss <= budget + 1e-12
        uses_what_it_says(s, costs, options, keeps)
        b = plan(
            costs, network, objective=objective, force=force, solver="brute", cloud_keeps_tensors=keeps,
            max_accuracy_loss=budget, accuracy=options,
        )  # fmt: skip
        assert math.isclose(getattr(b, ATTR[objective]), getattr(s, ATTR[objective]), rel_tol=1e-9)
        assert math.isclose(b.accuracy_loss, loss)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 6),
    network=networks(),
    fraction=st.floats(0.0, 1.0),
    budget=st.sampled_from([0.0, 0.01, 0.03]),
)
@settings(max_examples=30, deadline=None)
def test_budgeted_optimum_under_a_deadline_equals_brute_force(seed, n, network, fraction, budget):
    rng = np.random.default_rng(seed)
    costs = random_costs(rng, n, dag=bool(seed % 2))
    options = random_options(rng, costs)
    lossless = [u for _, u, _ in brute.all_schedules(costs)]
    lat = [Schedule.from_usage([], u, 0, network, 1.0).latency_ms for u in lossless]
    deadline = min(lat) * (0.5 + fraction)  # sometimes only a lossy transfer meets it, sometimes none
    found = brute.best_with_options(costs, network, options, budget, objective="energy", deadline_ms=deadline)
    for solver in SOLVERS:
        kw = {"objective": "energy", "deadline_ms": deadline, "solver": solver}
        if found is None:
            with pytest.raises(InfeasibleError):
                plan(costs, network, **kw, max_accuracy_loss=budget, accuracy=options)
            continue
        s = plan(costs, network, **kw, max_accuracy_loss=budget, accuracy=options)
        want = Schedule.from_usage(found[0], found[1], found[2], network, 1.0)
        assert math.isclose(s.mobile_energy_mj, want.mobile_energy_mj, rel_tol=1e-9)
        assert s.latency_ms <= deadline * (1 + 1e-9)
        uses_what_it_says(s, costs, options, True)


def test_without_a_budget_plan_is_the_lossless_plan_and_says_nothing_of_options():
    costs = random_costs(np.random.default_rng(3), 6, dag=True)
    for solver in SOLVERS:
        s = plan(costs, "3g", solver=solver)
        assert s.lossy == () and s.accuracy_loss == 0.0
        assert "lossy" not in s.to_dict()
        # an option that is never worth it (larger than lossless) leaves the same plan
        worse = [TransferOption(t, "big", 1e12, 0.0) for t in range(costs.n + 1)]
        assert plan(costs, "3g", solver=solver, max_accuracy_loss=1.0, accuracy=worse) == s


def chain_with_a_large_cut():
    """A 3-layer chain whose tensors are large and whose layers 1.. are 20x faster on the cloud."""
    from jointdnn_edge import CostTable

    n = 3
    mobile = np.array([5.0, 400.0, 400.0])
    mm = np.full((n, n), np.inf)
    cm = np.full((n, n), np.inf)
    for i in range(n):
        mm[i, i], cm[i, i] = mobile[i], mobile[i] / 20
    return CostTable(mm, cm, [400_000.0, 400_000.0, 40.0], 600_000.0)


def test_a_lossy_option_moves_the_split_and_the_schedule_says_which():
    """A chain whose cut tensor is large: lossless keeps everything on the phone over 3G; a 20x smaller option with
    a 0.5-point loss moves the rest to the cloud within a 1-point budget, not within 0.4."""
    costs = chain_with_a_large_cut()
    table = {"rows": [{"cut": "a", "layer": 0, "option": {"label": "pca+q4"}, "bytes": 20_000.0, "delta_cer": 0.005}]}
    for solver in SOLVERS:
        lossless = plan(costs, "3g", solver=solver)
        assert lossless.pattern() == "mobile"
        tight = plan(costs, "3g", solver=solver, max_accuracy_loss=0.004, accuracy=table)
        assert tight == lossless and tight.lossy == ()
        s = plan(costs, "3g", solver=solver, max_accuracy_loss=0.01, accuracy=table)
        assert s.segments == ((0, 0, "mobile"), (1, 1, "cloud"), (2, 2, "cloud"))
        assert s.lossy == ((1, "pca+q4"),) and s.accuracy_loss == 0.005
        assert s.bytes_up == 20_000.0 and s.latency_ms < lossless.latency_ms / 4
        d = s.to_dict()
        assert d["lossy"] == [[1, "pca+q4"]] and Schedule.from_dict(d) == s


def test_transfer_options_read_the_accuracy_json_and_refuse_what_is_malformed():
    doc = {
        "rows": [
            {"cut": "x", "layer": 4, "option": {"label": "q4"}, "bytes": 10.0, "delta_cer": -0.002},
            {"cut": "x", "layer": 4, "option": {"label": "q2c"}, "bytes": 5.0, "delta_cer": 0.01},
        ]
    }
    assert transfer_options(doc) == (TransferOption(5, "q4", 10.0, 0.0), TransferOption(5, "q2c", 5.0, 0.01))
    assert transfer_options(doc, tensor_of={"x": 9})[0].tensor == 9
    for bad in (
        {"rows": [{"cut": "x", "option": "q4", "bytes": 1, "delta_cer": 0}]},  # no layer, no tensor_of
        {"rows": [{"cut": "x", "layer": 1, "option": "q4", "bytes": "many", "delta_cer": 0}]},
        {"rows": [{"cut": "x", "layer": 1, "option": "q4", "bytes": math.inf, "delta_cer": 0}]},
        {"rows": [doc["rows"][0], doc["rows"][0]]},
        "rows",
    ):
        with pytest.raises(ConfigError):
            transfer_options(bad)
    costs = random_costs(np.random.default_rng(0), 3, dag=False)
    with pytest.raises(ConfigError):
        plan(costs, "4g", max_accuracy_loss=0.01)  # a budget without a table
    with pytest.raises(ConfigError):
        plan(costs, "4g", accuracy=doc)  # a table without a budget
    with pytest.raises(ConfigError):
        plan(costs, "4g", max_accuracy_loss=-1, accuracy=doc)
    with pytest.raises(ConfigError):
        plan(costs, "4g", max_accuracy_loss=0.01, accuracy=doc, solver="ilp")
    with pytest.raises(ConfigError):  # tensor 5 is past a 3-layer model's tensors
        plan(costs, Network.preset("4g"), max_accuracy_loss=0.01, accuracy=doc)
