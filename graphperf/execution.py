"""Execution model: the wall time of a projected graph, from a simulation of the host's issue queue.

The roofline (graphperf/project.py) gives each node's kernel time on the device, `NodeTime.device_s`
(0.0 for free nodes, which launch no kernel; None for unknown nodes). How those kernels fill the
wall clock depends on how the host issues them, the *mode*, and on the device's own gap between two
kernels of one stream (``launch_overhead_us``: the time from one kernel's end to the start of the next,
already queued, one; 1.2-1.6 us measured on an H200, in a CUDA-graph replay and in eager runs alike):

    issue_i = issue_{i-1} + host_s(node i)          the host issues the nodes in graph order
    start_i = max(issue_i, end_{i-1} + gap_i)       the device runs one kernel at a time, in order;
                                                    gap_i = launch_overhead_us for a kernel, 0 for a free node
    end_i   = start_i + device_s_i
    wall    = end of the last node;  node latency_s = end_i - end_{i-1}   (so latencies sum to the wall)

with ``issue_{-1} = end_{-1} = 0``. Unknown nodes are skipped (no time; the report says the
latency is a lower bound). Host time per node, by mode (target fields, microseconds):

    mode       kernel-launching node                         free node (view, reshape)
    graph      0 (one replay of a captured CUDA graph)       0
    eager      host_eager_us (default launch_overhead_us);   host_eager_view_us (default 0)
               a library call (`ops.LIBRARY_CALL_OPS`: cuBLAS, cuDNN, attention) host_eager_library_us
               (default host_eager_us)
    compiled   compiled_launch_us (default launch_overhead_us) 0
    (a collective: collective_base_us, NCCL's enqueue, in eager and compiled mode; nothing in a replay)
    reduce-overhead  0 (torch.compile(mode="reduce-overhead")    0
               replays the compiled kernels as one CUDA graph)

Measured on an H200 host (shared/h200): the gap between back-to-back kernels is 1.2-1.5 us (median of the
traces' kernel-to-kernel gaps); eager PyTorch spends about 17 us of host time per TensorIterator op, 64 us per
library call and 5 us per view (fitted to five workloads' eager walls, benchmarks/RESULTS_H200.md).

So in ``graph`` mode the wall is sum(device_s + launch_overhead) over the kernels: the projection graphperf
made before the execution model, and the default. `compiled` projects the graph a compiler emits; the
caller rewrites the graph first (every what-if fusion rule, ``--fuse auto``: `graphperf.pipeline.mode_graph`)
and queues it here like any other; ``reduce-overhead`` queues the same compiled graph with no host time per
kernel (`FUSED_MODES` are the modes that run the compiled graph).

A node whose device waited (for the host, or the inter-kernel gap) longer than its own device time is bound
``overhead``; otherwise it keeps the roofline's bound, with the launch term left to the queue: a node the
roofline called ``overhead`` (launch cost above its work) that the queue did not hold up is bound by its work
side (``compute`` if compute_s >= memory_s, else ``memory``). Free nodes that waited for no host
time stay ``free``; unknown nodes stay ``unknown``.

Guarantees: pure functions of the times and the target's figures (no torch); one O(n) loop over
floats per simulation; the node latencies of a simulation sum to its wall time (up to float
rounding); the device is busy exactly sum(device_s) of the wall (kernels never overlap), so
``idle_s = wall - device_s`` (the gaps and the waits for the host). `simulate` raises a one-line
`UsageError` for an unknown mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Sequence

from .errors import UsageError
from .ops import COLLECTIVE_OPS, LIBRARY_CALL_OPS

__all__ = ["DEFAULT_MODE", "MODES", "FUSED_MODES", "collective_host_s", "Execution", "HostCosts", "check_mode", "host_costs", "simulate"]

MODES = ("graph", "eager", "compiled", "reduce-overhead")
DEFAULT_MODE = "graph"
#: Modes that run the graph a compiler emits (torch.compile's kernels), not the captured one.
FUSED_MODES = ("compiled", "reduce-overhead")


def check_mode(mode: str) -> str:
    """`mode` if it is one of `MODES`, else a one-line `UsageError` naming them."""
    if mode not in MODES:
        raise UsageError(f"execution mode {mode!r}: choose one of {', '.join(MODES)} (--mode)")
    return mode


class HostCosts(NamedTuple):
    """Host seconds per node of one mode: a kernel-launching node, a free node, a library call."""

    kernel_s: float
    view_s: float
    library_s: float


def host_costs(target, mode: str = DEFAULT_MODE) -> HostCosts:
    """The host seconds per node of `mode` on `target` (the module docstring's table)."""
    check_mode(mode)
    launch_s = target.launch_overhead_us * 1e-6
    if mode in ("graph", "reduce-overhead"):  # a CUDA-graph replay: the host issues nothing per kernel
        return HostCosts(0.0, 0.0, 0.0)
    if mode == "eager":
        kernel_s = launch_s if target.host_eager_us is None else target.host_eager_us * 1e-6
        view_s = 0.0 if target.host_eager_view_us is None else target.host_eager_view_us * 1e-6
        library_s = kernel_s if target.host_eager_library_us is None else target.host_eager_library_us * 1e-6
        return HostCosts(kernel_s, view_s, library_s)
    compiled_s = launch_s if target.compiled_launch_us is None else target.compiled_launch_us * 1e-6
    return HostCosts(compiled_s, 0.0, compiled_s)


def collective_host_s(target, mode: str = DEFAULT_MODE) -> float:
    """The host seconds to issue one collective (graphperf/rules/collective.py): ``collective_base_us`` (NCCL's
    enqueue, fitted to host-timed nccl-tests) in ``eager`` and ``compiled`` mode (a library call's host cost when
    the target gives no base), nothing when a CUDA graph replays the step (``graph``, ``reduce-overhead``)."""
    if check_mode(mode) in ("graph", "reduce-overhead"):
        return 0.0
    base = getattr(target, "collective_base_us", None)
    return host_costs(target, mode).library_s if base is None else base * 1e-6


@dataclass(frozen=True)
class Execution:
    """One simulated run. Per node (graph order; None for unknown nodes): `host_s` (host issue time),
    `start_s` / `end_s` (device start and end from the start of the run), `latency_s` (the wall time
    the node adds: end_i - end_{i-1}) and `bound`. `totals`: see `simulate`."""

    mode: str
    host_s: list[Optional[float]]
    start_s: list[Optional[float]]
    end_s: list[Optional[float]]
    latency_s: list[Optional[float]]
    bound: list[str]
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        return self.totals["latency_s"]

    def latency_by_bound_s(self) -> dict[str, float]:
        """The wall split by each node's bound (sums to the wall), keys sorted."""
        out: dict[str, float] = {}
        for b, lat in zip(self.bound, self.latency_s):
            if lat is not None:
                out[b] = out.get(b, 0.0) + lat
        return dict(sorted(out.items()))


def simulate(times: Sequence, target, mode: str = DEFAULT_MODE, ops: Optional[Sequence[str]] = None) -> Execution:
    """Queue `times` (a sequence of `graphperf.project.NodeTime`, graph order) on `target` in `mode`. `ops`:
    the nodes' canonical op names, which tell the library calls (`ops.LIBRARY_CALL_OPS`) apart; without them
    every kernel costs the host the same.

    Totals: ``mode``; ``kernels`` (nodes that launch one); ``device_s`` (sum of node device times);
    ``host_s`` (sum of host issue times); ``latency_s`` (the wall time); ``idle_s`` (wall - device busy
    time); ``launch_bound`` (the device idles more than half the wall); ``graph_mode_latency_s`` (the
    wall of the same nodes in ``graph`` mode: what a CUDA-graph replay would take).

    >>> from graphperf.project import NodeTime
    >>> class T: launch_overhead_us = 10.0; host_eager_us = None; host_eager_view_us = None; compiled_launch_us = None
    >>> ex = simulate([NodeTime(4e-6, 1e-6, 1e-5, 1.4e-5, "overhead", device_s=4e-6)] * 3, T())
    >>> round(ex.wall_s * 1e6, 6), ex.bound, ex.totals["launch_bound"]   # 3 x (10 us gap + 4 us kernel)
    (42.0, ['overhead', 'overhead', 'overhead'], True)
    """
    kernel_host_s, free_host_s, library_host_s = host_costs(target, mode)
    collective_s = collective_host_s(target, mode)
    gap_s = target.launch_overhead_us * 1e-6
    library = [op in LIBRARY_CALL_OPS for op in ops] if ops is not None else [False] * len(times)
    collective = [op in COLLECTIVE_OPS for op in ops] if ops is not None else [False] * len(times)
    n = len(times)
    host: list[Optional[float]] = [None] * n
    start: list[Optional[float]] = [None] * n
    end: list[Optional[float]] = [None] * n
    latency: list[Optional[float]] = [None] * n
    bound = [t.bound for t in times]
    issue = prev_end = device_total = host_total = 0.0
    kernels = 0
    for i, t in enumerate(times):
        b = bound[i]
        d = t.device_s
        if b == "unknown" or d is None:
            continue
        if b == "free":
            h, ready = free_host_s, prev_end
        else:
            h = collective_s if collective[i] else library_host_s if library[i] else kernel_host_s
            ready = prev_end + gap_s
            kernels += 1
        issue += h
        s = issue if issue > ready else ready
        e = s + d
        host[i], start[i], end[i], latency[i] = h, s, e, e - prev_end
        if s - prev_end > d:
            bound[i] = "overhead"
        elif b == "overhead":  # the launch term the roofline charged is the queue's business now
            bound[i] = "compute" if (t.compute_s or 0.0) >= (t.memory_s or 0.0) else "memory"
        device_total += d
        host_total += h
        prev_end = e
    wall = prev_end
    idle = max(wall - device_total, 0.0)
    graph_wall = wall if mode == "graph" else simulate(times, target, "graph", ops).wall_s
    totals = {"mode": mode, "kernels": kernels, "device_s": device_total, "host_s": host_total, "idle_s": idle,
              "latency_s": wall, "launch_bound": idle > 0.5 * wall, "graph_mode_latency_s": graph_wall}
    return Execution(mode, host, start, end, latency, bound, totals)
