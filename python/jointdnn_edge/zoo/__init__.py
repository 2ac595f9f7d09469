"""The JointDNN paper's eight benchmark DNNs (Table 2), built with seeded random weights.

``build(name)`` gives a model as ONNX bytes (or ``.tflite`` bytes with
``format="tflite"``); ``load(name)`` gives it as a :class:`ModelGraph`;
``spec(name)`` gives the format-neutral IR (:mod:`jointdnn_edge.zoo.spec`)
both are written from. The weights are random (He-normal, seeded), so the
models compute nothing useful, but their shapes, operators, data sizes and
costs are those of the real networks, which is what partitioning depends on.

Layer counts (one layer per operator, ``load_model(..., merge_trivial=False)``)
------------------------------------------------------------------------------
=============  =====  =====  ====================================================
model          paper  ours   deviation
=============  =====  =====  ====================================================
alexnet        21     21     none (conv/relu/lrn/pool, fc/relu ×2, fc, softmax)
overfeat       14     19     the paper's 14 cannot be reached with every ReLU as a
                             layer (OverFeat fast has 5 conv + 3 pool + 3 fc +
                             softmax = 12 non-activation layers and 7 ReLUs);
                             ``merge_trivial=True`` gives 12
deepspeech     10     13     3 × (fc, clipped relu), bidirectional RNN, fc,
                             clipped relu, fc, softmax = 11, plus two reshapes
                             between the 2-D fc layout and the RNN's (T, N, I)
vgg16          37     37     none
resnet         70     70     ResNet-18 with batch norm as separate layers,
                             flatten before the fc, softmax at the end
nin            29     29     none (dropout absent at inference)
chair          10     12     fc/lrelu ×2, reshape, 4 deconvs with 3 lrelus; the
                             original's uconv (unpool + conv) stages are
                             transposed convolutions and its second (mask)
                             stream is left out
pix2pix        32     39     the 32 conv/deconv/activation layers plus the 7
                             U-Net concatenations the paper does not count;
                             batch norm folded into the (de)convolutions
=============  =====  =====  ====================================================

Scale knobs
-----------
Full-size models are large (VGG16 has 138 M parameters, 553 MB of float32).
``width`` scales every hidden channel/unit count, ``resolution`` the input
size; the layer structure and counts never change. ``size="tiny"`` and
``size="small"`` select presets (tests use ``tiny``). Fully connected layers
on a 4-D input keep two unit spatial dimensions (``(N, units, 1, 1)``) in the
ONNX form, because they are written as a convolution covering the whole input
(one node, as in Caffe and OverFeat); classifier outputs are therefore
``(N, 1000, 1, 1)`` except ResNet's ``(N, 1000)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ModelError
from .architectures import ARCHITECTURES
from .spec import ModelSpec, OpSpec, SpecBuilder, TensorSpec

if TYPE_CHECKING:
    from ..models.graph import ModelGraph

__all__ = [
    "MODELS",
    "SIZES",
    "ModelSpec",
    "OpSpec",
    "SpecBuilder",
    "TensorSpec",
    "ZooModel",
    "build",
    "load",
    "names",
    "spec",
    "write",
]

#: Preset scale knobs: ``size`` name -> per-model ``{"width": ..., "resolution": ...}``.
SIZES = ("full", "small", "tiny")


@dataclass(frozen=True)
class ZooModel:
    """Catalogue entry of one zoo architecture."""

    name: str
    title: str
    #: "discriminative", "generative" or "autoencoder" (the paper's classes)
    kind: str
    #: layer count in the paper's Table 2
    paper_layers: int
    #: our layer count (one layer per operator)
    layers: int
    #: what ``resolution`` means and its default
    resolution_meaning: str
    default_resolution: int
    reference: str
    deviation: str
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)


MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in [
        ZooModel(
            "alexnet",
            "AlexNet",
            "discriminative",
            21,
            21,
            "image side",
            227,
            "Krizhevsky, Sutskever, Hinton, NIPS 2012",
            "none; single tower (no two-GPU grouping), dropout absent at inference",
            {"small": {"width": 0.25, "resolution": 131}, "tiny": {"width": 1 / 16, "resolution": 67}},
        ),
        ZooModel(
            "overfeat",
            "OverFeat (fast)",
            "discriminative",
            14,
            19,
            "image side",
            231,
            "Sermanet et al., ICLR 2014, Table 1",
            "19 with every ReLU a layer; 12 with merge_trivial=True; 14 is not reachable",
            {"small": {"width": 0.25, "resolution": 135}, "tiny": {"width": 1 / 16, "resolution": 71}},
        ),
        ZooModel(
            "deepspeech",
            "Deep Speech",
            "discriminative",
            10,
            13,
            "audio frames (10 ms each)",
            100,
            "Hannun et al., arXiv 1412.5567 (2014)",
            "two reshapes around the recurrent op, and the softmax, on top of the 10 weight/activation layers",
            {"small": {"width": 0.25, "resolution": 50}, "tiny": {"width": 1 / 32, "resolution": 8}},
        ),
        ZooModel(
            "resnet",
            "ResNet-18",
            "discriminative",
            70,
            70,
            "image side",
            224,
            "He, Zhang, Ren, Sun, CVPR 2016",
            "none (ResNet-18 with batch-norm layers, flatten and softmax)",
            {"small": {"width": 0.25, "resolution": 112}, "tiny": {"width": 1 / 8, "resolution": 32}},
        ),
        ZooModel(
            "vgg16",
            "VGG16",
            "discriminative",
            37,
            37,
            "image side",
            224,
            "Simonyan, Zisserman, ICLR 2015 (configuration D)",
            "none",
            {"small": {"width": 0.25, "resolution": 112}, "tiny": {"width": 1 / 16, "resolution": 32}},
        ),
        ZooModel(
            "nin",
            "Network in Network",
            "discriminative",
            29,
            29,
            "image side",
            224,
            "Lin, Chen, Yan, ICLR 2014 (ImageNet model)",
            "none; dropout absent at inference",
            {"small": {"width": 0.25, "resolution": 112}, "tiny": {"width": 1 / 16, "resolution": 63}},
        ),
        ZooModel(
            "chair",
            "Chair generator",
            "generative",
            10,
            12,
            "output image side",
            128,
            "Dosovitskiy, Springenberg, Brox, CVPR 2015",
            "fc/lrelu x2 + reshape + 4 deconvs with 3 lrelus; uconv stages as transposed convs; no mask stream",
            {"small": {"width": 0.25, "resolution": 64}, "tiny": {"width": 1 / 16, "resolution": 32}},
        ),
        ZooModel(
            "pix2pix",
            "Pix2Pix U-Net generator",
            "autoencoder",
            32,
            39,
            "image side (multiple of 256)",
            256,
            "Isola, Zhu, Zhou, Efros, CVPR 2017",
            "7 skip concatenations counted as layers; batch norm folded into the (de)convolutions",
            {"small": {"width": 0.25, "resolution": 256}, "tiny": {"width": 1 / 16, "resolution": 256}},
        ),
    ]
}


def names() -> list[str]:
    """Zoo model names, in the order of the paper's Table 2."""
    return list(MODELS)


