"""Generate the built-in example cost table (python/jointdnn_edge/data/example_alexnet.json).

The table lets `jointdnn-edge plan` work on a fresh install before any model
is profiled. Its structure is exact: AlexNet's 21 inference layers (one per
operator, as the JointDNN paper counts them) with their real output sizes and
weight sizes in float32. Its times are NOT measurements: they come from a
simple roofline model, stated here so nobody mistakes them for data:

    time(group) = sum over its layers of max(FLOPs / peak_flops, bytes_moved / memory_bandwidth)
                  + one launch overhead

with a Raspberry-Pi-4-class edge CPU (about 12 GFLOP/s effective fp32,
4 GB/s effective memory bandwidth, 0.05 ms per operator) and a
Tesla-K40-class cloud GPU (about 4 TFLOP/s fp32, 250 GB/s, 0.03 ms per
kernel launch; the paper's server). A group of consecutive layers pays one
launch overhead and does not write its internal activations back to memory
(the fusion effect the paper measures in its Fig. 3). Mobile energy is
time × 6.4 W (a Raspberry Pi 4 under full CPU load draws about 6.4 W,
Raspberry Pi documentation; measure your own device).

Run: python scripts/make_example_costs.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

F32 = 4

# (name, kind, output shape (C, H, W) or (N,), FLOPs, weight count)
LAYERS = [
    ("conv1", "conv", (96, 55, 55), 2 * 96 * 55 * 55 * 11 * 11 * 3, 96 * 3 * 11 * 11 + 96),
    ("relu1", "eltwise", (96, 55, 55), 96 * 55 * 55, 0),
    ("lrn1", "eltwise", (96, 55, 55), 96 * 55 * 55 * 10, 0),
    ("pool1", "pool", (96, 27, 27), 96 * 27 * 27 * 9, 0),
    ("conv2", "conv", (256, 27, 27), 2 * 256 * 27 * 27 * 5 * 5 * 48, 256 * 48 * 5 * 5 + 256),
    ("relu2", "eltwise", (256, 27, 27), 256 * 27 * 27, 0),
    ("lrn2", "eltwise", (256, 27, 27), 256 * 27 * 27 * 10, 0),
    ("pool2", "pool", (256, 13, 13), 256 * 13 * 13 * 9, 0),
    ("conv3", "conv", (384, 13, 13), 2 * 384 * 13 * 13 * 3 * 3 * 256, 384 * 256 * 9 + 384),
    ("relu3", "eltwise", (384, 13, 13), 384 * 13 * 13, 0),
    ("conv4", "conv", (384, 13, 13), 2 * 384 * 13 * 13 * 3 * 3 * 192, 384 * 192 * 9 + 384),
    ("relu4", "eltwise", (384, 13, 13), 384 * 13 * 13, 0),
    ("conv5", "conv", (256, 13, 13), 2 * 256 * 13 * 13 * 3 * 3 * 192, 256 * 192 * 9 + 256),
    ("relu5", "eltwise", (256, 13, 13), 256 * 13 * 13, 0),
    ("pool5", "pool", (256, 6, 6), 256 * 6 * 6 * 9, 0),
    ("fc6", "fc", (4096,), 2 * 9216 * 4096, 9216 * 4096 + 4096),
    ("relu6", "eltwise", (4096,), 4096, 0),
    ("fc7", "fc", (4096,), 2 * 4096 * 4096, 4096 * 4096 + 4096),
    ("relu7", "eltwise", (4096,), 4096, 0),
    ("fc8", "fc", (1000,), 2 * 4096 * 1000, 4096 * 1000 + 1000),
    ("softmax", "eltwise", (1000,), 1000 * 5, 0),
]
INPUT = (3, 227, 227)

PLATFORMS = {
    "mobile": {"flops": 12e9, "bandwidth": 4e9, "launch_ms": 0.05},
    "cloud": {"flops": 4.0e12, "bandwidth": 250e9, "launch_ms": 0.03},
}
MOBILE_POWER_MW = 6400.0


def group_ms(first: int, last: int, platform: dict[str, float]) -> float:
    """Roofline time of layers first..last as one fused group.

    Each layer is bounded by its own compute or memory traffic; inside a
    group a layer neither reads its input from nor writes its output to
    memory (except the group's own input and output), and the group pays a
    single launch overhead.
    """
    sizes = [int(np.prod(INPUT))] + [int(np.prod(layer[2])) for layer in LAYERS]
    total = 0.0
    for k in range(first, last + 1):
        flops, weights = LAYERS[k][3], LAYERS[k][4]
        moved = weights + (sizes[k] if k == first else 0) + (sizes[k + 1] if k == last else 0)
        total += max(flops / platform["flops"], moved * F32 / platform["bandwidth"])
    return 1e3 * total + platform["launch_ms"]


def main() -> None:
    n = len(LAYERS)
    mats = {}
    for name, platform in PLATFORMS.items():
        m = [[None] * (n - i) for i in range(n)]
        for i in range(n):
            for j in range(i, n):
                m[i][j - i] = group_ms(i, j, platform)
        mats[name] = m
    doc = {
        "format": "jointdnn-edge/costtable",
        "version": 1,
        "n": n,
        "phase": "inference",
        "names": [layer[0] for layer in LAYERS],
        "mobile_ms": mats["mobile"],
        "cloud_ms": mats["cloud"],
        "mobile_mj": [[v * MOBILE_POWER_MW / 1e3 for v in row] for row in mats["mobile"]],
        "out_bytes": [float(np.prod(layer[2]) * F32) for layer in LAYERS],
        "input_bytes": float(np.prod(INPUT) * F32),
        "edges": [[i, i + 1] for i in range(n - 1)],
        "outputs": [n - 1],
        "weight_bytes": [float(layer[4] * F32) for layer in LAYERS],
        "cloud_download_bytes": [0.0] * n,
        "codec_ms": [[0.0, 0.0]] * (n + 1),
        "codec_mj": [[0.0, 0.0]] * (n + 1),
        "meta": {
            "model": "alexnet",
            "source": "synthetic example: AlexNet's exact layer and weight sizes (float32); times from a "
            "roofline model of a Raspberry-Pi-4-class edge CPU and a Tesla-K40-class cloud GPU, NOT measured "
            "(see scripts/make_example_costs.py). Profile your own model with `jointdnn-edge profile`.",
            "mobile": PLATFORMS["mobile"],
            "cloud": PLATFORMS["cloud"],
            "mobile_power_mw": MOBILE_POWER_MW,
            "cloud_source": "modelled",
        },
    }
    out = Path(__file__).resolve().parents[1] / "python" / "jointdnn_edge" / "data" / "example_alexnet.json"
    out.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    print(out)


if __name__ == "__main__":
    main()
