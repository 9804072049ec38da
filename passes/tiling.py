"""Tiling pass: choose a tile per matmul, convolution and attention node and project it with the tile model.

`apply_tiling(graph, target, spec)` returns a `TilingResult`: a NEW graph (the input is never
mutated) whose tiled nodes carry ``attrs["tile"] = {"tile": (Mt, Nt, Kt), "source": "auto" |
"explicit", "spread_s": {"min", "median", "max"} | None, "feasible": n}``, the rewrite record and
every refused node with its reason. `graphperf.project.project` projects a node that carries a
tile with `tiled_time` (the tile model of passes/tile_model.py); every other node is unchanged.

Spec (`parse_tile`): ``auto`` searches every candidate tile per node; ``OP=MxNxK`` (op: matmul,
linear, conv, attention) or ``NODE=MxNxK`` sets one tile (``op:KEY=`` / ``node:KEY=`` say which when a
node is named like an op, e.g. torch.export's first matmul ``linear``: an unprefixed key that is both is
refused); items are comma-separated and
``auto,attention=128x64x64`` searches everything except what is named. A node's own entry wins
over its op's. Infeasible explicit tiles (on-chip memory) are refused with the reason.

Candidates for ``auto``: Mt, Nt in {64, 128, 256} and Kt in {32, 64, 128}. Matrix units take
operands in blocks of 16-64 rows (Hopper wgmma: 64 x N x 32 bytes, CDNA MFMA 32 x 32, TPU MXU
128 x 128); kernels (CUTLASS, cuBLAS, Triton, FlashAttention) use block tiles of 64-256 rows and
K steps of 32-128 elements. Best = lowest latency (ties: the earlier candidate in that order);
the spread is min / median / max latency over the feasible candidates.

GEMM view of each op: matmul ``batch x (M x K) @ (K x N)`` (a weight shared by every batch entry
folds the batch into M); convolution as implicit GEMM, one GEMM per group: M = N*Ho*Wo (direct) or
N*Hi*Wi (transposed), N = Cout/groups, K = (Cin/groups)*kh*kw; attention with the flash tiling
(query tile x key tile, see passes/tile_model.py).

Machine figures from the target: ``compute_units``, ``onchip_sram_per_unit_kb`` (KiB: shared
memory + L1 per SM on NVIDIA, LDS + L1 per CU on AMD, the scratchpad elsewhere), ``l2_mb``
(MiB; none: every re-read goes to DRAM), the matrix peak at the node's dtype / units *
matrix efficiency of the op (`Target.matrix_efficiency_for`), ``hbm_gbps`` * memory_efficiency,
``launch_overhead_us``. A target without
compute units or on-chip memory cannot be tiled: every node is refused with that reason.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from graphperf.dtypes import itemsize_bits
from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType
from graphperf.node_time import node_time
from graphperf.ops import GEMM_OPS, matrix_family
from graphperf.peaks import matrix_peak, vector_rate
from graphperf.rules.matmul import matmul_dims

from .result import PassResult, Refusal, graph_pass
from .tile_model import Attention, Gemm, Machine, TileEstimate, estimate, spread

__all__ = ["TileSpec", "TilingResult", "CANDIDATE_MN", "CANDIDATE_K", "TILED_OPS", "parse_tile",
           "apply_tiling", "candidates", "node_problem", "flash_problem", "machine_for", "search", "tiled_time"]

CANDIDATE_MN = (64, 128, 256)
CANDIDATE_K = (32, 64, 128)
TILED_OPS = GEMM_OPS
_OP_ALIASES = {"matmul": "matmul", "linear": "matmul", "mm": "matmul", "bmm": "matmul", "gemm": "matmul",
               "conv": "conv", "convolution": "conv", "attention": "attention", "sdpa": "attention"}
_TILE_RE = re.compile(r"^(\d+)x(\d+)x(\d+)$")
_MAX_TILE = 4096


@dataclass(frozen=True)
class TileSpec:
    """What ``--tile`` asks for: ``auto`` (search every candidate tile per node) and/or tiles by op and by node name."""

    auto: bool = False
    by_op: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    by_node: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    alias_keys: frozenset = frozenset()  # unprefixed keys read as ops (ambiguous if also a node name)

    @property
    def mode(self) -> str:
        """``"auto"`` or ``"explicit"``."""
        return "auto" if self.auto else "explicit"


@dataclass(frozen=True)
class TilingResult(PassResult):
    """The tiled graph (a new `Graph`), the rewrite's record and the nodes refused (with reasons); `modified`
    when some node was tiled."""

    @property
    def rewrite(self) -> dict:
        """The one rewrite record (``{"rewrite": "tile", "mode", "nodes"}``)."""
        return self.rewrites[0]


def parse_tile(text: str) -> TileSpec:
    """`auto`, `OP=MxNxK`, `NODE=MxNxK`, comma-separated -> `TileSpec`; one-line UsageError otherwise."""
    auto = False
    by_op: dict[str, tuple[int, int, int]] = {}
    by_node: dict[str, tuple[int, int, int]] = {}
    aliases: set[str] = set()
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise UsageError("--tile '': expected auto, OP=MxNxK or NODE=MxNxK, e.g. --tile auto or --tile matmul=128x128x64")
    for item in items:
        if item == "auto":
            auto = True
            continue
        key, sep, size = item.partition("=")
        m = _TILE_RE.match(size.strip().lower())
        if not sep or not key.strip() or not m:
            raise UsageError(f"--tile {item!r}: expected auto, OP=MxNxK or NODE=MxNxK with positive integers, "
                             "e.g. matmul=128x128x64")
        tile = tuple(int(g) for g in m.groups())
        if min(tile) <= 0 or max(tile) > _MAX_TILE:
            raise UsageError(f"--tile {item!r}: tile sizes must be between 1 and {_MAX_TILE}")
        key = key.strip()
        kind, colon, rest = key.partition(":")
        if colon and kind in ("op", "node"):
            key = rest.strip()
        else:
            kind = "op" if key.lower() in _OP_ALIASES else "node"
            if kind == "op":
                aliases.add(key)
        if kind == "op":
            if key.lower() not in _OP_ALIASES:
                raise UsageError(f"--tile {item!r}: {key!r} is not an op; ops: {', '.join(sorted(_OP_ALIASES))}")
            by_op[_OP_ALIASES[key.lower()]] = tile  # type: ignore[assignment]
        else:
            by_node[key] = tile  # type: ignore[assignment]
    return TileSpec(auto, by_op, by_node, frozenset(aliases))


def candidates() -> list[tuple[int, int, int]]:
    """Every candidate tile ``(Mt, Nt, Kt)`` that ``--tile auto`` evaluates: `CANDIDATE_MN` x `CANDIDATE_MN` x
    `CANDIDATE_K`."""
    return [(m, n, k) for m in CANDIDATE_MN for n in CANDIDATE_MN for k in CANDIDATE_K]


def _op(node: Node) -> Optional[str]:
    if node.op.domain == "graphperf" and node.op.name in TILED_OPS:
        return node.op.name
    return None


def _eb(t: TensorType) -> float:
    return itemsize_bits(t.dtype) / 8


def node_problem(graph: Graph, node: Node):
    """The node as a tile-model problem (`Gemm` or `Attention`); ValueError when its shapes do not fit. A what-if
    fused group is read as the kernel it runs: its flash-attention operands, or its leading matmul or conv."""
    op = _op(node)
    ins = graph.types(node.inputs)
    outs = graph.types(node.outputs)
    if op is None and node.op.domain == "graphperf" and node.op.name == "fused":
        return _fused_problem(graph, node, ins, outs)
    if op is None or len(ins) < 2 or ins[0] is None or ins[1] is None or not outs or outs[0] is None:
        raise ValueError(f"{node.name}: not a matmul, conv or attention node with typed operands")
    if op == "matmul":
        return _matmul_problem(node, ins, outs[0])
    if op == "conv":
        return _conv_problem(node, ins, outs[0])
    return _attention_problem(node, ins, outs[0])


def flash_problem(q: TensorType, kt: TensorType, v: TensorType, out: TensorType, other_bytes: int) -> Attention:
    """The unfused chain as the tile model's flash-attention problem: q [..., L, E], k^T [..., E, S],
    v [..., S, Ev]; the masked half of causal scores is computed (the mask is an input, not a flag)."""
    l, e, s, ev = q.shape[-2], q.shape[-1], kt.shape[-1], v.shape[-1]
    eb = itemsize_bits(q.dtype) / 8
    return Attention(q.numel // (l * e), l, s, e, ev, False, eb, q.nbytes, kt.nbytes + v.nbytes,
                     s * (e + ev) * eb, out.nbytes, other_bytes, itemsize_bits(out.dtype) / 8)


def _fused_problem(graph: Graph, node: Node, ins, outs):
    attrs = node.attrs
    operands = attrs.get("flash_operands")
    if attrs.get("kernel") == "flash_attention" and operands:
        q, kt, v = graph.types(operands)
        other = sum(t.nbytes for name, t in zip(node.inputs, ins) if name not in operands and t is not None)
        return flash_problem(q, kt, v, outs[0], other)
    lead = (attrs.get("member_ops") or ("",))[0]
    if lead not in ("matmul", "conv") or len(ins) < 2 or None in ins[:2] or not outs or outs[-1] is None:
        raise ValueError(f"{node.name}: a fused group without a leading matmul or conv the tile model can read")
    if lead == "conv":
        return _conv_problem(node, ins[:2], outs[-1])
    a, b = ins[0], ins[1]
    # the group keeps its members' inputs, not their attributes: B is [N, K] (a linear's weight) when its last
    # dimension is A's K and the output's last is not it; [K, N] otherwise (a square B reads the same either way)
    trans_b = b.rank >= 2 and b.shape[-1] == a.shape[-1] and outs[-1].shape[-1] != b.shape[-1]
    return _matmul_problem(Node(node.name, node.op, node.source_op, node.inputs[:2], node.outputs,
                                {"trans_b": trans_b}), ins[:2], outs[-1])


def _matmul_problem(node, ins, out) -> Gemm:
    a, b = ins[0], ins[1]
    m, n, k = matmul_dims(a, b, node.attrs)
    if m * n == 0 or k == 0 or out.numel == 0 or out.numel % (m * n):
        raise ValueError(f"matmul shapes a {a}, b {b}, out {out} give an empty or inconsistent GEMM")
    batch = out.numel // (m * n)
    a_batch = math.prod(a.shape[:-2]) if a.rank > 2 else 1
    b_batch = math.prod(b.shape[:-2]) if b.rank > 2 else 1
    if b_batch == 1 and batch > 1 and a_batch == batch:  # shared weight: one GEMM with M = batch * M
        m, batch, a_batch = m * batch, 1, 1  # A is then one [batch*M, K] operand
    bias = ins[2].nbytes if len(ins) > 2 and ins[2] is not None else 0
    return Gemm(batch, m, n, k, _eb(a), _eb(b), a.nbytes, b.nbytes, out.nbytes,
                a.nbytes // a_batch, b.nbytes // b_batch, _eb(out), bias)


def _conv_problem(node, ins, out) -> Gemm:
    x, w = ins[0], ins[1]
    if x.rank < 3 or w.rank != x.rank or out.rank != x.rank or w.shape[1] == 0:
        raise ValueError(f"conv shapes x {x}, w {w}, out {out} are not [N, C, *spatial]")
    taps = math.prod(w.shape[2:])
    if node.attrs.get("transposed"):
        groups = out.shape[1] // w.shape[1]
        m = x.shape[0] * math.prod(x.shape[2:])
    else:
        groups = x.shape[1] // w.shape[1]
        m = x.shape[0] * math.prod(out.shape[2:])
    if groups <= 0 or m == 0 or out.numel == 0:
        raise ValueError(f"conv shapes x {x}, w {w}, out {out} give an empty or ungrouped GEMM")
    n = out.shape[1] // groups
    k = (x.shape[1] // groups) * taps
    bias = ins[2].nbytes if len(ins) > 2 and ins[2] is not None else 0
    return Gemm(groups, m, n, k, _eb(x), _eb(w), x.nbytes, w.nbytes, out.nbytes,
                x.nbytes // groups, w.nbytes // groups, _eb(out), bias)


def _attention_problem(node, ins, out) -> Attention:
    from graphperf.rules.attention import _heads  # the cost rule's shape reading, kept in one place

    q, k, v = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    if v is None:
        raise ValueError("attention needs q, k and v")
    bh, l, s, e, ev = _heads(q, k, v, node.attrs)
    mask = ins[3].nbytes if len(ins) > 3 and ins[3] is not None else 0
    return Attention(bh, l, s, e, ev, bool(node.attrs.get("is_causal")), _eb(q), q.nbytes,
                     k.nbytes + v.nbytes, s * (e * _eb(k) + ev * _eb(v)), out.nbytes, mask, _eb(out))


def machine_for(target, dtype: str, family: str = "matmul") -> Machine:
    """The tile model's view of `target` for a node of op family `family` (`graphperf.ops.matrix_family`:
    it picks the matrix efficiency) computing in `dtype`; ValueError naming a missing figure."""
    missing = [f for f in ("compute_units", "onchip_sram_per_unit_kb") if getattr(target, f) is None]
    if missing:
        raise ValueError(f"target {target.name} has no {' or '.join(missing)}; set it with --set "
                         f"{missing[0]}=VALUE to tile")
    from graphperf.kernel_time import kernel_params

    params = kernel_params(target)  # a target with the size-aware kernel model: its fixed GEMM kernel time too
    return Machine(units=target.compute_units, onchip_bytes=target.onchip_sram_per_unit_kb * 1024,
                   l2_bytes=(target.l2_mb or 0.0) * 1024 * 1024,
                   unit_flops_per_s=matrix_peak(target, dtype, family).rate_flops / target.compute_units,
                   bytes_per_s=target.hbm_bytes_per_s * target.memory_efficiency,
                   overhead_s=target.launch_overhead_us * 1e-6,
                   floor_s=params.matrix_floor_s if params is not None else 0.0)


def search(problem, mach: Machine) -> tuple[Optional[TileEstimate], list[TileEstimate]]:
    """Every candidate's estimate and the best feasible one (None when none fits)."""
    ests = [estimate(problem, t, mach) for t in candidates()]
    feasible = [e for e in ests if e.feasible]
    best = min(feasible, key=lambda e: e.latency_s) if feasible else None
    return best, ests


