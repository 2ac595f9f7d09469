"""The Android bridge's Python entry points (``jointdnn_edge.android``), called as Java would call them.

Every decision is checked against :func:`jointdnn_edge.plan` or
:meth:`LookupTable.query` computed directly, every frame against the codec.
The tests marked ``pure`` run a second time with the native module hidden
(``JOINTDNN_EDGE_PURE=1``); ``test_decisions_are_identical_with_and_without_the_native_planner``
compares the two in one run.
"""

from __future__ import annotations

import array
import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from jointdnn_edge import CostTable, InfeasibleError, Network, codec
from jointdnn_edge import android as bridge
from jointdnn_edge.errors import CodecError, ConfigError, CostTableError, ExecutionError, LookupTableError
from jointdnn_edge.network import Radio
from jointdnn_edge.planner import LookupTable, Schedule, native_available, plan
from planner_strategies import random_costs

ROOT = Path(__file__).resolve().parents[1]
# (up_mbps, down_mbps): inside and outside the tables' boxes below
POINTS = [(0.3, 0.8), (1.1, 2.0275), (5.85, 13.76), (18.88, 54.97), (80.0, 150.0), (400.0, 900.0)]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def same(got: dict, want: Schedule) -> None:
    """``got`` (decide() JSON) is the schedule ``want`` (the oracle's) with the same costs."""
    assert [tuple(s) for s in got["segments"]] == [tuple(s) for s in want.segments]
    for key in ("latency_ms", "mobile_energy_mj", "cloud_ms", "bytes_up", "bytes_down"):
        assert close(got[key], getattr(want, key)), key
    assert got["transfers"] == want.transfers and got["switches"] == want.switches
    assert [tuple(r) for r in got["runs"]] == want.runs()
    assert got["pattern"] == want.pattern()


@pytest.fixture(autouse=True)
def fresh_bridge():
    """Each test starts from an empty planner state, as a freshly started app does."""
    bridge.reset()
    yield
    bridge.reset()


@pytest.fixture(scope="module")
def alexnet_path() -> Path:
    return Path(str(resources.files("jointdnn_edge").joinpath("data", "example_alexnet.json")))


@pytest.fixture(scope="module")
def alexnet(alexnet_path) -> CostTable:
    return CostTable.load(alexnet_path)


@pytest.fixture(scope="module")
def dag_path(tmp_path_factory) -> Path:
    """A random DAG with skip connections and extra outputs (the case cloud_keeps_tensors matters for)."""
    path = tmp_path_factory.mktemp("android") / "dag.json"
    random_costs(np.random.default_rng(5), 9, dag=True).save(path)
    return path


def radio_4g(up: float, down: float) -> Network:
    return Network.preset("4g").with_bandwidth(up, down)


# ------------------------------------------------------------------ planning
@pytest.mark.pure
def test_decide_on_a_cost_table_is_the_exact_plan(alexnet_path, alexnet):
    summary = json.loads(bridge.load_costs(str(alexnet_path)))
    assert summary["n"] == alexnet.n and summary["names"] == list(alexnet.names)
    assert summary["planner"] == ("native" if native_available() else "python")
    for up, down in POINTS:
        got = json.loads(bridge.decide(up, down))
        same(got, plan(alexnet, radio_4g(up, down)))
        assert got["source"] == "plan" and got["constraints"] == {}
        assert (got["up_mbps"], got["down_mbps"], got["cloud_slowdown"]) == (up, down, 1.0)


@pytest.mark.pure
def test_battery_deadline_slowdown_and_objective_reach_the_planner(alexnet_path, alexnet):
    bridge.load_costs(str(alexnet_path))
    least_energy = plan(alexnet, radio_4g(5.0, 10.0), objective="energy").mobile_energy_mj
    cases = [
        dict(battery_mj=least_energy * 1.3),
        dict(deadline_ms=400.0),
        dict(battery_mj=least_energy * 2, deadline_ms=300.0, cloud_slowdown=3.0),
        dict(objective="energy", deadline_ms=500.0),
        dict(objective="energy", cloud_slowdown=0.5),
    ]
    for kw in cases:
        for up, down in POINTS[1:4]:
            got = json.loads(bridge.decide(up, down, **kw))
            want = plan(
                alexnet,
                radio_4g(up, down),
                objective=kw.get("objective", "latency"),
                deadline_ms=kw.get("deadline_ms"),
                energy_budget_mj=kw.get("battery_mj"),
                cloud_slowdown=kw.get("cloud_slowdown", 1.0),
            )
            same(got, want)
            assert got["objective"] == kw.get("objective", "latency")


