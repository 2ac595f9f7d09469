"""Fixtures and helpers for the ONNX model, zoo and profiler tests.

Real photographs come from scikit-image's bundled samples (offline); the real
trained ONNX models are the PP-OCR networks that tests/fixtures/fetch.py
extracts from the ``rapidocr-onnxruntime`` wheel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from jointdnn_edge.models.graph import ModelGraph

#: ImageNet statistics, which PP-OCR's detector normalizes with
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def photo_nchw(name: str, height: int, width: int, *, normalize: str = "imagenet") -> np.ndarray:
    """A scikit-image sample photo resized to ``height×width`` as a ``(1, 3, H, W)`` float32 array.

    ``normalize``: ``"imagenet"`` (mean/std), ``"pm1"`` (to [-1, 1], PP-OCR's
    classifier and recognizer) or ``"unit"`` ([0, 1]).
    """
    import skimage.data
    from PIL import Image

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = np.asarray(Image.fromarray(img[..., :3]).resize((width, height), Image.BILINEAR), dtype=np.float32) / 255.0
    if normalize == "imagenet":
        img = (img - IMAGENET_MEAN) / IMAGENET_STD
    elif normalize == "pm1":
        img = (img - 0.5) / 0.5
    elif normalize != "unit":
        raise ValueError(normalize)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None].astype(np.float32))


def run_schedule(
    executor: Any, graph: ModelGraph, bounds: Sequence[int], feeds: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Run ``graph`` as consecutive slices ``[bounds[k], bounds[k+1])`` and return every tensor seen.

    Each slice gets only the tensors it declares as inputs (from ``slice_io``),
    so a missing live tensor makes the run fail instead of silently reading a
    stale value.
    """
    env: dict[str, np.ndarray] = dict(feeds)
    for a, b in zip(bounds[:-1], bounds[1:]):
        ins, outs = graph.slice_io(a, b - 1)
        result = executor.run(graph, a, b - 1, {name: env[name] for name in ins})
        assert list(result) == outs
        env.update(result)
    return env


def random_bounds(n: int, rng: np.random.Generator, cuts: int) -> list[int]:
    """``[0, c1, ..., ck, n]`` with ``min(cuts, n - 1)`` distinct random cut points."""
    k = min(cuts, n - 1)
    inner = sorted(int(c) for c in rng.choice(np.arange(1, n), size=k, replace=False)) if k else []
    return [0, *inner, n]


def assert_outputs_match(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray], *, exact: bool) -> None:
    """Outputs equal bit for bit (``exact``) or within the documented 1e-5 relative tolerance.

    The tolerance is relative to the output's largest magnitude, so values
    near zero are not held to a relative bound they cannot meet.
    """
    for name, w in want.items():
        g = got[name]
        assert g.shape == w.shape and g.dtype == w.dtype, name
        if exact:
            assert np.array_equal(g, w), f"{name}: max |diff| {np.abs(g.astype(np.float64) - w).max()}"
        else:
            scale = float(np.abs(w).max()) or 1.0
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


@pytest.fixture(scope="session")
def rapidocr_dir(fixtures_dir: Path) -> Path:
    """Directory of the PP-OCR ONNX models (det, cls, rec)."""
    d = fixtures_dir / "rapidocr"
    assert (d / "ch_PP-OCRv4_det_infer.onnx").exists(), "run python tests/fixtures/fetch.py"
    return d


@pytest.fixture(scope="session")
def zoo_graph() -> Callable[..., ModelGraph]:
    """``zoo_graph(name, merge_trivial=False, **knobs)``: a tiny zoo model loaded as an ONNX graph (cached)."""
    from jointdnn_edge import zoo

    cache: dict[Any, ModelGraph] = {}

    def get(name: str, merge_trivial: bool = False, **knobs: Any) -> ModelGraph:
        knobs.setdefault("size", "tiny")
        key = (name, merge_trivial, tuple(sorted(knobs.items())))
        if key not in cache:
            cache[key] = zoo.load(name, merge_trivial=merge_trivial, **knobs)
        return cache[key]

    return get
