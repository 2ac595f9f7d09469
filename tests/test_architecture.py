"""The package's import graph keeps the layering of ``docs/architecture.md``.

Every module of the installed package is parsed (not imported) and its imports,
module-level and function-local alike, become edges of a graph; imports under
``if TYPE_CHECKING:`` are left out (they never run). Then:

- no module imports one that imports it back, directly or through others;
- no module imports a module of a higher layer (:data:`LAYERS`, the table of
  ``docs/architecture.md``), and every module has a layer;
- the client (``jointdnn_edge.client``) and the server (``jointdnn_edge.server``)
  never import each other, and the protocol package imports neither.

Edges: ``import a.b`` and ``from a.b import x`` give an edge to ``a.b``;
``from a import b`` gives an edge to ``a.b`` when ``b`` is a submodule, else to
``a``. Importing ``a.b`` also runs ``a/__init__``, but that is not an edge of
``a.b``'s own: a package ``__init__`` re-exporting its submodules is a cycle only
when a submodule imports the package itself (``from . import name``) or a
sibling that imports it back.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import networkx as nx
import pytest

import jointdnn_edge

PACKAGE = "jointdnn_edge"
#: (importer, imported): no module of the first package may import one of the second, directly or not
FORBIDDEN = (("client", "server"), ("server", "client"), ("protocol", "client"), ("protocol", "server"))
#: the layer of each top-level module or package ("" is the package's own ``__init__``); lower never imports higher
LAYERS = {
    "errors": 0,
    "": 1,  # the package __init__: __version__ and lazy re-exports; loads errors and network eagerly
    "network": 1,
    "costs": 1,
    "spread": 1,
    "planner": 2,
    "models": 3,
    "codec": 3,
    "lossy": 3,
    "zoo": 3,
    "profiler": 3,
    "devices": 3,
    "calibrate": 3,
    "protocol": 4,
    "client": 5,
    "server": 5,
    "session": 6,
    "android": 7,
    "cli": 7,
    "netlab": 7,
    "demo": 7,
    "faults": 7,
    "plots": 7,
    "reproduce": 7,
}
#: at most this many cycles listed per strongly connected group of modules
MAX_CYCLES_SHOWN = 20


# ------------------------------------------------------------------ the graph
def package_modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package by its ``__init__``'s path)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere (functions too) except in ``if TYPE_CHECKING:`` bodies."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _known(name: str, modules: Iterable[str]) -> str | None:
    """``name`` or its longest dotted prefix that is a module of the package; None when outside it."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports (see the module docstring for which edges count)."""
    is_package = path.name == "__init__.py"
    own_package = module.split(".") if is_package else module.split(".")[:-1]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                base = own_package[: len(own_package) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in node.names
            ]
        for name in names:
            target = _known(name, modules)
            if target is not None and target != module:  # a module naming itself imports nothing new
                targets.add(target)
    return targets


def import_graph(root: Path, package: str) -> nx.DiGraph:
    """Modules of ``package`` (source under ``root``) as nodes, their imports as edges."""
    modules = package_modules(root, package)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        graph.add_edges_from((module, target) for target in imports_of(module, path, modules))
    return graph


@lru_cache(maxsize=1)
def installed_graph() -> nx.DiGraph:
    return import_graph(Path(jointdnn_edge.__file__).parent, PACKAGE)


# ------------------------------------------------------------------ the rules
def _path(nodes: list[str]) -> str:
    return " -> ".join(nodes)


def cycles(graph: nx.DiGraph) -> list[str]:
    """Every import cycle as a path (``a -> b -> a``), a bounded number per group of modules that import each other."""
    found = []
    for group in nx.strongly_connected_components(graph):
        sub = graph.subgraph(group)
        if len(group) == 1:
            continue
        listed = sorted(itertools.islice(nx.simple_cycles(sub), MAX_CYCLES_SHOWN + 1), key=lambda c: (len(c), c))
        for cycle in listed[:MAX_CYCLES_SHOWN]:
            start = cycle.index(min(cycle))
            cycle = cycle[start:] + cycle[:start]
            found.append(_path([*cycle, cycle[0]]))
        if len(listed) > MAX_CYCLES_SHOWN:
            found.append(f"... and more cycles among {sorted(group)}")
    return sorted(found)


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def forbidden_imports(graph: nx.DiGraph, importer: str, imported: str) -> list[str]:
    """Paths by which a module of package ``importer`` imports, directly or not, a module of package ``imported``."""
    found = []
    for start in sorted(n for n in graph if _inside(n, importer)):
        parent = {start: ""}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in sorted(graph.successors(node)):
                if nxt in parent:
                    continue
                parent[nxt] = node
                if _inside(nxt, imported):
                    chain = [nxt]
                    while chain[-1] != start:
                        chain.append(parent[chain[-1]])
                    found.append(_path(chain[::-1]))
                else:
                    queue.append(nxt)
    return found


