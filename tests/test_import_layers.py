"""Imports point down the layers: the import graph of graphperf has no cycle.

The test reads every ``.py`` file under ``graphperf/``, ``passes/`` (``graphperf.passes``) and
``models/`` (``graphperf.models``) with `ast`, without importing anything, and collects every
``import`` statement: at module level and inside functions, classes and ``try`` blocks alike (a lazy
import inside a function is still a dependency, it is only paid later). Imports under
``if TYPE_CHECKING:`` are skipped: they never run and only serve annotations.

How an import becomes an edge (importer -> imported module):

- ``import a.b.c`` is an edge to ``a.b.c``. Python also runs the ``__init__`` of ``a`` and ``a.b``
  first, but that is not counted: a package ``__init__`` that imports its own submodules (as
  ``graphperf/__init__.py`` does) would otherwise form a cycle with every submodule of the package.
- ``from a.b import name`` is an edge to ``a.b.name`` when that is a module (a submodule), else to
  ``a.b`` (the module, or the package ``__init__``, that must define ``name``).
- relative imports are resolved against the importer's package (a package's ``__init__`` is its own
  package), so ``from . import rules`` in ``graphperf/count.py`` is an edge to ``graphperf.rules``
  (``graphperf/rules/__init__.py``).
- imports of modules outside graphperf (torch, onnx, ...) are ignored.

A cycle is reported as the list of modules on it; each must be broken by moving the shared piece
down to a module that imports nothing above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"graphperf": ROOT / "graphperf", "graphperf.passes": ROOT / "passes", "graphperf.models": ROOT / "models"}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three source trees."""
    found = {}
    for prefix, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom node, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    """The graphperf modules one import statement depends on (see the module docstring)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    targets = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in known:
            targets.add(sub)
        elif base in known:
            targets.add(base)
    return targets


def import_graph() -> nx.DiGraph:
    known = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree):
            for target in _imported(module, path, node, known):
                if target != module:
                    graph.add_edge(module, target, line=node.lineno)
    return graph


def test_rules_resolve_submodules_packages_and_relative_imports():
    graph = import_graph()
    assert graph.has_edge("graphperf.count", "graphperf.rules")  # from . import rules
    assert graph.has_edge("graphperf", "graphperf.count")  # the package __init__ imports its submodules
    assert not graph.has_edge("graphperf.count", "graphperf")  # a submodule's import does not reach the __init__
    assert "graphperf.passes.tiling" in graph and "graphperf.models.gpt2" in graph


# Cycles that remain only until a file owned by someone else changes; each entry names the change. The test
# fails when one of them is gone (remove it here) and for any cycle not listed.
PENDING: dict[frozenset[str], str] = {}


def test_import_graph_has_no_cycles():
    graph = import_graph()
    cycles = list(nx.simple_cycles(graph))

    def describe(cycle):
        hops = zip(cycle, cycle[1:] + cycle[:1])
        return " -> ".join(f"{a} (line {graph.edges[a, b]['line']})" for a, b in hops) + f" -> {cycle[0]}"

    new = [c for c in cycles if frozenset(c) not in PENDING]
    assert new == [], f"{len(new)} import cycles:\n" + "\n".join(sorted(map(describe, new)))
    gone = set(PENDING) - {frozenset(c) for c in cycles}
    assert not gone, f"no longer a cycle, remove it from PENDING: {[sorted(c) for c in gone]}"
