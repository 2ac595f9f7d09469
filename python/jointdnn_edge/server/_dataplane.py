"""The data plane: what the server does apart from HTTP (metadata, readiness, inference).

An inference request is either a whole-model request (standard Open Inference
Protocol tensors) or a JointDNN split request (a layer range and one
activation frame, ``docs/server.md``). Both go through the same timed run:
decode the tensors, load (prepare) the range, compute, encode the answer,
each phase timed for the response's ``jointdnn_*_ms`` parameters. Loading
goes through a :class:`~._loading.RangeLoader`, so concurrent first requests
for a range load it once; the others' wait is queueing, not loading.

The data plane takes a parsed request (the JSON header and the binary part)
and gives back the response's header, blobs and timings; it knows nothing of
HTTP. Everything here may run on a worker thread.
"""

from __future__ import annotations

import abc
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from .. import protocol as P
from ..errors import ConfigError, ProtocolError
from ._loading import WHOLE, RangeKey, RangeLoader
from ._registry import VERSION

if TYPE_CHECKING:
    from ..lossy import LossySpec
    from ._limits import Limits
    from ._registry import ModelRegistry, ServedModel

__all__ = ["DataPlane", "InferenceResult"]

#: Response ``outputs`` entries and their binary blobs, in order.
Encoded = tuple[list[dict[str, Any]], list[bytes]]
#: Bytes one JSON tensor value may take with its separator and indentation (numbers print in at most 24).
JSON_BYTES_PER_VALUE = 64
#: JSON bytes and values a request may have besides its tensors' data (names, shapes, parameters).
JSON_OVERHEAD_BYTES = 1 << 20
JSON_OVERHEAD_VALUES = 16384


@dataclass
class InferenceResult:
    """An inference's response: the JSON header, the binary blobs it declares, and the phases' times (ms).

    ``waited_ms``: the time spent waiting for another request's load of the same range (queueing).
    """

    header: dict[str, Any]
    blobs: list[bytes]
    timings: dict[str, float]
    waited_ms: float = 0.0


