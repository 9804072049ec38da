"""Producer-consumer chain fusion: elementwise chains, GEMM/conv epilogues, and norms with neighbours.

Three rules grow groups the same way and differ only in which nodes may start a group, which may
join one, and which iteration spaces one kernel can cover:

- ``elementwise``: pointwise nodes (`graphperf.ops.ELEMENTWISE` and `cast`) over one iteration space
  (the same output element count; a broadcast *input* is fine).
- ``epilogue``: a matrix node (matmul, einsum, conv) followed by pointwise consumers over its output
  space: bias, activation, residual add, cast, gating multiply. One matrix node per group.
- ``norm``: reductions and norm/softmax nodes with their pointwise neighbours (a residual add before,
  a scale or cast after). A row kernel covers two spaces: the full space ``F`` and the row space
  ``R`` a reduction leaves (RMSNorm: pow [F] -> mean [F->R] -> add eps, rsqrt [R] -> mul x, mul w
  [F]); every reduction in a group maps ``F`` to the same ``R``. Groups without a reduction or a
  norm/softmax node are not formed by this rule. With a target, the row (``F/R`` elements, or the
  last dimension of a norm/softmax input) must fit in the on-chip memory of one compute unit,
  otherwise the group is refused (kind ``capacity``): a single-pass row kernel keeps its row on chip.

Nodes are visited in topological order; a node joins the group of one of its producers (the first
legal one) when the producer's group (or the producer, starting a group) accepts it. Refused
candidates are kept with their reason: ``uncounted``, ``iteration_space``, ``joined_another_group``,
``cycle`` (see passes/fusion.py for the shared legality rules and the materialisation).
"""

from __future__ import annotations

from typing import Callable, Optional

from graphperf.dtypes import itemsize_bits
from graphperf.ir import Graph, Node
from graphperf.ops import EPILOGUE_MATRIX_OPS, NORM_OPS, POINTWISE_OPS, ROW_REDUCTIONS, op_name

from .fusion import FusionResult, Grouper
from .result import graph_pass

__all__ = ["fuse_elementwise", "fuse_epilogue", "fuse_norm", "is_pointwise"]

# A node's iteration signature: ("pw", n) pointwise over n elements, ("red", n_in, n_out) a reduction,
# ("norm", n) a norm/softmax node (row-reducing, output the size of its input), ("mx", n) a matrix node.
Sig = tuple
State = tuple  # (full space, row space or None, has a reduction/norm)


def is_pointwise(node: Node) -> bool:
    """True for a node of a pointwise op (`graphperf.ops.POINTWISE_OPS`): fusable into any chain."""
    return op_name(node.op) in POINTWISE_OPS


def _signature(node: Node, values) -> Optional[Sig]:
    op = op_name(node.op)
    if not node.outputs or node.outputs[0] is None:
        return None
    out = values[node.outputs[0]].type.numel
    if op in POINTWISE_OPS:
        return ("pw", out)
    if op in EPILOGUE_MATRIX_OPS:
        return ("mx", out)
    first = node.inputs[0] if node.inputs else None
    if first is None:
        return None
    if op in ROW_REDUCTIONS:
        return ("red", values[first].type.numel, out)
    if op in NORM_OPS:
        return ("norm", out)
    return None


# -- the three rules' space policies ---------------------------------------------------------------
# start(sig) -> State for a group started by a node of that signature (None: cannot start one);
# admit(state, sig) -> the new State if a node of signature `sig` may join, else None.


def _ew_start(sig: Sig) -> Optional[State]:
    return (sig[1], None, False) if sig[0] == "pw" else None


def _ew_admit(state: State, sig: Sig) -> Optional[State]:
    return state if sig[0] == "pw" and sig[1] == state[0] else None


def _epi_start(sig: Sig) -> Optional[State]:
    return (sig[1], None, False) if sig[0] == "mx" else None


def _norm_start(sig: Sig) -> Optional[State]:
    if sig[0] == "pw":
        return (sig[1], None, False)
    if sig[0] == "red":
        return (sig[1], sig[2], True)
    if sig[0] == "norm":
        return (sig[1], None, True)
    return None


def _norm_admit(state: State, sig: Sig) -> Optional[State]:
    full, rows, reduces = state
    if sig[0] == "pw" and sig[1] in (full, rows):
        return state
    if sig[0] == "red" and sig[1] == full and rows in (None, sig[2]):
        return (full, sig[2], True)
    if sig[0] == "norm" and sig[1] == full:
        return (full, rows, True)
    return None


@graph_pass("fuse_elementwise", requires={"canonical"})
def fuse_elementwise(graph: Graph, target=None) -> FusionResult:
    """Elementwise chains (no on-chip state: `target` is accepted for a uniform signature, unused)."""
    return _grow(graph, "elementwise", ("pw",), _ew_start, _ew_admit)


