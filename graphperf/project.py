"""Project: each counted node's kernel time on the device (`device_s`) on a `Target`, and its roofline parts.

Three models, by node and target:

- the size-aware kernel model (graphperf/kernel_time.py) on a target that sets ``kernel_floor_us`` and
  ``compute_units`` (`size_aware_time`): GEMM waves and split-K, flash-attention waves, misaligned GEMMs,
  stream classes with their floors; a matrix node whose shapes it cannot read falls back to the roofline;
- a collective (all_reduce, all_gather, reduce_scatter, all_to_all: graphperf/rules/collective.py) on its link:
  ``steps * link latency + wire bytes / (link bandwidth * link efficiency)`` stands as its memory side
  (`collective_node_time`); the call's host part, ``collective_base_us``, is the execution model's;
- the tile model (passes/tile_model.py) for a node the tiling what-if gave ``attrs["tile"]``;
- otherwise the roofline with efficiencies:

    compute_s  = matrix_flops / (matrix peak at the node's dtype * matrix efficiency of the node's op)
               + (vector_flops + transcendentals) / (vector peak * vector_efficiency)
    memory_s   = (bytes_read + bytes_written) / (hbm bandwidth * memory_efficiency)
    device_s   = max(compute_s, memory_s)

Every `NodeTime` also carries ``latency_s = device_s + launch_overhead_s``, the node's time in ``graph`` mode
(the device's gap before each kernel); the wall time of a run is the execution model's (graphperf/execution.py).

Matrix work runs on the matrix unit at the dtype of the node's first input; a float32 matmul
uses TF32 only where the target allows it (a float32 convolution where ``allow_tf32_conv``), otherwise the fp32
vector peak (PyTorch's default); matrix work keeps its matrix efficiency whichever unit runs it:
`matrix_efficiency`, or the target's own figure for convolutions and attention when it gives one
(`matrix_efficiency_conv`, `matrix_efficiency_attention`; a fused group takes its kernel's family:
`ops.matrix_family`). Each transcendental costs one vector op. `bound` is the largest of compute, memory
and launch overhead; nodes that do no work (views) are `free` and launch nothing; unknown nodes have no
latency (None), never zero.
"""

from __future__ import annotations

import functools
from typing import Optional

from .count import NodeCount
from .ir import Graph
from . import kernel_time as kt
from .kernel_time import kernel_params
from .ops import BROADCASTING_OPS, MATRIX_FAMILIES, is_canonical, matrix_family
from .rules.collective import COLLECTIVE_OPS, collective_time
from .node_time import NodeTime, node_time
from .peaks import Bound, PeakUsed, matrix_peak, vector_rate

__all__ = ["NodeTime", "node_time", "project", "matrix_problem"]


_UNKNOWN = NodeTime(None, None, None, None, Bound.UNKNOWN)
_FREE = NodeTime(0.0, 0.0, 0.0, 0.0, Bound.FREE, device_s=0.0)


def project(graph: Graph, counts: list[NodeCount], target) -> list[NodeTime]:
    """Project every counted node's time on `target` (the models in the module docstring).

    Parameters
    ----------
    graph : Graph
        The graph `counts` was counted on (its value types give each node's dtype and shapes).
    counts : list of NodeCount
        `graphperf.count`'s result for `graph`, in graph order.
    target : Target
        The device (`graphperf.load_target`).

    Returns
    -------
    list of NodeTime
        One per count, in order; an unknown node (cost None) gets latency None, never zero.

    Example
    -------
    >>> import graphperf
    >>> from graphperf.passes import canonicalize
    >>> graph, _ = graphperf.load_graph(graphperf.ModelRequest("gpt2", config="tiny"))
    >>> graph = canonicalize(graph).graph
    >>> times = graphperf.project(graph, graphperf.count(graph), graphperf.load_target("h100"))
    >>> len(times) == len(graph), {t.bound for t in times} <= {"compute", "memory", "overhead", "free"}
    (True, True)
    >>> sum(t.latency_s for t in times) > 0
    True
    """
    mem_rate = target.hbm_bytes_per_s * target.memory_efficiency
    overhead_s = target.launch_overhead_us * 1e-6
    params = kernel_params(target)
    matrix_cache: dict[tuple[str, str], PeakUsed] = {}
    vector_cache: dict[str, float] = {}
    out: list[NodeTime] = []
    for nc in counts:
        cost = nc.cost
        if cost is None:
            out.append(_UNKNOWN)
            continue
        if cost.flops == 0 and cost.transcendentals == 0 and cost.bytes_read == 0 and cost.bytes_written == 0:
            out.append(_FREE)
            continue
        node = nc.node
        if node.op.name in COLLECTIVE_OPS and is_canonical(node.op):  # priced on its link, not on device memory
            out.append(collective_node_time(graph, node, cost, target, overhead_s))
            continue
        if "tile" in node.attrs:
            from graphperf.passes.tiling import tiled_time  # the pass owns the tile model

            tiled = tiled_time(graph, node, cost, target)
            if tiled is not None:
                out.append(tiled)
                continue
        dtype = graph.node_dtype(node) or "float32"
        if params is not None:
            timed = size_aware_time(graph, node, cost, target, params, dtype, overhead_s)
            if timed is not None:
                out.append(timed)
                continue
        compute_s = 0.0
        peak = None
        if cost.matrix_flops:
            key = (dtype, matrix_family(node.op.name, node.attrs))
            peak = matrix_cache.get(key)
            if peak is None:
                peak = matrix_cache[key] = matrix_peak(target, *key)
            compute_s += cost.matrix_flops / peak.rate_flops
        vector_work = cost.flops - cost.matrix_flops + cost.transcendentals
        if vector_work:
            vrate = vector_cache.get(dtype)
            if vrate is None:
                vrate = vector_cache[dtype] = vector_rate(target, dtype)
            compute_s += vector_work / vrate
        memory_s = (cost.bytes_read + cost.bytes_written) / mem_rate
        out.append(node_time(compute_s, memory_s, overhead_s, peak=peak))
    return out


