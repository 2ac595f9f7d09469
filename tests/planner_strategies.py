"""Hypothesis strategies for random cost tables and networks (shared by the planner tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from jointdnn_edge import CostTable, Network


def random_costs(
    rng: np.random.Generator,
    n: int,
    *,
    dag: bool,
    max_group: int | None = None,
    extras: bool = True,
) -> CostTable:
    """A random table with compute and transfer costs of comparable size, so optima vary with the link.

    Groups are a bit cheaper than the sum of their layers (fusion), some are
    not offered, DAGs get skip connections and extra model outputs, and with
    ``extras`` some tables carry weight downloads and codec costs.
    """
    mobile = rng.uniform(1.0, 120.0, n)
    cloud = mobile / rng.uniform(2.0, 30.0, n)
    mg = max_group if max_group is not None else int(rng.integers(1, n + 1))
    mm = np.full((n, n), np.inf)
    cm = np.full((n, n), np.inf)
    for i in range(n):
        for j in range(i, n):
            if j - i + 1 > mg and j != i:
                continue
            fuse_m = 1.0 if i == j else rng.uniform(0.7, 1.0)
            fuse_c = 1.0 if i == j else rng.uniform(0.6, 1.0)
            mm[i, j] = mobile[i : j + 1].sum() * fuse_m
            cm[i, j] = cloud[i : j + 1].sum() * fuse_c
    mj = np.where(np.isfinite(mm), mm * rng.uniform(3.0, 9.0, (n, n)), np.inf)
    out_bytes = np.round(rng.uniform(1e3, 4e5, n))
    edges = None
    outputs = None
    if dag:
        e = set()
        for v in range(n):
            for _ in range(int(rng.integers(1, 4))):
                e.add((int(rng.integers(0, v + 1)) - 1, v))
            if v > 0 and rng.random() < 0.6:
                e.add((v - 1, v))
        edges = sorted(e)
        has_succ = {u for u, _ in edges}
        outputs = [i for i in range(n) if i not in has_succ or rng.random() < 0.1]
    kw: dict = {}
    if extras and rng.random() < 0.3:
        kw["cloud_download_bytes"] = np.where(rng.random(n) < 0.5, np.round(rng.uniform(0, 2e5, n)), 0.0)
    if extras and rng.random() < 0.3:
        kw["codec_ms"] = rng.uniform(0, 2, (n + 1, 2))
        kw["codec_mj"] = rng.uniform(0, 5, (n + 1, 2))
    return CostTable(
        mm, cm, out_bytes, float(np.round(rng.uniform(1e4, 6e5))), mobile_mj=mj, edges=edges, outputs=outputs, **kw
    )


@st.composite
def cost_tables(
    draw: st.DrawFn, max_n: int = 8, dag: bool | None = None, extras: bool = True, min_n: int = 1
) -> CostTable:
    """Random chains and DAGs with ``min_n`` to ``max_n`` layers."""
    n = draw(st.integers(min_n, max_n))
    is_dag = draw(st.booleans()) if dag is None else dag
    seed = draw(st.integers(0, 2**32 - 1))
    return random_costs(np.random.default_rng(seed), n, dag=is_dag, extras=extras)


@st.composite
def networks(draw: st.DrawFn) -> Network:
    """Random links around the paper's 3G..Wi-Fi range, with and without a round trip and a burst."""
    return Network(
        draw(st.floats(0.5, 30.0)),
        draw(st.floats(1.0, 60.0)),
        alpha_up=draw(st.floats(200.0, 900.0)),
        alpha_down=draw(st.floats(50.0, 150.0)),
        beta=draw(st.floats(100.0, 1300.0)),
        rtt_ms=draw(st.sampled_from([0.0, 0.0, 5.0, 40.0])),
        burst_up_bytes=draw(st.sampled_from([0.0, 0.0, 9.4e3, 2e5])),
        burst_down_bytes=draw(st.sampled_from([0.0, 0.0, 4.5e3, 2e5])),
    )