@pytest.mark.pure
def test_positional_arguments_as_the_java_facade_passes_them(alexnet_path, alexnet):
    """decide(up, down, battery, deadline, slowdown, objective) with Java nulls as None."""
    bridge.load_costs(str(alexnet_path))
    got = json.loads(bridge.decide(5.85, 13.76, None, 250.0, 2.0, None))
    same(got, plan(alexnet, radio_4g(5.85, 13.76), deadline_ms=250.0, cloud_slowdown=2.0))
    assert got["constraints"] == {"deadline_ms": 250.0}


@pytest.mark.pure
def test_infeasible_bound_raises_the_planners_error(alexnet_path, alexnet):
    bridge.load_costs(str(alexnet_path))
    with pytest.raises(InfeasibleError) as want:
        plan(alexnet, radio_4g(5.0, 10.0), energy_budget_mj=1.0)
    with pytest.raises(InfeasibleError) as got:
        bridge.decide(5.0, 10.0, 1.0)
    assert got.value.constraint == want.value.constraint == "energy_budget_mj"
    assert close(got.value.best, want.value.best)
    err = json.loads(bridge.last_error())
    assert err["type"] == "InfeasibleError" and err["sdk_error"] is True
    assert err["hierarchy"][:2] == ["InfeasibleError", "JointDNNError"]
    assert err["constraint"] == "energy_budget_mj" and close(err["best"], want.value.best)
    assert err["message"] == str(want.value)


@pytest.mark.pure
def test_lookup_table_answers_with_its_own_query_which_is_the_exact_plan(tmp_path, alexnet):
    lut = LookupTable.build(alexnet, deadline_ms=900.0, up_mbps=(0.5, 100), down_mbps=(1, 200), cells=(6, 6, 1))
    path = tmp_path / "alexnet.lut"
    lut.save(path)
    summary = json.loads(bridge.load_lookup_table(str(path)))
    assert summary["n"] == 21 and summary["constraints"] == {"deadline_ms": 900.0}
    assert summary["schedules"] == len(lut.candidates) and summary["costs_embedded"] is True
    for up, down in POINTS:  # the first and last points lie outside the box
        got = json.loads(bridge.decide(up, down))
        assert got["source"] == "lut" and got["constraints"] == {"deadline_ms": 900.0}
        same(got, lut.query(up, down))
        exact = plan(alexnet, radio_4g(up, down), deadline_ms=900.0)
        assert close(got["latency_ms"], exact.latency_ms)


@pytest.mark.pure
def test_a_request_the_table_was_not_built_for_is_planned_exactly(tmp_path, alexnet):
    """Other bounds, objective or radio: an exact plan on the cost table embedded in the .lut file."""
    lut = LookupTable.build(alexnet, deadline_ms=900.0, cells=(4, 4, 1))
    path = tmp_path / "a.lut"
    lut.save(path)
    bridge.load_lookup_table(str(path))
    least = plan(alexnet, radio_4g(5.0, 10.0), objective="energy").mobile_energy_mj
    got = json.loads(bridge.decide(5.0, 10.0, least * 1.5))
    assert got["source"] == "plan" and got["constraints"] == {"deadline_ms": 900.0, "battery_mj": least * 1.5}
    same(got, plan(alexnet, radio_4g(5.0, 10.0), deadline_ms=900.0, energy_budget_mj=least * 1.5))
    got = json.loads(bridge.decide(5.0, 10.0, None, None, 1.0, "energy"))
    assert got["source"] == "plan"
    same(got, plan(alexnet, radio_4g(5.0, 10.0), objective="energy", deadline_ms=900.0))
    # the same deadline given explicitly is the table's request
    assert json.loads(bridge.decide(5.0, 10.0, None, 900.0))["source"] == "lut"
    bridge.configure(json.dumps({"radio": "wifi"}))
    got = json.loads(bridge.decide(5.0, 10.0))
    assert got["source"] == "plan"
    same(got, plan(alexnet, Network.preset("wifi").with_bandwidth(5.0, 10.0), deadline_ms=900.0))


@pytest.mark.pure
def test_a_table_without_embedded_costs_needs_the_cost_table_for_other_requests(tmp_path, alexnet_path, alexnet):
    lut = LookupTable.build(alexnet, cells=(4, 4, 1), embed_costs=False)
    path = tmp_path / "bare.lut"
    lut.save(path)
    bridge.load_lookup_table(str(path))
    with pytest.raises(ConfigError, match="embeds no cost table"):
        bridge.decide(5.0, 10.0, None, 200.0)
    bridge.load_costs(str(alexnet_path))  # now both are loaded: the table stays in charge of its request
    same(json.loads(bridge.decide(5.0, 10.0, None, 200.0)), plan(alexnet, radio_4g(5.0, 10.0), deadline_ms=200.0))
    assert json.loads(bridge.decide(5.0, 10.0))["source"] == "lut"