class DataPlane:
    """Metadata, readiness and inference for the models of ``registry``, within ``limits``.

    ``slowdown`` >= 1 stretches every computation to that many times its duration.
    ``lossy_specs``: the lossy specs split requests may name, by digest (hex).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        limits: Limits,
        slowdown: float = 1.0,
        lossy_specs: Mapping[str, LossySpec] | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits
        self.slowdown = slowdown
        self.lossy_specs = dict(lossy_specs or {})
        self.loader = RangeLoader()
        #: set once the server may say it is ready (``create_app`` replaces it by its preload's ``done``)
        self.ready = threading.Event()
        self.ready.set()

    def max_json_bytes(self, model: ServedModel) -> int:
        """The largest JSON part a request to ``model`` may have: what its inputs can need as JSON, within the limit.

        A JSON number with its separator and indentation takes well under
        :data:`JSON_BYTES_PER_VALUE` bytes, so a body past this bound is
        refused (413) before it is parsed, whatever the limit allows.
        """
        return min(self.limits.max_json_bytes, JSON_BYTES_PER_VALUE * model.input_values + JSON_OVERHEAD_BYTES)

    def max_json_values(self, model: ServedModel) -> int:
        """The most values (counted by their commas) a request's JSON part may hold for ``model``."""
        return model.input_values + JSON_OVERHEAD_VALUES

    def server_metadata(self) -> dict[str, Any]:
        """``GET /v2``: the server's name, version and protocol extensions."""
        return {"name": P.SERVER_NAME, "version": __version__, "extensions": ["binary_tensor_data", "jointdnn_split"]}

    def model(self, name: str, version: str | None = None) -> ServedModel:
        """The served model ``name`` (``version``: "1" or None); :class:`ProtocolError` (404) otherwise."""
        return self.registry.get(name, version)

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """``GET /v2/models/{name}``: the model's tensors and the split extension's parameters."""
        model = self.model(name, version)
        g = model.graph
        info = model.executor.info() if callable(getattr(model.executor, "info", None)) else {}
        runtime: dict[str, Any] = {"jointdnn_runtime": str(info.get("runtime", "unknown"))}
        if info.get("version") is not None:
            runtime["jointdnn_runtime_version"] = str(info["version"])
        if isinstance(info.get("threads"), int):
            runtime["jointdnn_threads"] = info["threads"]
        return {
            "name": g.name,
            "versions": [VERSION],
            "platform": "onnxruntime_onnx" if g.format == "onnx" else "litert_tflite",
            "inputs": [_tensor_metadata(t.name, t.dtype, t.shape) for t in g.inputs],
            "outputs": [_tensor_metadata(t.name, t.dtype, t.shape) for t in g.outputs],
            "parameters": {
                "jointdnn_protocol": P.PROTOCOL_VERSION,
                "jointdnn_digest": model.digest,
                "jointdnn_layers": g.n,
                "jointdnn_format": g.format,
                "jointdnn_max_body_bytes": self.limits.max_body_bytes,
                "jointdnn_max_decoded_bytes": self.limits.max_decoded_bytes,
                **runtime,
                "jointdnn_slowdown": self.slowdown,
            },
        }

    def infer(self, model: ServedModel, header: Mapping[str, Any], binary: memoryview) -> InferenceResult:
        """Answer one inference request (JSON ``header`` and its ``binary`` part) on ``model``."""
        params = header.get("parameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError(400, "request 'parameters' must be an object")
        if P.P_FIRST in params or P.P_LAST in params:
            inference: _Inference = _SplitInference(model, header, params, binary, self.limits, self.lossy_specs)
        else:
            inference = _WholeInference(model, header, params, binary, self.limits)
        (outputs, blobs), timings, waited_ms = _timed_run(inference, self.loader, self.slowdown)
        out_header: dict[str, Any] = {"model_name": model.graph.name, "model_version": VERSION, "outputs": outputs}
        if inference.parameters:
            out_header["parameters"] = dict(inference.parameters)
        if isinstance(header.get("id"), str):
            out_header["id"] = header["id"]
        return InferenceResult(out_header, blobs, timings, waited_ms)


def _tensor_metadata(name: str, dtype: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"name": name, "datatype": P.datatype_of(dtype), "shape": list(shape)}


# ------------------------------------------------------------------ the timed run
class _Inference(abc.ABC):
    """One inference request, checked on construction; the phases :func:`_timed_run` times."""

    #: response parameters besides the timings
    parameters: Mapping[str, Any] = {}
    #: what the request runs: a layer range or the whole model
    key: RangeKey = WHOLE

    def __init__(
        self,
        model: ServedModel,
        header: Mapping[str, Any],
        params: Mapping[str, Any],
        binary: memoryview,
        limits: Limits,
    ) -> None:
        self.model = model
        self.max_decoded_bytes = limits.max_decoded_bytes
        self.check(header, params, binary)

    @abc.abstractmethod
    def check(self, header: Mapping[str, Any], params: Mapping[str, Any], binary: memoryview) -> None:
        """Check the request's JSON header, ``parameters`` and binary part; keep what the phases need."""
        raise NotImplementedError

    @abc.abstractmethod
    def decode(self) -> dict[str, np.ndarray]:
        """The request's tensors, checked against the model."""
        raise NotImplementedError

    @abc.abstractmethod
    def encode(self, result: Mapping[str, np.ndarray]) -> Encoded:
        """The response's ``outputs`` entries and blobs for the computed ``result``."""
        raise NotImplementedError


def _timed_run(inference: _Inference, loader: RangeLoader, slowdown: float) -> tuple[Encoded, dict[str, float], float]:
    """Decode, load, compute and encode ``inference``: the encoded answer, each phase's ms, and the ms waited.

    The load phase is this request's own loading; waiting for another
    request's load of the same range is reported apart (as queueing).
    """
    t0 = time.perf_counter()
    feeds = inference.decode()
    t1 = time.perf_counter()
    run, load_ms, waited_ms = loader.load(inference.model, inference.key)
    t2 = time.perf_counter()
    result = run(feeds)
    _stretch(slowdown, time.perf_counter() - t2)
    t3 = time.perf_counter()
    encoded = inference.encode(result)
    t4 = time.perf_counter()
    timings = {
        P.R_DECODE: (t1 - t0) * 1e3,
        P.R_LOAD: load_ms,  # loading a range the first time (slicing, runtime set-up) is not compute
        P.R_COMPUTE: (t3 - t2) * 1e3,
        P.R_ENCODE: (t4 - t3) * 1e3,
    }
    return encoded, timings, waited_ms


def _stretch(slowdown: float, seconds: float) -> None:
    """Emulate a slower cloud: wait so that a computation of ``seconds`` takes ``slowdown`` times as long."""
    if slowdown > 1.0 and seconds > 0:
        time.sleep(seconds * (slowdown - 1.0))


# ------------------------------------------------------------------ whole-model requests
class _WholeInference(_Inference):
    """A standard inference request on the whole model (JSON and/or binary tensors)."""

    def check(self, header: Mapping[str, Any], params: Mapping[str, Any], binary: memoryview) -> None:
        model = self.model
        self.entries = _entries(header, "inputs")
        self.blobs = P.sections(self.entries, binary, "input")
        requested = _entries(header, "outputs")
        unknown = [e["name"] for e in requested if e["name"] not in model.outputs]
        if unknown:
            raise ProtocolError(400, f"model {model.graph.name!r} has no outputs {unknown} (outputs: {model.outputs})")
        default_binary = params.get("binary_data_output", False) is True
        if requested:
            self.chosen = [(e["name"], _binary_wanted(e, default_binary)) for e in requested]
        else:
            self.chosen = [(n, default_binary) for n in model.outputs]

    def decode(self) -> dict[str, np.ndarray]:
        model, graph = self.model, self.model.graph
        feeds: dict[str, np.ndarray] = {}
        budget = self.max_decoded_bytes
        for entry, blob in zip(self.entries, self.blobs):
            name = entry["name"]
            info = model.inputs.get(name)
            if info is None:
                raise ProtocolError(400, f"model {graph.name!r} has no input {name!r} (inputs: {list(model.inputs)})")
            shape = P.check_shape(entry.get("shape"), f"input {name!r}")
            want_type = P.datatype_of(info.dtype)
            if entry.get("datatype") != want_type:
                raise ProtocolError(
                    400, f"input {name!r} has datatype {entry.get('datatype')!r}, the model expects {want_type}"
                )
            if shape != tuple(info.shape):
                raise ProtocolError(
                    400, f"input {name!r} has shape {list(shape)}, the model expects {list(info.shape)}"
                )
            dt = P.numpy_dtype(want_type)
            nbytes = math.prod(shape) * dt.itemsize
            budget -= nbytes
            if budget < 0:
                raise ProtocolError(413, f"the request's tensors exceed {self.max_decoded_bytes} bytes")
            if blob is not None:
                if "data" in entry:
                    raise ProtocolError(400, f"input {name!r} has both binary data and JSON 'data'")
                if len(blob) != nbytes:
                    raise ProtocolError(
                        400,
                        f"input {name!r}: {len(blob)} bytes of binary data, {want_type}{list(shape)} needs {nbytes}",
                    )
                arr = np.frombuffer(blob, dtype=dt).reshape(shape)
            else:
                arr = _json_tensor(entry.get("data"), dt, shape, name)
            feeds[name] = arr.astype(np.dtype(info.dtype), copy=False)
        missing = [n for n in model.inputs if n not in feeds]
        if missing:
            raise ProtocolError(400, f"request lacks inputs {missing} of model {graph.name!r}")
        return feeds

    def encode(self, result: Mapping[str, np.ndarray]) -> Encoded:
        outputs: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        for name, as_binary in self.chosen:
            arr = np.asarray(result[name])
            item = _tensor_metadata(name, arr.dtype, arr.shape)
            # JSON has no NaN or infinity: such a tensor travels as binary data (the extension every
            # client of ours reads) rather than as invalid JSON or an error that loses the inference
            if as_binary or (arr.dtype.kind in "fc" and not np.isfinite(arr).all()):
                data = np.ascontiguousarray(arr, dtype=P.numpy_dtype(item["datatype"])).tobytes()
                item["parameters"] = {"binary_data_size": len(data)}
                blobs.append(data)
            else:
                item["data"] = arr.reshape(-1).tolist()
            outputs.append(item)
        return outputs, blobs


# ------------------------------------------------------------------ split requests
class _SplitInference(_Inference):
    """A JointDNN split request: layers first..last on the frame's tensors (and lossy payloads), answered with a
    frame."""

    def __init__(
        self,
        model: ServedModel,
        header: Mapping[str, Any],
        params: Mapping[str, Any],
        binary: memoryview,
        limits: Limits,
        lossy_specs: Mapping[str, LossySpec],
    ) -> None:
        self.lossy_specs = lossy_specs
        super().__init__(model, header, params, binary, limits)

    def check(self, header: Mapping[str, Any], params: Mapping[str, Any], binary: memoryview) -> None:
        from ..codec import CODECS

        model, graph = self.model, self.model.graph
        first, last = _int_param(params, P.P_FIRST), _int_param(params, P.P_LAST)
        if first is None or last is None:
            raise ProtocolError(400, f"a split request needs both {P.P_FIRST} and {P.P_LAST}")
        if not 0 <= first <= last < graph.n:
            raise ProtocolError(422, f"layer range {first}..{last} is outside 0..{graph.n - 1} of model {graph.name!r}")
        digest = params.get(P.P_DIGEST)
        if digest is not None and digest != model.digest:
            raise ProtocolError(
                409, f"model {graph.name!r} on this server differs from the client's (digest {model.digest})"
            )
        codec = params.get(P.P_CODEC, "auto")
        if codec not in CODECS:
            raise ProtocolError(422, f"{P.P_CODEC} must be one of {list(CODECS)}, got {codec!r}")
        level = _int_param(params, P.P_LEVEL, 1)
        if level is None or not -7 <= level <= 22:
            raise ProtocolError(422, f"{P.P_LEVEL} must be in -7..22, got {level}")
        bits = _int_param(params, P.P_QUANTIZE)
        if bits is not None and not 1 <= bits <= 16:
            raise ProtocolError(422, f"{P.P_QUANTIZE} must be in 1..16, got {bits}")

        self.inputs, self.outputs = graph.slice_io(first, last)
        self.lossy = self._lossy_inputs(params.get(P.P_LOSSY))
        count = 1 + len(self.lossy)

        entries = _entries(header, "inputs")
        if len(entries) != 1 or entries[0]["name"] != P.FRAME_TENSOR:
            raise ProtocolError(400, f"a split request has exactly one input, {P.FRAME_TENSOR!r}")
        entry = entries[0]
        if entry.get("datatype") != "BYTES" or entry.get("shape") != [count]:
            raise ProtocolError(400, f"input {P.FRAME_TENSOR!r} must be BYTES with shape [{count}]")
        (blob,) = P.sections(entries, binary, "input")
        if blob is None:
            raise ProtocolError(400, f"input {P.FRAME_TENSOR!r} must be sent as binary data (binary_data_size)")
        self.frame, *self.payloads = P.unpack_bytes(blob, count, P.FRAME_TENSOR)

        self.first, self.last = first, last
        self.key = (first, last)
        self.codec, self.level, self.bits = str(codec), level, bits
        self.parameters = {P.P_FIRST: first, P.P_LAST: last}

    def _lossy_inputs(self, value: Any) -> list[tuple[str, LossySpec]]:
        """The ``jointdnn_lossy`` parameter checked: distinct inputs of the range, each under a spec this server
        holds that fits the tensor (422 otherwise; 400 when malformed)."""
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(x, list) and len(x) == 2 and all(isinstance(v, str) for v in x) for x in value
        ):
            raise ProtocolError(400, f"{P.P_LOSSY} must be a list of [tensor, spec digest] string pairs")
        out: list[tuple[str, LossySpec]] = []
        for name, digest in value:
            if name not in self.inputs or name in (n for n, _ in out):
                raise ProtocolError(422, f"{P.P_LOSSY}: {name!r} is not an input of the range, or is named twice")
            spec = self.lossy_specs.get(digest)
            if spec is None:
                raise ProtocolError(422, f"{P.P_LOSSY}: this server holds no lossy spec of digest {digest!r}")
            tensor = self.model.graph.tensor(name)
            try:
                spec.coded_shape(tuple(tensor.shape))
            except ConfigError as e:
                raise ProtocolError(422, f"{P.P_LOSSY}: the spec for {name!r} does not fit it: {e}") from None
            out.append((name, spec))
        return out

    def decode(self) -> dict[str, np.ndarray]:
        graph = self.model.graph
        lossy = dict(self.lossy)
        budget = self.max_decoded_bytes - sum(graph.tensor(n).nbytes for n in lossy)
        if budget < 0:
            raise ProtocolError(413, f"the request's tensors exceed {self.max_decoded_bytes} bytes")
        feeds, _ = P.decode_frame_for(
            graph,
            [n for n in self.inputs if n not in lossy],
            self.frame,
            max_bytes=budget,
            what=f"layers {self.first}..{self.last} of {graph.name!r} read",
        )
        if lossy:
            from ..lossy import decode as lossy_decode

            for (name, spec), payload in zip(self.lossy, self.payloads):
                t = graph.tensor(name)
                feeds[name] = lossy_decode(payload, spec, tuple(t.shape), t.dtype, max_bytes=t.nbytes)
        return feeds

    def encode(self, result: Mapping[str, np.ndarray]) -> Encoded:
        from ..codec import encode

        frame = encode(
            {n: result[n] for n in self.outputs}, codec=self.codec, level=self.level, quantize_bits=self.bits
        )
        blob = P.pack_bytes([frame])
        entry = {
            "name": P.FRAME_TENSOR,
            "datatype": "BYTES",
            "shape": [1],
            "parameters": {"binary_data_size": len(blob)},
        }
        return [entry], [blob]