def collective_node_time(graph: Graph, node, cost, target, overhead_s: float) -> NodeTime:
    """A collective's time (graphperf/rules/collective.py): its link time stands as the memory side (`memory_s`),
    the reduction's adds as the compute side; unknown (latency None) when the target lacks the link's figures."""
    x, out = graph.types(node.inputs[:1])[0], graph.types(node.outputs[:1])[0]
    timed = collective_time(node.op.name, node.attrs, x, out, target)
    if timed.link_s is None:
        return _UNKNOWN
    vector_work = cost.flops + cost.transcendentals
    compute_s = vector_work / vector_rate(target, graph.node_dtype(node) or "float32") if vector_work else 0.0
    return node_time(compute_s, timed.link_s, overhead_s)


def _repeated_input_bytes(graph: Graph, node) -> int:
    """Bytes of inputs a node takes more than once (``x * x``): counted once per use by convention, fetched from
    DRAM once by the kernel (the second load hits the cache the first one filled)."""
    inputs = node.inputs
    if len(inputs) < 2 or len(set(inputs)) == len(inputs):
        return 0
    seen: set = set()
    extra = 0
    for v in inputs:
        if v is not None and v in seen and graph.values[v].type is not None:
            extra += graph.values[v].type.nbytes
        seen.add(v)
    return extra


@functools.lru_cache(maxsize=None)
def _matrix_readers():
    """(alignment.misaligned_dims, the tile model's reading of matmul/conv/attention shapes, its Gemm type),
    imported on first use: graphperf.passes imports this module."""
    from graphperf.alignment import misaligned_dims
    from graphperf.passes.tile_model import Gemm
    from graphperf.passes.tiling import node_problem

    return misaligned_dims, node_problem, Gemm


def matrix_problem(graph: Graph, node):
    """(the kernel model's problem, misaligned) of a matrix node: its GEMM or flash-attention shapes as the tile
    model reads them (`passes.tiling.node_problem`) and whether a GEMM dimension is misaligned
    (`alignment.misaligned_dims`); None when its shapes cannot be read (the roofline then projects it)."""
    misaligned_dims, node_problem, _ = _matrix_readers()
    try:
        problem = node_problem(graph, node)
    except ValueError:
        return None
    return problem, bool(misaligned_dims(graph, node))


def size_aware_time(graph: Graph, node, cost, target, params, dtype: str, overhead_s: float) -> Optional[NodeTime]:
    """The node's time under the size-aware kernel model (`graphperf.kernel_time`); None for a matrix node
    whose shapes the model cannot read (the caller then uses the roofline above)."""
    vector_work = cost.flops - cost.matrix_flops + cost.transcendentals
    vector_s = vector_work / vector_rate(target, dtype) if vector_work else 0.0
    moved = cost.bytes_read + cost.bytes_written - _repeated_input_bytes(graph, node)
    klass = kernel_class(graph, node, cost)
    if klass in MATRIX_CLASSES:
        read = matrix_problem(graph, node)
        if read is None:
            return None
        problem, misaligned = read
        peak = matrix_peak(target, dtype, klass)
        rate = peak.rate_flops
        if misaligned:
            rate *= params.misaligned_factor
        unit_rate = rate / params.units
        if isinstance(problem, _matrix_readers()[2]):
            compute_s, memory_s, _ = kt.gemm_time(problem.batch, problem.m, problem.n, problem.k, moved, unit_rate,
                                                  params, simt=peak.on_vector_unit)
        else:
            compute_s, memory_s = kt.attention_time(problem.bh, problem.l, problem.s, problem.e, problem.ev,
                                                    problem.causal, moved, unit_rate, params)
        return node_time(compute_s + vector_s, memory_s, overhead_s, params.matrix_floor_s, peak)
    return node_time(vector_s, kt.stream_memory_s(moved, klass, params), overhead_s, params.floor_s[klass])


#: Kernel classes of matrix work: the op families whose matrix efficiency they run at (`ops.matrix_family`).
MATRIX_CLASSES = MATRIX_FAMILIES


def kernel_class(graph: Graph, node, cost) -> str:
    """The size-aware kernel model's class of a counted node: its matrix family (`MATRIX_CLASSES`) when it does
    matrix work, else its stream class (`kernel_time.stream_class`: stream, strided or row)."""
    if cost.matrix_flops:
        return matrix_family(node.op.name, node.attrs)
    op = node.op.name
    ins = out_shape = None
    if op in BROADCASTING_OPS:  # only an elementwise op's class depends on its shapes (broadcast operands)
        values = graph.values
        ins = [values[v].type.shape if v is not None and values[v].type is not None else None for v in node.inputs]
        out_type = values[node.outputs[0]].type if node.outputs else None
        out_shape = out_type.shape if out_type is not None else None
    return kt.stream_class(op, ins, out_shape)