@pytest.mark.pure
def test_configure_radio_and_planner_options(dag_path):
    costs = CostTable.load(dag_path)
    bridge.load_costs(str(dag_path))
    radio = {"alpha_up": 500.0, "alpha_down": 80.0, "beta": 900.0, "rtt_ms": 12.0}
    conf = json.loads(bridge.configure(json.dumps({"radio": radio, "plan_options": {"cloud_keeps_tensors": False}})))
    no_burst = {"burst_up_bytes": 0.0, "burst_down_bytes": 0.0}
    assert conf["radio"] == {**radio, **no_burst} and conf["plan_options"] == {"cloud_keeps_tensors": False}
    net = Network(20.0, 50.0, **radio)
    same(json.loads(bridge.decide(20.0, 50.0)), plan(costs, net, cloud_keeps_tensors=False))
    bridge.configure(json.dumps({"radio": {"preset": "3g", "rtt_ms": 40.0}, "plan_options": {}}))
    net = Network.preset("3g", rtt_ms=40.0).with_bandwidth(7.0, 20.0)
    same(json.loads(bridge.decide(7.0, 20.0)), plan(costs, net))
    # a shaped link's burst, on a preset or in a full radio, reaches the planner
    bursty = {"preset": "4g", "rtt_ms": 10.0, "burst_up_bytes": 9400.0, "burst_down_bytes": 4500.0}
    bridge.configure(json.dumps({"radio": bursty}))
    net = dataclasses.replace(Network.preset("4g", rtt_ms=10.0), burst_up_bytes=9400.0, burst_down_bytes=4500.0)
    same(json.loads(bridge.decide(3.0, 9.0)), plan(costs, net.with_bandwidth(3.0, 9.0)))
    with pytest.raises(ConfigError, match="burst_up_bytes"):
        bridge.configure(json.dumps({"radio": {**radio, "burst_up_bytes": -1.0}}))
    bridge.configure(json.dumps({"objective": "energy"}))
    same(json.loads(bridge.decide(7.0, 20.0)), plan(costs, net, objective="energy"))


@pytest.mark.pure
def test_the_table_answers_only_for_the_cloud_memory_model_it_was_built_for(tmp_path, dag_path):
    costs = CostTable.load(dag_path)
    keeps, stateless = (plan(costs, radio_4g(20.0, 50.0), cloud_keeps_tensors=k) for k in (True, False))
    assert not close(keeps.latency_ms, stateless.latency_ms)  # the two cloud models disagree here
    lut = LookupTable.build(costs, cells=(4, 4, 1), cloud_keeps_tensors=False)
    lut.save(tmp_path / "stateless.lut")
    conf = json.loads(bridge.load_lookup_table(str(tmp_path / "stateless.lut")))
    assert conf["cloud_keeps_tensors"] is False
    got = json.loads(bridge.decide(20.0, 50.0))  # loading the table adopted its cloud model
    assert got["source"] == "lut"
    same(got, lut.query(20.0, 50.0))
    assert close(got["latency_ms"], plan(costs, radio_4g(20.0, 50.0), cloud_keeps_tensors=False).latency_ms)
    got = json.loads(bridge.decide(20.0, 50.0, None, 1e9))  # another request: planned for the same cloud
    assert got["source"] == "plan"
    same(got, plan(costs, radio_4g(20.0, 50.0), deadline_ms=1e9, cloud_keeps_tensors=False))
    bridge.configure(json.dumps({"plan_options": {"cloud_keeps_tensors": True}}))
    got = json.loads(bridge.decide(20.0, 50.0))
    assert got["source"] == "plan"
    same(got, plan(costs, radio_4g(20.0, 50.0)))


@pytest.mark.pure
def test_table_bytes_arrive_in_any_form_java_can_send(tmp_path, alexnet):
    lut = LookupTable.build(alexnet, cells=(3, 3, 1))
    data = lut.to_bytes()
    signed = array.array("b", data)  # a Java byte[] seen through the buffer protocol: signed bytes
    forms = [data, bytearray(data), memoryview(data), signed, list(signed)]
    summaries = [json.loads(bridge.load_lookup_table_bytes(f)) for f in forms]
    assert all(s == summaries[0] for s in summaries)
    same(json.loads(bridge.decide(3.0, 9.0)), lut.query(3.0, 9.0))


@pytest.mark.pure
def test_mobile_ranges_are_the_mobile_runs_of_the_stored_schedules(alexnet, dag_path):
    for costs in (alexnet, CostTable.load(dag_path)):
        lut = LookupTable.build(costs, cells=(6, 6, 2), cloud_slowdown=(1.0, 4.0), objective="energy")
        bridge.load_lookup_table_bytes(lut.to_bytes())
        want = set()
        for segs, _u, _k in lut.candidates:
            s = Schedule(
                segs, latency_ms=0, mobile_energy_mj=0, cloud_ms=0, bytes_up=0, bytes_down=0, transfers=0, switches=0
            )
            want |= {(a, b) for a, b, p in s.runs() if p == "mobile"}
        assert [tuple(r) for r in json.loads(bridge.mobile_ranges())] == sorted(want)


