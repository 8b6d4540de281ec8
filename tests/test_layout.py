"""The package's import graph: no cycles, and no module imports from a layer above it.

Layers, low to high; a module may import its own layer and those below it.
The graph is read from the source (every ``import`` and ``from ... import``,
including those inside functions), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "citystack"
LAYERS = [
    {"checks", "settings", "events"},
    {"stores"},
    {"ingest", "analyses"},
    {"state"},
    {"api"},
    {"app"},
    {"cli"},
]
SAME_LAYER_ORDER = {("ingest", "analyses")}  # pairs (a, b) of one layer that must not import each other


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("citystack")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("citystack"):
                found.add(target)
                # "from . import x" names submodules
                for alias in node.names:
                    found.add(f"{target}.{alias.name}")
    return found


def _graph() -> nx.DiGraph:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in _imports(path):
            if target in modules and target != name:
                graph.add_edge(name, target)
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "citystack"


def _rank(top: str) -> int:
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"citystack.{top} is in no layer of tests/test_layout.py: place it")


def test_every_module_has_a_layer():
    for module in _graph().nodes:
        if module != "citystack":
            _rank(_top(module))


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    inner = nx.DiGraph((a, b) for a, b in graph.edges if not (b == a.rsplit(".", 1)[0]))
    cycles = list(nx.simple_cycles(inner))
    assert cycles == [], f"import cycles: {cycles}"


def test_no_module_imports_from_a_layer_above():
    upward = []
    for a, b in _graph().edges:
        ta, tb = _top(a), _top(b)
        if "citystack" in (ta, tb):
            continue
        if _rank(tb) > _rank(ta) or (ta, tb) in SAME_LAYER_ORDER or (tb, ta) in SAME_LAYER_ORDER:
            upward.append(f"{a} -> {b}")
    assert upward == [], "imports from a layer above: " + "; ".join(sorted(upward))


def test_the_reader_finds_imports():
    """The graph itself is read right: known edges are in it (else the tests above prove nothing)."""
    graph = _graph()
    assert graph.has_edge("citystack.app", "citystack.api.features")
    assert graph.has_edge("citystack.api.features", "citystack.state")
    assert graph.has_edge("citystack.cli.commands", "citystack.app")  # a lazy import inside a function
    assert graph.has_edge("citystack.stores.base", "citystack.checks")
