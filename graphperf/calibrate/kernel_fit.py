"""Fit the size-aware kernel model's parameters (`graphperf.kernel_time`) to GPU measurements.

Data: kernel sweeps (`graphperf.calibrate.sweeps`: one-op graphs timed with ``do_bench``) and
torch.profiler GPU traces of whole workloads (each traced op's kernels matched to its graph node by
`graphperf.correlate`). Each is a list of `KernelRow`: graph nodes and the kernel time measured for them.
A trace's repeated nodes (the same op on the same shapes, e.g. one per layer) become one row with their
median time, so a 32-layer model does not weigh 32 times.

Measurement model. A trace's kernel time is what the kernels ran (CUPTI); the model's ``device_s`` is
that. A sweep's ``do_bench`` time is CUDA-event time around one call right after an L2 flush, which adds
two things to the kernel (`SweepTimer`, fitted with the rest, applied to sweep rows only and never to a
projection): a fixed event-to-kernel latency ``offset_us``, and the write-back of the flush's dirty lines
that the kernel's reads evict, ``dirty_share * min(bytes read, L2) / bandwidth`` (the flush writes 256 MB,
so L2 is full of dirty lines; a kernel that reads more than L2 evicts all of them).

Fit: start every field at the geometric middle of its bounds (so the result does not depend on the base
target's values) and minimise the mean |log(projected / measured)| of each group (gemm, attention, elementwise sweeps;
trace rows), summed over the groups, by coordinate descent over the fields of `FIT_FIELDS` within their
bounds (a geometric grid, then golden-section refinement), pass after pass until one gains less than
`TOLERANCE` of the loss (at most `ROUNDS`). A field whose group has no
row keeps the base target's value. The log error weighs a 2x miss the same whether over or under and
keeps the big kernels from drowning the small ones.

`split` makes a deterministic held-out set (a row's key hashed), so the fitted figures can be reported on
rows the fit did not see.
"""

from __future__ import annotations

import math
import statistics
import zlib
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..errors import UsageError

__all__ = ["KernelRow", "FIT_FIELDS", "TIMER_BOUNDS", "ROUNDS", "SweepTimer", "FitOutcome", "sweep_kernel_rows",
           "trace_kernel_rows", "predict_s", "fit_kernel_model", "errors_by_group", "split"]

#: Fitted target fields and their bounds. The matrix efficiencies are per-unit rates at full waves.
FIT_FIELDS: dict[str, tuple[float, float]] = {
    "matrix_efficiency": (0.4, 1.0),
    "matrix_efficiency_attention": (0.2, 1.0),
    "matrix_efficiency_conv": (0.1, 1.0),
    "memory_efficiency": (0.4, 1.0),
    "memory_efficiency_strided": (0.05, 1.0),
    "memory_efficiency_row": (0.05, 1.0),
    "kernel_floor_us": (0.2, 10.0),
    "kernel_floor_strided_us": (0.2, 10.0),
    "kernel_floor_row_us": (0.2, 10.0),
    "matrix_floor_us": (0.2, 10.0),
    "misaligned_matrix_factor": (0.02, 1.0),
}
#: Bounds of the sweep timer's two parameters (`SweepTimer`).
TIMER_BOUNDS = {"offset_us": (0.0, 15.0), "dirty_share": (0.0, 1.0)}
ROUNDS = 40  # at most; the descent stops when a pass gains less than TOLERANCE of the loss
TOLERANCE = 1e-5
_GRID = 9


@dataclass(frozen=True)
class KernelRow:
    key: str
    group: str  # gemm | attention | elementwise (sweeps) | trace
    graph: Any
    counts: tuple  # the `NodeCount`s of the graph nodes whose kernels were measured together
    measured_s: float
    sweep: bool  # a do_bench time (adds the timer offset)
    allow_tf32: bool = False


def sweep_kernel_rows(path: str) -> tuple[list[KernelRow], list]:
    """Rows of a sweep file (every counted node of each one-op graph), and the records skipped with why."""
    from ..count import count
    from .sweeps import load_sweeps

    rows, skipped = load_sweeps(path)
    out = [KernelRow(r.key, r.group, r.graph, tuple(count(r.graph)), r.measured_s, True, r.allow_tf32) for r in rows]
    return out, skipped


