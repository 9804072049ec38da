"""Count: apply the registered cost rule to every node of a `Graph`.

A node whose op has no rule, or whose rule refuses it (`RuleError`: a shape or attribute the rule
does not model), is *unknown*: its cost is None and the reason is kept. Unknown is never counted as
zero; `coverage` is the share of nodes with a cost. Any other exception from a rule is a bug in that
rule, not a missing one: it stops the count as a `RuleBug` naming the op and the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import rules as _rules  # noqa: F401  (importing the package registers every rule)
from .cost import Cost
from .errors import AnalysisError, RuleError
from .ir import Graph, Node
from .rules.registry import rule_for

__all__ = ["NodeCount", "RuleBug", "count", "apply_rule"]


class RuleBug(AnalysisError):
    """A cost rule raised something other than `RuleError`: a defect in the rule (exit 1)."""


@dataclass(frozen=True, slots=True)
class NodeCount:
    """One node's count: its `Cost`, or None with the `reason` when no rule covers the node (unknown)."""

    node: Node
    cost: Optional[Cost]  # None: unknown
    reason: str = ""  # why unknown


def count(graph: Graph) -> list[NodeCount]:
    """One `NodeCount` per node, in graph order.

    Parameters
    ----------
    graph : Graph
        A captured (and usually canonicalized) graph.

    Returns
    -------
    list of NodeCount
        The cost of each node, or None with the reason when no rule covers it.

    Raises
    ------
    RuleBug
        When a rule fails with anything but `RuleError` (a defect in the rule).

    Example
    -------
    >>> import graphperf
    >>> counts = graphperf.count(graphperf.load_graph(graphperf.ModelRequest("gpt2", config="tiny"))[0])
    >>> sum(c.cost.flops for c in counts if c.cost) > 0
    True
    """
    values = graph.values
    return [apply_rule(node, [None if n is None else values[n].type for n in node.inputs],
                       [values[n].type for n in node.outputs]) for node in graph.nodes]


def apply_rule(node: Node, ins: list, outs: list) -> NodeCount:
    """The cost of `node` with operand types `ins` and `outs` by its op's rule: the one place a rule is called."""
    rule = rule_for(node.op)
    if rule is None:
        return NodeCount(node, None, f"no cost rule for {node.op}")
    try:
        return NodeCount(node, rule(ins, outs, node.attrs))
    except RuleError as exc:
        return NodeCount(node, None, f"{node.op} rule refused the node: {exc}")
    except Exception as exc:
        raise RuleBug(f"the cost rule of {node.op} failed on node {node.name} ({type(exc).__name__}: {exc}): a bug "
                      "in that rule, not a missing one; please report it with the model") from exc
