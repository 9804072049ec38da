"""Attention fusion: an unfused QK^T -> scale/mask -> softmax -> PV chain becomes one flash-style kernel.

Pattern, anchored on each `softmax` node whose output space is the score space ``n``:

- backwards from the softmax input, through pointwise nodes over ``n`` elements (scale, additive
  mask, cast), to the matmul that produced the scores (``QK``: output of ``n`` elements);
- forwards from the softmax output, through a region of pointwise nodes over ``n`` elements (cast,
  dropout, the ONNX exporter's ``Where(IsNaN(p), 0, p)`` guard) whose values are read only inside the
  region, to the one matmul that reads the probabilities as its first operand (``PV``).

The group {QK, chain, softmax, chain, PV} is fused when it is legal (passes/fusion.py: every member
counted, no cycle) and when:

- no score or probability tensor is read outside the group or is a graph output (kind
  ``scores_escape``): a flash kernel never writes them, so a graph that needs them cannot use one;
- its on-chip tiling fits the target: the chain is read as a flash-attention problem and every
  candidate tile is evaluated with the tile model the `--tile` rewrite uses (passes/tile_model.py:
  query tile, streamed K/V tiles, scores and output accumulator on chip, against
  ``onchip_sram_per_unit_kb``); the fastest tile that fits is recorded in the fused node's
  ``attrs["flash_tile"]`` with its on-chip bytes and the spread over the feasible tiles. Refused as
  ``capacity`` when no candidate fits, ``capacity_unknown`` when the target lacks the figures.

Bytes then follow from the shared materialisation: q, k, v and the mask (if any) are read once and the
output written once; the score traffic disappears. FLOPs are the members' sum: the masked half of a
causal score matrix that the unfused graph computes is still counted (a kernel that skips masked
blocks would do about half the score work; graphperf does not assume it). K/V heads repeated for
grouped-query attention (``repeat_kv`` copies) stay outside the group.
"""

from __future__ import annotations

from typing import Optional

from graphperf.ir import Graph, Node
from graphperf.rules.registry import is_free

from .fuse_chains import is_pointwise
from .fusion import FusionResult, Grouper
from .result import graph_pass
from .tile_model import spread
from .tiling import flash_problem, machine_for, search

__all__ = ["fuse_attention"]


def _is(node: Node, name: str) -> bool:
    return node.op.domain == "graphperf" and node.op.name == name


def _numel(values, name: Optional[str]) -> Optional[int]:
    return None if name is None else values[name].type.numel


def _passes_scores(node: Node, values, n: int) -> bool:
    """True for a node the scores or probabilities may pass through inside the kernel: a pointwise op over the
    ``n`` score elements (scale, mask, cast, dropout, NaN guard) or a view of them (torch.export writes an
    eval-mode dropout and a same-dtype cast as views)."""
    return (is_pointwise(node) or is_free(node.op)) and bool(node.outputs) and _numel(values, node.outputs[0]) == n


def _back_to_scores(g: Grouper, softmax: Node, n: int) -> Optional[list[str]]:
    """[QK, pointwise..., ] from the softmax input back to the score matmul (breadth first), or None."""
    values = g.values
    start = softmax.inputs[0]
    queue: list[tuple[str, list[str]]] = [(start, [])]
    seen: set[str] = set()
    while queue:
        value, path = queue.pop(0)
        p = values[value].producer
        if p is None or p in seen:
            continue
        seen.add(p)
        node = g.by_name[p]
        if _is(node, "matmul") and _numel(values, node.outputs[0]) == n:
            return [p, *path]
        if _passes_scores(node, values, n):
            queue.extend((v, [p, *path]) for v in node.inputs if v is not None and _numel(values, v) == n)
    return None


