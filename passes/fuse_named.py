"""User-named fusion groups, for experiments: "what if these nodes were one kernel?"

A group spec is a comma-separated list of shell-style patterns (fnmatch) matched against node names
and module paths; the nodes any pattern matches form ONE group (free nodes, i.e. views, are left out:
they launch nothing). The group is fused with the shared legality rules (passes/fusion.py: every
member counted, no cycle); a spec that matches fewer than two nodes, or a node another spec already
took, is refused with its reason. Specs are applied in the order given.

Example: ``--group 'layers.0.mlp.*'`` fuses the first layer's MLP into one kernel.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from graphperf.errors import UsageError
from graphperf.ir import Graph
from graphperf.rules import is_free

from .fusion import FusionResult, Grouper
from .result import graph_pass

__all__ = ["fuse_named", "parse_group"]


def parse_group(text: str) -> list[str]:
    """``--group``'s comma-separated patterns as a list; UsageError for an empty spec."""
    patterns = [p.strip() for p in text.split(",") if p.strip()]
    if not patterns:
        raise UsageError(f"--group {text!r}: expected comma-separated node-name or module patterns, "
                         "e.g. --group 'layers.0.mlp.*'")
    return patterns


@graph_pass("fuse_named", requires={"canonical"})
def fuse_named(graph: Graph, specs: list[list[str]]) -> FusionResult:
    """Fuse the working nodes each spec's patterns match (node names or module paths) into one group per spec.

    UsageError for a spec that matches no working node; a spec matching fewer than two, or nodes another spec
    took, is refused with its reason."""
    g = Grouper(graph, "named")
    for patterns in specs:
        spec = ",".join(patterns)
        names = [n.name for n in graph.nodes if not is_free(n.op)
                 and any(fnmatchcase(n.name, p) or fnmatchcase(n.module or "", p) for p in patterns)]
        where = {"group": spec, "nodes": names}
        if not names:
            raise UsageError(f"--group {spec!r} matches no node that does work; patterns match node names "
                             f"(e.g. {_examples(graph, lambda n: n.name)}) or module paths (e.g. "
                             f"{_examples(graph, lambda n: n.module)})")
        if len(names) < 2:
            g.refuse("too_small", f"{spec!r} matches {len(names)} node(s) that do work; a group needs two", **where)
            continue
        taken = [n for n in names if n in g.group_of]
        if taken:
            g.refuse("joined_another_group", f"{taken[0]} already belongs to an earlier group", **where)
            continue
        bad = g.check(set(names))
        if bad is not None:
            g.refuse(*bad, **where)
            continue
        g.add(names, group=spec)
    return g.result()


def _examples(graph: Graph, key) -> str:
    """Two distinct names or module paths of nodes that do work, for an error message."""
    seen = list(dict.fromkeys(key(n) for n in graph.nodes if not is_free(n.op) and key(n)))[:2]
    return ", ".join(repr(x) for x in seen) or "none in this graph"
