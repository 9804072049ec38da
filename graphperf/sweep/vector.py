"""The projection of one graph on many target variants at once: numpy arrays over variants, the same float
operations in the same order as `graphperf.project.project` and `graphperf.execution.simulate`, so every
variant's figures equal the one-at-a-time projection's bit for bit (tests/test_sweep_vector.py checks it).

What a target decides about a node splits in two: its *structure* (the kernel model or the roofline, the number
of compute units and so the GEMM waves and split-K candidates, the peak field a dtype routes to) and its
*rates* (bandwidths, peaks, efficiencies, floors, the launch gap and host costs). `plan` reads the structure
once, from the first variant, with the kernel model's own rate-independent functions
(`kernel_time.gemm_candidates`, `kernel_time.attention_waves`); `evaluate` then evaluates every variant of that
structure from its rates. Variants of another structure (a swept ``compute_units``, ``allow_tf32``, a peak set
to none) get a plan of their own. A graph with tiled nodes (the tile model) has no plan: the caller projects it
one variant at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .. import kernel_time as kt
from ..execution import host_costs
from ..ops import LIBRARY_CALL_OPS, matrix_family
from ..peaks import matrix_peak, vector_rate

__all__ = ["Plan", "plan", "structure", "evaluate"]

_FREE, _ROOF, _STREAM, _GEMM, _ATTN = range(5)


@dataclass
class Plan:
    """Per node (graph order): (kind, ...) where kind is free, roofline, stream, gemm or attention, with the
    rate-independent numbers its time needs; `library` marks library calls (eager host cost); `key` is the
    structure it holds for."""

    nodes: list[tuple]
    library: list[bool]
    key: tuple


def structure(target, used: Sequence[tuple[str, str]]) -> tuple:
    """What a variant must share with the plan's target for the plan to hold: the kernel model or not, the
    compute units, and the peak field each (dtype, family) of the graph routes to."""
    params = kt.kernel_params(target)
    return (params is None, params.units if params else 0,
            tuple(matrix_peak(target, d, f).field for d, f in used))


def plan(graph, counts, target) -> Optional[Plan]:
    """The plan of `graph` (its `graphperf.count` result) under `target`'s structure, or None for a graph the
    plan does not cover (a tiled node)."""
    from ..project import MATRIX_CLASSES, _matrix_readers, _repeated_input_bytes, kernel_class

    params = kt.kernel_params(target)
    nodes: list[tuple] = []
    used: list[tuple[str, str]] = []
    for nc in counts:
        cost, node = nc.cost, nc.node
        if cost is None:
            nodes.append((None,))
            continue
        if cost.flops == 0 and cost.transcendentals == 0 and cost.bytes_read == 0 and cost.bytes_written == 0:
            nodes.append((_FREE,))
            continue
        if "tile" in node.attrs:
            return None
        dtype = graph.node_dtype(node) or "float32"
        vw = cost.flops - cost.matrix_flops + cost.transcendentals
        entry = None
        if params is not None:
            moved = cost.bytes_read + cost.bytes_written - _repeated_input_bytes(graph, node)
            klass = kernel_class(graph, node, cost)
            if klass in MATRIX_CLASSES:
                misaligned_dims, node_problem, Gemm = _matrix_readers()
                try:
                    problem = node_problem(graph, node)
                except ValueError:
                    problem = None
                if problem is not None:
                    key = (dtype, klass)
                    used.append(key)
                    simt = matrix_peak(target, dtype, klass).on_vector_unit
                    mis = bool(misaligned_dims(graph, node))
                    if isinstance(problem, Gemm):
                        cands = kt.gemm_candidates(problem.batch, problem.m, problem.n, problem.k, params.units, simt)
                        entry = (_GEMM, key, dtype, vw, mis, moved, cands)
                    else:
                        waves = kt.attention_waves(problem.bh, problem.l, problem.s, problem.e, problem.ev,
                                                   problem.causal, params.units)
                        entry = (_ATTN, key, dtype, vw, mis, moved, waves)
            else:
                entry = (_STREAM, dtype, vw, moved, klass)
        if entry is None:  # the roofline, as project() falls back to it
            key = (dtype, matrix_family(node.op.name, node.attrs)) if cost.matrix_flops else None
            if key:
                used.append(key)
            entry = (_ROOF, key, dtype, cost.matrix_flops, vw, cost.bytes_read + cost.bytes_written)
        nodes.append(entry)
    used = list(dict.fromkeys(used))
    library = [nc.node.op.name in LIBRARY_CALL_OPS for nc in counts]
    return Plan(nodes, library, (structure(target, used), tuple(used)))


def evaluate(p: Plan, targets: Sequence[Any], mode: str) -> dict[str, np.ndarray]:
    """latency_s, device_s, host_s, idle_s, kernels, launch_bound of every target (all of `p`'s structure) in
    `mode` (graph, eager; not the compiled modes, whose graph depends on the target)."""
    v = len(targets)
    used = p.key[1]

    def arr(values) -> np.ndarray:
        return np.array(values, dtype=np.float64)

    params = [kt.kernel_params(t) for t in targets]
    matrix_rate = {k: arr([matrix_peak(t, *k).rate_flops for t in targets]) for k in used}
    dtypes = {n[2] if n[0] in (_GEMM, _ATTN, _ROOF) else n[1] for n in p.nodes if n[0] not in (None, _FREE)}
    vrate = {d: arr([vector_rate(t, d) for t in targets]) for d in dtypes}
    if params[0] is None:
        mem_rate = arr([t.hbm_bytes_per_s * t.memory_efficiency for t in targets])
    else:
        stream = {c: arr([getattr(q, f"{c}_bytes_per_s") for q in params]) for c in ("stream", "strided", "row")}
        floor = {c: arr([q.floor_s[c] for q in params]) for c in ("stream", "strided", "row")}
        matrix_floor = arr([q.matrix_floor_s for q in params])
        misaligned = arr([q.misaligned_factor for q in params])
        units = params[0].units
    gap = arr([t.launch_overhead_us * 1e-6 for t in targets])
    hosts = [host_costs(t, mode) for t in targets]
    kernel_h, free_h, library_h = (arr([h[i] for h in hosts]) for i in range(3))
    zero = np.zeros(v)

    device: list[Optional[np.ndarray]] = []
    for n in p.nodes:
        kind = n[0]
        if kind is None:
            device.append(None)
        elif kind == _FREE:
            device.append(zero)
        elif kind == _ROOF:
            _, key, dtype, mf, vw, moved = n
            compute = zero
            if mf:
                compute = compute + mf / matrix_rate[key]
            if vw:
                compute = compute + vw / vrate[dtype]
            device.append(np.maximum(compute, moved / mem_rate) + 0.0)
        elif kind == _STREAM:
            _, dtype, vw, moved, klass = n
            vector = vw / vrate[dtype] if vw else zero
            device.append(np.maximum(vector, moved / stream[klass]) + floor[klass])
        else:
            _, key, dtype, vw, mis, moved, shape = n
            vector = vw / vrate[dtype] if vw else zero
            rate = matrix_rate[key] * misaligned if mis else matrix_rate[key]
            unit_rate = rate / units
            if kind == _GEMM:
                best_key = best_c = best_m = None
                for _, flops, reuse, partials in shape:
                    c = flops / (unit_rate * reuse)
                    m = (moved + partials) / stream["stream"]
                    key_s = np.maximum(c, m)
                    if best_key is None:
                        best_key, best_c, best_m = key_s, c, m
                    else:
                        better = key_s < best_key
                        best_key = np.where(better, key_s, best_key)
                        best_c, best_m = np.where(better, c, best_c), np.where(better, m, best_m)
                compute, memory = best_c, best_m
            else:
                tile_flops, longest, scale = shape
                per_tile = tile_flops / unit_rate
                compute = zero
                for visits in longest:
                    compute = compute + visits * per_tile
                if scale != 1.0:
                    compute = compute * scale
                memory = moved / stream["stream"]
            device.append(np.maximum(compute + vector, memory) + matrix_floor)
    return _queue(device, [n[0] for n in p.nodes], p.library, gap, kernel_h, free_h, library_h)


def _queue(device, kinds, library, gap, kernel_h, free_h, library_h) -> dict[str, np.ndarray]:
    """`execution.simulate`'s issue queue over arrays of variants (its totals, in its float order)."""
    v = len(gap)
    issue = prev_end = device_total = host_total = np.zeros(v)
    kernels = 0
    for d, kind, lib in zip(device, kinds, library):
        if d is None:
            continue
        if kind == _FREE:
            h, ready = free_h, prev_end
        else:
            h, ready = (library_h if lib else kernel_h), prev_end + gap
            kernels += 1
        issue = issue + h
        end = np.maximum(issue, ready) + d
        device_total = device_total + d
        host_total = host_total + h
        prev_end = end
    idle = np.maximum(prev_end - device_total, 0.0)
    return {"latency_s": prev_end, "device_s": device_total, "host_s": host_total, "idle_s": idle,
            "kernels": np.full(v, kernels), "launch_bound": idle > 0.5 * prev_end}