@pytest.mark.pure
def test_build_lookup_table_writes_the_table_the_api_builds(tmp_path, alexnet_path, alexnet):
    out = tmp_path / "built.lut"
    opts = {"deadline_ms": 700.0, "up_mbps": [1, 50], "down_mbps": [2, 80], "cells": [4, 4, 1], "network": "wifi"}
    summary = json.loads(bridge.build_lookup_table(str(alexnet_path), str(out), json.dumps(opts)))
    want = LookupTable.build(
        alexnet, deadline_ms=700.0, up_mbps=(1, 50), down_mbps=(2, 80), cells=(4, 4, 1), network="wifi"
    )
    assert out.read_bytes() == want.to_bytes()
    assert summary["constraints"] == {"deadline_ms": 700.0} and summary["up_mbps"] == [1.0, 50.0]
    with pytest.raises(ConfigError, match="bad lookup-table option"):
        bridge.build_lookup_table(str(alexnet_path), str(out), json.dumps({"colour": "red"}))


@pytest.mark.pure
def test_layer_counts_of_cost_and_lookup_tables_must_agree(tmp_path, alexnet_path, dag_path):
    bridge.load_costs(str(dag_path))
    lut = LookupTable.build(CostTable.load(alexnet_path), cells=(2, 2, 1))
    with pytest.raises(LookupTableError, match="21 layers but the loaded cost table has 9"):
        bridge.load_lookup_table_bytes(lut.to_bytes())


@pytest.mark.pure
def test_bad_arguments_raise_typed_errors_recorded_for_java(tmp_path, alexnet_path):
    with pytest.raises(ConfigError, match="nothing to plan on"):
        bridge.decide(1.0, 1.0)
    assert json.loads(bridge.last_error())["type"] == "ConfigError"
    bridge.load_costs(str(alexnet_path))
    assert bridge.last_error() is None  # a successful call clears the record
    for args in [
        (0.0, 1.0),
        (-1.0, 1.0),
        (float("nan"), 1.0),
        ("fast", 1.0),
        (1.0, 1.0, -5.0),
        (1.0, 1.0, None, None, 0.0),
    ]:
        with pytest.raises(ConfigError):
            bridge.decide(*args)
        err = json.loads(bridge.last_error())
        assert err["type"] == "ConfigError" and "ValueError" in err["hierarchy"]
    with pytest.raises(ConfigError, match="objective"):
        bridge.decide(1.0, 1.0, None, None, 1.0, "speed")
    with pytest.raises(ConfigError, match="not valid JSON"):
        bridge.configure("{radio: 4g}")
    with pytest.raises(ConfigError, match="unknown configure"):
        bridge.configure(json.dumps({"colour": "red"}))
    with pytest.raises(ConfigError, match="radio"):
        bridge.configure(json.dumps({"radio": {"alpha_up": 1.0}}))
    with pytest.raises(ConfigError, match="objective"):
        bridge.configure(json.dumps({"objective": "speed"}))
    with pytest.raises(CostTableError, match="not valid JSON"):  # a malformed table stays a cost-table error
        bridge.load_costs_json("{n: 3}")
    with pytest.raises(LookupTableError, match="bad magic"):
        bridge.load_lookup_table_bytes(b"not a table at all")
    with pytest.raises(LookupTableError, match="cannot read"):
        bridge.load_lookup_table(str(tmp_path / "missing.lut"))
    with pytest.raises(CostTableError, match="cannot read"):
        bridge.load_costs(str(tmp_path / "missing.json"))
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else", "n": 1}))
    with pytest.raises(CostTableError):
        bridge.load_costs(str(tmp_path / "other.json"))
    err = json.loads(bridge.last_error())
    assert err["module"] == "jointdnn_edge.errors" and err["sdk_error"]


def test_error_records_are_per_thread(alexnet_path):
    """Chaquopy gives every Java thread its own Python thread: one thread's failure is not another's."""
    bridge.load_costs(str(alexnet_path))
    seen = {}

    def fail():
        with pytest.raises(ConfigError):
            bridge.decide(-1.0, 1.0)
        seen["failing"] = bridge.last_error()

    t = threading.Thread(target=fail)
    t.start()
    t.join()
    bridge.decide(1.0, 1.0)
    assert json.loads(seen["failing"])["type"] == "ConfigError"
    assert bridge.last_error() is None