def _entry(name: str) -> ZooModel:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ConfigError(f"unknown zoo model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[key]


def spec(
    name: str,
    *,
    size: str | None = None,
    width: float | None = None,
    resolution: int | None = None,
    batch: int = 1,
    seed: int = 0,
    weights: bool = True,
) -> ModelSpec:
    """The format-neutral spec of zoo model ``name``.

    ``size`` picks a preset (``"full"``, ``"small"``, ``"tiny"``); explicit
    ``width``/``resolution`` override it. ``weights=False`` gives a shape-only
    spec (zero-memory placeholder weights), enough to count parameters.
    Raises :class:`ConfigError` for an unknown name or size and for a knob the
    architecture cannot take, :class:`ModelError` when the knobs make a model
    that cannot be built (an input too small for its layers).
    """
    entry = _entry(name)
    if size is not None and size not in SIZES:
        raise ConfigError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    knobs: dict[str, Any] = {"width": 1.0, "resolution": entry.default_resolution}
    if size is not None and size != "full":
        knobs.update(entry.presets[size])
    if width is not None:
        knobs["width"] = float(width)
    if resolution is not None:
        knobs["resolution"] = int(resolution)
    if not knobs["width"] > 0:
        raise ConfigError(f"width must be positive, got {knobs['width']}")
    try:
        s = ARCHITECTURES[entry.name](batch=int(batch), seed=int(seed), weights=weights, **knobs)
    except ConfigError as e:  # a knob this architecture cannot take
        raise ConfigError(f"zoo model {entry.name!r}: {e}") from None
    except ValueError as e:  # the knobs make a model that cannot be built (e.g. an input too small)
        raise ModelError(f"zoo model {entry.name!r}: {e}") from None
    s.info.update(
        {
            "title": entry.title,
            "kind": entry.kind,
            "paper_layers": entry.paper_layers,
            "reference": entry.reference,
            "deviation": entry.deviation,
            "width": knobs["width"],
            "resolution": knobs["resolution"],
            "batch": int(batch),
            "size": size or ("full" if width is None and resolution is None else "custom"),
        }
    )
    return s


def build(
    name: str,
    format: str = "onnx",
    *,
    size: str | None = None,
    width: float | None = None,
    resolution: int | None = None,
    batch: int = 1,
    seed: int = 0,
) -> bytes:
    """Zoo model ``name`` serialized as ``"onnx"`` or ``"tflite"`` (see :func:`spec` for the knobs)."""
    s = spec(name, size=size, width=width, resolution=resolution, batch=batch, seed=seed)
    return write(s, format)


def write(s: ModelSpec, format: str = "onnx") -> bytes:
    """Serialize any spec as ``"onnx"`` or ``"tflite"``."""
    fmt = format.lower()
    if fmt == "onnx":
        from .onnx_writer import write as write_onnx

        return write_onnx(s)
    if fmt == "tflite":
        # the TFLite writer lives in its own module and is imported only when asked for
        from .tflite_writer import write as write_tflite

        return write_tflite(s)
    raise ConfigError(f"unknown format {format!r}; choose 'onnx' or 'tflite'")


def load(
    name: str,
    format: str = "onnx",
    *,
    size: str | None = None,
    width: float | None = None,
    resolution: int | None = None,
    batch: int = 1,
    seed: int = 0,
    merge_trivial: bool = False,
) -> ModelGraph:
    """Zoo model ``name`` built and loaded as a :class:`ModelGraph`."""
    from ..models import load_model

    data = build(name, format, size=size, width=width, resolution=resolution, batch=batch, seed=seed)
    return load_model(data, merge_trivial=merge_trivial, name=_entry(name).name)
