"""Tiling at the MLIR level: every linalg contraction evaluated with the what-if tile model.

A contraction (a `linalg` node with ``matrix=True``: matmul, batch matmul, convolution, a generic
that multiplies two operands into a reduction) becomes a tile-model GEMM
(`graphperf.passes.tile_model.Gemm`) straight from its iteration domain and indexing maps; no
per-op formula is needed. With A = input 0, B = input 1, C = the output, each loop is:

- batch: parallel, read by A, B and C (batch matmul's b; a depthwise conv's channel);
- M: parallel, read by A and C, not B (rows; a convolution's N, Ho, Wo: implicit GEMM);
- N: parallel, read by B and C, not A (columns; a convolution's output channels);
- K: reduction (the contracted dim; a convolution's Cin, kh, kw).

The GEMM's sizes are the products of the loop sizes in each class; operand bytes are the nodes'
footprints (graphperf/rules/linalg.py). `graphperf.passes.tiling.search` evaluates every candidate
tile (the same candidates and the same model as ``graphperf whatif --tile auto``) and the best
feasible one is reported. A contraction the model cannot take (a loop in none of the classes, a
target without compute_units / onchip_sram_per_unit_kb) is listed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..dtypes import itemsize_bits
from ..ir import Graph, Node

__all__ = ["ContractionTile", "gemm_of", "tile_contractions"]


@dataclass(frozen=True)
class ContractionTile:
    node: str
    source_op: str
    gemm: tuple[int, int, int, int]  # (batch, M, N, K)
    tile: Optional[tuple[int, int, int]]  # best feasible (Mt, Nt, Kt); None when refused
    latency_s: Optional[float]  # the tile model's latency with that tile
    reason: str = ""  # why refused

    def to_dict(self) -> dict:
        return {"node": self.node, "source_op": self.source_op, "gemm_bmnk": list(self.gemm),
                "tile": None if self.tile is None else list(self.tile), "latency_s": self.latency_s,
                "reason": self.reason}


def gemm_of(graph: Graph, node: Node):
    """The tile-model `Gemm` of a contraction node; ValueError naming what does not fit."""
    from graphperf.passes.tile_model import Gemm

    attrs = node.attrs
    loops = attrs.get("operand_loops")
    if not attrs.get("matrix") or not loops or len(node.inputs) < 2:
        raise ValueError(f"{node.name}: not a linalg contraction")
    a_loops, b_loops, c_loops = set(loops[0]), set(loops[1]), set(loops[-1])
    domain, iters = attrs["domain"], attrs["iterator_types"]
    size = {"batch": 1, "m": 1, "n": 1, "k": 1}
    for d, (extent, kind) in enumerate(zip(domain, iters)):
        if kind == "reduction":
            cls = "k"
        elif d in a_loops and d in b_loops:
            cls = "batch"
        elif d in a_loops:
            cls = "m"
        elif d in b_loops:
            cls = "n"
        else:
            raise ValueError(f"{node.name}: loop d{d} is read by neither contracted operand")
        if kind != "reduction" and d not in c_loops:
            raise ValueError(f"{node.name}: parallel loop d{d} does not index the output")
        size[cls] *= extent
    a, b = graph.types(node.inputs[:2])
    (c,) = graph.types(node.outputs[:1])
    ea, eb, ec = (itemsize_bits(t.dtype) / 8 for t in (a, b, c))
    reads = attrs["reads"]
    a_bytes, b_bytes = int(reads[0] * ea), int(reads[1] * eb)
    batch = size["batch"]
    a_batched = any(d in a_loops and iters[d] == "parallel" and d in b_loops for d in range(len(domain)))
    return Gemm(batch, size["m"], size["n"], size["k"], ea, eb, a_bytes, b_bytes, c.nbytes,
                a_bytes // batch if a_batched else a_bytes, b_bytes // batch if a_batched else b_bytes, ec)


def tile_contractions(graph: Graph, target) -> list[ContractionTile]:
    """The best tile of every contraction in `graph` on `target`, in graph order."""
    from graphperf.passes.tiling import machine_for, search

    out: list[ContractionTile] = []
    for node in graph.nodes:
        if node.op.name != "linalg" or not node.attrs.get("matrix") or "graph_level_cost" in node.attrs:
            continue
        try:
            gemm = gemm_of(graph, node)
            best, _ = search(gemm, machine_for(target, graph.node_dtype(node)))
        except ValueError as exc:
            out.append(ContractionTile(node.name, node.source_op, (0, 0, 0, 0), None, None, str(exc)))
            continue
        shape = (gemm.batch, gemm.m, gemm.n, gemm.k)
        if best is None:
            out.append(ContractionTile(node.name, node.source_op, shape, None, None,
                                       "no candidate tile fits the on-chip memory"))
        else:
            out.append(ContractionTile(node.name, node.source_op, shape, best.tile, best.latency_s))
    return out
