"""The Java facade (``android_bridge/``): it compiles against Chaquopy's and Android's API, and it
names only Python entry points that exist with the arity and result type it uses.

No Android device or emulator is involved: ``tests/android_standins/`` holds compile-time
stand-ins of the few Chaquopy and ``org.json`` classes the facade uses (their headers list the
real signatures they mirror), and ``tests/android_checks/BridgeChecks.java`` runs the parts of the
facade that need neither at run time.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from jointdnn_edge import android as bridge
from jointdnn_edge.errors import CodecError, InfeasibleError

ROOT = Path(__file__).resolve().parents[1]
FACADE = ROOT / "android_bridge" / "src" / "main" / "java"
STANDINS = Path(__file__).resolve().parent / "android_standins"
CHECKS = Path(__file__).resolve().parent / "android_checks"

JAVAC = shutil.which("javac")
JAVA = shutil.which("java")
needs_jdk = pytest.mark.skipif(JAVAC is None or JAVA is None, reason="needs a JDK (javac and java on PATH)")


def java_files(*dirs: Path) -> list[str]:
    return sorted(str(p) for d in dirs for p in d.rglob("*.java"))


def javac(out: Path, *dirs: Path) -> subprocess.CompletedProcess[str]:
    """Compiles like an Android app module would: Java 8 language and library level, all warnings fatal."""
    cmd = [JAVAC, "--release", "8", "-Xlint:all", "-Werror", "-encoding", "UTF-8", "-d", str(out)]
    return subprocess.run(cmd + java_files(*dirs), capture_output=True, text=True)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("javac")
    res = javac(out, STANDINS, FACADE, CHECKS)
    assert res.returncode == 0, res.stderr
    return out


# ------------------------------------------------------------------ compilation
@needs_jdk
def test_the_facade_compiles_against_the_standins(compiled):
    classes = {p.name for p in (compiled / "io" / "jointdnn" / "edge").glob("*.class")}
    assert {"JointDnn.class", "Schedule.class", "Tensor.class", "JointDnnException.class", "Session.class"} <= classes


MUTATIONS = [
    # (what a developer might get wrong, edit, what javac must say)
    (
        "a misspelled PyObject method",
        ("module.callAttr(name, args)", "module.callAttrs(name, args)"),
        "cannot find symbol",
    ),
    (
        "a Chaquopy conversion that does not exist",
        ('call("api_version").toInt()', 'call("api_version").toInteger()'),
        "cannot find symbol",
    ),
    (
        "a wrong result type",
        ('call("native_available").toBoolean()', 'call("native_available").toInt()'),
        "incompatible types",
    ),
    (
        "org.json's checked exception left unhandled",
        (
            '        } catch (JSONException e) {\n            throw badReply("mobile_ranges", e);\n        }',
            "        } finally {\n        }",
        ),
        "unreported exception",
    ),
    (
        "a Java 9+ API an Android 7 device lacks",
        (
            "ByteArrayOutputStream out = new ByteArrayOutputStream();",
            "byte[] all = in.readAllBytes(); ByteArrayOutputStream out = new ByteArrayOutputStream();",
        ),
        "cannot find symbol",
    ),
]


@needs_jdk
@pytest.mark.parametrize("what,edit,message", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_mistake_in_the_facade_fails_the_build(tmp_path, what, edit, message):
    """The stand-ins are strict: the build catches mistakes the real Chaquopy/Android API would reject."""
    src = tmp_path / "src"
    shutil.copytree(FACADE, src)
    facade = src / "io" / "jointdnn" / "edge" / "JointDnn.java"
    text = facade.read_text()
    old, new = edit
    assert old in text, f"mutation target not found: {old!r}"
    facade.write_text(text.replace(old, new, 1))
    res = javac(tmp_path / "out", STANDINS, src)
    assert res.returncode != 0
    assert message in res.stderr


# ------------------------------------------------------------------ the facade's calls
@dataclass(frozen=True)
class Call:
    name: str
    nargs: int
    converts_to: str | None  # Python type the facade converts the reply from, when it does
    where: str


_CALL = re.compile(r'(?:\bcall|\.callAttr)\(\s*"(\w+)"')
_CONVERSION = [
    (re.compile(r"\s*\.(toInt|toLong)\(\)"), "int"),
    (re.compile(r"\s*\.toBoolean\(\)"), "bool"),
    (re.compile(r"\s*\.toDouble\(\)"), "float"),
    (re.compile(r"\s*\.toJava\(byte\[\]\.class\)"), "bytes"),
    (re.compile(r"\s*\.asList\(\)"), "list"),
    (re.compile(r"\s*\.toString\(\)"), "str"),
]
# facade helpers that convert the reply they are given
_WRAPPER = re.compile(r'\b(object|schedule|tensors)\((?:"[^"]*",\s*)?(?:sdk\.)?$')
_WRAPPED = {"object": "str", "schedule": "str", "tensors": "list"}


def split_args(text: str, start: int) -> tuple[list[str], int]:
    """Top-level arguments of the call whose "(" is at ``start``, and the index after its ")"."""
    args, depth, cur, i = [], 0, [], start + 1
    while i < len(text):
        c = text[i]
        if c == '"':  # string literal (the facade has no char literals holding quotes)
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i : j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return [a for a in args if a], i + 1
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    raise ValueError("unbalanced parentheses")


def facade_calls(sources: dict[str, str]) -> list[Call]:
    """Every call of a Python entry point by literal name in the facade sources."""
    calls = []
    for fname, text in sources.items():
        for m in _CALL.finditer(text):
            args, end = split_args(text, text.index("(", m.start(0)))
            conv = next((t for rx, t in _CONVERSION if rx.match(text, end)), None)
            wrapper = _WRAPPER.search(text[: m.start(0)])
            if conv is None and wrapper is not None:
                conv = _WRAPPED[wrapper.group(1)]
            line = text.count("\n", 0, m.start(0)) + 1
            calls.append(Call(m.group(1), len(args) - 1, conv, f"{fname}:{line}"))
    return calls


def check_calls(calls: list[Call], module) -> list[str]:
    """Problems: names the module lacks, arities its functions refuse, reply types they do not return."""
    problems = []
    for c in calls:
        fn = getattr(module, c.name, None)
        if fn is None or not callable(fn):
            problems.append(f"{c.where}: {c.name} is not an entry point of {module.__name__}")
            continue
        sig = inspect.signature(fn)
        try:
            sig.bind(*range(c.nargs))
        except TypeError as e:
            problems.append(f"{c.where}: {c.name}{sig} cannot take {c.nargs} positional arguments ({e})")
        ret = sig.return_annotation
        if c.converts_to is not None and (ret is inspect.Signature.empty or c.converts_to not in str(ret)):
            problems.append(f"{c.where}: the facade reads {c.name}'s reply as {c.converts_to}, it returns {ret}")
    return problems


def facade_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(FACADE.rglob("*.java"))}


def test_every_entry_point_the_facade_names_exists_with_that_arity_and_reply_type():
    calls = facade_calls(facade_sources())
    assert len(calls) >= 20
    assert check_calls(calls, bridge) == []
    # spot checks that the parser reads what the source says
    by_name = {}
    for c in calls:
        by_name.setdefault(c.name, set()).add((c.nargs, c.converts_to))
    assert by_name["decide"] == {(2, "str"), (4, "str"), (6, "str"), (7, "str")}
    assert by_name["encode_frame"] == {(4, "bytes")}
    assert by_name["decode_frame"] == {(2, "list")}
    assert by_name["native_available"] == {(0, "bool")}


WORKSTATION_ONLY = {"export_slices"}  # prepares an app's assets; never called on the phone


def test_the_facade_covers_every_entry_point():
    named = {c.name for c in facade_calls(facade_sources())}
    entry_points = {n for n in bridge.__all__ if callable(getattr(bridge, n))}
    assert entry_points - named == WORKSTATION_ONLY


def test_the_arity_check_catches_mismatches():
    """The checker itself: a wrong count, a misspelled name and a wrong reply type are all reported."""
    src = {
        "Bad.java": (
            "class Bad { void f() {\n"
            '  call("decide", 1.0, 2.0, 3.0, 4.0, 5.0, "energy", 7.0, 8.0);\n'
            '  call("decde", 1.0, 2.0);\n'
            '  int v = call("version").toInt();\n'
            '  byte[] b = module.callAttr("decode_frame", frame, g(1, 2), new int[] {3, 4}).toJava(byte[].class);\n'
            "} }"
        )
    }
    calls = facade_calls(src)
    assert [(c.name, c.nargs, c.converts_to) for c in calls] == [
        ("decide", 8, None),
        ("decde", 2, None),
        ("version", 0, "int"),
        ("decode_frame", 3, "bytes"),
    ]
    problems = check_calls(calls, bridge)
    assert len(problems) == 5, problems
    assert "decide" in problems[0] and "8 positional" in problems[0]
    assert "decde is not an entry point" in problems[1]
    assert "reads version's reply as int" in problems[2]
    assert "decode_frame" in problems[3] and "3 positional" in problems[3]
    assert "reads decode_frame's reply as bytes" in problems[4]


# ------------------------------------------------------------------ running the Java parts
def run_java(compiled: Path, *args: str) -> str:
    res = subprocess.run([JAVA, "-cp", str(compiled), "BridgeChecks", *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def formatted(exc: BaseException) -> tuple[str, str]:
    """How Chaquopy may word the PyException: "Class: message", or a whole traceback (older versions)."""
    only = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    full = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).strip()
    return only, full


@needs_jdk
def test_pyexception_text_is_parsed_into_the_python_class_and_message(compiled, tmp_path):
    bridge.reset()
    raised = []
    try:
        bridge.decide(1.0, 1.0)  # nothing loaded: ConfigError
    except Exception as e:
        raised.append(e)
    try:
        raise InfeasibleError("no schedule meets deadline_ms = 5.0:\nthe least latency is 7.2", "deadline_ms", 7.2)
    except Exception as e:
        raised.append(e)
    try:
        bridge.decide(1.0)
    except Exception as e:
        raised.append(e)  # a built-in TypeError
    try:
        try:
            {}["frame"]
        except KeyError:
            raise CodecError("tensor 'x': payload is corrupt")  # noqa: B904 - a chained traceback on purpose
    except Exception as e:
        raised.append(e)
    for exc in raised:
        for text in formatted(exc):
            assert text.startswith(("jointdnn_edge.errors.", "TypeError", "Traceback"))
            (tmp_path / "msg.txt").write_text(text, encoding="utf-8")
            cls, _, message = run_java(compiled, "split", str(tmp_path / "msg.txt")).partition("\n")
            assert cls == type(exc).__name__
            assert message == str(exc)
    (tmp_path / "msg.txt").write_text("the interpreter crashed (no class here)")
    assert (
        run_java(compiled, "split", str(tmp_path / "msg.txt")) == "PyException\nthe interpreter crashed (no class here)"
    )


@needs_jdk
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_tensor_bytes_are_little_endian_c_order_as_numpy_writes_them(compiled, tmp_path, dtype):
    rng = np.random.default_rng(0)
    if dtype == "float32":
        a = (rng.standard_normal((2, 3, 4)) * 1e3).astype(np.float32)
        a.flat[:3] = [np.float32(1e-40), np.float32(-0.0), np.float32(3.4e38)]
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, (2, 3, 4), dtype=dtype, endpoint=True)
    (tmp_path / "in.bin").write_bytes(a.astype(a.dtype.newbyteorder("<")).tobytes())
    lines = run_java(compiled, "read", dtype, str(tmp_path / "in.bin"), "2", "3", "4").split()
    got = np.array([float(x) if dtype == "float32" else int(x) for x in lines], dtype=dtype).reshape(a.shape)
    assert np.array_equal(got.view(np.uint8), a.view(np.uint8)) if dtype == "float32" else np.array_equal(got, a)
    # and the other way: Java builds the tensor, numpy reads its bytes
    vals = [str(v) for v in a.flat]
    assert run_java(compiled, "write", dtype, str(tmp_path / "out.bin"), "2", "3", "4", "--", *vals).split() == [
        dtype,
        "24",
    ]
    back = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.dtype(dtype).newbyteorder("<")).reshape(a.shape)
    assert np.array_equal(back.view(np.uint8), a.astype(a.dtype.newbyteorder("<")).view(np.uint8))


@needs_jdk
def test_tensor_sizes_follow_the_codec_dtypes(compiled):
    from jointdnn_edge.codec import WIRE_DTYPES

    for dtype in WIRE_DTYPES.values():
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        assert run_java(compiled, "size", dtype, str(6 * itemsize), "2", "3").strip() == "ok", dtype
        assert run_java(compiled, "size", dtype, str(6 * itemsize + 1), "2", "3").strip() == "IllegalArgumentException"
    assert run_java(compiled, "size", "float33", "4", "1").strip() == "IllegalArgumentException"