def trace_kernel_rows(request, trace: str, target) -> list[KernelRow]:
    """Rows of a torch.profiler GPU trace of the workload `request` (a `pipeline.ModelRequest`): each
    matched op's kernel time against its graph nodes; identical nodes merged (median)."""
    from graphperf.passes import canonicalize

    from ..correlate.match import correlate
    from ..count import count
    from ..pipeline import load_graph

    corr = correlate(request.ref, trace, target, request=request)
    if corr.profile.get("device") != "cuda":
        raise UsageError(f"{trace}: a CPU trace (no CUDA kernels); the kernel model is fitted to GPU kernel times: "
                         "record the trace with torch.profiler's CUDA activity on")
    graph, _ = load_graph(request)
    graph = canonicalize(graph).graph
    by_name = {nc.node.name: nc for nc in count(graph)}
    merged: dict[tuple, list] = {}
    for row in corr.rows:
        nodes = tuple(by_name[n] for n in row.nodes if n in by_name)
        if not nodes or row.measured_s <= 0:
            continue
        sig = tuple((nc.node.op.name, tuple(str(graph.values[v].type) if v is not None else "-"
                                            for v in nc.node.inputs)) for nc in nodes)
        merged.setdefault(sig, []).append((nodes, row.measured_s))
    out = []
    for sig, items in merged.items():
        label = " + ".join(f"{op}({', '.join(ins)})" for op, ins in sig)
        out.append(KernelRow(f"{request.ref}: {label}", "trace", graph, items[0][0],
                             statistics.median(m for _, m in items), False))
    return out


@dataclass(frozen=True)
class SweepTimer:
    """What do_bench adds to a kernel's time (module docstring)."""

    offset_us: float = 0.0
    dirty_share: float = 0.0


def predict_s(row: KernelRow, target, timer: SweepTimer = SweepTimer()) -> Optional[float]:
    """The model's kernel time for `row` on `target` (+ what the sweep timer adds, for a sweep row); None
    when a node has no cost rule."""
    from ..project import project

    t = target.with_overrides(allow_tf32=True) if row.allow_tf32 and not target.allow_tf32 else target
    times = project(row.graph, list(row.counts), t)
    if any(x.device_s is None for x in times):
        return None
    device_s = sum(x.device_s for x in times)
    if not row.sweep:
        return device_s
    read = sum(nc.cost.bytes_read for nc in row.counts)
    dirty_s = min(read, (t.l2_mb or 0) * 2**20) / (t.hbm_bytes_per_s * t.memory_efficiency)  # l2_mb as the tile model
    return device_s + timer.offset_us * 1e-6 + timer.dirty_share * dirty_s


def _group_losses(rows: Sequence[KernelRow], target, timer: SweepTimer) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for r in rows:
        p = predict_s(r, target, timer)
        if p is None or p <= 0:
            continue
        sums.setdefault(r.group, []).append(abs(math.log(p / r.measured_s)))
    return {g: sum(v) / len(v) for g, v in sums.items()}


def _loss(rows, target, timer: SweepTimer) -> float:
    return sum(_group_losses(rows, target, timer).values())


@dataclass
class FitOutcome:
    target: Any  # the fitted Target
    fitted: dict[str, float]  # field -> value
    timer: SweepTimer
    loss_before: float
    loss_after: float


_CLASS_FIELDS = {"matmul": ("matrix_efficiency",), "conv": ("matrix_efficiency_conv",),
                 "attention": ("matrix_efficiency_attention",),
                 "stream": ("memory_efficiency", "kernel_floor_us"),
                 "strided": ("memory_efficiency_strided", "kernel_floor_strided_us"),
                 "row": ("memory_efficiency_row", "kernel_floor_row_us")}


