"""Count: apply the registered cost rule to every node of a `Graph`.

A node whose op has no rule, or whose rule cannot interpret it, is *unknown*: its cost is None
and the reason is kept. Unknown is never counted as zero; `coverage` is the share of nodes
with a cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import rules as _rules  # noqa: F401  (importing the package registers every rule)
from .cost import Cost
from .ir import Graph, Node
from .rules.registry import rule_for

__all__ = ["NodeCount", "count"]


@dataclass(frozen=True, slots=True)
class NodeCount:
    node: Node
    cost: Optional[Cost]  # None: unknown
    reason: str = ""  # why unknown


def count(graph: Graph) -> list[NodeCount]:
    """One `NodeCount` per node, in graph order."""
    values = graph.values
    out: list[NodeCount] = []
    for node in graph.nodes:
        rule = rule_for(node.op)
        if rule is None:
            out.append(NodeCount(node, None, f"no cost rule for {node.op}"))
            continue
        ins = [None if n is None else values[n].type for n in node.inputs]
        outs = [values[n].type for n in node.outputs]
        try:
            out.append(NodeCount(node, rule(ins, outs, node.attrs)))
        except (ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as exc:
            out.append(NodeCount(node, None, f"{node.op} rule failed: {exc}"))
    return out
