"""The projection of one graph on many target variants at once: numpy arrays over variants, the same float
operations in the same order as `graphperf.project.project` and `graphperf.execution.simulate`, so every
variant's figures equal the one-at-a-time projection's bit for bit (tests/test_sweep_vector.py checks it).

What a target decides about a node splits in two: its *structure* (the kernel model or the roofline, the number
of compute units and so the GEMM waves and split-K candidates, the peak field a dtype routes to) and its
*rates* (bandwidths, peaks, efficiencies, floors, the launch gap and host costs). `plan` reads the structure
once, from the first variant, with the kernel model's own rate-independent functions
(`kernel_time.gemm_candidates`, `kernel_time.attention_waves`); `evaluate` then evaluates every variant of that
structure from its rates. Variants of another structure (a swept ``compute_units``, ``allow_tf32``, a peak set
to none) get a plan of their own.

The variants are a `Variants`: a base target whose swept float fields are numpy arrays, one value per variant.
Its rates come from the same functions a single Target's do (`peaks.matrix_peak`, `peaks.vector_rate`,
`kernel_time.kernel_params`, `execution.host_costs`), called once on the arrays, with Target's own methods: the
same float operations on the same values as one `Target.with_overrides` per variant, without building one
(tests/test_sweep_vector.py compares them bit for bit). `evaluate` computes the device time of each distinct
node entry once (a transformer's layers repeat) and runs the issue queue in place. A graph with tiled nodes (the tile model) has no plan: the caller projects it
one variant at a time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .. import kernel_time as kt
from ..execution import host_costs
from ..ops import COLLECTIVE_OPS, LIBRARY_CALL_OPS, matrix_family, op_name
from ..peaks import matrix_peak, vector_rate
from ..target import _SCALARS, Target

__all__ = ["Plan", "Variants", "plan", "structure", "evaluate", "variants_of"]

_FREE, _ROOF, _STREAM, _GEMM, _ATTN = range(5)


@dataclass
class Plan:
    """Per node (graph order): (kind, ...) where kind is free, roofline, stream, gemm or attention, with the
    rate-independent numbers its time needs; `library` marks library calls (eager host cost); `key` is the
    structure it holds for."""

    nodes: list[tuple]
    library: list[bool]
    key: tuple
    uses: Mapping[tuple, int] = field(default_factory=dict)  # how many nodes share each entry


class Variants:
    """`count` variants of `base`: the float fields in `arrays` hold one value per variant (a float64 array of
    length `count`), every other field is the base's. It answers what the rate functions ask a Target with
    Target's own methods, so `matrix_peak(variants, ...)`, `vector_rate`, `kernel_params` and `host_costs`
    return arrays (or the base's scalars, where no swept field enters) equal to theirs on each variant.

    >>> import numpy as np; from graphperf.target import load_target
    >>> h100 = load_target("h100")
    >>> v = Variants(h100, {"hbm_gbps": np.array([2000.0, 4800.0])}, 2)
    >>> (v.hbm_bytes_per_s == [h100.with_overrides(hbm_gbps=g).hbm_bytes_per_s for g in (2000, 4800)]).all()
    np.True_
    """

    matrix_peak_flops = Target.matrix_peak_flops
    matrix_efficiency_for = Target.matrix_efficiency_for
    vector_peak_flops = Target.vector_peak_flops
    hbm_bytes_per_s = Target.hbm_bytes_per_s

    def __init__(self, base, arrays: Mapping[str, np.ndarray], count: int):
        for name, values in arrays.items():
            if _SCALARS[name][0] is not float or len(values) != count:
                raise ValueError(f"{name}: only float fields vary across variants, one value each")
        self.base, self.count = base, count
        self.__dict__.update(arrays)

    def __getattr__(self, name: str) -> Any:  # a field not swept: the base's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


def variants_of(targets: Sequence[Any]) -> Variants:
    """The `Variants` of `targets` (variants of the first; fields other than floats must agree, and a float field
    is None in all of them or in none)."""
    base, arrays = targets[0], {}
    for name, (typ, _, _) in _SCALARS.items():
        values = [getattr(t, name) for t in targets]
        if all(v == values[0] for v in values):
            continue
        if typ is not float or any(v is None for v in values):
            raise ValueError(f"{name}: the targets differ in structure")
        arrays[name] = np.array(values, dtype=np.float64)
    return Variants(base, arrays, len(targets))


def structure(target, used: Sequence[tuple[str, str]]) -> tuple:
    """What a variant must share with the plan's target for the plan to hold: the kernel model or not, the
    compute units, and the peak field each (dtype, family) of the graph routes to."""
    params = kt.kernel_params(target)
    return (params is None, params.units if params else 0,
            tuple(matrix_peak(target, d, f).field for d, f in used))


def plan(graph, counts, target) -> Optional[Plan]:
    """The plan of `graph` (its `graphperf.count` result) under `target`'s structure, or None for a graph the
    plan does not cover (a tiled node, or a collective: priced on a link, with a host cost of its own)."""
    from ..project import MATRIX_CLASSES, _matrix_readers, _repeated_input_bytes, kernel_class, matrix_problem

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
        if "tile" in node.attrs or op_name(node.op) in COLLECTIVE_OPS:
            return None
        dtype = graph.node_dtype(node) or "float32"
        vw = cost.flops - cost.matrix_flops + cost.transcendentals
        entry = None
        if params is not None:
            moved = cost.bytes_read + cost.bytes_written - _repeated_input_bytes(graph, node)
            klass = kernel_class(graph, node, cost)
            if klass in MATRIX_CLASSES:
                read = matrix_problem(graph, node)
                if read is not None:
                    problem, mis = read
                    key = (dtype, klass)
                    used.append(key)
                    simt = matrix_peak(target, dtype, klass).on_vector_unit
                    if isinstance(problem, _matrix_readers()[2]):
                        cands = kt.gemm_candidates(problem.batch, problem.m, problem.n, problem.k, params.units, simt)
                        entry = (_GEMM, key, dtype, vw, mis, moved, tuple(cands))
                    else:
                        waves = kt.attention_waves(problem.bh, problem.l, problem.s, problem.e, problem.ev,
                                                   problem.causal, params.units)
                        entry = (_ATTN, key, dtype, vw, mis, moved, (waves[0], tuple(waves[1]), waves[2]))
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
    return Plan(nodes, library, (structure(target, used), tuple(used)), Counter(n for n in nodes if n[0] is not None))


def evaluate(p: Plan, variants: Variants, mode: str) -> dict[str, np.ndarray]:
    """latency_s, device_s, host_s, idle_s, kernels, launch_bound of every variant (all of `p`'s structure) in
    `mode` (graph, eager; not the compiled modes, whose graph depends on the target)."""
    v = variants.count
    params = kt.kernel_params(variants)
    matrix_rate = {k: matrix_peak(variants, *k).rate_flops for k in p.key[1]}
    dtypes = {n[2] if n[0] in (_GEMM, _ATTN, _ROOF) else n[1] for n in p.nodes if n[0] not in (None, _FREE)}
    vrate = {d: vector_rate(variants, d) for d in dtypes}
    if params is None:
        mem_rate = variants.hbm_bytes_per_s * variants.memory_efficiency
    else:
        stream = {"stream": params.stream_bytes_per_s, "strided": params.strided_bytes_per_s,
                  "row": params.row_bytes_per_s}
        floor, matrix_floor, misaligned, units = params.floor_s, params.matrix_floor_s, params.misaligned_factor, params.units
    zero = np.zeros(v)

    def device_s(n: tuple):
        kind = n[0]
        if kind == _FREE:
            return zero
        if kind == _ROOF:
            _, key, dtype, mf, vw, moved = n
            compute = zero
            if mf:
                compute = compute + mf / matrix_rate[key]
            if vw:
                compute = compute + vw / vrate[dtype]
            return np.maximum(compute, moved / mem_rate) + 0.0
        if kind == _STREAM:
            _, dtype, vw, moved, klass = n
            vector = vw / vrate[dtype] if vw else zero
            return np.maximum(vector, moved / stream[klass]) + floor[klass]
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
        return np.maximum(compute + vector, memory) + matrix_floor

    shared = {n: device_s(n) for n, uses in p.uses.items() if uses > 1}  # a repeated layer's nodes: once
    device = (None if n[0] is None else shared[n] if n in shared else device_s(n) for n in p.nodes)
    gap = variants.launch_overhead_us * 1e-6
    return _queue(v, device, [n[0] for n in p.nodes], p.library, gap, *host_costs(variants, mode))


def _queue(v, device, kinds, library, gap, kernel_h, free_h, library_h) -> dict[str, np.ndarray]:
    """`execution.simulate`'s issue queue over arrays of variants (its totals, in its float order). With no host
    cost (a CUDA-graph replay) the issue time stays 0 and every kernel ends at prev_end + gap + device, the same
    floats with fewer operations, each in place."""
    prev_end, device_total = np.zeros(v), np.zeros(v)
    kernels = 0
    if all(isinstance(h, float) and h == 0.0 for h in (kernel_h, free_h, library_h)):
        host_total = np.zeros(v)
        for d, kind in zip(device, kinds):
            if d is None or kind == _FREE:  # a free node ends where the one before it did, adding 0
                continue
            np.add(prev_end, gap, out=prev_end)
            np.add(prev_end, d, out=prev_end)
            np.add(device_total, d, out=device_total)
            kernels += 1
    else:
        issue = host_total = np.zeros(v)
        for d, kind, lib in zip(device, kinds, library):
            if d is None:
                continue
            if kind == _FREE:
                h, ready = free_h, prev_end
            else:
                h, ready = (library_h if lib else kernel_h), prev_end + gap
                kernels += 1
            issue = issue + h
            prev_end = np.maximum(issue, ready) + d
            device_total = device_total + d
            host_total = host_total + h
    idle = np.maximum(prev_end - device_total, 0.0)
    return {"latency_s": prev_end, "device_s": device_total, "host_s": host_total, "idle_s": idle,
            "kernels": np.full(v, kernels), "launch_bound": idle > 0.5 * prev_end}