# ------------------------------------------------------------------ request parsing
def _entries(header: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The request's ``inputs`` (required) or ``outputs`` (optional): objects with distinct string names."""
    entries = header.get(key)
    if key == "inputs" and entries is None:
        raise ProtocolError(400, "request has no 'inputs'")
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ProtocolError(400, f"'{key}' must be a list of objects")
    for e in entries:
        if not isinstance(e.get("name"), str):
            raise ProtocolError(400, f"every entry of '{key}' needs a string 'name'")
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise ProtocolError(400, f"'{key}' names a tensor twice")
    return entries


def _int_param(params: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    """An integer request parameter (``default`` when absent); :class:`ProtocolError` (400) if not an integer."""
    v = params.get(key, default)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(400, f"parameter {key} must be an integer, got {v!r}")
    return v


def _binary_wanted(entry: Mapping[str, Any], default: bool) -> bool:
    """Whether a requested output is to be sent as binary data (its ``binary_data``, else ``default``)."""
    params = entry.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError(400, f"output {entry['name']!r}: parameters must be an object")
    value = params.get("binary_data", default)
    if not isinstance(value, bool):
        raise ProtocolError(400, f"output {entry['name']!r}: binary_data must be true or false")
    return value


def _json_tensor(data: Any, dt: np.dtype, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A JSON tensor (row-major ``data``, flat or nested) as an array of ``dt`` and ``shape``."""
    if data is None:
        raise ProtocolError(400, f"input {name!r} has neither 'data' nor binary_data_size")
    if not isinstance(data, list):
        data = [data]
    want = math.prod(shape)
    if data and not isinstance(data[0], list) and len(data) != want:  # flat: count before materialising
        raise ProtocolError(400, f"input {name!r}: 'data' has {len(data)} elements, shape {list(shape)} needs {want}")
    try:
        if dt.kind == "b":
            arr = np.asarray(data)
            if arr.dtype != np.bool_:
                raise TypeError("BOOL data must be true/false")
        else:
            arr = np.asarray(data)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"numbers expected, got {arr.dtype}")
            if dt.kind in "iu" and arr.dtype.kind == "f":
                raise TypeError("integers expected, got fractions")
            arr = arr.astype(dt)
    except (TypeError, ValueError, OverflowError) as e:
        raise ProtocolError(400, f"input {name!r}: 'data' is not a {np.dtype(dt)} tensor: {e}") from None
    if arr.size != math.prod(shape):
        raise ProtocolError(
            400, f"input {name!r}: 'data' has {arr.size} elements, shape {list(shape)} needs {math.prod(shape)}"
        )
    return arr.reshape(shape)
