"""Liveness analysis: the peak of live activation memory over a graph's execution order.

Weights are excluded (reported apart as `weight_bytes`). A graph input that is not a weight
(token ids, a KV cache) is live from the start until its last use. Every other activation is
allocated when its producer runs and freed after its last consumer; graph outputs stay live to
the end. Free ops (views) allocate nothing: their outputs alias their first input, whose lifetime
extends to the views' last use; a view of a weight (a transposed weight before a GEMM, as
torch.compile's ATen graphs have) is weight memory and allocates nothing. The peak is taken while a node runs: its inputs and outputs are
both live.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphperf.ir import Graph
from graphperf.rules.registry import is_free

__all__ = ["PeakMemory", "peak_activation_memory"]


@dataclass(frozen=True)
class PeakMemory:
    """The peak of live activation bytes over a graph's execution order, and the node running at the peak."""

    bytes: int
    at_node: str  # the node running when the peak is reached ("" for an empty graph)


def peak_activation_memory(graph: Graph) -> PeakMemory:
    """The peak of live activation memory (weights excluded) while the graph runs in order (module docstring)."""
    n = len(graph.nodes)
    base: dict[str, str] = {}
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    for name, value in graph.values.items():
        if value.producer is None and value.kind == "input":
            base[name] = name
            start[name] = 0
            end[name] = 0
    weight_views = {name for name, value in graph.values.items() if value.kind == "weight"}
    for i, node in enumerate(graph.nodes):
        if is_free(node.op) and node.inputs and node.inputs[0] in weight_views:
            weight_views.update(node.outputs)
            continue
        aliases = is_free(node.op) and node.inputs and node.inputs[0] in base
        for name in node.inputs:
            if name is not None and name in base:
                end[base[name]] = max(end[base[name]], i)
        for name in node.outputs:
            if aliases:
                base[name] = base[node.inputs[0]]
                end[base[name]] = max(end[base[name]], i)
            else:
                base[name] = name
                start[name] = i
                end[name] = i
    for name in graph.outputs:
        if name in base:
            end[base[name]] = n - 1
    delta = [0] * (n + 1)
    for b, s in start.items():
        t = graph.values[b].type
        size = t.nbytes if t is not None else 0
        delta[s] += size
        delta[end[b] + 1] -= size
    peak, at, live = 0, "", 0
    for i in range(n):
        live += delta[i]
        if live > peak:
            peak, at = live, graph.nodes[i].name
    return PeakMemory(peak, at)
