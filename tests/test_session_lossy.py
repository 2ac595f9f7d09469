"""A session under an accuracy budget against a real local server: the lossy split end to end.

The oracle is the lossy reference computed here: the model's head run
locally, the cut tensor encoded and decoded with the same spec, the rest of
the model run locally on the result. The session's outputs must equal it,
its schedule and trace must name the option, and a server that does not hold
the spec must refuse it (the session then finishes locally, losslessly).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fixtures_session import assert_close
from jointdnn_edge import ConfigError, CostTable, JointSession, Network, lossy
from jointdnn_edge.models.executor import executor_for
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.server import BackgroundServer, create_app

CUT, LAYER = "pool1", 3
OPTIONS = ("q4c", "pca0.5+q4c")


@pytest.fixture(scope="module")
def setup(session_models):
    """The tiny AlexNet chain, specs fitted at ``pool1`` on seeded inputs, and an accuracy table of them."""
    g = session_models["alexnet"]
    ex = executor_for(g, threads=1)
    samples = [uniform_feeds(g, seed) for seed in range(8)]
    table = {"rows": [{"cut": CUT, "layer": LAYER, "option": {"label": o}} for o in OPTIONS]}
    specs = lossy.fit_table(g, table, samples, executor=ex)
    probe = ex.run(g, 0, LAYER, uniform_feeds(g, 100))[CUT]
    for row, spec, loss in zip(table["rows"], specs[CUT], (0.004, 0.02)):
        row["option"] = {"label": row["option"]["label"], **spec.describe()}
        row["bytes"] = float(len(lossy.encode(probe, spec)))
        row["delta_cer"] = loss
    return g, ex, table, specs


def split_favouring_costs(n: int, lossless_bytes: float) -> CostTable:
    """Layers after the cut are slow on the phone and fast on the cloud; every tensor but the last is
    ``lossless_bytes`` (too large for 3G), so the cloud pays only when the cut tensor travels lossily."""
    mm = np.full((n, n), np.inf)
    cm = np.full((n, n), np.inf)
    for i in range(n):
        mm[i, i] = 1.0 if i <= LAYER else 400.0
        cm[i, i] = 0.5
    out = np.full(n, lossless_bytes)
    out[-1] = 4000.0
    return CostTable(mm, cm, out, lossless_bytes)


def lossy_reference(g, ex, feeds, spec):
    head = ex.run(g, 0, LAYER, dict(feeds))[CUT]
    back = lossy.decode(lossy.encode(head, spec), spec, head.shape, head.dtype)
    return ex.run(g, LAYER + 1, g.n - 1, {CUT: back})


@pytest.mark.parametrize("lut_build", ["blocking", "never"])  # from the table, and planned exactly
@pytest.mark.parametrize("budget, option", [(0.01, "q4c"), (0.05, "pca0.5+q4c")])
def test_session_sends_the_cut_lossily_and_its_outputs_equal_the_local_lossy_reference(
    setup, budget, option, lut_build
):
    g, ex, table, specs = setup
    costs = split_favouring_costs(g.n, 5e6)
    app = create_app({"alexnet": g}, threads=1, lossy_specs=specs[CUT])
    feeds = uniform_feeds(g, 7)
    with BackgroundServer(app) as server:
        with JointSession(
            g, server.url, costs, network="3g", max_accuracy_loss=budget, accuracy=table, lossy_specs=specs,
            lut_build=lut_build,
        ) as session:  # fmt: skip
            out = session.run(feeds)
            trace = session.last_trace
    spec = specs[CUT][OPTIONS.index(option)]
    assert trace.source == {"blocking": "lut", "never": "plan"}[lut_build]  # the table under the budget, or plan()
    assert_close(out, lossy_reference(g, ex, feeds, spec))
    lossless = ex.run_model(g, feeds)
    name = g.outputs[0].name
    assert not np.allclose(out[name], lossless[name], rtol=1e-6, atol=0)  # the lossy path was taken
    assert trace.schedule.runs() == [(0, LAYER, "mobile"), (LAYER + 1, g.n - 1, "cloud")]
    assert trace.schedule.lossy == ((LAYER + 1, option),)
    assert math.isclose(
        trace.schedule.accuracy_loss, next(r["delta_cer"] for r in table["rows"] if r["option"]["label"] == option)
    )
    mobile, cloud = trace.steps
    assert cloud.error is None and cloud.lossy == {CUT: option} and mobile.lossy == {}
    assert trace.to_dict()["steps"][1]["lossy"] == {CUT: option}
    assert trace.to_dict()["schedule"]["lossy"] == [[LAYER + 1, option]]
    # what went up is the lossy payload (its bytes in the table) plus the request's envelope, not the tensor
    assert cloud.bytes_up < 4 * max(r["bytes"] for r in table["rows"]) + 2048


def test_a_zero_budget_keeps_the_lossless_plan(setup):
    g, _, table, specs = setup
    costs = split_favouring_costs(g.n, 5e6)
    session = JointSession(g, None, costs, network="3g", max_accuracy_loss=0.0, accuracy=table, lossy_specs=specs)
    from jointdnn_edge import plan

    s = plan(costs, "3g", max_accuracy_loss=0.0, accuracy=session._options, cloud_keeps_tensors=False)
    assert s.lossy == () and s.pattern() == "mobile"


def test_a_server_without_the_spec_refuses_it_and_the_session_finishes_locally(setup, reference):
    g, _, table, specs = setup
    costs = split_favouring_costs(g.n, 5e6)
    app = create_app({"alexnet": g}, threads=1)  # holds no lossy spec
    feeds = uniform_feeds(g, 3)
    with BackgroundServer(app) as server:
        with JointSession(
            g, server.url, costs, network="3g", max_accuracy_loss=0.01, accuracy=table, lossy_specs=specs
        ) as session:
            out = session.run(feeds)
            trace = session.last_trace
    assert_close(out, reference(g, feeds))  # the local fallback is lossless
    failed = trace.steps[1]
    assert failed.error is not None and "lossy spec" in failed.error and failed.lossy == {CUT: "q4c"}
    assert trace.steps[-1].fallback


def test_session_refuses_an_incomplete_accuracy_budget(setup):
    g, _, table, specs = setup
    for kwargs in (
        {"max_accuracy_loss": 0.01},
        {"max_accuracy_loss": 0.01, "accuracy": table},
        {"accuracy": table, "lossy_specs": specs},
        {"max_accuracy_loss": 0.01, "accuracy": table, "lossy_specs": {}},  # no row has a spec
        {"max_accuracy_loss": 0.01, "accuracy": {"rows": [{"cut": "nope", "option": "q4"}]}, "lossy_specs": specs},
    ):
        with pytest.raises(ConfigError):
            JointSession(g, None, **kwargs)


def test_the_lookup_table_picks_what_plan_picks_under_the_budget(setup):
    """The session plans from its lookup table (built under the budget); its choice, options included, is plan()'s
    at the same conditions, on slow and fast links and at budgets that allow no, one and both options."""
    from jointdnn_edge import plan

    g, _, table, specs = setup
    costs = split_favouring_costs(g.n, 5e6)
    app = create_app({"alexnet": g}, threads=1, lossy_specs=specs[CUT])
    seen = set()
    with BackgroundServer(app) as server:
        for budget in (0.0, 0.01, 0.05):
            with JointSession(
                g, server.url, costs, network="3g", max_accuracy_loss=budget, accuracy=table, lossy_specs=specs,
                lut_cells=(8, 8, 2), lut_build="blocking",
            ) as session:  # fmt: skip
                for up, down, slowdown in [(0.4, 1.0, 1.0), (3.0, 8.0, 1.7), (40.0, 90.0, 1.0), (400.0, 800.0, 1.0)]:
                    session.network = Network.preset("3g").with_bandwidth(up, down)
                    session._slowdown = slowdown  # what the server's reported compute times would set
                    got, source, network, used_slowdown = session.plan()
                    want = plan(
                        costs, network, cloud_slowdown=used_slowdown, cloud_keeps_tensors=False,
                        max_accuracy_loss=budget, accuracy=session._options,
                    )  # fmt: skip
                    assert source == "lut" and used_slowdown == slowdown
                    assert got.segments == want.segments and got.lossy == want.lossy
                    assert math.isclose(got.latency_ms, want.latency_ms, rel_tol=1e-9)
                    seen.add(got.lossy)
    assert seen == {(), ((LAYER + 1, "q4c"),), ((LAYER + 1, "pca0.5+q4c"),)}