def _forward_to_pv(g: Grouper, softmax: Node, n: int) -> Optional[list[str]]:
    """[pointwise..., PV] from the softmax output to the one matmul reading the probabilities as operand 0,
    or None. The probabilities may pass through a pointwise region over ``n`` elements, not only a chain:
    the ONNX exporter's NaN guard reads them twice (``Where(IsNaN(p), 0, p)``). Every reader of a value in
    the region must be in the region or be that matmul."""
    region: list[str] = []
    pv: Optional[str] = None
    frontier = [softmax.outputs[0]]
    seen_values: set[str] = set()
    while frontier:
        value = frontier.pop(0)
        if value in seen_values:
            continue
        seen_values.add(value)
        for user in sorted(g.consumers.get(value, ()), key=g.index.__getitem__):
            node = g.by_name[user]
            if _is(node, "matmul") and node.inputs[0] == value and value not in node.inputs[1:]:
                if pv not in (None, user):
                    return None  # the probabilities feed two matmuls: not one attention
                pv = user
            elif _passes_scores(node, g.values, n):
                if user not in region:
                    region.append(user)
                    frontier.extend(node.outputs)
            else:
                return None  # read by something else: not the middle of an attention chain
    if pv is None or any(m == pv for m in region):
        return None
    return [*sorted(region, key=g.index.__getitem__), pv]


@graph_pass("fuse_attention", requires={"canonical"})
def fuse_attention(graph: Graph, target=None) -> FusionResult:
    """Fuse every unfused QK^T -> softmax -> PV chain into one flash-style node (the rules above); the
    refused chains carry their reason. `target` gives the on-chip capacity the tiling check needs."""
    g = Grouper(graph, "attention")
    values = graph.values
    graph_outputs = set(graph.outputs)
    for node in graph.nodes:
        if not _is(node, "softmax") or node.name in g.group_of or not node.outputs:
            continue
        n = _numel(values, node.outputs[0])
        before = _back_to_scores(g, node, n)
        after = _forward_to_pv(g, node, n)
        if before is None or after is None:
            continue  # a softmax that is not the middle of an attention chain
        members = [*before, node.name, *after]
        where = {"nodes": members}
        if any(m in g.group_of for m in members):
            g.refuse("joined_another_group", f"{members[0]} already belongs to another attention group", **where)
            continue
        escaped = [(v, u) for m in members[:-1] for v in g.by_name[m].outputs
                   for u in sorted(g.consumers.get(v, ())) if u not in members] + \
                  [(v, "graph output") for m in members[:-1] for v in g.by_name[m].outputs if v in graph_outputs]
        if escaped:
            v, u = escaped[0]
            g.refuse("scores_escape", f"{v} is read by {u}: a flash kernel never materialises scores", **where)
            continue
        bad = g.check(set(members))
        if bad is not None:
            g.refuse(*bad, **where)
            continue
        qk, pv = g.by_name[before[0]], g.by_name[after[-1]]
        q, kt, v, out = (values[name].type for name in (qk.inputs[0], qk.inputs[1], pv.inputs[1], pv.outputs[0]))
        mset = set(members)
        external = {x for m in members for x in g.by_name[m].inputs if x is not None and values[x].producer not in mset}
        other = sum(values[x].type.nbytes for x in external - {qk.inputs[0], qk.inputs[1], pv.inputs[1]})
        if target is None:
            g.refuse("capacity_unknown", "no target to check the flash tiling against", **where)
            continue
        try:
            mach = machine_for(target, q.dtype, "attention")
        except ValueError as exc:
            g.refuse("capacity_unknown", str(exc), **where)
            continue
        best, ests = search(flash_problem(q, kt, v, out, other), mach)
        if best is None:
            smallest = min(ests, key=lambda e: e.onchip_bytes)
            g.refuse("capacity", f"no flash tile fits: {smallest.reason}", **where)
            continue
        g.add(members, kernel="flash_attention", flash_operands=(qk.inputs[0], qk.inputs[1], pv.inputs[1]),
              flash_tile={"tile": list(best.tile), "onchip_bytes": best.onchip_bytes,
                          "onchip_capacity_bytes": mach.onchip_bytes, "latency_s": best.latency_s,
                          "spread_s": spread(ests)})
    return g.result()