def _relevant(rows: Sequence[KernelRow]) -> set[str]:
    """Fields the rows can inform, by the kernel class of each counted node (`project.kernel_class`); a field
    with no row behind it keeps the base value (its loss would be flat: the descent would pick a bound)."""
    from graphperf.alignment import misaligned_dims

    from ..project import MATRIX_CLASSES, kernel_class

    fields = set()
    for r in rows:
        for nc in r.counts:
            if nc.cost is None or (nc.cost.flops == 0 and nc.cost.bytes_read + nc.cost.bytes_written == 0):
                continue
            klass = kernel_class(r.graph, nc.node, nc.cost)
            fields.update(_CLASS_FIELDS[klass])
            if klass in MATRIX_CLASSES:
                fields.update(("matrix_floor_us", "memory_efficiency"))
                if misaligned_dims(r.graph, nc.node):
                    fields.add("misaligned_matrix_factor")
    return fields


def fit_kernel_model(rows: Sequence[KernelRow], base, fields: Optional[Sequence[str]] = None) -> FitOutcome:
    """Fit `fields` (default: every field of `FIT_FIELDS` the rows inform) and the sweep timer offset."""
    relevant = _relevant(rows) if fields is None else set(fields)
    wanted = [f for f in FIT_FIELDS if f in relevant]
    values = {f: _start(f) for f in wanted}  # the same start whatever the base says: a reproducible fit
    timer = {"offset_us": 5.0, "dirty_share": 0.0} if any(r.sweep for r in rows) else {}

    def loss(vals, tim):
        return _loss(rows, base.with_overrides(**vals), SweepTimer(**tim))

    before = last = loss(values, timer)
    for _ in range(ROUNDS):
        for f in wanted:
            values[f] = _minimise(lambda x, f=f: loss({**values, f: x}, timer), *FIT_FIELDS[f])
        for f in list(timer):
            timer[f] = _minimise(lambda x, f=f: loss(values, {**timer, f: x}), *TIMER_BOUNDS[f])
        now = loss(values, timer)
        if last - now <= TOLERANCE * last:
            break
        last = now
    fitted = base.with_overrides(**values)
    return FitOutcome(fitted, values, SweepTimer(**timer), before, loss(values, timer))


def _start(field: str) -> float:
    """Where the descent starts: the geometric middle of the field's bounds."""
    lo, hi = FIT_FIELDS[field]
    return math.sqrt(lo * hi)


def _minimise(fn, lo: float, hi: float) -> float:
    """Grid search over [lo, hi] (geometric when lo > 0), then golden-section search around the best point."""
    if lo > 0:
        grid = [lo * (hi / lo) ** (i / (_GRID - 1)) for i in range(_GRID)]
    else:
        grid = [lo + (hi - lo) * i / (_GRID - 1) for i in range(_GRID)]
    losses = [fn(x) for x in grid]
    i = min(range(_GRID), key=losses.__getitem__)
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = fn(c), fn(d)
    for _ in range(12):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = fn(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = fn(d)
    best = min([(losses[i], grid[i]), (fc, c), (fd, d)])
    return best[1]


def errors_by_group(rows: Sequence[KernelRow], target, timer: SweepTimer = SweepTimer()) -> dict[str, dict[str, float]]:
    """Per group: rows, median |projected/measured - 1|, and the same for rows measured >= 20 us."""
    out: dict[str, dict[str, float]] = {}
    per: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        p = predict_s(r, target, timer)
        if p is not None:
            per.setdefault(r.group, []).append((p, r.measured_s))
    for g, pairs in sorted(per.items()):
        errs = [abs(p / m - 1) for p, m in pairs]
        big = [abs(p / m - 1) for p, m in pairs if m >= 20e-6]
        out[g] = {"rows": len(pairs), "median_ape": statistics.median(errs),
                  "median_ape_20us": statistics.median(big) if big else None}
    return out


def split(rows: Sequence[KernelRow], held_out_share: int = 3) -> tuple[list[KernelRow], list[KernelRow]]:
    """(fit rows, held-out rows): a row is held out when crc32 of its key is divisible by `held_out_share`
    (about 1 in `held_out_share`), so the split is the same on every machine and run."""
    fit, held = [], []
    for r in rows:
        (held if zlib.crc32(r.key.encode()) % held_out_share == 0 else fit).append(r)
    return fit, held
