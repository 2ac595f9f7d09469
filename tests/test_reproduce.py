"""The paper reproduction: results.json's contract, schedules re-evaluated and optimal, the claims that hold."""

from __future__ import annotations

import json

import pytest

import jointdnn_edge as jd
from jointdnn_edge import devices, reproduce, zoo
from jointdnn_edge.costs import CostTable
from jointdnn_edge.errors import ConfigError
from jointdnn_edge.planner import Schedule

MODELS = ["alexnet", "chair", "pix2pix"]
KEY = {"latency": "latency_ms", "energy": "mobile_energy_mj"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    reproduce.run(out, quick=True, models=MODELS)
    with open(out / "results.json", encoding="utf-8") as f:
        return out, json.load(f)


def test_contract(results) -> None:
    out, doc = results
    assert set(doc) >= {"runs", "costs", "devices"}
    assert len(doc["runs"]) == len(MODELS) * 3 * 2 * 2 * 3
    for r in doc["runs"]:
        assert {"model", "network", "objective", "phase", "variant", "schedule", "latency_ms", "mobile_energy_mj",
                "mobile_only", "cloud_only", "gain", "cloud_workload_reduction"} <= set(r)  # fmt: skip
        assert r["phase"] in ("inference", "training") and r["variant"] in reproduce.VARIANTS
        assert r["costs"] in doc["costs"]
        assert all(p in ("mobile", "cloud") for _, _, p in r["schedule"])
        assert set(r["mobile_only"]) >= {"latency_ms", "mobile_energy_mj"}
        assert set(r["cloud_only"]) >= {"latency_ms", "mobile_energy_mj"}
        k = KEY[r["objective"]]
        assert r["gain"] == pytest.approx(min(r["mobile_only"][k], r["cloud_only"][k]) / r[k])
        assert r["gain"] >= 1 - 1e-9
    assert {"jetson-tx2", "tesla-k40c"} <= set(doc["devices"])
    for f in ("report.md", "gains.png", "schedules.png", "table4.png", "figure10.png"):
        assert (out / f).stat().st_size > 0


def test_schedules_reevaluate_and_are_optimal(results) -> None:
    _, doc = results
    tables = {k: CostTable.from_dict(v) for k, v in doc["costs"].items()}
    for r in doc["runs"]:
        table = tables[r["costs"]]
        assert table.phase == r["phase"]
        s = Schedule([tuple(x) for x in r["schedule"]], latency_ms=0, mobile_energy_mj=0, cloud_ms=0, bytes_up=0,
                     bytes_down=0, transfers=0, switches=0, objective=r["objective"])  # fmt: skip
        again = s.evaluate(table, jd.Network.preset(r["network"]))
        assert again.latency_ms == pytest.approx(r["latency_ms"], rel=1e-9)
        assert again.mobile_energy_mj == pytest.approx(r["mobile_energy_mj"], rel=1e-9)
        # optimal: the reference planner (inference) or the HiGHS ILP on the exact training table (training, whose
        # schedules the position DP or the ILP drew) finds nothing better on the written table
        solver = "python" if r["phase"] == "inference" else "ilp"
        ref = jd.plan(table, r["network"], objective=r["objective"], phase=r["phase"], solver=solver)
        k = KEY[r["objective"]]
        assert r[k] == pytest.approx(getattr(ref, k), rel=1e-7)


def test_optimal_by_brute_force_on_a_small_device_table() -> None:
    table = reproduce.transfer_8bit(devices.cost_table(zoo.load("chair", size="tiny"), max_group=1))
    for network in reproduce.NETWORKS:
        for objective in reproduce.OBJECTIVES:
            best = jd.plan(table, network, objective=objective)
            brute = jd.plan(table, network, objective=objective, solver="brute")
            k = KEY[objective]
            assert getattr(best, k) == pytest.approx(getattr(brute, k), rel=1e-9)


def test_paper_claims_that_hold(results) -> None:
    """Figure 11 (AlexNet M->C), Figure 12 and Table 4's direction on device-model tables of the zoo models."""
    _, doc = results
    runs = [r for r in doc["runs"] if r["phase"] == "inference"]
    alex = [r for r in runs if r["model"] == "alexnet" and r["variant"] == "8bit"]
    wifi = next(r for r in alex if r["network"] == "wifi" and r["objective"] == "latency")
    assert wifi["pattern"] == "mobile-cloud"
    for r in alex:  # Figure 12
        k = KEY[r["objective"]]
        assert r["mobile_only"][k] < r["cloud_only"][k]
    red = [
        sum(
            r["cloud_workload_reduction"]
            for r in runs
            if r["variant"] == "8bit" and r["objective"] == "latency" and r["network"] == n
        )
        for n in reproduce.NETWORKS
    ]
    assert red[0] >= red[1] >= red[2]
    claims = {c["claim"]: c for c in reproduce.check_claims(doc["runs"])}
    assert claims["Figure 11: AlexNet (discriminative), Wi-Fi, latency"]["match"]
    # training: the paper's 2N-layer chain gives AlexNet mobile -> cloud -> mobile (Figure 11) only because it
    # moves no activations; the exact schedule runs on the mobile, and is M -> C -> M once the mobile is 1.5x slower
    assert doc["paper_chain_training"]["alexnet"] == "mobile-cloud-mobile"
    train = next(
        r for r in doc["runs"]
        if r["model"] == "alexnet" and r["phase"] == "training" and r["network"] == "wifi"
        and r["objective"] == "latency" and r["variant"] == "8bit"
    )  # fmt: skip
    assert train["pattern"] == "mobile" and train["activation_moves"] == 0
    assert train["forward"][0][0] == 0 and train["backward"][0][1] == 20
    assert doc["training_sensitivity"]["alexnet"]["1.5"] == "mobile-cloud-mobile"
    # Figure 10(b): cloud-only / mobile-only grows with the batch size
    ratio = [p["cloud_only_ms"] / p["mobile_only_ms"] for p in doc["sweeps"]["batch"]]
    assert ratio == sorted(ratio)


def test_paper_claims_that_do_not_hold_are_reported(results) -> None:
    """Chair and Pix2Pix run wholly on the modelled TX2 on Wi-Fi; the report says so and why."""
    out, doc = results
    by = {(r["model"], r["network"], r["objective"], r["variant"]): r for r in doc["runs"] if r["phase"] == "inference"}
    assert by[("chair", "wifi", "latency", "8bit")]["pattern"] == "mobile"
    assert by[("pix2pix", "wifi", "latency", "8bit")]["pattern"] == "mobile"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| Figure 11: Chair (generative), Wi-Fi, latency | cloud-mobile | mobile | **no** |" in report


def test_variants() -> None:
    base = devices.cost_table(zoo.load("alexnet", size="tiny"))
    eight = reproduce.variant_table(base, "8bit")
    assert list(eight.out_bytes) == pytest.approx([b / 4 for b in base.out_bytes])
    assert eight.input_bytes == base.input_bytes / 4
    with pytest.raises(ConfigError):
        reproduce.variant_table(base, "png")
    with pytest.raises(ConfigError):
        reproduce.variant_table(base, "jpeg")
    profiles = reproduce.codec_profiles("alexnet", "tiny")
    png = reproduce.variant_table(base, "png", profiles)
    assert (png.codec_ms[1:] > 0).all()
    assert sum(png.out_bytes) < sum(base.out_bytes) / 2  # 8-bit, then PNG (frame headers weigh on tiny tensors)


def test_results_md_section(tmp_path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\n## Codec\n\nx\n\n## Paper reproduction\n\nold\n\n## Planner\n\ny\n")
    reproduce.replace_section(md, "## Paper reproduction", "## Paper reproduction\n\nnew\n")
    text = md.read_text()
    assert "old" not in text and "new" in text and "## Planner\n\ny" in text and "## Codec\n\nx" in text


def test_figure11_patterns_with_a_twice_slower_mobile(results) -> None:
    """With the mobile at half its roofline speed, all three of Figure 11's inference patterns appear."""
    _, doc = results
    sens = doc["sensitivity"]
    assert sens["alexnet"]["2"] == "mobile-cloud"
    assert sens["chair"]["2"] == "cloud-mobile"
    assert sens["pix2pix"]["2"] == "mobile-cloud-mobile"
    assert sens["chair"]["1"] == sens["pix2pix"]["1"] == "mobile"


def test_cli_quick(tmp_path) -> None:
    from typer.testing import CliRunner

    from jointdnn_edge.cli import app

    result = CliRunner().invoke(app, ["reproduce", "--quick", "--model", "chair", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert {r["model"] for r in doc["runs"]} == {"chair"}
    bad = CliRunner().invoke(app, ["reproduce", "--quick", "--model", "nope", "--out", str(tmp_path / "s")])
    assert bad.exit_code == 1 and "unknown zoo model" in bad.output
