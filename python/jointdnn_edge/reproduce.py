"""Reproduce the JointDNN paper's inference results on device models of its hardware.

For every zoo benchmark (Table 2), network (Table 3), objective and transfer
variant, :func:`run` builds a cost table from device models
(:mod:`jointdnn_edge.devices`, Jetson TX2 as the mobile and Tesla K40c as the
cloud by default), plans the optimal schedule and the two single-platform
baselines, and writes ``results.json`` (the contract in ``docs/reproduce.md``),
``report.md`` (each claim of the paper beside ours) and PNG figures.

Transfer variants (:func:`variant_table`):

* ``8bit``: the paper's uncompressed baseline (section 4.2): every activation
  is quantized to 8 bits, so a tensor crosses the link as one byte per element;
* ``png``: the paper's compressed variant: 8-bit activations compressed with
  PNG, with the compression ratio and codec time measured on sample
  activations of the model (at a reduced size) and the codec cost added to
  every transfer (:func:`jointdnn_edge.codec.compress_costs`);
* ``ours``: float32 activations with the SDK's lossless ``auto`` codec,
  measured the same way.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import zoo
from .codec.estimate import CodecProfile, compress_costs, layer_samples, profile_codec
from .costs import CostTable
from .devices import backward_cost_table, cost_table, device
from .errors import ConfigError
from .models.graph import ModelGraph, uniform_feeds
from .planner import Schedule, plan
from .planner.training import TrainingSchedule, exact_training_table, plan_training

__all__ = ["NETWORKS", "OBJECTIVES", "PHASES", "VARIANTS", "run", "variant_table", "transfer_8bit"]

VARIANTS = ("8bit", "png", "ours")
NETWORKS = ("3g", "4g", "wifi")
OBJECTIVES = ("latency", "energy")
#: training: exact schedules (``planner.training``: activations moved for the backward pass, backward costs
#: from the device model)
PHASES = ("inference", "training")
_KEY = {"latency": "latency_ms", "energy": "mobile_energy_mj"}
#: bytes per element of the activations the zoo models produce (float32)
_FLOAT_BYTES = 4.0


def transfer_8bit(table: CostTable) -> CostTable:
    """``table`` with every transferred tensor at one byte per element (the paper's 8-bit baseline)."""
    meta = dict(table.meta)
    meta["transfer"] = "8-bit: one byte per element"
    return table.replace(
        out_bytes=np.asarray(table.out_bytes) / _FLOAT_BYTES, input_bytes=table.input_bytes / _FLOAT_BYTES, meta=meta
    )


def codec_profiles(name: str, size: str = "small", seed: int = 0) -> dict[str, CodecProfile]:
    """PNG (8-bit) and lossless ``auto`` codec profiles measured on one input of zoo model ``name`` at ``size``."""
    graph = zoo.load(name, size=size)
    samples = layer_samples(graph, [uniform_feeds(graph, seed)])
    return {
        "png": profile_codec(samples, codec="png", quantize_bits=8, repeats=1),
        "ours": profile_codec(samples, codec="auto", repeats=1),
    }


def scale_profile(profile: CodecProfile, table: CostTable) -> CodecProfile:
    """``profile`` (measured on a smaller model of the same layers) scaled to ``table``'s tensor sizes.

    The compression ratio of each layer is kept; codec times scale with the raw bytes.
    """
    stats = {}
    for k, s in profile.stats.items():
        full = table.input_bytes if k == -1 else float(table.out_bytes[k])
        f = full / s.raw_bytes if s.raw_bytes else 1.0
        stats[k] = replace(
            s, raw_bytes=full, encoded_bytes=full / s.ratio, encode_ms=s.encode_ms * f, decode_ms=s.decode_ms * f
        )
    return replace(profile, stats=stats)


def variant_table(table: CostTable, variant: str, profiles: Mapping[str, CodecProfile] | None = None) -> CostTable:
    """The cost table of ``table`` (float32 transfers) under a transfer variant (see the module docstring).

    ``png`` and ``ours`` need ``profiles[variant]`` (from :func:`codec_profiles`, any model size).
    """
    if variant == "8bit":
        return transfer_8bit(table)
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if profiles is None or variant not in profiles:
        raise ConfigError(f"variant {variant!r} needs a codec profile (codec_profiles())")
    power = float(table.meta.get("devices", {}).get("mobile", {}).get("power_mw", 7500.0))
    return compress_costs(table, scale_profile(profiles[variant], table), mobile_power_mw=power)


# ---------------------------------------------------------------- the runs
def _costs_key(model: str, variant: str, phase: str) -> str:
    """The key of a run's cost table in results.json's ``costs``."""
    return f"{model}/{variant}" if phase == "inference" else f"{model}/{variant}/training"


def _run_record(
    model: str,
    network: str,
    objective: str,
    phase: str,
    variant: str,
    best: Schedule,
    mob: Schedule,
    cld: Schedule,
) -> dict[str, Any]:
    key = _KEY[objective]
    single = min(getattr(mob, key), getattr(cld, key))
    return {
        "model": model,
        "network": network,
        "objective": objective,
        "phase": phase,
        "variant": variant,
        "costs": _costs_key(model, variant, phase),
        "schedule": [[a, b, p] for a, b, p in best.segments],
        "pattern": best.pattern(),
        "latency_ms": best.latency_ms,
        "mobile_energy_mj": best.mobile_energy_mj,
        "cloud_ms": best.cloud_ms,
        "mobile_only": {"latency_ms": mob.latency_ms, "mobile_energy_mj": mob.mobile_energy_mj},
        "cloud_only": {
            "latency_ms": cld.latency_ms,
            "mobile_energy_mj": cld.mobile_energy_mj,
            "cloud_ms": cld.cloud_ms,
        },
        "gain": single / getattr(best, key) if getattr(best, key) > 0 else 1.0,
        "cloud_workload_reduction": 1.0 - best.cloud_ms / cld.cloud_ms if cld.cloud_ms > 0 else 0.0,
    }


def _training_record(
    model: str, network: str, objective: str, variant: str, best: TrainingSchedule, mob: Schedule, cld: Schedule
) -> dict[str, Any]:
    """A training run: the exact step's record plus both chains and the activations moved for the backward pass."""
    r = _run_record(model, network, objective, "training", variant, best.schedule, mob, cld)
    r["forward"] = [list(x) for x in best.forward]
    r["backward"] = [list(x) for x in best.backward]
    r["activation_moves"] = len(best.activation_moves)
    r["activation_move_bytes"] = sum(m.bytes for m in best.activation_moves)
    return r


def variant_backward(backward: CostTable, forward: CostTable) -> CostTable:
    """``backward`` with each gradient sized like the forward tensors it is the gradient of, in ``forward``'s variant.

    Gradients cross the link as the activations do (one byte per element in
    the 8-bit variant), without codec time (the codecs were measured on activations).
    """
    n = forward.n
    sizes = [forward.input_bytes] + [float(b) for b in forward.out_bytes]
    grads = [sum(sizes[t] for t in forward.predecessors(n - 1 - k)) for k in range(n)]
    return backward.replace(out_bytes=grads)


def tables_for(
    name: str,
    *,
    mobile: str = "jetson-tx2",
    cloud: str = "tesla-k40c",
    max_group: int | None = None,
    sample_size: str = "small",
    graph: ModelGraph | None = None,
) -> dict[str, CostTable]:
    """The cost table of every variant for zoo model ``name`` at full size (``graph``: loaded), from device models."""
    base = cost_table(zoo.load(name) if graph is None else graph, mobile=mobile, cloud=cloud, max_group=max_group)
    profiles = codec_profiles(name, sample_size)
    return {v: variant_table(base, v, profiles) for v in VARIANTS}


def run(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    models: Sequence[str] | None = None,
    mobile: str = "jetson-tx2",
    cloud: str = "tesla-k40c",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every benchmark x network x objective x variant, write ``out/results.json``, ``report.md`` and figures.

    ``quick`` measures codec ratios on the tiny models and offers groups of
    at most 8 layers (the full run: small models, every group). Returns the
    results document.
    """
    names = list(models) if models is not None else zoo.names()
    for n in names:
        if n not in zoo.MODELS:
            raise ConfigError(f"unknown zoo model {n!r}; choose from {', '.join(zoo.names())}")
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    costs: dict[str, dict[str, Any]] = {}
    sensitivity: dict[str, dict[str, str]] = {}
    training_sensitivity: dict[str, dict[str, str]] = {}
    paper_chain: dict[str, str] = {}
    sweep_model = "alexnet" if "alexnet" in names else names[0]
    sweeps: dict[str, Any] = {}
    for name in names:
        if progress:
            progress(f"{name}: device model and codec samples")
        graph = zoo.load(name)
        group = 8 if quick else None
        tables = tables_for(
            name, mobile=mobile, cloud=cloud, max_group=group, sample_size="tiny" if quick else "small", graph=graph
        )
        backward = backward_cost_table(graph, mobile=mobile, cloud=cloud, max_group=group)
        if name == sweep_model:
            if progress:
                progress(f"{name}: batch-size and updated-weights sweeps (Figure 10)")
            sweeps = figure10_sweeps(graph, mobile=mobile, cloud=cloud, max_group=group)
        sensitivity[name] = pattern_sensitivity(tables["8bit"])
        training_sensitivity[name] = training_pattern_sensitivity(tables["8bit"], backward)
        for variant, forward in tables.items():
            costs[_costs_key(name, variant, "inference")] = forward.to_dict()
            exact = exact_training_table(forward, variant_backward(backward, forward))
            costs[_costs_key(name, variant, "training")] = exact.to_dict()
            for network in NETWORKS:
                for objective in OBJECTIVES:
                    best = plan(forward, network, objective=objective)
                    mob = plan(forward, network, objective=objective, force="mobile")
                    cld = plan(forward, network, objective=objective, force="cloud")
                    runs.append(_run_record(name, network, objective, "inference", variant, best, mob, cld))
                    step = plan_training(exact, network, objective=objective)
                    mob_t = plan_training(exact, network, objective=objective, force="mobile").schedule
                    cld_t = plan_training(exact, network, objective=objective, force="cloud").schedule
                    runs.append(_training_record(name, network, objective, variant, step, mob_t, cld_t))
            if variant == "8bit":
                paper_chain[name] = plan(forward, "wifi", phase="training").pattern()
        if progress:
            progress(f"{name}: planned")
    setup: dict[str, Any] = {"mobile": mobile, "cloud": cloud, "quick": quick, "models": names, "phases": PHASES}
    doc = {
        "runs": runs,
        "costs": costs,
        "devices": {d.name: d.to_dict() for d in (device(mobile), device(cloud))},
        "setup": setup,
        "sensitivity": sensitivity,
        "training_sensitivity": training_sensitivity,
        "paper_chain_training": paper_chain,
        "sweeps": sweeps,
    }
    with open(outdir / "results.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, allow_nan=False)
    claims = (
        check_claims(runs, paper_chain)
        + sensitivity_claims(sensitivity)
        + training_sensitivity_claims(training_sensitivity)
        + sweep_claims(sweeps)
    )
    figures = draw_figures(runs, tables_costs=costs, outdir=outdir) + draw_figure10(sweeps, outdir)
    (outdir / "report.md").write_text(report_markdown(claims, runs, figures, setup), encoding="utf-8")
    return doc


#: mobile slowdowns (x the device model's times) the Wi-Fi latency patterns are checked under
SLOWDOWNS = (1.0, 1.5, 2.0, 3.0, 4.0)


def slowed_mobile(table: CostTable, factor: float) -> CostTable:
    """``table`` with every mobile time and energy multiplied by ``factor`` (a slower phone, same power)."""
    return table.replace(mobile_ms=table.mobile_ms * factor, mobile_mj=table.mobile_mj * factor)


def pattern_sensitivity(table: CostTable, network: str = "wifi", objective: str = "latency") -> dict[str, str]:
    """The optimal schedule's pattern under each mobile slowdown in :data:`SLOWDOWNS` (keys: the factor)."""
    return {f"{f:g}": plan(slowed_mobile(table, f), network, objective=objective).pattern() for f in SLOWDOWNS}


def sensitivity_claims(sensitivity: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Figure 11's patterns at each mobile slowdown: where the paper's pattern appears."""
    out = []
    for model, want in (("alexnet", "mobile-cloud"), ("chair", "cloud-mobile"), ("pix2pix", "mobile-cloud-mobile")):
        if model not in sensitivity:
            continue
        at = [f for f, p in sensitivity[model].items() if p == want]
        out.append(
            {
                "claim": f"Figure 11 pattern of {model} (Wi-Fi, latency, 8-bit) with the mobile slowed down "
                f"{', '.join(sensitivity[model])}x",
                "paper": want,
                "ours": ", ".join(f"{f}x: {p}" for f, p in sensitivity[model].items()),
                "match": bool(at),
                "cause": f"holds at {', '.join(at)}x" if at else "at no slowdown tried",
            }
        )
    return out


def training_pattern_sensitivity(
    forward: CostTable, backward: CostTable, network: str = "wifi", objective: str = "latency"
) -> dict[str, str]:
    """The exact training step's pattern under each mobile slowdown in :data:`SLOWDOWNS` (keys: the factor)."""
    out = {}
    for f in SLOWDOWNS:
        fwd = slowed_mobile(forward, f)
        exact = exact_training_table(fwd, variant_backward(slowed_mobile(backward, f), fwd))
        out[f"{f:g}"] = plan_training(exact, network, objective=objective).pattern()
    return out


def training_sensitivity_claims(sensitivity: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Figure 11's training pattern (AlexNet M->C->M) with exact schedules at each mobile slowdown."""
    if "alexnet" not in sensitivity:
        return []
    want = "mobile-cloud-mobile"
    at = [f for f, p in sensitivity["alexnet"].items() if p == want]
    return [
        {
            "claim": "Figure 11: AlexNet training (exact schedules), Wi-Fi, latency, 8-bit, the mobile slowed down "
            f"{', '.join(sensitivity['alexnet'])}x",
            "paper": want,
            "ours": ", ".join(f"{f}x: {p}" for f, p in sensitivity["alexnet"].items()),
            "match": bool(at),
            "cause": f"holds at {', '.join(at)}x" if at else "at no slowdown tried",
        }
    ]


#: batch sizes of the Figure 10(b) sweep
BATCHES = (1, 2, 4, 8, 16, 32, 64)


def figure10_sweeps(
    graph: ModelGraph, *, mobile: str = "jetson-tx2", cloud: str = "tesla-k40c", max_group: int | None = None
) -> dict[str, Any]:
    """Figure 10 on ``graph`` (Wi-Fi, latency, 8-bit transfers), from device models.

    ``updated_weights``: one exact training step when only the last k layers
    with weights are trained (k = 1 .. all), against the share of the
    weights they hold. ``batch``: inference at each batch size in :data:`BATCHES`.
    Each point has the optimal, mobile-only and cloud-only latency and the gain.
    """
    forward = transfer_8bit(cost_table(graph, mobile=mobile, cloud=cloud, max_group=max_group))
    wb = np.asarray(forward.weight_bytes)
    weighted = [i for i in range(forward.n) if wb[i] > 0]
    updated = []
    for f0 in reversed(weighted):
        back = backward_cost_table(graph, mobile=mobile, cloud=cloud, max_group=max_group, trainable_from=f0)
        exact = exact_training_table(forward, variant_backward(back, forward), trainable_from=f0)
        step = plan_training(exact, "wifi")
        mob = plan_training(exact, "wifi", force="mobile").latency_ms
        cld = plan_training(exact, "wifi", force="cloud").latency_ms
        updated.append(
            {
                "trainable_from": f0,
                "updated_weights_pct": 100.0 * float(wb[f0:].sum() / wb.sum()),
                "latency_ms": step.latency_ms,
                "mobile_only_ms": mob,
                "cloud_only_ms": cld,
                "gain": min(mob, cld) / step.latency_ms,
                "pattern": step.pattern(),
            }
        )
    batch = []
    for b in BATCHES:
        table = transfer_8bit(cost_table(graph, mobile=mobile, cloud=cloud, max_group=max_group, batch=b))
        best = plan(table, "wifi")
        mob = plan(table, "wifi", force="mobile").latency_ms
        cld = plan(table, "wifi", force="cloud").latency_ms
        batch.append(
            {
                "batch": b,
                "latency_ms": best.latency_ms,
                "mobile_only_ms": mob,
                "cloud_only_ms": cld,
                "gain": min(mob, cld) / best.latency_ms,
                "pattern": best.pattern(),
            }
        )
    return {"model": graph.name, "network": "wifi", "objective": "latency", "updated_weights": updated, "batch": batch}


def sweep_claims(sweeps: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Section 4.2's statements about Figure 10, checked on the sweeps."""
    upd, bat = sweeps["updated_weights"], sweeps["batch"]
    model = sweeps["model"]
    ratio = [p["cloud_only_ms"] / p["mobile_only_ms"] for p in bat]
    grows = all(b >= a * (1 - 1e-9) for a, b in zip(ratio, ratio[1:]))
    tail = [p["latency_ms"] for p in upd if p["updated_weights_pct"] >= 50.0] or [upd[-1]["latency_ms"]]
    cloud_back = [p for p in upd if "cloud" in p["pattern"]]
    flat = max(tail) <= 1.05 * min(tail) if len(tail) > 1 else True
    return [
        {
            "claim": f"Figure 10(b), section 4.2: as the batch grows, mobile-only becomes more preferable ({model}, "
            "Wi-Fi, latency; cloud-only / mobile-only latency)",
            "paper": "increases with the batch size",
            "ours": ", ".join(f"{p['batch']}: {r:.2f}" for p, r in zip(bat, ratio)),
            "match": grows,
            "cause": ""
            if grows
            else "the roofline compute grows linearly once a layer is compute-bound, like the transfers",
        },
        {
            "claim": f"Figure 10(a), section 4.2: training latency becomes constant as the share of updated weights "
            f"grows ({model}, Wi-Fi, latency, exact schedules)",
            "paper": "constant past a point (all back-propagation on the mobile)",
            "ours": ", ".join(f"{p['updated_weights_pct']:.0f}%: {p['latency_ms']:.1f} ms" for p in upd),
            "match": flat,
            "cause": (
                f"backward layers on the cloud in {len(cloud_back)} of {len(upd)} points"
                if cloud_back
                else "every backward layer runs on the mobile, as the paper explains"
            )
            if flat
            else "the training latency keeps growing: each trained layer adds its backward compute on the mobile",
        },
    ]


# ---------------------------------------------------------------- claims
def _find(runs: Iterable[Mapping[str, Any]], **kw: Any) -> list[Mapping[str, Any]]:
    return [r for r in runs if all(r[k] == v for k, v in kw.items())]


def _pattern_claim(runs: list[dict[str, Any]], model: str, want: str, label: str) -> dict[str, Any] | None:
    hit = _find(runs, model=model, network="wifi", objective="latency", variant="8bit")
    if not hit:
        return None
    got = hit[0]["pattern"]
    return {
        "claim": label,
        "paper": want,
        "ours": got,
        "match": got == want,
        "cause": "" if got == want else _pattern_cause(hit[0]),
    }


def _runs_text(segments: Sequence[Sequence[Any]]) -> str:
    """``"mobile 0..14, cloud 15..20"``: the runs of same-platform groups (forward layer numbers)."""
    runs: list[list[Any]] = []
    for a, b, p in segments:
        if runs and runs[-1][2] == p:  # backward segments come in descending layer order
            runs[-1] = [min(runs[-1][0], a), max(runs[-1][1], b), p]
        else:
            runs.append([a, b, p])
    return ", ".join(f"{p} {a}..{b}" for a, b, p in runs)


def _pattern_cause(r: Mapping[str, Any]) -> str:
    mob, cld = r["mobile_only"]["latency_ms"], r["cloud_only"]["latency_ms"]
    return (
        f"on the device models the mobile-only run takes {mob:.1f} ms and the cloud-only run {cld:.1f} ms; "
        "the modelled Jetson TX2 (published peak figures, batch 1; within 15 % of a published batch-1 "
        "measurement, docs/devices.md) is faster than the paper's measured TX2, so moving tensors over the "
        "link rarely pays"
    )


def check_claims(all_runs: list[dict[str, Any]], paper_chain: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every paper claim the runs can speak to, with ours beside it and a match flag.

    ``paper_chain``: per model, the training pattern on the paper's own graph
    (``CostTable.training``, backward = 2x forward, no activation moves), for comparison.
    """
    claims: list[dict[str, Any]] = []
    runs = [dict(r) for r in _find(all_runs, phase="inference")]
    want = "mobile-cloud-mobile"
    if paper_chain and "alexnet" in paper_chain:
        got = paper_chain["alexnet"]
        claims.append(
            {
                "claim": "Figure 11: AlexNet training on the paper's 2N-layer chain (backward = 2x forward, "
                "activations not moved), Wi-Fi, latency",
                "paper": want,
                "ours": got,
                "match": got == want,
                "cause": "" if got == want else "see the exact schedule below",
            }
        )
    train = _find(all_runs, phase="training", model="alexnet", network="wifi", objective="latency", variant="8bit")
    if train:
        t = train[0]
        got = t["pattern"]
        claims.append(
            {
                "claim": "Figure 11: AlexNet training (exact schedules: activations a backward layer needs moved and "
                "paid for, backward costs from the device model), Wi-Fi, latency",
                "paper": want,
                "ours": f"{got} (forward {_runs_text(t['forward'])}; backward {_runs_text(t['backward'])}; "
                f"{t['activation_moves']} activation moves)",
                "match": got == want,
                "cause": ""
                if got == want
                else _pattern_cause(t) + "; the paper's chain splits only because it moves no activations for the "
                "backward pass and prices the backward pass at 2x forward (the device model prices weight "
                "gradients and updates: more)",
            }
        )
    for model, want, label in [
        ("alexnet", "mobile-cloud", "Figure 11: AlexNet (discriminative), Wi-Fi, latency"),
        ("chair", "cloud-mobile", "Figure 11: Chair (generative), Wi-Fi, latency"),
        ("pix2pix", "mobile-cloud-mobile", "Figure 11: Pix2Pix (autoencoder), Wi-Fi, latency"),
    ]:
        c = _pattern_claim(runs, model, want, label)
        if c:
            claims.append(c)
    alex = _find(runs, model="alexnet", variant="8bit")
    if alex:
        lines = []
        ok = True
        for r in alex:
            k = _KEY[r["objective"]]
            better = r["mobile_only"][k] < r["cloud_only"][k]
            ok &= better
            lines.append(f"{r['network']}/{r['objective']}: {r['mobile_only'][k]:.1f} vs {r['cloud_only'][k]:.1f}")
        claims.append(
            {
                "claim": "Figure 12: AlexNet mobile-only beats cloud-only on 3G, 4G and Wi-Fi (latency and energy)",
                "paper": "mobile-only better on all networks",
                "ours": "; ".join(lines),
                "match": ok,
                "cause": "" if ok else "the cloud-only transfer of the 8-bit input is cheaper than mobile compute",
            }
        )
        share = []
        share_cloud_ms = float(_find(alex, network="wifi")[0]["cloud_only"]["cloud_ms"])
        for net, paper in zip(NETWORKS, (99, 93, 81)):
            r = _find(alex, network=net, objective="latency")[0]
            total = r["cloud_only"]["latency_ms"]
            comm = 100.0 * (1.0 - r["cloud_only"]["cloud_ms"] / total)
            share.append((net, paper, comm))
        claims.append(
            {
                "claim": "Section 4.1: share of AlexNet's cloud-only time spent communicating (3G / 4G / Wi-Fi)",
                "paper": "99 / 93 / 81 %",
                "ours": " / ".join(f"{c:.0f}" for _, _, c in share) + " %",
                "match": all(abs(c - p) <= max(10.0, p * 0.1) for _, p, c in share),
                "cause": f"the modelled K40c computes AlexNet in {share_cloud_ms:.1f} ms; the paper's shares "
                "imply 11-16 ms (framework overheads at batch 1), so communication is a larger share here",
            }
        )
    base = _find(runs, variant="8bit")
    if base:
        for objective, paper_vals in (("latency", (84, 49, 12)), ("energy", (73, 49, 51))):
            ours = [
                100.0
                * statistics.fmean(r["cloud_workload_reduction"] for r in _find(base, network=n, objective=objective))
                for n in NETWORKS
            ]
            direction = ours[0] >= ours[1] >= ours[2] if objective == "latency" else None
            within = all(_within2(o, p) for o, p in zip(ours, paper_vals))
            claims.append(
                {
                    "claim": f"Table 4: mean cloud workload reduction, {objective} (3G / 4G / Wi-Fi)",
                    "paper": " / ".join(str(p) for p in paper_vals) + " %",
                    "ours": " / ".join(f"{o:.0f}" for o in ours) + " %",
                    "match": bool(direction) if direction is not None else within,
                    "cause": "direction (falls from 3G to Wi-Fi) is the claim checked for latency; values differ "
                    "because most of our schedules run wholly on the mobile (100 % reduction), see the "
                    "patterns above"
                    if objective == "latency"
                    else ("" if within else "values depend on how often the mobile-only schedule wins; see above"),
                }
            )
        for objective, paper_pct in (("latency", 66), ("energy", 86)):
            best = max(r["gain"] for r in _find(base, objective=objective))
            pct = 100.0 * (1.0 - 1.0 / best)
            claims.append(
                {
                    "claim": f"Figures 8-9: best {objective} improvement without compression over the best single "
                    "platform, inference",
                    "paper": f"{paper_pct} %",
                    "ours": f"{pct:.0f} % (gain {best:.2f}x)",
                    "match": _within2(pct, paper_pct),
                    "cause": "" if _within2(pct, paper_pct) else "few schedules split on the device models",
                }
            )
    png = _find(runs, variant="png")
    if png:
        for objective, paper_x in (("latency", 18), ("energy", 32)):
            best = max(r["gain"] for r in _find(png, objective=objective))
            k = _KEY[objective]
            vs_cloud = max(r["cloud_only"][k] / r[k] for r in _find(png, objective=objective) if r[k] > 0)
            claims.append(
                {
                    "claim": f"Abstract: best {objective} reduction with compression (PNG) vs the status quo",
                    "paper": f"{paper_x}x",
                    "ours": f"{best:.2f}x vs the better single platform ({vs_cloud:.0f}x vs cloud-only)",
                    "match": _within2(best, paper_x),
                    "cause": ""
                    if _within2(best, paper_x)
                    else "the paper's baseline is the worse platform in some "
                    "settings; ours is the better single platform, and the modelled TX2 is fast",
                }
            )
        ratios = []
        for r in png:
            b = _find(base, model=r["model"], network=r["network"], objective=r["objective"])[0]
            k = _KEY[r["objective"]]
            ratios.append(b[k] / r[k] if r[k] > 0 else 1.0)
        mean = statistics.fmean(ratios)
        claims.append(
            {
                "claim": "Section 4.2: extra improvement from PNG compression, average (energy 4.9x, latency 4.6x)",
                "paper": "4.6-4.9x",
                "ours": f"{mean:.2f}x",
                "match": _within2(mean, 4.75),
                "cause": ""
                if _within2(mean, 4.75)
                else "compression only helps schedules that transfer; most of ours run on the mobile alone",
            }
        )
    return claims


def _within2(ours: float, paper: float) -> bool:
    return paper > 0 and ours > 0 and 0.5 <= ours / paper <= 2.0


# ---------------------------------------------------------------- output
def report_markdown(
    claims: list[dict[str, Any]], runs: list[dict[str, Any]], figures: list[str], setup: Mapping[str, Any]
) -> str:
    """The report: each claim beside ours, then the schedules of the paper's baseline and the figures."""
    lines = [
        "# JointDNN paper reproduction (device models)",
        "",
        f"Mobile: `{setup['mobile']}`, cloud: `{setup['cloud']}` (see docs/devices.md); inference and training "
        "(exact schedules: the activations a backward layer needs are moved and paid for, backward costs from the "
        "device model; docs/reproduce.md); "
        f"{'quick run' if setup.get('quick') else 'full run'}; models: {', '.join(setup['models'])}.",
        "",
        "| claim | paper | ours | match | cause of the difference |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        mark = "yes" if c["match"] else "**no**"
        lines.append(f"| {c['claim']} | {c['paper']} | {c['ours']} | {mark} | {c['cause']} |")
    lines += [
        "",
        "## Schedules (8-bit transfers)",
        "",
        "| model | phase | network | objective | pattern | gain | cloud workload reduction |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in _find(runs, variant="8bit"):
        lines.append(
            f"| {r['model']} | {r['phase']} | {r['network']} | {r['objective']} | {r['pattern']} | {r['gain']:.2f}x | "
            f"{100 * r['cloud_workload_reduction']:.0f} % |"
        )
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def draw_figures(runs: list[dict[str, Any]], *, tables_costs: Mapping[str, Any], outdir: Path) -> list[str]:
    """Gains per benchmark, Figure 11's schedules and Table 4 as PNGs in ``outdir``; returns the file names."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is an optional extra
        return []
    training = _find(runs, phase="training")
    runs = [dict(r) for r in _find(runs, phase="inference")]
    models = list(dict.fromkeys(r["model"] for r in runs))
    files = []
    # gains per benchmark (Figures 8 and 9)
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.5), sharey="row")
    width = 0.8 / len(VARIANTS)
    for row, objective in enumerate(OBJECTIVES):
        for col, network in enumerate(NETWORKS):
            ax = axes[row][col]
            for v, variant in enumerate(VARIANTS):
                ys = [
                    _find(runs, model=m, network=network, objective=objective, variant=variant)[0]["gain"]
                    for m in models
                ]
                ax.bar(np.arange(len(models)) + v * width, ys, width, label=variant)
            ax.set_yscale("log")
            ax.axhline(1.0, color="k", lw=0.5)
            ax.set_title(f"{network}, {objective}", fontsize=9)
            ax.set_xticks(np.arange(len(models)) + width)
            ax.set_xticklabels(models, rotation=60, fontsize=7)
    axes[0][0].set_ylabel("gain over best single platform")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    files.append("gains.png")
    fig.savefig(outdir / files[-1], dpi=72)
    plt.close(fig)
    # schedules as Figure 11 draws them: one bar per benchmark, layers coloured by platform
    colours = {"mobile": "#3b7dd8", "cloud": "#e8833a"}
    bars = [(m, _find(runs, model=m, network="wifi", objective="latency", variant="8bit")[0]) for m in models]
    bars += [
        (f"{m} (training)", r)
        for m in models
        for r in _find(training, model=m, network="wifi", objective="latency", variant="8bit")
    ]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(bars) + 1))
    for y, (_, r) in enumerate(bars):
        n = r["schedule"][-1][1] + 1
        for a, b, p in r["schedule"]:
            ax.barh(y, (b - a + 1) / n, left=a / n, color=colours[p], edgecolor="white", linewidth=0.3)
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels([label for label, _ in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("layers (fraction of the model), Wi-Fi, latency, 8-bit; blue = mobile, orange = cloud")
    fig.tight_layout()
    files.append("schedules.png")
    fig.savefig(outdir / files[-1], dpi=72)
    plt.close(fig)
    # Table 4 as a chart
    base = _find(runs, variant="8bit")
    fig, ax = plt.subplots(figsize=(6, 3))
    paper = {"latency": (84, 49, 12), "energy": (73, 49, 51)}
    for k, objective in enumerate(OBJECTIVES):
        ours = [
            100 * statistics.fmean(r["cloud_workload_reduction"] for r in _find(base, network=n, objective=objective))
            for n in NETWORKS
        ]
        x = np.arange(3) + k * 0.4
        ax.bar(x, ours, 0.18, label=f"ours, {objective}")
        ax.bar(x + 0.18, paper[objective], 0.18, label=f"paper, {objective}", alpha=0.5)
    ax.set_xticks(np.arange(3) + 0.3)
    ax.set_xticklabels(NETWORKS)
    ax.set_ylabel("cloud workload reduction (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    files.append("table4.png")
    fig.savefig(outdir / files[-1], dpi=72)
    plt.close(fig)
    return files


def draw_figure10(sweeps: Mapping[str, Any], outdir: Path) -> list[str]:
    """Figure 10 as a PNG: (a) training latency vs updated weights, (b) inference latency vs batch size."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is an optional extra
        return []
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(10, 3.5))
    upd, bat = sweeps["updated_weights"], sweeps["batch"]
    x = [p["updated_weights_pct"] for p in upd]
    for key, label in (
        ("latency_ms", "JointDNN (exact)"),
        ("mobile_only_ms", "mobile-only"),
        ("cloud_only_ms", "cloud-only"),
    ):
        ax_a.plot(x, [p[key] for p in upd], marker="o", label=label)
    ax_a.set_xlabel("updated weights (%)")
    ax_a.set_ylabel("one training step (ms)")
    ax_a.set_title(f"(a) {sweeps['model']} training, Wi-Fi", fontsize=9)
    ax_a.legend(fontsize=7)
    b = [p["batch"] for p in bat]
    for key, label in (("latency_ms", "JointDNN"), ("mobile_only_ms", "mobile-only"), ("cloud_only_ms", "cloud-only")):
        ax_b.plot(b, [p[key] for p in bat], marker="o", label=label)
    ax_b.set_xscale("log", base=2)
    ax_b.set_yscale("log")
    ax_b.set_xlabel("batch size")
    ax_b.set_ylabel("inference latency (ms)")
    ax_b.set_title(f"(b) {sweeps['model']} inference, Wi-Fi", fontsize=9)
    ax_b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(outdir / "figure10.png", dpi=72)
    plt.close(fig)
    return ["figure10.png"]


def results_section(report: str, figure_dir: str) -> str:
    """The "Paper reproduction" section of benches/RESULTS.md from a report (figure links under ``figure_dir``)."""
    body = report.split("\n", 1)[1]
    body = body.replace("](", f"]({figure_dir}/").replace("## ", "### ")
    return (
        "## Paper reproduction\n\nMade by `jointdnn-edge reproduce --out DIR --results-md benches/RESULTS.md`.\n" + body
    )


def replace_section(path: str | os.PathLike[str], title: str, body: str) -> None:
    """Replace the section headed ``title`` (a ``## `` line, up to the next one) of a markdown file with ``body``,
    or append ``body`` when there is no such section; the rest of the file is left alone. The benchmarks write
    their sections of ``benches/RESULTS.md`` with it too."""
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else ""
    start = text.find(title + "\n")
    if start == -1:
        text = text.rstrip() + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(title))
        text = text[:start] + body.rstrip("\n") + "\n" + ("" if end == -1 else text[end:])
    p.write_text(text.strip("\n") + "\n", encoding="utf-8")