def test_unexpected_errors_are_recorded_as_not_the_sdks():
    with pytest.raises(TypeError):
        bridge.decide(1.0)  # a facade/module mismatch: wrong arity
    err = json.loads(bridge.last_error())
    assert err["type"] == "TypeError" and err["sdk_error"] is False and err["module"] == "builtins"


@pytest.mark.pure
def test_info_and_native_flag(alexnet_path):
    assert bridge.native_available() is native_available()
    if os.environ.get("JOINTDNN_EDGE_PURE", "") not in ("", "0"):
        assert bridge.native_available() is False  # hidden, as on a phone without the native wheel
    assert bridge.version() == __import__("jointdnn_edge").__version__
    assert bridge.api_version() == bridge.API_VERSION == 1
    bridge.load_costs(str(alexnet_path))
    info = json.loads(bridge.info())
    assert info["native"] is native_available() and info["numpy"] is True
    assert info["state"]["costs"]["n"] == 21 and info["state"]["lookup_table"] is None


JAVA_FRIENDLY = {"str", "bytes", "bool", "int", "float", "None", "list", "Any"}


def test_every_entry_point_is_declared_to_return_java_friendly_types_only():
    """str (JSON), bytes, bool, int, float, None, or a list of those: what Chaquopy hands Java as is."""
    import inspect
    import re

    for name in bridge.__all__:
        fn = getattr(bridge, name)
        if not callable(fn):
            continue
        ret = inspect.signature(fn).return_annotation
        assert ret is not inspect.Signature.empty, f"{name} declares no return type"
        words = set(re.findall(r"[A-Za-z_]\w*", str(ret)))
        assert words <= JAVA_FRIENDLY, f"{name} returns {ret}"


# ------------------------------------------------------------------ handles
class CloudClient:
    """A stand-in cloud client (the handle registry knows kinds by class name) whose estimate waits to be let go."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    @property
    def estimator(self) -> SimpleNamespace:
        self.events.append("estimate-start")
        self.entered.set()
        assert self.release.wait(10)
        return SimpleNamespace(up_mbps=1.5, down_mbps=2.5, rtt_ms=30.0)

    available = True

    @property
    def down_for(self) -> float:
        self.events.append("estimate-end")  # the last thing cloud_estimate reads from the client
        return 0.0

    def close(self) -> None:
        self.events.append("close")


def test_closing_a_handle_waits_for_the_call_using_it():
    """close_cloud while cloud_estimate runs on the same handle: the client closes after the call, not under it."""
    from jointdnn_edge.android import _handles

    client = CloudClient()
    handle = _handles.register(client)
    replies: list[str] = []
    user = threading.Thread(target=lambda: replies.append(bridge.cloud_estimate(handle)))
    user.start()
    assert client.entered.wait(10)
    closer = threading.Thread(target=bridge.close_cloud, args=(handle,))
    closer.start()
    closer.join(0.3)
    assert closer.is_alive() and "close" not in client.events  # waiting for the call in flight
    with pytest.raises(ExecutionError, match="no open cloud client"):
        bridge.cloud_estimate(handle)  # a handle being closed takes no new calls
    client.release.set()
    user.join(10)
    closer.join(10)
    assert not user.is_alive() and not closer.is_alive()
    assert client.events == ["estimate-start", "estimate-end", "close"]
    assert json.loads(replies[0])["up_mbps"] == 1.5
    with pytest.raises(ExecutionError, match="no open cloud client"):
        bridge.close_cloud(handle)


def test_a_handle_is_closed_once_when_two_threads_close_it():
    from jointdnn_edge.android import _handles

    client = CloudClient()
    handle = _handles.register(client)
    outcomes: list[str] = []

    def close() -> None:
        try:
            bridge.close_cloud(handle)
            outcomes.append("closed")
        except ExecutionError:
            outcomes.append("no such handle")

    threads = [threading.Thread(target=close) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == ["closed"] + ["no such handle"] * 7
    assert client.events == ["close"]
    with pytest.raises(ExecutionError, match="no open session"):
        bridge.last_trace(_handles.register(client))  # a cloud client's handle is not a session's


# ------------------------------------------------------------------ workstation command line
def test_android_build_lut_command_writes_the_bridges_table(tmp_path, alexnet_path):
    from typer.testing import CliRunner

    from jointdnn_edge.cli import app

    opts = json.dumps({"deadline_ms": 700.0, "up_mbps": [1, 50], "cells": [4, 4, 1], "network": "wifi"})
    cli_out, api_out = tmp_path / "cli.lut", tmp_path / "api.lut"
    r = CliRunner().invoke(app, ["android", "build-lut", str(alexnet_path), str(cli_out), "--options", opts])
    assert r.exit_code == 0, r.output
    assert "4x4x1 cells" in r.output
    bridge.build_lookup_table(str(alexnet_path), str(api_out), opts)
    assert cli_out.read_bytes() == api_out.read_bytes()
    for args, needle, code in [
        ([str(alexnet_path), str(cli_out), "--options", '{"colour": "red"}'], "ConfigError: bad lookup-table", 2),
        ([str(alexnet_path), str(cli_out), "--options", "{cells: 2}"], "ConfigError: options is not valid JSON", 2),
        ([str(alexnet_path), str(cli_out), "--options", '{"network": {"beta": 1}}'], "radio needs", 2),
        ([str(tmp_path / "none.json"), str(cli_out)], "none.json", 2),
        ([str(alexnet_path), str(tmp_path / "no" / "t.lut")], "does not exist", 1),
    ]:
        r = CliRunner().invoke(app, ["android", "build-lut", *args], terminal_width=200)
        assert r.exit_code == code, r.output
        assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
        assert "error:" in r.output and needle in " ".join(r.output.split()), r.output
    assert not (tmp_path / "no").exists()


# ------------------------------------------------------------ without numpy / native
NUMPY_FREE = """
import json, sys
sys.modules['numpy'] = None  # importing numpy now fails, as in an app shipped without it
from jointdnn_edge import android as bridge
args = json.loads(sys.argv[1])
out = {"info": json.loads(bridge.info())}
out["costs"] = json.loads(bridge.load_costs(args["costs"]))
out["plan"] = [json.loads(bridge.decide(*p)) for p in args["requests"]]
bridge.reset()
bridge.load_lookup_table(args["lut"])
out["lut"] = [json.loads(bridge.decide(*p)) for p in args["requests"]]
try:
    bridge.encode_frame("[]", [])