def _top(module: str, package: str) -> str:
    """The top-level module or package of ``package`` that ``module`` belongs to ("" for the package itself)."""
    rest = module[len(package) + 1 :] if module != package else ""
    return rest.split(".")[0]


def layer_breaches(graph: nx.DiGraph, package: str, layers: dict[str, int]) -> list[str]:
    """Modules without a layer, and every direct import of a higher layer (any indirect one passes through one)."""
    out = sorted({f"no layer for {_top(m, package) or package!r}" for m in graph if _top(m, package) not in layers})
    for a, b in sorted(graph.edges):
        la, lb = layers.get(_top(a, package)), layers.get(_top(b, package))
        if la is not None and lb is not None and la < lb:
            out.append(f"layer {la} imports layer {lb}: {a} -> {b}")
    return out


def violations(graph: nx.DiGraph, package: str = PACKAGE, layers: dict[str, int] | None = None) -> list[str]:
    """Every breach of the layering rules, one line each (``layers``: None for :data:`LAYERS`, {} for none)."""
    out = [f"import cycle: {c}" for c in cycles(graph)]
    out += layer_breaches(graph, package, LAYERS if layers is None else layers) if layers != {} else []
    for importer, imported in FORBIDDEN:
        a, b = f"{package}.{importer}", f"{package}.{imported}"
        out += [f"{a} imports {b}: {p}" for p in forbidden_imports(graph, a, b)]
    return out


# ------------------------------------------------------------------ the tests
def test_the_package_keeps_its_layers():
    """All breaches at once, so that one run shows everything left to fix."""
    graph = installed_graph()
    assert len(graph) > 20 and graph.number_of_edges() > 20, "the package's modules were not found"
    found = violations(graph)
    if found:
        pytest.fail(f"{len(found)} import rule violation(s):\n" + "\n".join(found), pytrace=False)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_graph_edges_follow_python_semantics(tmp_path):
    _write(
        tmp_path,
        {
            "__init__.py": "from .sub import thing\n",
            "errors.py": "",
            "sub/__init__.py": "from .a import f\nfrom .b import g\n",
            "sub/a.py": "from .. import errors\nfrom ..errors import E\nimport pkg.sub.b\n",
            "sub/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from .a import f\nelse:\n    import json\n"
                "def later():\n    from . import c, f\n    from pkg import errors\n"
            ),
            "sub/c.py": "import os\nfrom ...outside import x\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert set(graph.edges) == {
        ("pkg", "pkg.sub"),
        ("pkg.sub", "pkg.sub.a"),
        ("pkg.sub", "pkg.sub.b"),
        ("pkg.sub.a", "pkg.errors"),
        ("pkg.sub.a", "pkg.sub.b"),
        ("pkg.sub.b", "pkg.sub.c"),  # function-local
        ("pkg.sub.b", "pkg.sub"),  # `from . import f`: f is no submodule, so the package itself
        ("pkg.sub.b", "pkg.errors"),
    }
    assert cycles(graph) == ["pkg.sub -> pkg.sub.a -> pkg.sub.b -> pkg.sub", "pkg.sub -> pkg.sub.b -> pkg.sub"]
    # a package re-exporting its submodules, one of which imports a sibling, is no cycle
    graph.remove_edge("pkg.sub.b", "pkg.sub")
    assert cycles(graph) == []


def test_rules_report_every_breach_with_its_path(tmp_path):
    _write(
        tmp_path,
        {
            "__init__.py": "",
            "protocol/__init__.py": "from ._frames import check\n",
            "protocol/_frames.py": "def check():\n    from ..server import app\n",
            "server/__init__.py": "",
            "server/app.py": "from ..protocol import check\n",
            "client/__init__.py": "from . import _http\n",
            "client/_http.py": "from ..protocol import check\n",
        },
    )
    frames_to_server = "pkg.protocol._frames -> pkg.server.app"
    assert violations(import_graph(tmp_path, "pkg"), "pkg", layers={}) == [
        "import cycle: pkg.protocol -> pkg.protocol._frames -> pkg.server.app -> pkg.protocol",
        f"pkg.client imports pkg.server: pkg.client -> pkg.client._http -> pkg.protocol -> {frames_to_server}",
        f"pkg.client imports pkg.server: pkg.client._http -> pkg.protocol -> {frames_to_server}",
        f"pkg.protocol imports pkg.server: pkg.protocol -> {frames_to_server}",
        f"pkg.protocol imports pkg.server: {frames_to_server}",
    ]


def test_layers_report_unplaced_modules_and_upward_imports(tmp_path):
    _write(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "network.py": "from . import errors\n",
            "planner/__init__.py": "def f():\n    from ..session import run\n",
            "session.py": "from .planner import f\nfrom . import extra\n",
            "extra.py": "",
        },
    )
    layers = {"": 1, "errors": 0, "network": 1, "planner": 2, "session": 6}
    assert layer_breaches(import_graph(tmp_path, "pkg"), "pkg", layers) == [
        "no layer for 'extra'",
        "layer 2 imports layer 6: pkg.planner -> pkg.session",
    ]
