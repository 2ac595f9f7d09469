"""The `plan` and `lut` commands, run through the real Typer application."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from jointdnn_edge import Network
from jointdnn_edge.cli import app
from jointdnn_edge.cli.plan import example_costs
from jointdnn_edge.planner import LookupTable, plan

runner = CliRunner()


def test_plan_works_on_a_fresh_install_with_the_builtin_example():
    r = runner.invoke(app, ["plan", "--network", "wifi"])
    assert r.exit_code == 0, r.output
    assert "JointDNN" in r.output and "mobile-only" in r.output and "cloud-only" in r.output
    expected = plan(example_costs("alexnet"), "wifi")
    assert expected.bar() in r.output


def test_plan_json_matches_the_library(tmp_path):
    costs = example_costs("alexnet")
    path = tmp_path / "c.json"
    costs.save(path)
    r = runner.invoke(app, ["plan", "--costs", str(path), "--network", "4g", "--objective", "energy", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    joint = doc["schedules"]["JointDNN"]
    s = plan(costs, "4g", objective="energy")
    assert [tuple(x) for x in joint["segments"]] == list(s.segments)
    assert joint["mobile_energy_mj"] == pytest.approx(s.mobile_energy_mj, rel=1e-12)
    assert doc["schedules"]["mobile-only"]["pattern"] == "mobile"


def test_plan_draws_a_png(tmp_path):
    out = tmp_path / "s.png"
    r = runner.invoke(app, ["plan", "--network", "3g", "--plot", str(out)])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 600 and im.height > 300


def test_infeasible_constraint_exits_with_a_clear_message():
    r = runner.invoke(app, ["plan", "--deadline-ms", "1"])
    assert r.exit_code == 2
    assert "InfeasibleError" in r.output and "deadline_ms" in r.output


def test_lut_build_and_query_agree_with_direct_plans(tmp_path):
    out = tmp_path / "t.lut"
    r = runner.invoke(app, ["lut", "build", "-o", str(out), "--network", "wifi", "--cells", "6", "6", "1"])
    assert r.exit_code == 0, r.output
    lut = LookupTable.load(out)
    costs = example_costs("alexnet")
    for up, down in [(1.0, 2.0), (8.0, 20.0), (50.0, 150.0)]:
        direct = plan(costs, Network.preset("wifi").with_bandwidth(up, down))
        assert lut.query(up, down).latency_ms == pytest.approx(direct.latency_ms, rel=1e-9)
        q = runner.invoke(app, ["lut", "query", str(out), "--up-mbps", str(up), "--down-mbps", str(down)])
        assert q.exit_code == 0 and direct.bar() in q.output


def test_plan_says_which_cost_table_it_uses():
    r = CliRunner().invoke(app, ["plan", "--model", "alexnet", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["costs"].startswith("synthetic example")
    r = CliRunner().invoke(app, ["plan", "--model", "alexnet"])
    assert "cost table: synthetic example" in r.output
    r = CliRunner().invoke(app, ["plan", "--model", "no-such-model"])
    assert r.exit_code != 0 and "unknown model" in r.output
