"""A real task for measuring accuracy: PP-OCR text recognition on text lines rendered with Pillow.

Labels are known because the images are rendered from them: each text line is
drawn black on white in a TrueType font, cropped, resized to the recognizer's
48-pixel height (ratio kept, at most 320 wide) and padded, as PaddleOCR and
RapidOCR prepare their input. The recognizer's output (per time step, a
softmax over blank + characters) is read with CTC greedy decoding, and the
character error rate is the edit distance over the labels' length.
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError

__all__ = [
    "TEXT_KINDS",
    "REC_HEIGHT",
    "REC_WIDTH",
    "character_error_rate",
    "ctc_greedy",
    "default_fonts",
    "default_texts",
    "disjoint_texts",
    "edit_distance",
    "ocr_labels",
    "render_line",
]

#: PP-OCRv4 recognizer input: 3 × 48 × 320 (RapidOCR's ``rec_img_shape``)
REC_HEIGHT = 48
REC_WIDTH = 320
#: Fonts matplotlib ships (a fresh environment with matplotlib has them); system DejaVu as a fallback.
#: Regular, bold and slanted cuts of a sans, a serif and a monospaced face, and STIX (a Times-like serif).
_FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
    "DejaVuSans-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono-Oblique.ttf",
    "STIXGeneral.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono-Bold.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBol.ttf",
)  # fmt: skip
_SYSTEM_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/usr/share/fonts/dejavu")
_WORDS = (
    "network", "phone", "cloud", "split", "layer", "tensor", "energy", "latency", "budget", "upload",
    "Camera", "Model", "Edge", "Signal", "Radio", "Battery", "Offload", "Server", "Frame", "Codec",
    "hello world", "data 2024", "open source", "mobile device", "text line", "quick fox", "jump 42",
    "station", "morning", "window", "garden", "yellow", "river", "mountain", "coffee", "market", "ticket",
    "Street", "Monday", "October", "Berlin", "Paris", "Tokyo", "London", "Exit", "Parking", "Open",
    "receipt", "total", "price", "change", "invoice", "order", "number", "account", "balance", "payment",
    "north gate", "platform 9", "room 214", "level 3", "gate B12", "bus stop", "main road", "last call",
    "Welcome home", "Fresh bread", "No entry", "Keep left", "Push door", "Pull", "Sale today",
    "quantization", "projection", "inference", "bandwidth", "throughput", "checkpoint", "scheduler",
    "the cat sat", "a small step", "red and blue", "up to 50 km", "call 555 0199", "free wifi here",
)  # fmt: skip
_RANDOM_ALPHABET = string.ascii_letters + string.digits
_CODE_ALPHABET = string.ascii_uppercase + string.digits
#: Kinds of generated lines, drawn in turn: a word or phrase, a random alphanumeric string, an upper-case code
#: with a separator (``K7-3QX``), a number (``1,204.50``, ``12:45``).
TEXT_KINDS = ("word", "random", "code", "number")


def default_fonts() -> list[Path]:
    """DejaVu Sans, Serif and Sans Mono (regular, bold, slanted) and STIX: from matplotlib's package when
    installed, else the system's DejaVu files.

    :class:`ConfigError` when none is found (pass font files explicitly).
    """
    dirs: list[Path] = []
    try:
        import matplotlib

        dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    dirs += [Path(d) for d in _SYSTEM_FONT_DIRS]
    for d in dirs:
        found = [d / f for f in _FONT_FILES if (d / f).is_file()]
        if found:
            return found
    raise ConfigError("no DejaVu fonts found (install matplotlib or pass font files)")


def _generated_line(kind: str, rng: np.random.Generator) -> str:
    if kind == "random":
        n = int(rng.integers(4, 11))
        return "".join(_RANDOM_ALPHABET[int(j)] for j in rng.integers(0, len(_RANDOM_ALPHABET), n))
    if kind == "code":
        a, b = (int(n) for n in rng.integers(2, 5, 2))
        sep = "-/."[int(rng.integers(0, 3))]
        draw = rng.integers(0, len(_CODE_ALPHABET), a + b)
        return (
            "".join(_CODE_ALPHABET[int(j)] for j in draw[:a]) + sep + "".join(_CODE_ALPHABET[int(j)] for j in draw[a:])
        )
    if int(rng.integers(0, 2)):
        return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    return f"{int(rng.integers(1, 100_000)):,}.{int(rng.integers(0, 100)):02d}"


def default_texts(count: int = 24, *, seed: int = 0, kinds: Sequence[str] = ("word", "random")) -> list[str]:
    """``count`` text lines, seeded: the ``kinds`` (of :data:`TEXT_KINDS`) in turn; words and phrases are drawn
    from a fixed list of about a hundred without repeats until it runs out, random strings are 4 to 10 letters
    and digits, codes and numbers are short (``K7-3QX``, ``1,204.50``, ``12:45``).

    The default (words and random strings alternating) is the set the first tables used.
    """
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    bad = [k for k in kinds if k not in TEXT_KINDS]
    if not kinds or bad:
        raise ConfigError(f"text kinds must be among {TEXT_KINDS}, got {list(kinds)}")
    rng = np.random.default_rng(seed)
    words = [_WORDS[int(i)] for i in rng.permutation(len(_WORDS))]
    out: list[str] = []
    used_words = 0
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "word":
            out.append(words[used_words % len(words)])
            used_words += 1
        else:
            out.append(_generated_line(kind, rng))
    return out


def disjoint_texts(count: int, exclude: Sequence[str], *, seed: int, kinds: Sequence[str] = TEXT_KINDS) -> list[str]:
    """``count`` generated lines (as :func:`default_texts`) none of which is in ``exclude``: a held-out set.

    Words of the fixed list that ``exclude`` holds are skipped, so with a
    long ``exclude`` the set leans on random strings, codes and numbers.
    """
    taken = set(exclude)
    out: list[str] = []
    pool_size = count
    while len(out) < count:
        pool_size *= 2
        out = [t for t in dict.fromkeys(default_texts(pool_size, seed=seed, kinds=kinds)) if t not in taken][:count]
        if pool_size > 64 * count + 1024:
            raise ConfigError(f"cannot draw {count} lines distinct from the {len(taken)} excluded")
    return out


def render_line(text: str, font: str | os.PathLike[str], size: int = 32) -> np.ndarray:
    """``text`` drawn black on white in ``font`` at ``size`` points, as the recognizer's ``(1, 3, 48, 320)`` input.

    Cropped to the ink with a margin, resized to height 48 keeping the ratio
    (width at most 320), scaled to [-1, 1] and zero-padded on the right.
    """
    from PIL import Image, ImageDraw, ImageFont

    try:
        face = ImageFont.truetype(os.fspath(font), size)
    except OSError as e:
        raise ConfigError(f"font {os.fspath(font)!r} cannot be read: {e}") from None
    left, top, right, bottom = face.getbbox(text)
    margin = max(2, size // 4)
    img = Image.new("L", (int(right - left) + 2 * margin, int(bottom - top) + 2 * margin), 255)
    ImageDraw.Draw(img).text((margin - left, margin - top), text, fill=0, font=face)
    width = min(REC_WIDTH, max(1, round(img.width * REC_HEIGHT / img.height)))
    img = img.convert("RGB").resize((width, REC_HEIGHT), Image.Resampling.BILINEAR)
    chw = (np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    out = np.zeros((1, 3, REC_HEIGHT, REC_WIDTH), np.float32)
    out[0, :, :, :width] = chw
    return out


def ocr_labels(model: Any) -> list[str]:
    """The recognizer's class labels by output index: blank (``""``) first, the characters of the ONNX
    metadata's ``character`` entry, then a space (PaddleOCR's ``use_space_char``).

    ``model`` is a path or an ``onnx.ModelProto``; :class:`ModelError` without that metadata.
    """
    import onnx

    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model), load_external_data=False)
    chars = {p.key: p.value for p in proto.metadata_props}.get("character")
    if not chars:
        raise ModelError("the model has no 'character' metadata (not a PaddleOCR recognizer?)")
    return ["", *chars.splitlines(), " "]


def ctc_greedy(probs: np.ndarray, labels: Sequence[str]) -> str:
    """CTC greedy decoding of one ``(T, classes)`` output: best class per step, repeats merged, blanks (0) dropped."""
    best = np.asarray(probs).reshape(-1, len(labels)).argmax(axis=1)
    keep = np.ones(best.shape, bool)
    keep[1:] = best[1:] != best[:-1]
    return "".join(labels[int(i)] for i in best[keep] if i != 0)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def character_error_rate(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Total edit distance over total reference length (0 = perfect; can exceed 1)."""
    if len(predictions) != len(references) or not references:
        raise ConfigError("character_error_rate needs as many predictions as references, at least one")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ConfigError("references are all empty")
    return sum(edit_distance(p, r) for p, r in zip(predictions, references)) / total