except Exception as e:
    out["codec_error"] = [type(e).__name__, str(e)]
print(json.dumps(out))
"""


def test_plan_only_mode_runs_without_numpy_or_the_native_module(tmp_path, dag_path):
    """The pure-Python planner reads the cost table's JSON itself and agrees with plan()."""
    costs = CostTable.load(dag_path)
    lut = LookupTable.build(costs, energy_budget_mj=1e9, cells=(4, 4, 1), up_mbps=(1, 20), down_mbps=(1, 40))
    lut.save(tmp_path / "dag.lut")
    least = plan(costs, radio_4g(4.0, 9.0), objective="energy").mobile_energy_mj
    requests = [[up, down] for up, down in POINTS] + [[4.0, 9.0, least * 1.2, None, 2.0, "latency"]]
    args = {"costs": str(dag_path), "lut": str(tmp_path / "dag.lut"), "requests": requests}
    env = dict(os.environ, JOINTDNN_EDGE_PURE="1")
    run = subprocess.run(
        [sys.executable, "-c", NUMPY_FREE, json.dumps(args)], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(run.stdout)
    assert out["info"]["numpy"] is False and out["info"]["native"] is False
    assert out["costs"]["numpy"] is False and out["costs"]["n"] == costs.n and out["costs"]["chain"] is False
    for req, got in zip(requests, out["plan"]):
        up, down, battery, deadline, slowdown, objective = (req + [None, None, 1.0, "latency"])[:6]
        want = plan(
            costs,
            radio_4g(up, down),
            objective=objective,
            energy_budget_mj=battery,
            deadline_ms=deadline,
            cloud_slowdown=slowdown,
        )
        same(got, want)
        assert got["solver"] == "python"
    for req, got in zip(requests, out["lut"]):
        up, down = req[:2]
        if len(req) == 2:  # the table's own request (inside or outside its box)
            assert got["source"] == "lut"
            same(got, lut.query(up, down))
        else:  # another request: exact plan on the embedded table, numpy-free
            assert got["source"] == "plan"
            same(got, plan(costs, radio_4g(up, down), energy_budget_mj=least * 1.2, cloud_slowdown=2.0))
    assert out["codec_error"][0] == "CodecError" and "numpy" in out["codec_error"][1]


SAME_DECISIONS = """
import json, sys
from jointdnn_edge import android as bridge
args = json.loads(sys.argv[1])
bridge.load_costs(args["costs"])
plans = [json.loads(bridge.decide(*r)) for r in args["requests"]]
bridge.load_lookup_table(args["lut"])
luts = [json.loads(bridge.decide(*r[:2])) for r in args["requests"]]
print(json.dumps({"native": bridge.native_available(), "plans": plans, "luts": luts}))
"""


@pytest.mark.skipif(not native_available(), reason="compares the native planner with the fallback")
def test_decisions_are_identical_with_and_without_the_native_planner(tmp_path, alexnet_path, dag_path):
    for path in (alexnet_path, dag_path):
        costs = CostTable.load(path)
        LookupTable.build(costs, deadline_ms=1e4, cells=(5, 5, 1)).save(tmp_path / "t.lut")
        least = plan(costs, radio_4g(5.0, 10.0), objective="energy").mobile_energy_mj
        requests = [[u, d] for u, d in POINTS] + [[u, d, least * 1.4, 1e4, 1.5, "energy"] for u, d in POINTS[1:4]]
        args = json.dumps({"costs": str(path), "lut": str(tmp_path / "t.lut"), "requests": requests})
        outs = {}
        for pure in ("0", "1"):
            env = dict(os.environ, JOINTDNN_EDGE_PURE=pure)
            run = subprocess.run(
                [sys.executable, "-c", SAME_DECISIONS, args], capture_output=True, text=True, env=env, check=True
            )
            outs[pure] = json.loads(run.stdout)
        assert outs["0"]["native"] is True and outs["1"]["native"] is False
        for kind in ("plans", "luts"):
            for a, b in zip(outs["0"][kind], outs["1"][kind]):
                assert a["segments"] == b["segments"] and a["source"] == b["source"]
                for key in ("latency_ms", "mobile_energy_mj", "cloud_ms", "bytes_up", "bytes_down"):
                    assert close(a[key], b[key])
                assert a["solver"].replace("native", "python") == b["solver"]


PHONE = """
import json, sys
sys.modules['numpy'] = None  # the phone: no numpy, and JOINTDNN_EDGE_PURE=1 hides the native module
from jointdnn_edge import android as bridge
args = json.loads(sys.argv[1])
out = {"native": bridge.native_available(), "summary": json.loads(bridge.load_lookup_table(args["lut"]))}
out["own"] = [json.loads(bridge.decide(*r)) for r in args["own"]]
out["other"] = [json.loads(bridge.decide(*r)) for r in args["other"]]
bridge.reset()
with open(args["lut"], "rb") as f:
    out["from_bytes"] = json.loads(bridge.load_lookup_table_bytes(f.read()))
print(json.dumps(out))
"""


def test_a_table_built_by_the_cli_on_the_workstation_loads_on_the_phone(tmp_path, alexnet_path, alexnet):
    """`jointdnn-edge lut build` here; the file as it is, in a process without numpy or the native module."""
    out = tmp_path / "alexnet.lut"
    cli = [sys.executable, "-c", "from jointdnn_edge.cli import main; main()"]
    build = ["lut", "build", "-o", str(out), "--costs", str(alexnet_path), "--network", "wifi", "--deadline-ms", "900"]
    build += ["--up-mbps", "0.5", "100", "--down-mbps", "1", "200", "--cloud-slowdown", "1", "3"]
    build += ["--cells", "6", "6", "2"]
    subprocess.run(cli + build, capture_output=True, text=True, check=True)
    wifi = Network.preset("wifi")
    api = LookupTable.build(
        alexnet, network=wifi, deadline_ms=900.0, up_mbps=(0.5, 100), down_mbps=(1, 200), cloud_slowdown=(1, 3),
        cells=(6, 6, 2),
    )  # fmt: skip
    assert out.read_bytes() == api.to_bytes()  # one file format, whoever writes it

    own = [[u, d, None, None, s] for u, d in POINTS for s in (1.0, 2.2)]  # the table's request (in and out of its box)
    least = plan(alexnet, wifi.with_bandwidth(5.0, 10.0), objective="energy").mobile_energy_mj
    other = [[5.0, 10.0, least * 1.5], [5.0, 10.0, None, None, 1.0, "energy"]]  # requests it was not built for
    args = json.dumps({"lut": str(out), "own": own, "other": other})
    env = dict(os.environ, JOINTDNN_EDGE_PURE="1")
    run = subprocess.run([sys.executable, "-c", PHONE, args], capture_output=True, text=True, env=env, check=True)
    phone = json.loads(run.stdout)

    assert phone["native"] is False
    assert phone["summary"] == phone["from_bytes"]
    assert phone["summary"]["constraints"] == {"deadline_ms": 900.0} and phone["summary"]["cells"] == [6, 6, 2]
    radio = {k: float(getattr(wifi, k)) for k in Radio._fields}
    assert phone["summary"]["radio"] == radio  # the file carries the radio it was built for
    for (up, down, _b, _d, slowdown), got in zip(own, phone["own"]):
        assert got["source"] == "lut"
        same(got, api.query(up, down, slowdown))
        exact = plan(alexnet, wifi.with_bandwidth(up, down), deadline_ms=900.0, cloud_slowdown=slowdown)
        assert close(got["latency_ms"], exact.latency_ms)
    net = wifi.with_bandwidth(5.0, 10.0)
    assert [g["source"] for g in phone["other"]] == ["plan", "plan"]
    same(phone["other"][0], plan(alexnet, net, deadline_ms=900.0, energy_budget_mj=least * 1.5))
    same(phone["other"][1], plan(alexnet, net, objective="energy", deadline_ms=900.0))
    assert all(g["solver"] == "python" for g in phone["other"])


# -------------------------------------------------------------------- codec
def tensors_for_java(arrays: dict[str, np.ndarray]) -> tuple[str, list[array.array]]:
    """What the facade sends: JSON metadata and one little-endian buffer per tensor (as Java signed bytes)."""
    meta = json.dumps([{"name": k, "dtype": a.dtype.name, "shape": list(a.shape)} for k, a in arrays.items()])
    return meta, [array.array("b", a.astype(a.dtype.newbyteorder("<")).tobytes()) for a in arrays.values()]


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "relu": np.maximum(rng.standard_normal((1, 8, 12, 12)).astype(np.float32), 0),
        "ids": rng.integers(-(2**40), 2**40, (3, 5)).astype(np.int64),
        "pixels": rng.integers(0, 256, (2, 16, 16, 3)).astype(np.uint8),
        "mask": rng.random((7,)) < 0.5,
        "half": rng.standard_normal((4, 4)).astype(np.float16),
        "scalar": np.array(2.5, dtype=np.float64),
        "empty": np.zeros((0, 3), dtype=np.int32),
    }


