"""The eight benchmark architectures of the JointDNN paper (Table 2), as :mod:`.spec` IR.

Each builder takes the same knobs: ``width`` multiplies every hidden channel
and unit count (never the input channels or the number of classes, pixels or
characters), ``resolution`` sets the input size (image side; output side for
Chair; number of audio frames for Deep Speech), ``batch`` the batch size,
``seed`` the weight seed and ``weights=False`` builds a shape-only spec. The
layer structure, and so the layer count, never depends on the knobs. See
``zoo/__init__.py`` (and ``docs/zoo.md``) for the layer counts and every
deviation from the paper.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from .spec import ModelSpec, SpecBuilder

__all__ = ["ARCHITECTURES"]


def _w(channels: int, width: float) -> int:
    """Scaled channel count, at least 1."""
    return max(1, round(channels * width))


def _image_input(b: SpecBuilder, batch: int, resolution: int, channels: int = 3) -> str:
    return b.input("input", (batch, channels, resolution, resolution))


def _fc_classifier(b: SpecBuilder, x: str, hidden: list[int]) -> ModelSpec:
    """Finish ``b`` with the paper-era classifier head and return the spec.

    ``fc6``/``relu6``, ``fc7``/``relu7`` with ``hidden`` units, then ``fc8`` to
    the 1000 ImageNet classes and softmax ``prob`` (AlexNet, OverFeat, VGG16).
    """
    for i, units in enumerate(hidden, start=6):
        x = b.fc(x, units, name=f"fc{i}")
        x = b.relu(x, name=f"relu{i}")
    x = b.fc(x, 1000, name=f"fc{6 + len(hidden)}")
    x = b.softmax(x, name="prob")
    b.output(x)
    return b.build()


def alexnet(
    *, width: float = 1.0, resolution: int = 227, batch: int = 1, seed: int = 0, weights: bool = True
) -> ModelSpec:
    """AlexNet (Krizhevsky et al. 2012), Caffe's single-tower layout: 21 layers.

    conv/relu/lrn/pool ×2, conv/relu ×2, conv/relu/pool, fc/relu ×2, fc, softmax;
    channels 96-256-384-384-256, fc 4096-4096-1000, 227×227 input. Dropout is
    absent at inference; the two-GPU grouping of the original is not kept.
    """
    b = SpecBuilder("alexnet", seed=seed, weights=weights)
    x = _image_input(b, batch, resolution)
    for i, (ch, k, s, pad, norm, pool) in enumerate(
        [
            (96, 11, 4, "valid", True, True),
            (256, 5, 1, "same", True, True),
            (384, 3, 1, "same", False, False),
            (384, 3, 1, "same", False, False),
            (256, 3, 1, "same", False, True),
        ],
        start=1,
    ):
        x = b.conv(x, _w(ch, width), k, s, pad, name=f"conv{i}")
        x = b.relu(x, name=f"relu{i}")
        if norm:
            # Krizhevsky et al.: k = 2, n = 5, alpha = 1e-4, beta = 0.75
            x = b.lrn(x, size=5, alpha=1e-4, beta=0.75, bias=2.0, name=f"norm{i}")
        if pool:
            x = b.maxpool(x, 3, 2, "valid", name=f"pool{i}")
    return _fc_classifier(b, x, [_w(4096, width), _w(4096, width)])


def overfeat(
    *, width: float = 1.0, resolution: int = 231, batch: int = 1, seed: int = 0, weights: bool = True
) -> ModelSpec:
    """OverFeat "fast" (Sermanet et al. 2014, Table 1): 19 operator layers.

    conv 96 (11×11/4) - pool 2 - conv 256 (5×5) - pool 2 - conv 512 - conv 1024 -
    conv 1024 (3×3, zero-padded) - pool 2 - fc 3072 - fc 4096 - fc 1000, ReLU after
    every conv and hidden fc, softmax; 231×231 input.
    """
    b = SpecBuilder("overfeat", seed=seed, weights=weights)
    x = _image_input(b, batch, resolution)
    for i, (ch, k, s, pad, pool) in enumerate(
        [
            (96, 11, 4, "valid", True),
            (256, 5, 1, "valid", True),
            (512, 3, 1, "same", False),
            (1024, 3, 1, "same", False),
            (1024, 3, 1, "same", True),
        ],
        start=1,
    ):
        x = b.conv(x, _w(ch, width), k, s, pad, name=f"conv{i}")
        x = b.relu(x, name=f"relu{i}")
        if pool:
            x = b.maxpool(x, 2, 2, "valid", name=f"pool{i}")
    return _fc_classifier(b, x, [_w(3072, width), _w(4096, width)])


def vgg16(
    *, width: float = 1.0, resolution: int = 224, batch: int = 1, seed: int = 0, weights: bool = True
) -> ModelSpec:
    """VGG16 (Simonyan & Zisserman 2015, configuration D): 37 layers.

    13 conv 3×3 + 13 relu + 5 max-pool + fc/relu 4096 ×2 + fc 1000 + softmax;
    224×224 input.
    """
    b = SpecBuilder("vgg16", seed=seed, weights=weights)
    x = _image_input(b, batch, resolution)
    for blk, (ch, reps) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for r in range(1, reps + 1):
            x = b.conv(x, _w(ch, width), 3, 1, "same", name=f"conv{blk}_{r}")
            x = b.relu(x, name=f"relu{blk}_{r}")
        x = b.maxpool(x, 2, 2, "valid", name=f"pool{blk}")
    return _fc_classifier(b, x, [_w(4096, width), _w(4096, width)])


def resnet(
    *, width: float = 1.0, resolution: int = 224, batch: int = 1, seed: int = 0, weights: bool = True
) -> ModelSpec:
    """ResNet-18 (He et al. 2016) with batch norm: 70 layers.

    stem conv 7×7/2 - bn - relu - max-pool 3×3/2; 8 basic blocks (64, 64, 128,
    128, 256, 256, 512, 512 channels; the first block of stages 2-4 downsamples
    with a 1×1/2 conv + bn on the shortcut); each block conv-bn-relu-conv-bn
    (+ shortcut) - add - relu; global average pool - flatten - fc 1000 - softmax.
    """
    b = SpecBuilder("resnet", seed=seed, weights=weights)
    x = _image_input(b, batch, resolution)
    x = b.conv(x, _w(64, width), 7, 2, "same", bias=False, name="conv1")
    x = b.batchnorm(x, name="bn1")
    x = b.relu(x, name="relu1")
    x = b.maxpool(x, 3, 2, "same", name="pool1")
    cin = _w(64, width)
    for stage, ch in enumerate([64, 128, 256, 512], start=1):
        c = _w(ch, width)
        for blk in range(2):
            p = f"layer{stage}.{blk}"
            stride = 2 if (stage > 1 and blk == 0) else 1
            y = b.conv(x, c, 3, stride, "same", bias=False, name=f"{p}.conv1")
            y = b.batchnorm(y, name=f"{p}.bn1")
            y = b.relu(y, name=f"{p}.relu1")
            y = b.conv(y, c, 3, 1, "same", bias=False, name=f"{p}.conv2")
            # a smaller scale on the residual branch's last bn keeps activations in range
            # across the 8 blocks with random weights (the "zero-init residual" idea)
            y = b.batchnorm(y, gamma=0.5, name=f"{p}.bn2")
            shortcut = x
            if stride != 1 or cin != c:
                shortcut = b.conv(x, c, 1, stride, "same", bias=False, name=f"{p}.downsample.conv")
                shortcut = b.batchnorm(shortcut, name=f"{p}.downsample.bn")
            x = b.add(y, shortcut, name=f"{p}.add")
            x = b.relu(x, name=f"{p}.relu2")
            cin = c
    x = b.global_avgpool(x, name="avgpool")
    x = b.flatten(x, name="flatten")
    x = b.fc(x, 1000, name="fc")
    x = b.softmax(x, name="prob")
    b.output(x)
    return b.build()


def nin(*, width: float = 1.0, resolution: int = 224, batch: int = 1, seed: int = 0, weights: bool = True) -> ModelSpec:
    """Network in Network (Lin et al. 2014), the ImageNet model: 29 layers.

    Four mlpconv blocks (a conv then two 1×1 "cccp" convs, each with relu):
    96 (11×11/4), 256 (5×5), 384 (3×3), 1024 (3×3) channels, the last block
    ending in 1000 class maps; max-pool 3×3/2 after the first three blocks,
    global average pooling, softmax; 224×224 input.
    """
    b = SpecBuilder("nin", seed=seed, weights=weights)
    x = _image_input(b, batch, resolution)
    blocks = [
        (96, 11, 4, "valid", "same"),
        (256, 5, 1, "same", "valid"),
        (384, 3, 1, "same", "valid"),
        (1024, 3, 1, "same", None),
    ]
    cccp = 0
    for i, (ch, k, s, pad, pool) in enumerate(blocks, start=1):
        x = b.conv(x, _w(ch, width), k, s, pad, name=f"conv{i}")
        x = b.relu(x, name=f"relu{i}")
        for j in range(2):
            cccp += 1
            last = i == len(blocks) and j == 1
            x = b.conv(x, 1000 if last else _w(ch, width), 1, 1, "valid", name=f"cccp{cccp}")
            x = b.relu(x, name=f"relu_cccp{cccp}")
        if pool is not None:
            # Caffe's NiN pools with ceil rounding: 54 -> 27 is TF "same", 27 -> 13 and 13 -> 6 "valid"
            x = b.maxpool(x, 3, 2, pool, name=f"pool{i}")
    x = b.global_avgpool(x, name="pool4")
    x = b.softmax(x, name="prob")
    b.output(x)
    return b.build()


def deepspeech(
    *, width: float = 1.0, resolution: int = 100, batch: int = 1, seed: int = 0, weights: bool = True
) -> ModelSpec:
    """Deep Speech (Hannun et al. 2014): 13 layers on one utterance of ``resolution`` frames.

    Input: ``(T, 494)``, each frame's 26 MFCCs with a context of 9 frames on
    each side (Mozilla DeepSpeech's reading of the paper's C = 9). Three fc
    layers of 2048 units with clipped ReLU ``min(max(z, 0), 20)``; a
    bidirectional simple recurrent layer (2048 per direction, same clipped
    ReLU); an fc layer on the sum of both directions (written as an fc on their
    concatenation with the weight block repeated: ``W [h_f; h_b] = W' (h_f + h_b)``)
    with clipped ReLU; an fc to 29 characters (a-z, space, apostrophe, CTC
    blank) and softmax. Two reshapes move between the 2-D frames-by-features
    layout of the fc layers and the ``(T, N, I)`` layout of the recurrent op.
    """
    if batch != 1:
        raise ConfigError("deepspeech models one utterance at a time: batch must be 1")
    b = SpecBuilder("deepspeech", seed=seed, weights=weights)
    t = resolution
    h = _w(2048, width)
    x = b.input("features", (t, 494))
    for i in range(1, 4):
        x = b.fc(x, h, name=f"fc{i}")
        x = b.clip(x, 0.0, 20.0, name=f"clip{i}")
    x = b.reshape(x, (t, 1, h), name="to_sequence")
    x = b.rnn(x, h, direction="bidirectional", activation="relu", clip=20.0, name="birnn")
    x = b.reshape(x, (t, 2 * h), name="from_sequence")
    x = b.fc(x, h, name="fc5", gain=1.0)
    fc5 = b.ops[-1]
    if weights:
        # the paper's h5 = g(W5 (h_f + h_b) + b5): the same block for both directions
        fc5.weights["weight"][:, h:] = fc5.weights["weight"][:, :h]
    x = b.clip(x, 0.0, 20.0, name="clip5")
    x = b.fc(x, 29, name="fc6")
    x = b.softmax(x, name="prob")
    b.output(x)
    return b.build()


def chair(
    *, width: float = 1.0, resolution: int = 128, batch: int = 1, seed: int = 0, weights: bool = True
) -> ModelSpec:
    """Chair generator (Dosovitskiy et al. 2015): 12 layers, code vector to a 128×128 RGB image.

    Input: an 813-vector (809-way one-hot chair style and 4 view parameters:
    sin/cos of azimuth and elevation). fc 1024 - fc 16384 (= 256×8×8), leaky
    ReLU 0.2 after each, reshape to 256×8×8, then four 4×4/2 transposed
    convolutions (256, 92, 48, 3 channels) with leaky ReLU between them,
    doubling the side to 128. ``resolution`` is the output side (a multiple of 16).
    """
    if resolution % 16:
        raise ConfigError("chair: resolution (the output side) must be a multiple of 16")
    b = SpecBuilder("chair", seed=seed, weights=weights)
    s0 = resolution // 16
    c0 = _w(256, width)
    x = b.input("code", (batch, 809 + 4))
    x = b.fc(x, _w(1024, width), name="fc1")
    x = b.leaky_relu(x, 0.2, name="lrelu1")
    x = b.fc(x, c0 * s0 * s0, name="fc2")
    x = b.leaky_relu(x, 0.2, name="lrelu2")
    x = b.reshape(x, (batch, c0, s0, s0), name="reshape")
    chans = [c0, _w(92, width), _w(48, width), 3]
    for i, ch in enumerate(chans, start=1):
        x = b.deconv(x, ch, 4, 2, "same", name=f"deconv{i}")
        if i < len(chans):
            x = b.leaky_relu(x, 0.2, name=f"lrelu_deconv{i}")
    b.output(x)
    return b.build()


def pix2pix(
    *, width: float = 1.0, resolution: int = 256, batch: int = 1, seed: int = 0, weights: bool = True
) -> ModelSpec:
    """Pix2Pix U-Net-256 generator (Isola et al. 2017): 39 layers.

    Encoder C64-C128-C256-C512-C512-C512-C512-C512 (4×4/2 convs, leaky ReLU
    0.2 before each but the first); decoder of 4×4/2 transposed convs
    512-512-512-512-256-128-64-3, each preceded by ReLU, each but the last
    followed by a concat with the mirrored encoder output (the U-Net skips);
    tanh. Batch norm is folded into the (de)convolutions, as an inference
    export would; dropout is absent at inference. ``resolution`` must be a
    multiple of 256 (eight halvings down to 1×1).
    """
    if resolution % 256:
        raise ConfigError("pix2pix: resolution must be a multiple of 256")
    b = SpecBuilder("pix2pix", seed=seed, weights=weights)
    x = _image_input(b, batch, resolution)
    enc_channels = [64, 128, 256, 512, 512, 512, 512, 512]
    skips = []
    for i, ch in enumerate(enc_channels, start=1):
        if i > 1:
            x = b.leaky_relu(x, 0.2, name=f"enc{i}_lrelu")
        x = b.conv(x, _w(ch, width), 4, 2, "same", name=f"enc{i}")
        skips.append(x)
    dec_channels = [512, 512, 512, 512, 256, 128, 64]
    for i, ch in enumerate(dec_channels, start=1):
        x = b.relu(x, name=f"dec{i}_relu")
        x = b.deconv(x, _w(ch, width), 4, 2, "same", name=f"dec{i}")
        x = b.concat([x, skips[-1 - i]], axis=1, name=f"dec{i}_cat")
    x = b.relu(x, name="dec8_relu")
    x = b.deconv(x, 3, 4, 2, "same", name="dec8")
    x = b.tanh(x, name="output")
    b.output(x)
    return b.build()


#: name -> builder
ARCHITECTURES: dict[str, Callable[..., ModelSpec]] = {
    "alexnet": alexnet,
    "overfeat": overfeat,
    "deepspeech": deepspeech,
    "resnet": resnet,
    "vgg16": vgg16,
    "nin": nin,
    "chair": chair,
    "pix2pix": pix2pix,
}
