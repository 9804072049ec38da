"""Execution model: the wall time of a projected graph, from a simulation of the host's issue queue.

The roofline (graphperf/project.py) gives each node's kernel time on the device, `NodeTime.device_s`
(0.0 for free nodes, which launch no kernel; None for unknown nodes). How those kernels fill the
wall clock depends on how the host issues them, the *mode*:

    issue_i = issue_{i-1} + host_s(node i)          the host issues the nodes in graph order
    start_i = max(issue_i, end_{i-1})               the device runs one kernel at a time, in order
    end_i   = start_i + device_s_i
    wall    = end of the last node;  node latency_s = end_i - end_{i-1}   (so latencies sum to the wall)

with ``issue_{-1} = end_{-1} = 0``. Unknown nodes are skipped (no time; the report says the
latency is a lower bound). Host time per node, by mode (target fields, microseconds):

    mode       kernel-launching node                         free node (view, reshape)
    graph      launch_overhead_us (CUDA-graph replay)        0
    eager      host_eager_us (default launch_overhead_us)    host_eager_view_us (default 0)
    compiled   compiled_launch_us (default launch_overhead_us) 0

`compiled` projects the graph a compiler emits; the caller rewrites the graph first (every what-if
fusion rule, ``--fuse auto``: `graphperf.pipeline.mode_graph`) and queues it here like any other.

A node whose device waited for the host longer than its own device time is bound ``overhead``;
otherwise it keeps the roofline's bound, with the launch term left to the queue: a node the roofline
called ``overhead`` (launch cost above its work) that the queue did not hold up is bound by its work
side (``compute`` if compute_s >= memory_s, else ``memory``). Free nodes that waited for no host
time stay ``free``; unknown nodes stay ``unknown``.

Guarantees: pure functions of the times and the target's figures (no torch); one O(n) loop over
floats per simulation; the node latencies of a simulation sum to its wall time (up to float
rounding); the device is busy exactly sum(device_s) of the wall (kernels never overlap), so
``idle_s = wall - device_s``. `simulate` raises a one-line `UsageError` for an unknown mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .errors import UsageError

__all__ = ["DEFAULT_MODE", "MODES", "Execution", "check_mode", "host_costs", "simulate"]

MODES = ("graph", "eager", "compiled")
DEFAULT_MODE = "graph"


def check_mode(mode: str) -> str:
    """`mode` if it is one of `MODES`, else a one-line `UsageError` naming them."""
    if mode not in MODES:
        raise UsageError(f"execution mode {mode!r}: choose one of {', '.join(MODES)} (--mode)")
    return mode


def host_costs(target, mode: str = DEFAULT_MODE) -> tuple[float, float]:
    """(host seconds per kernel-launching node, host seconds per free node) of `mode` on `target`."""
    check_mode(mode)
    launch_s = target.launch_overhead_us * 1e-6
    if mode == "graph":
        return launch_s, 0.0
    if mode == "eager":
        kernel_us = target.host_eager_us
        view_us = target.host_eager_view_us
        return (launch_s if kernel_us is None else kernel_us * 1e-6), (0.0 if view_us is None else view_us * 1e-6)
    compiled_us = target.compiled_launch_us
    return (launch_s if compiled_us is None else compiled_us * 1e-6), 0.0


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


def simulate(times: Sequence, target, mode: str = DEFAULT_MODE) -> Execution:
    """Queue `times` (a sequence of `graphperf.project.NodeTime`, graph order) on `target` in `mode`.

    Totals: ``mode``; ``kernels`` (nodes that launch one); ``device_s`` (sum of node device times);
    ``host_s`` (sum of host issue times); ``latency_s`` (the wall time); ``idle_s`` (wall - device busy
    time); ``launch_bound`` (the device idles more than half the wall); ``graph_mode_latency_s`` (the
    wall of the same nodes in ``graph`` mode: what a CUDA-graph replay would take).

    >>> from graphperf.project import NodeTime
    >>> class T: launch_overhead_us = 10.0; host_eager_us = None; host_eager_view_us = None; compiled_launch_us = None
    >>> ex = simulate([NodeTime(4e-6, 1e-6, 1e-5, 1.4e-5, "overhead", device_s=4e-6)] * 3, T())
    >>> round(ex.wall_s * 1e6, 6), ex.bound, ex.totals["launch_bound"]   # host-bound: 3 x 10 us + the last 4 us
    (34.0, ['overhead', 'overhead', 'overhead'], True)
    """
    kernel_host_s, free_host_s = host_costs(target, mode)
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
            h = free_host_s
        else:
            h = kernel_host_s
            kernels += 1
        issue += h
        s = issue if issue > prev_end else prev_end
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
    graph_wall = wall if mode == "graph" else simulate(times, target, "graph").wall_s
    totals = {"mode": mode, "kernels": kernels, "device_s": device_total, "host_s": host_total, "idle_s": idle,
              "latency_s": wall, "launch_bound": idle > 0.5 * wall, "graph_mode_latency_s": graph_wall}
    return Execution(mode, host, start, end, latency, bound, totals)
