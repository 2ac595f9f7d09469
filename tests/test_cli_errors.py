"""Bad input on the command line and at the API: one clear `error:` line and a non-zero exit, never a traceback.

Every command runs through the real Typer application; where a check must come
before long work (profiling, building a lookup table, the demo), the test also
checks that the work did not start.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from jointdnn_edge import CostTable, JointDNNError, Network, load_model
from jointdnn_edge.cli import app
from jointdnn_edge.cli.plan import example_costs
from jointdnn_edge.errors import ConfigError, CostTableError, ModelError
from jointdnn_edge.planner import LookupTable, plan

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args), terminal_width=200)


def assert_clean_error(r: Result, *needles: str, code: int | None = None) -> None:
    """A non-zero exit through typer (no escaped Python exception) whose output names what was wrong."""
    assert r.exit_code != 0, r.output
    if code is not None:
        assert r.exit_code == code, r.output
    assert isinstance(r.exception, SystemExit), f"escaped {r.exception!r}"
    assert "Traceback" not in r.output
    flat = " ".join(r.output.split())  # rich wraps long lines at the terminal's width
    for needle in needles:
        assert needle in flat, r.output


# --- files that cannot be read or written --------------------------------------------------------


def test_plan_with_a_missing_cost_table_names_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    r = run("plan", "--costs", str(missing))
    assert_clean_error(r, "nope.json", "No such file or directory", code=2)


def test_plan_with_a_binary_file_as_cost_table(tmp_path):
    # a realistic slip: the lookup table (or the model) passed where the cost table goes
    lut = tmp_path / "t.lut"
    LookupTable.build(example_costs("alexnet"), network="4g", cells=(2, 2, 1)).save(lut)
    r = run("plan", "--costs", str(lut))
    assert_clean_error(r, "t.lut", "not a cost table", code=2)
    with pytest.raises(CostTableError, match="not a cost table"):
        CostTable.load(lut)


def test_cost_table_errors_name_the_file(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CostTableError, match=r"other\.json: not a cost table"):
        CostTable.load(other)
    with pytest.raises(CostTableError, match="JSON object"):
        CostTable.from_dict(None)  # type: ignore[arg-type]


def test_lut_build_into_a_missing_folder_fails_before_building(tmp_path):
    out = tmp_path / "no" / "t.lut"
    r = run("lut", "build", "-o", str(out), "--cells", "2", "2", "1")
    assert_clean_error(r, "--output", str(tmp_path / "no"), code=1)
    assert "lookup table" not in r.output  # no progress bar: nothing was built
    assert not out.parent.exists()


def test_zoo_export_to_a_directory_or_a_missing_folder(tmp_path):
    r = run("zoo", "export", "alexnet", "--size", "tiny", "-o", str(tmp_path))
    assert_clean_error(r, "is a directory", code=1)
    r = run("zoo", "export", "alexnet", "--size", "tiny", "-o", str(tmp_path / "no" / "a.onnx"))
    assert_clean_error(r, "does not exist", code=1)
    assert list(tmp_path.iterdir()) == []


def test_profile_checks_its_output_before_profiling(tmp_path):
    r = run("profile", "zoo:alexnet", "--size", "tiny", "--no-progress", "-o", str(tmp_path / "no" / "c.json"))
    assert_clean_error(r, "--output", "does not exist", code=1)
    assert "profiling" not in r.output


def test_plan_plot_format_is_checked_before_planning(tmp_path):
    out = tmp_path / "s.txt"
    r = run("plan", "--plot", str(out))
    assert_clean_error(r, "--plot", ".png", code=1)
    assert "JointDNN" not in r.output and not out.exists()
    r = run("plan", "--plot", str(tmp_path / "no" / "s.png"))
    assert_clean_error(r, "does not exist", code=1)


# --- numbers -------------------------------------------------------------------------------------


def test_plan_bandwidth_override_of_zero_is_rejected_not_ignored():
    for option in ("--up-mbps", "--down-mbps"):
        r = run("plan", "--network", "4g", option, "0")
        assert_clean_error(r, option.strip("-").replace("-", "_"), "positive", code=2)


def test_plan_bandwidth_override_matches_the_library():
    costs = example_costs("alexnet")
    net = Network.preset("3g").with_bandwidth(Network.preset("3g").up_mbps, 50.0)
    r = run("plan", "--network", "3g", "--down-mbps", "50", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["network"]["down_mbps"] == 50.0 and doc["network"]["up_mbps"] == net.up_mbps
    assert doc["schedules"]["JointDNN"]["latency_ms"] == pytest.approx(plan(costs, net).latency_ms, rel=1e-12)


def test_network_accepts_numpy_scalars():
    # bandwidths measured with numpy arrive as numpy scalars
    costs = example_costs("alexnet")
    ref = Network(8.0, 20.0, 438.39, 51.97, 1288.04)
    net = Network(np.float32(8.0), np.int64(20), 438.39, 51.97, np.float64(1288.04))
    assert net == ref and type(net.up_mbps) is float and type(net.down_mbps) is float
    assert json.loads(json.dumps(net.to_dict())) == ref.to_dict()
    assert plan(costs, net).segments == plan(costs, ref).segments
    with pytest.raises(ConfigError, match="up_mbps"):
        Network(True, 20.0, 1.0, 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="preset"):
        Network.preset(None)  # type: ignore[arg-type]


# --- models ----------------------------------------------------------------------------------------


def test_a_corrupt_tflite_file_is_called_a_tflite_file(tmp_path):
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"x\n")
    with pytest.raises(ModelError, match=r"m\.tflite: not a TFLite model"):
        load_model(bad)
    r = run("profile", str(bad), "--no-progress", "-o", str(tmp_path / "c.json"))
    assert_clean_error(r, "m.tflite", "not a TFLite model", code=1)


# --- demo --------------------------------------------------------------------------------------------


def test_demo_rejects_bad_arguments_before_building_anything(tmp_path):
    for args, needle in [
        (["--networks", "5g"], "unknown network preset"),
        (["--networks", ","], "at least one network"),
        (["--objective", "speed"], "objective"),
        (["--json", str(tmp_path / "no" / "d.json")], "does not exist"),
    ]:
        r = run("demo", "--size", "tiny", "--runs", "1", *args)
        assert_clean_error(r, needle, code=1)
        assert "built zoo model" not in r.output, args


def test_run_demo_raises_config_errors():
    from jointdnn_edge.demo import run_demo

    with pytest.raises(ConfigError):
        run_demo("alexnet", size="tiny", presets=[], progress=False)
    with pytest.raises(JointDNNError, match="unknown network preset"):
        run_demo("alexnet", size="tiny", presets=["4g", "lte"], progress=False)


# --- serve (every case fails before a socket is opened) ---------------------------------------------


def test_serve_rejects_bad_options_before_starting():
    r = run("serve", "zoo:alexnet", "--size", "tiny", "--port", "70000")
    assert_clean_error(r, "--port", code=2)
    r = run("serve", "zoo:alexnet", "--size", "tiny", "--log-level", "loud")
    assert_clean_error(r, "--log-level", "loud", code=2)
    r = run("serve", "zoo:alexnet", "--size", "tiny", "--ssl-keyfile", "no-key.pem", "--ssl-certfile", "no-cert.pem")
    assert_clean_error(r, "no-key.pem", code=2)


def test_serve_names_a_tls_pair_that_does_not_load(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    from jointdnn_edge.cli.serve import _check_tls

    _check_tls(str(key), str(cert))  # the right pair loads
    r = run("serve", "zoo:alexnet", "--size", "tiny", "--ssl-keyfile", str(cert), "--ssl-certfile", str(key))
    assert_clean_error(r, "TLS", code=2)


# --- help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["lut", "build"], ["lut", "query"]])
def test_every_option_has_help_text(command):
    import typer.main

    cmd = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    missing = [p.name for p in cmd.params if p.param_type_name == "option" and not getattr(p, "help", None)]
    assert missing == []


def test_unreadable_lookup_table_is_reported_without_python_decoration(tmp_path):
    r = run("lut", "query", str(tmp_path / "none.lut"), "--up-mbps", "1", "--down-mbps", "1")
    assert_clean_error(r, "none.lut", "No such file or directory", code=2)
    assert "[Errno" not in r.output
