"""Cost rules and link times of the collectives: all_reduce, all_gather, reduce_scatter, all_to_all.

A collective node is what one device of a group of ``p = group_size`` devices runs (passes/shard.py inserts
them into the graph a device runs). Attributes: ``group_size`` (p >= 1), ``algorithm`` ("ring", the default,
"tree" or "nvls": all_reduce only), optionally ``stride`` (the ranks between two members of the group in the device
order, default 1: an expert-parallel group across tensor-parallel groups of tp devices has stride tp) and ``link``
("scale_up" or "scale_out"; default: scale_up when the group's span ``group_size * stride`` fits in the target's
``devices_per_node``, or the target gives no ``devices_per_node``).

S is the payload in bytes: the buffer of the whole group's result for all_gather (its output), the buffer
each device contributes for the others (their input); for all_to_all the larger of what a device sends (its input)
and what it receives (its output), equal unless the exchange is skewed (passes/expert_parallel.py ``imbalance``). Per device, for the ring algorithm::

    op              wire bytes sent        steps        FLOPs (the reduction)
    all_reduce      2 (p-1)/p * S          2 (p-1)      (p-1)/p * elements   (reduce-scatter, then all-gather)
    all_gather      (p-1)/p * S            p-1          0
    reduce_scatter  (p-1)/p * S            p-1          (p-1)/p * elements
    all_to_all      (p-1)/p * S            p-1          0                    (each peer gets its 1/p)

and for tree all_reduce (NCCL's double binary tree: reduce up, broadcast down, each half of the buffer on one
tree, so every device sends and receives S on each pass): wire bytes 2 S, steps 2 ceil(log2 p). For NVLS
all_reduce (NVLink SHARP, on NVSwitch systems from H100 on: the switch reduces and multicasts): each device
sends its buffer into the switch and receives the reduced buffer back, wire bytes S, steps 2 (up, down).

The cost rule (`Cost`) counts the reduction FLOPs (vector work) and the device-memory bytes of an unfused
kernel: the input read once, the output written once. The bytes on the wire are not device-memory bytes: the
projection (graphperf/project.py) routes a collective to `collective_time`, which prices them on the link,
one physical mechanism per term::

    call_s = collective_base_us * 1e-6                 # the host issuing the call (NCCL's enqueue and proxy)
    link_s = steps * latency_us * 1e-6                 # each sequential step's hop over the link
           + wire_bytes / (gbps * 1e9 * efficiency)    # the bytes at the rate the link achieves

`link_s` is the collective's device time; `call_s` is host time, charged by the execution model
(graphperf/execution.py) like any host issue cost: in ``eager`` and ``compiled`` mode before the call, and not
at all when a CUDA graph replays the step (``graph``, ``reduce-overhead``), which is how serving engines run their
all-reduces. A standalone call timed by a host loop, as nccl-tests does, takes ``call_s + link_s``
(`standalone_seconds`): that is what the two figures are fitted to.

with the target's ``collective_base_us``, ``scale_up_latency_us``, ``scale_up_gbps`` and ``scale_up_efficiency``
(or the ``scale_out_*`` figures; GB/s per device and direction). This is NCCL's own cost model (NVIDIA/nccl
src/graph/tuning.cc: baseLat + steps * hop latency + bytes / (bandwidth)), with its base latency and its
achieved bandwidth fitted per interconnect family to published nccl-tests sweeps (benchmarks/collectives.py,
benchmarks/RESULTS_COLLECTIVES.md). A target without one of the link's figures gives no time (None, with the
missing fields named), never zero. With p = 1 a collective does nothing and is free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ..ops import COLLECTIVE_OPS
from ._common import operand, out0
from .registry import register

__all__ = ["COLLECTIVE_OPS", "ALGORITHMS", "LINKS", "CollectiveTime", "group_size", "payload_bytes",
           "wire_bytes", "steps", "reduction_flops", "collective_rule", "collective_time", "link_seconds",
           "standalone_seconds"]

ALGORITHMS = ("ring", "tree", "nvls")
LINKS = ("scale_up", "scale_out")
_REDUCING = ("all_reduce", "reduce_scatter")


def group_size(op: str, attrs: Mapping[str, Any]) -> int:
    """The ``group_size`` attribute (an int >= 1); `RuleError` naming the op otherwise."""
    p = attrs.get("group_size")
    if not isinstance(p, int) or isinstance(p, bool) or p < 1:
        raise RuleError(f"{op}: attribute group_size={p!r} must be an int >= 1")
    return p


def _algorithm(op: str, attrs: Mapping[str, Any]) -> str:
    algo = attrs.get("algorithm") or "ring"
    if algo not in ALGORITHMS:
        raise RuleError(f"{op}: algorithm={algo!r} is not one of {', '.join(ALGORITHMS)}")
    if algo != "ring" and op != "all_reduce":
        raise RuleError(f"{op}: the {algo} algorithm is modelled for all_reduce only (NCCL runs the others as rings)")
    return algo


def payload_bytes(op: str, x: TensorType, out: TensorType) -> int:
    """S: the output's bytes for all_gather (the gathered buffer), the input's for all_reduce and reduce_scatter,
    the larger of the two for all_to_all (a device sends its input's share and receives its output's over a
    full-duplex link: the larger side sets the time; they are equal under uniform routing)."""
    if op == "all_to_all":
        return max(x.nbytes, out.nbytes)
    return out.nbytes if op == "all_gather" else x.nbytes


def wire_bytes(op: str, p: int, payload: int, algorithm: str = "ring") -> float:
    """Bytes one device sends over its link (the module docstring's table)."""
    if p == 1:
        return 0.0
    if algorithm == "tree":
        return 2.0 * payload
    if algorithm == "nvls":
        return float(payload)
    factor = 2 * (p - 1) if op == "all_reduce" else p - 1
    return factor * payload / p


def steps(op: str, p: int, algorithm: str = "ring") -> int:
    """Sequential link steps (each pays the link latency once)."""
    if p == 1:
        return 0
    if algorithm == "tree":
        return 2 * math.ceil(math.log2(p))
    if algorithm == "nvls":
        return 2
    return 2 * (p - 1) if op == "all_reduce" else p - 1


def reduction_flops(op: str, p: int, elements: int) -> int:
    """Adds one device does: (p-1)/p of the elements for all_reduce and reduce_scatter, 0 for the others."""
    return (p - 1) * elements // p if op in _REDUCING else 0


def collective_rule(op: str):
    """The cost rule of collective `op`: the reduction's FLOPs, the input read and the output written once."""

    def rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
        x = operand(op, ins, 0, "x")
        out = out0(op, outs)
        p = group_size(op, attrs)
        _algorithm(op, attrs)
        if (op == "all_gather" and out.numel != x.numel * p) or (op == "reduce_scatter" and x.numel != out.numel * p):
            raise RuleError(f"{op}: output {out} is not input {x} gathered or scattered over {p} devices")
        if p == 1:
            return Cost.zero()
        return Cost(reduction_flops(op, p, x.numel), 0, 0, x.nbytes, out.nbytes)

    rule.__name__ = f"{op}_rule"
    return rule


for _op in sorted(COLLECTIVE_OPS):
    register(_op)(collective_rule(_op))


@dataclass(frozen=True, slots=True)
class CollectiveTime:
    """One collective's time on a link: `link_s` (None when the target lacks a figure; `missing` names it)."""

    link: str
    algorithm: str
    group_size: int
    payload_bytes: int
    wire_bytes: float
    steps: int
    link_s: Optional[float]
    missing: str = ""
    call_s: Optional[float] = None  # host time to issue the call (`collective_base_us`)


def collective_time(op: str, attrs: Mapping[str, Any], x: TensorType, out: TensorType, target) -> CollectiveTime:
    """The link time of collective `op` (attrs as a node carries them) on `target`: the module docstring's
    formula on the link the group uses."""
    p = group_size(op, attrs)
    algo = _algorithm(op, attrs)
    per_node = getattr(target, "devices_per_node", None)
    span = p * int(attrs.get("stride", 1))  # the aligned block of devices the group's members sit in
    link = attrs.get("link") or ("scale_out" if per_node is not None and span > per_node else "scale_up")
    if link not in LINKS:
        raise RuleError(f"{op}: link={link!r} is not one of {', '.join(LINKS)}")
    payload = payload_bytes(op, x, out)
    wire = wire_bytes(op, p, payload, algo)
    n = steps(op, p, algo)
    if p == 1:
        return CollectiveTime(link, algo, p, payload, 0.0, 0, 0.0, call_s=0.0)
    figures = {f"{link}_gbps": getattr(target, f"{link}_gbps", None),
               f"{link}_latency_us": getattr(target, f"{link}_latency_us", None),
               f"{link}_efficiency": getattr(target, f"{link}_efficiency", None),
               "collective_base_us": getattr(target, "collective_base_us", None)}
    missing = [f for f, v in figures.items() if v is None]
    if missing:
        return CollectiveTime(link, algo, p, payload, wire, n, None, ", ".join(missing))
    gbps, latency_us, efficiency, base_us = figures.values()
    return CollectiveTime(link, algo, p, payload, wire, n, link_seconds(n, wire, gbps, latency_us, efficiency),
                          call_s=base_us * 1e-6)


def link_seconds(n_steps: int, wire: float, gbps: float, latency_us: float, efficiency: float) -> float:
    """The device time of the module docstring's formula: `n_steps` hops of `latency_us`, `wire` bytes at
    ``gbps * efficiency`` GB/s."""
    return n_steps * latency_us * 1e-6 + wire / (gbps * 1e9 * efficiency)


def standalone_seconds(n_steps: int, wire: float, gbps: float, latency_us: float, efficiency: float,
                       base_us: float) -> float:
    """One call issued and timed by the host (nccl-tests): the host's `base_us`, then the device's `link_seconds`."""
    return base_us * 1e-6 + link_seconds(n_steps, wire, gbps, latency_us, efficiency)
