"""The wire-format test vectors (tests/vectors, described in docs/wire-format.md).

The vectors were written by ``tests/vectors/generate.py``, an independent
implementation of the format. Here they are checked against it, decoded to
exactly the bytes their JSON lists, re-encoded byte for byte where the format
promises stable bytes, and the invalid ones must fail with the listed error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from jointdnn_edge import CodecError, codec

pytestmark = pytest.mark.pure

HERE = Path(__file__).resolve().parent / "vectors"
VALID = sorted(p.stem for p in HERE.glob("*.json"))
INVALID = sorted(p.stem for p in (HERE / "invalid").glob("*.json"))


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _expected(t: dict[str, Any]) -> Any:
    codes = np.frombuffer(bytes.fromhex(t["data_hex"]), _dtype(t["dtype"])).reshape(t["shape"])
    if t["quant"] is None:
        return codes
    q = t["quant"]
    return codec.QuantizedTensor(codes, q["lo"], q["hi"], q["bits"], _dtype(q["dtype"]))


def test_vector_set_is_complete() -> None:
    assert len(VALID) >= 12 and len(INVALID) >= 20
    codecs_seen = {t["codec"] for v in VALID for t in json.loads((HERE / f"{v}.json").read_text())["tensors"]}
    assert codecs_seen == {"raw", "zstd", "sparse", "png"}


def test_committed_vectors_match_the_reference_writer(codec_ref: ModuleType) -> None:
    built = codec_ref.build()
    committed = {str(p.relative_to(HERE)) for p in HERE.rglob("*") if p.suffix in (".jdnf", ".json")}
    assert committed == set(built)
    for rel, data in built.items():
        if rel.endswith(".json"):
            assert json.loads((HERE / rel).read_text()) == json.loads(data), rel
            continue
        doc = json.loads(built[rel[: -len(".jdnf")] + ".json"])
        if rel.startswith("invalid/") or doc["bytes_stable"]:
            assert (HERE / rel).read_bytes() == data, rel  # no zstd/PNG inside: must match exactly
        else:
            # zstd/PNG bytes may differ with the library version; the decoded tensors may not
            a, b = codec.decode(data), codec.decode((HERE / rel).read_bytes())
            assert {k: v.tobytes() for k, v in a.items()} == {k: v.tobytes() for k, v in b.items()}, rel


@pytest.mark.parametrize("name", VALID)
def test_valid_vector_decodes_exactly(name: str) -> None:
    doc = json.loads((HERE / f"{name}.json").read_text())
    frame = (HERE / doc["frame"]).read_bytes()
    out = codec.decode(frame)
    raw = codec.decode(frame, dequantize=False)
    heads = codec.read_headers(frame)
    assert [t["name"] for t in doc["tensors"]] == list(out) == [e.name for e in heads]
    for t, e in zip(doc["tensors"], heads):
        got = out[t["name"]]
        assert list(got.shape) == t["shape"]
        assert (e.codec, e.filter, e.dtype, list(e.shape)) == (t["codec"], t["filter"], _dtype(t["dtype"]), t["shape"])
        assert e.checksum == int(t["crc32"], 16)
        if t["quant"] is None:
            assert got.dtype == _dtype(t["dtype"])
            assert got.tobytes().hex() == t["data_hex"]
        else:
            q = t["quant"]
            assert got.dtype == _dtype(q["dtype"])
            assert got.tobytes().hex() == q["dequantized_hex"]
            assert raw[t["name"]].q.tobytes().hex() == t["data_hex"]
            assert (e.quant.bits, e.quant.lo, e.quant.hi) == (q["bits"], q["lo"], q["hi"])


@pytest.mark.parametrize("name", [v for v in VALID if json.loads((HERE / f"{v}.json").read_text())["bytes_stable"]])
def test_stable_vector_is_reproduced_byte_for_byte(name: str) -> None:
    doc = json.loads((HERE / f"{name}.json").read_text())
    tensors = {t["name"]: _expected(t) for t in doc["tensors"]}
    (codec_name,) = {t["codec"] for t in doc["tensors"]} or {"raw"}
    assert codec.encode(tensors, codec=codec_name) == (HERE / doc["frame"]).read_bytes()


@pytest.mark.parametrize("name", [v for v in VALID if not json.loads((HERE / f"{v}.json").read_text())["bytes_stable"]])
def test_compressed_vectors_keep_stable_headers_when_re_encoded(name: str) -> None:
    """Re-encoding with the vector's codec gives the same names, dtypes, shapes, codecs and checksums."""
    doc = json.loads((HERE / f"{name}.json").read_text())
    tensors = {t["name"]: _expected(t) for t in doc["tensors"]}
    (codec_name,) = {t["codec"] for t in doc["tensors"]}
    frame = codec.encode(tensors, codec=codec_name)
    mine, theirs = codec.read_headers(frame), codec.read_headers((HERE / doc["frame"]).read_bytes())
    for a, b in zip(mine, theirs):

        def key(e: codec.FrameEntry) -> tuple:
            return (e.name, e.dtype, e.shape, e.codec, e.checksum, e.quant)

        assert key(a) == key(b)
    out = codec.decode(frame)
    for t in doc["tensors"]:
        want = t["quant"]["dequantized_hex"] if t["quant"] else t["data_hex"]
        assert out[t["name"]].tobytes().hex() == want


@pytest.mark.parametrize("name", INVALID)
def test_invalid_vector_is_rejected(name: str) -> None:
    doc = json.loads((HERE / "invalid" / f"{name}.json").read_text())
    frame = (HERE / "invalid" / doc["frame"]).read_bytes()
    with pytest.raises(CodecError) as err:
        codec.decode(frame, max_bytes=doc["max_bytes"])
    assert doc["error"] in str(err.value)


def test_the_documented_element_types_are_the_ones_the_codec_speaks() -> None:
    """docs/wire-format.md section 2 (code, dtype, itemsize) against codec.WIRE_DTYPES."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "wire-format.md").read_text()
    section = doc[doc.index("## 2. Element types") :]
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (\d+) \|", section, re.M)
    assert {int(c): name for c, name, _ in rows} == dict(codec.WIRE_DTYPES)
    for _, name, size in rows:
        if name != "bfloat16":  # not a numpy dtype; two bytes on the wire
            assert np.dtype(name).itemsize == int(size)