def _refuse(node: Node, kind: str, reason: str) -> Refusal:
    return Refusal("tile", kind, reason, {"node": node.name})


@graph_pass("apply_tiling", requires={"canonical"})
def apply_tiling(graph: Graph, target, spec: TileSpec | str) -> TilingResult:
    """Tile every matmul/conv/attention node the spec covers (a `TileSpec` or `parse_tile` text)."""
    if isinstance(spec, str):
        spec = parse_tile(spec)
    names = {n.name for n in graph.nodes}
    both = sorted(spec.alias_keys & names)
    if both:
        raise UsageError(f"--tile {both[0]}=...: {both[0]!r} is both an op and a node of {graph.name}; write "
                         f"op:{both[0]}=... (every such op) or node:{both[0]}=... (that node)")
    unknown = sorted(set(spec.by_node) - names)
    if unknown:
        fused_into = {m: n.name for n in graph.nodes for m in n.attrs.get("members", ()) if n.op.name == "fused"}
        where = (f"it was fused into {fused_into[unknown[0]]} (fused groups are not tiled)" if unknown[0] in fused_into
                 else f"name an op ({', '.join(sorted(_OP_ALIASES))}) or a node from the report")
        raise UsageError(f"--tile {unknown[0]}=...: no node named {unknown[0]!r} in {graph.name}; {where}")
    nodes: list[Node] = []
    records: list[dict] = []
    refused: list[Refusal] = []
    for node in graph.nodes:
        op = _op(node)
        explicit = spec.by_node.get(node.name) or (spec.by_op.get(op) if op else None)
        if op is None:
            if node.name in spec.by_node:
                refused.append(_refuse(node, "op", f"{node.op} is not a matmul, conv or attention node"))
            nodes.append(node)
            continue
        if explicit is None and not spec.auto:
            nodes.append(node)
            continue
        try:
            problem = node_problem(graph, node)
        except ValueError as exc:
            refused.append(_refuse(node, "shape", str(exc)))
            nodes.append(node)
            continue
        try:
            mach = machine_for(target, graph.node_dtype(node) or "float32", matrix_family(node.op.name, node.attrs))
        except ValueError as exc:
            refused.append(_refuse(node, "target", str(exc)))
            nodes.append(node)
            continue
        best, ests = search(problem, mach)
        feasible = sum(e.feasible for e in ests)
        if explicit is not None:
            chosen = estimate(problem, explicit, mach)
            if not chosen.feasible:
                refused.append(_refuse(node, "infeasible", chosen.reason))
                nodes.append(node)
                continue
            source = "explicit"
        elif best is None:
            refused.append(_refuse(node, "no_fit", f"no candidate tile fits {mach.onchip_bytes / 1024:.0f} KiB "
                                   f"on chip per unit (smallest: {ests[0].reason})"))
            nodes.append(node)
            continue
        else:
            chosen, source = best, "auto"
        spread_s = spread(ests)
        attr = {"tile": chosen.tile, "source": source, "spread_s": spread_s, "feasible": feasible}
        nodes.append(dataclasses.replace(node, attrs={**node.attrs, "tile": attr}))
        records.append({"node": node.name, "op": op, "source": source, "tile": list(chosen.tile),
                        "latency_s": chosen.latency_s, "dram_bytes": chosen.dram_bytes, "spread_s": spread_s,
                        "feasible": feasible,
                        "tiles": chosen.tiles, "waves": chosen.waves})
    new = Graph(graph.name, nodes, dict(graph.values), graph.outputs, dict(graph.meta))
    rewrite = {"rewrite": "tile", "mode": spec.mode, "nodes": records}
    return TilingResult(new, bool(records), [rewrite], refused)


def tiled_time(graph: Graph, node: Node, cost, target):
    """`NodeTime` of a node carrying ``attrs["tile"]`` under the tile model; None when it cannot be modelled
    (shapes or target figures missing), so the caller projects it with the plain roofline."""
    tile = node.attrs["tile"]["tile"]
    dtype = graph.node_dtype(node) or "float32"
    try:
        problem = node_problem(graph, node)
        mach = machine_for(target, dtype, matrix_family(node.op.name, node.attrs))
    except ValueError:
        return None
    est = estimate(problem, tuple(tile), mach)
    compute_s = est.compute_s
    vector_work = cost.flops - cost.matrix_flops + cost.transcendentals
    if vector_work:
        compute_s += vector_work / vector_rate(target, dtype)
    return node_time(compute_s, est.memory_s, mach.overhead_s, est.exposed_s,
                     matrix_peak(target, dtype, matrix_family(node.op.name, node.attrs)))