def test_encode_frame_packs_tensors_the_codec_decodes_bit_for_bit():
    arrays = sample_arrays()
    meta, blobs = tensors_for_java(arrays)
    for name in ("auto", "raw", "zstd", None):
        frame = bridge.encode_frame(meta, blobs, name)
        assert isinstance(frame, bytes)
        back = codec.decode(frame)
        assert list(back) == list(arrays)
        for k, a in arrays.items():
            assert back[k].dtype == a.dtype and back[k].shape == a.shape and np.array_equal(back[k], a)
    frame = bridge.encode_frame(meta, blobs, "auto", 8)
    heads = {e.name: e for e in codec.read_headers(frame)}
    assert heads["relu"].quant is not None and heads["relu"].quant.bits == 8 and heads["ids"].quant is None
    assert np.array_equal(codec.decode(frame)["relu"], codec.dequantize(codec.quantize(arrays["relu"], 8)))


def test_decode_frame_returns_metadata_and_little_endian_buffers():
    arrays = sample_arrays()
    frame = codec.encode(arrays, codec="auto")
    parts = bridge.decode_frame(array.array("b", frame))
    meta = json.loads(parts[0])
    assert [m["name"] for m in meta] == list(arrays) and len(parts) == 1 + len(arrays)
    for m, buf, a in zip(meta, parts[1:], arrays.values()):
        assert isinstance(buf, bytes)
        assert m["dtype"] == a.dtype.name and m["shape"] == list(a.shape)
        assert buf == a.astype(a.dtype.newbyteorder("<")).tobytes()
    # and back through encode_frame unchanged
    again = codec.decode(bridge.encode_frame(parts[0], parts[1:], "raw"))
    assert all(np.array_equal(again[k], a) for k, a in arrays.items())