@graph_pass("fuse_epilogue", requires={"canonical"})
def fuse_epilogue(graph: Graph, target=None) -> FusionResult:
    """GEMM/conv epilogues (streamed from the accumulator: `target` unused)."""
    return _grow(graph, "epilogue", ("pw",), _epi_start, _ew_admit)


@graph_pass("fuse_norm", requires={"canonical"})
def fuse_norm(graph: Graph, target=None) -> FusionResult:
    """Fuse each norm or row reduction with the pointwise nodes around it into one kernel; a group whose rows
    exceed the target's on-chip memory per unit (``onchip_sram_per_unit_kb``) is refused with the reason."""
    return _grow(graph, "norm", ("pw", "red", "norm"), _norm_start, _norm_admit, keep=_norm_keep(target))


def _norm_keep(target) -> Callable[[Grouper, int, State], Optional[tuple[str, str, dict]]]:
    """Final check of a norm group: (kind, reason, extras) to refuse it, or (None, None, extras)."""
    cap_kb = getattr(target, "onchip_sram_per_unit_kb", None) if target is not None else None

    def keep(g: Grouper, gid: int, state: State):
        full, rows, reduces = state
        if not reduces:
            return "no_reduction", "", {}
        members = [g.by_name[m] for m in g.groups[gid]]
        row_elems = full // rows if rows else max(g.values[m.inputs[0]].type.shape[-1] for m in members
                                                  if _signature(m, g.values)[0] == "norm")
        bits = max(itemsize_bits(g.values[m.outputs[0]].type.dtype) for m in members)
        row_bytes = row_elems * bits // 8
        extras = {"row_bytes": row_bytes, "onchip_bytes": None if cap_kb is None else int(cap_kb * 1024)}
        if cap_kb is not None and row_bytes > cap_kb * 1024:
            return "capacity", (f"a row of {row_bytes} B does not fit in {cap_kb:g} KiB of on-chip memory per "
                                "compute unit"), extras
        return None, None, extras

    return keep


def _grow(graph: Graph, rule: str, kinds: tuple[str, ...], start, admit, keep=None) -> FusionResult:
    g = Grouper(graph, rule)
    values = graph.values
    sigs = {n.name: _signature(n, values) for n in graph.nodes}
    states: dict[int, State] = {}
    for node in graph.nodes:
        sig = sigs[node.name]
        if sig is None or sig[0] not in kinds:
            continue
        joined = None
        for p in g.producers(node):
            gid = g.group_of.get(p)
            if gid is not None and gid == joined:
                continue
            if gid is not None:
                state = states[gid]
            elif sigs[p] is None or (state := start(sigs[p])) is None:
                continue  # p can neither start a group nor belongs to one: not a candidate
            new_state = admit(state, sig)
            reason = kind = None
            missing = g.uncounted((p, node.name))
            if missing is not None:
                kind, reason = "uncounted", f"{missing} has no cost rule that counts it"
            elif new_state is None:
                kind = "iteration_space"
                reason = (f"different iteration space: {values[g.by_name[p].outputs[0]].type} vs "
                          f"{values[node.outputs[0]].type}")
            elif joined is not None:
                kind, reason = "joined_another_group", f"{node.name} already joined the group of {g.groups[joined][0]}"
            else:
                via = g.escape(g.members(p) | {node.name})
                if via is not None:
                    kind, reason = "cycle", f"would create a cycle through {via}"
            if reason is not None:
                g.refuse(kind, reason, producer=p, consumer=node.name)
                continue
            joined = g.join(p, node.name)
            states[joined] = new_state
    if keep is not None:
        _apply_keep(g, states, keep, sigs)
    return g.result()


def _apply_keep(g: Grouper, states: dict[int, State], keep, sigs) -> None:
    """Dissolve the groups `keep` rejects; drop refusals that only concerned groups the rule never keeps
    (pointwise-only chains are the elementwise rule's business, not this one's)."""
    for gid, members in enumerate(g.groups):
        if members is None:
            continue
        kind, reason, extras = keep(g, gid, states[gid])
        if kind is None:
            if extras:
                g.extras[gid] = extras
            continue
        if reason:
            g.refuse(kind, reason, nodes=list(members))
        g.dissolve(gid)

    def relevant(r: dict) -> bool:
        if "producer" not in r:
            return True
        ends = (r["producer"], r["consumer"])
        return any(sigs[n] is not None and sigs[n][0] != "pw" for n in ends) or r["producer"] in g.group_of

    g.refused[:] = [r for r in g.refused if relevant(r)]
