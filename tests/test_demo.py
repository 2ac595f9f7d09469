"""``jointdnn-edge demo``: the README's first command, on a fresh install, with no arguments."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from jointdnn_edge.cli import app
from jointdnn_edge.demo import SlowedExecutor, run_demo


def test_demo_measures_three_strategies_and_checks_outputs() -> None:
    result = run_demo("alexnet", size="tiny", presets=("wifi",), runs=1, max_group=2, progress=False)
    assert result.all_match
    rows = {r.strategy: r for r in result.rows}
    assert set(rows) == {"mobile-only", "cloud-only", "JointDNN"}
    n = result.layers
    assert rows["mobile-only"].schedule == "M" * n and rows["mobile-only"].bytes_up == 0
    assert rows["cloud-only"].schedule == "C" * n and rows["cloud-only"].bytes_up > 0
    assert rows["cloud-only"].bytes_down > 0 and rows["cloud-only"].pattern == "cloud"
    for r in result.rows:
        assert r.network == "wifi" and r.fallbacks == 0
        assert r.predicted_ms is not None and r.predicted_ms > 0 and r.measured_ms > 0
        assert r.energy_mj is not None and r.energy_mj > 0
        assert len(r.schedule.replace("|", "")) == n
    json.dumps(result.to_dict())  # plain JSON


def test_demo_command_with_no_arguments(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    res = CliRunner().invoke(app, ["demo", "--json", str(out)])
    assert res.exit_code == 0, res.output
    text = res.output
    for word in ("3g", "4g", "wifi", "mobile-only", "cloud-only", "JointDNN", "outputs match", "emulated"):
        assert word in text, word
    doc = json.loads(out.read_text())
    assert doc["model"] == "alexnet" and len(doc["rows"]) == 9
    assert all(r["outputs_match"] for r in doc["rows"])
    # the split the planner picks never predicts worse than both baselines under the same estimate
    for net in ("3g", "4g", "wifi"):
        rows = {r["strategy"]: r for r in doc["rows"] if r["network"] == net}
        best = min(rows["mobile-only"]["predicted_ms"], rows["cloud-only"]["predicted_ms"])
        assert rows["JointDNN"]["predicted_ms"] <= best * 1.25


def test_slowed_executor_is_slower_but_identical() -> None:
    import numpy as np

    from jointdnn_edge import zoo
    from jointdnn_edge.models.executor import executor_for
    from jointdnn_edge.models.graph import uniform_feeds

    g = zoo.load("chair", size="tiny")
    inner = executor_for(g, threads=1)
    slow = SlowedExecutor(inner, 3.5)
    feeds = uniform_feeds(g, 0)
    a = slow.run(g, 0, g.n - 1, feeds)
    b = inner.run(g, 0, g.n - 1, feeds)
    assert all(np.array_equal(a[k], b[k]) for k in b)
    assert slow.info()["emulated_slowdown"] == 3.5


def test_serve_command_refuses_missing_files() -> None:
    res = CliRunner().invoke(app, ["serve", "/nonexistent/model.onnx", "--port", "0"])
    assert res.exit_code == 1 and "no such model file" in res.output


def test_slowed_executor_loads_slices_ahead_like_its_inner_one() -> None:
    """A session's warm-up preloads slices through the emulated phone: prepare reaches the real executor."""
    import numpy as np

    from jointdnn_edge import zoo
    from jointdnn_edge.models.executor import executor_for
    from jointdnn_edge.models.graph import uniform_feeds

    g = zoo.load("chair", size="tiny")
    inner = executor_for(g, threads=1)
    slow = SlowedExecutor(inner, 20.0)
    assert inner.cached() == 0
    slow.prepare(g, 0, 2)
    run = slow.prepare(g, 3, g.n - 1)
    assert inner.cached() == 2 and slow.cache_size == inner.cache_size
    # what prepare returns (the server runs it) is the slowed device's run, with the same results
    feeds = {n: x for n, x in inner.run(g, 0, 2, uniform_feeds(g, 0)).items()}
    assert all(np.array_equal(a, b) for a, b in zip(run(feeds).values(), inner.run(g, 3, g.n - 1, feeds).values()))