def test_frame_info_reads_headers_without_decoding():
    arrays = sample_arrays()
    frame = codec.encode(arrays, codec="auto")
    info = json.loads(bridge.frame_info(frame))
    for got, e in zip(info, codec.read_headers(frame)):
        assert got["name"] == e.name and got["codec"] == e.codec and got["shape"] == list(e.shape)
        assert got["payload_bytes"] == e.payload_bytes and got["raw_bytes"] == e.raw_bytes


def test_codec_errors_are_codec_errors():
    a = np.arange(6, dtype=np.float32)
    meta, blobs = tensors_for_java({"x": a})
    with pytest.raises(CodecError, match="needs 24"):
        bridge.encode_frame(meta, [b"\x00" * 20])
    with pytest.raises(CodecError, match="1 tensors described but 2"):
        bridge.encode_frame(meta, [blobs[0], blobs[0]])
    for dtype in ("float33", "object", "str"):  # only the wire format's dtypes (codec.WIRE_DTYPES) cross the bridge
        with pytest.raises(CodecError, match="unknown dtype"):
            bridge.encode_frame(json.dumps([{"name": "x", "dtype": dtype, "shape": [6]}]), blobs)
    with pytest.raises(CodecError, match="shape"):
        bridge.encode_frame(json.dumps([{"name": "x", "dtype": "float32", "shape": [-6]}]), blobs)
    frame = codec.encode({"x": a})
    with pytest.raises(CodecError):
        bridge.decode_frame(frame[:-3])
    with pytest.raises(CodecError):
        bridge.decode_frame(frame, 8)  # 24 bytes decoded > max_bytes
    err = json.loads(bridge.last_error())
    assert err["type"] == "FrameTooLargeError" and err["hierarchy"][:2] == ["FrameTooLargeError", "CodecError"]
    with pytest.raises(CodecError, match="null"):
        bridge.decode_frame(None)
