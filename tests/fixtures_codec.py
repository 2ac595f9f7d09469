"""Fixtures for the codec tests: the independent reference writer and sample activations."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

VECTORS = Path(__file__).resolve().parent / "vectors"


def load_reference_writer() -> ModuleType:
    """``tests/vectors/generate.py``: a second implementation of the wire format (no numpy, no package code)."""
    spec = importlib.util.spec_from_file_location("codec_reference_writer", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def codec_ref() -> ModuleType:
    """The reference writer module (see :func:`load_reference_writer`)."""
    return load_reference_writer()


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """Directory of the wire-format test vectors."""
    return VECTORS


def post_relu(shape: tuple[int, ...], zero_ratio: float, seed: int = 0, dtype: type = np.float32) -> np.ndarray:
    """A smooth, ReLU-clipped feature map: spatially correlated like real activations, with ~``zero_ratio`` zeros."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if len(shape) >= 2:  # a little spatial smoothing so delta filters and PNG have structure to find
        x = (x + np.roll(x, 1, -1) + np.roll(x, 1, -2)) / 3
    cut = np.quantile(x, zero_ratio) if x.size else 0.0
    return np.maximum(x - cut, 0).astype(dtype)


@pytest.fixture(scope="session")
def activation() -> np.ndarray:
    """A 1x16x24x24 float32 post-ReLU-like tensor with 60% zeros."""
    return post_relu((1, 16, 24, 24), 0.6)
