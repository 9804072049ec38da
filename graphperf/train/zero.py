"""Sharded data parallelism: ZeRO stages 1-3 (Rajbhandari et al. 2020, DeepSpeed) and PyTorch FSDP ``FULL_SHARD``,
priced beside DDP (stage 0). ``P``: the parameters' bytes, ``G``: the gradients' bytes, ``N``: the updated
parameters' elements, ``shard(x) = ceil(x / dp)``.

- **ZeRO-1**: AdamW's fp32 moments are sharded: each device keeps those of 1/dp of the parameters
  (``8 * shard(N)`` bytes) and updates only them (the optimizer's pass over ``shard(N)`` elements, its time about
  1/dp of DDP's). The gradients are reduce-scattered in DDP's buckets instead of all-reduced (passes/data_parallel.py
  ``reduce="reduce_scatter"``; payload: the bucket's gradients, padded to a multiple of dp), overlapped with the
  backward exactly as DDP's all-reduces (graphperf/train/timeline.py `overlap`). After the optimizer step every
  device all-gathers the updated parameters (one ``all_gather`` per bucket, payload: the bucket's parameters'
  bytes), after the step and exposed, as PyTorch's ZeroRedundancyOptimizer (``overlap_with_ddp=False``) and
  DeepSpeed's stages 1 and 2 run it by default. Wire bytes per step, ring: ``(dp-1)/dp * 2 G`` (the all-gather's
  payload is the updated parameters, G bytes in the training dtype; P when every parameter has a gradient): DDP's.
- **ZeRO-2**: the gradients are sharded too: a device keeps ``shard(G)`` of reduced gradients, and each bucket's
  full-size gradients live only until its reduce-scatter is issued: the backward's peak of live tensors is taken
  with each gradient freed after the node that makes its bucket ready and the reduced shard live from there
  (`peak_with_handoffs`), instead of every gradient held to the backward's end. Communication as ZeRO-1.
- **ZeRO-3 / FSDP FULL_SHARD**: the parameters are sharded too (``shard(P)`` per device, plus the buffers). One
  FSDP unit per decoder layer, the root unit holding the rest (passes/fully_shard.py): each layer unit is
  all-gathered before its forward and again before its backward, its gradients reduce-scattered after its last
  gradient; the root unit is gathered once before the forward and held through the backward (FSDP does not
  reshard the root after the forward). With FSDP's prefetch of one unit (``forward_prefetch``,
  ``BACKWARD_PRE``), unit u+1's all-gather is issued when unit u starts, so it overlaps unit u's compute on the one
  communication stream; the first all-gather is exposed. The program (`fsdp_program`) runs on
  graphperf/train/timeline.py's `schedule`. Wire bytes per step, ring: ``(dp-1)/dp * (3 P - P_root)``, with
  P_root the root unit's parameters (``3 P`` if the root were resharded like the layers). Memory adds the gathered
  parameters: the root's and two layer units' (the one running and the one prefetched); a unit's full gradients
  live until its last gradient is produced (its reduce-scatter issued), the root's to the end of the backward.

Every collective is priced by graphperf/rules/collective.py's `collective_time` on the target's link; its host call
is not charged (as DDP's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from graphperf.errors import UsageError
from graphperf.ir import Graph, TensorType

from .timeline import Comm, Compute, Wait

__all__ = ["STAGES", "STAGE_NAMES", "check_stage", "shard", "CollectiveRun", "missing_link_message", "price",
           "price_nodes", "fsdp_program", "collective_totals", "sharded_memory", "peak_with_handoffs"]

#: The ZeRO stages: 0 is DDP.
STAGES = (0, 1, 2, 3)
STAGE_NAMES = {0: "DDP (nothing sharded)", 1: "ZeRO-1 (optimizer states sharded)",
               2: "ZeRO-2 (optimizer states and gradients sharded)",
               3: "ZeRO-3 / FSDP FULL_SHARD (optimizer states, gradients and parameters sharded)"}


def check_stage(zero: Any, dp: int) -> int:
    """`zero` as a stage; UsageError (one line) for a stage outside 0-3, or a stage >= 1 with ``dp == 1``: over one
    device there is nothing to shard, so the option is refused rather than ignored."""
    if isinstance(zero, bool) or not isinstance(zero, int) or zero not in STAGES:
        raise UsageError(f"--zero {zero!r}: the ZeRO stage is 0 (DDP), 1, 2 or 3")
    if zero and dp == 1:
        raise UsageError(f"--zero {zero} needs --dp >= 2: over one device there is nothing to shard")
    return zero


def shard(x: int, dp: int) -> int:
    """One device's share of `x` (bytes or elements) split over `dp`: ``ceil(x / dp)``.

    >>> shard(10, 4), shard(8, 4)
    (3, 2)
    """
    return -(-x // dp)


@dataclass(frozen=True)
class CollectiveRun:
    """One collective of the step: its op, name, payload and wire bytes, link time, and where it runs."""

    op: str
    name: str
    payload_bytes: int
    wire_bytes: float
    time_s: float
    where: str

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "payload_bytes": self.payload_bytes, "wire_bytes": self.wire_bytes,
                "time_s": self.time_s, "where": self.where}


#: H100's link figures (graphperf/targets/h100.toml), the example values of `missing_link_message`.
EXAMPLE_LINK = {"scale_up_gbps": 450, "scale_up_latency_us": 0.47, "scale_up_efficiency": 0.563,
                "scale_out_gbps": 50, "scale_out_latency_us": 2.7, "scale_out_efficiency": 0.563}


def missing_link_message(target: str, dp: int, op: str, missing: str) -> str:
    """The one-line refusal of a collective whose link lacks figures: the `missing` fields (comma-separated, as
    `collective_time` names them) and a ``--set`` for each, with H100's figure as the example.

    >>> print(missing_link_message("a100", 16, "all_reduce", "scale_out_gbps, scale_out_efficiency"))
    ... # doctest: +NORMALIZE_WHITESPACE
    target a100 has no link figures for a 16-device all_reduce (missing scale_out_gbps, scale_out_efficiency): pass
    them with --set, e.g. --set scale_out_gbps=50 --set scale_out_efficiency=0.563 (H100's figures)
    """
    fields = [f.strip() for f in missing.split(",") if f.strip()]
    sets = " ".join(f"--set {f}={EXAMPLE_LINK.get(f, 'VALUE')}" for f in fields)
    return (f"target {target} has no link figures for a {dp}-device {op} (missing {missing}): pass them with --set, "
            f"e.g. {sets} (H100's figures)")


def price(op: str, name: str, x: TensorType, out: TensorType, dp: int, target, where: str) -> CollectiveRun:
    """A ring collective of group dp on `target`'s link (`collective_time`); UsageError when the target lacks a
    link figure."""
    from graphperf.rules.collective import collective_time

    ct = collective_time(op, {"group_size": dp, "algorithm": "ring"}, x, out, target)
    if ct.link_s is None:
        raise UsageError(missing_link_message(target.name, dp, op, ct.missing))
    return CollectiveRun(op, name, ct.payload_bytes, ct.wire_bytes, ct.link_s, where)


def price_nodes(graph: Graph, names: Sequence[str], dp: int, target, where: str) -> dict[str, CollectiveRun]:
    """The collectives named `names` in `graph` (as a pass inserted them), priced."""
    by_name = {n.name: n for n in graph.nodes}
    out = {}
    for name in names:
        node = by_name[name]
        out[name] = price(node.op.name, name, graph.values[node.inputs[0]].type, graph.values[node.outputs[0]].type,
                          dp, target, where)
    return out


def fsdp_program(nodes: Sequence[str], ends: Mapping[str, float], compute_end_s: float, units: Sequence,
                 durations: Mapping[str, float]) -> list:
    """The host program of one FSDP phase for `timeline.schedule`: the graph's `nodes` in order as compute segments
    (a node's duration: its end on the uninterrupted compute stream, `ends`, less the previous node's; the last
    segment runs to `compute_end_s`), cut where a unit starts. The first unit's all-gather is issued at the start;
    at unit u's first node the compute waits for u's all-gather and then issues unit u+1's (prefetch one unit);
    a unit's reduce-scatter is issued after the node that produces its last gradient. `units`: passes/
    fully_shard.py's `ShardUnit`s in run order; `durations`: each collective's time by node name.

    >>> from graphperf.passes.fully_shard import ShardUnit
    >>> us = [ShardUnit(0, "l.0", ("w0",), 8, 32, "float32", "a", "ag0"),
    ...       ShardUnit(1, "l.1", ("w1",), 8, 32, "float32", "b", "ag1", "b", "rs1")]
    >>> program = fsdp_program(["a", "b"], {"a": 1.0, "b": 3.0}, 3.0, us, {"ag0": 0.5, "ag1": 0.5, "rs1": 0.25})
    >>> [(type(i).__name__, i.name, getattr(i, "duration_s", None)) for i in program]  # doctest: +NORMALIZE_WHITESPACE
    [('Comm', 'ag0', 0.5), ('Wait', 'ag0', None), ('Comm', 'ag1', 0.5), ('Compute', 'a', 1.0), ('Wait', 'ag1', None),
     ('Compute', 'b', 2.0), ('Comm', 'rs1', 0.25)]
    """
    starts: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        starts.setdefault(u.first_node, []).append(i)
    scatters: dict[str, list[str]] = {}
    for u in units:
        if u.reduce_scatter:
            scatters.setdefault(u.last_gradient, []).append(u.reduce_scatter)
    program: list = []
    if units and units[0].all_gather:
        program.append(Comm(units[0].all_gather, durations[units[0].all_gather]))
    seg_start, seg_nodes, prev_end = 0.0, [], 0.0

    def flush(until: float) -> None:
        nonlocal seg_start, seg_nodes
        if seg_nodes:
            program.append(Compute(seg_nodes[0], max(0.0, until - seg_start)))
        seg_start, seg_nodes = until, []

    for k, name in enumerate(nodes):
        if name in starts:
            flush(prev_end)
            for i in starts[name]:
                if units[i].all_gather:
                    program.append(Wait(units[i].all_gather))
                nxt = units[i + 1] if i + 1 < len(units) else None
                if nxt is not None and nxt.all_gather:
                    program.append(Comm(nxt.all_gather, durations[nxt.all_gather]))
        seg_nodes.append(name)
        prev_end = compute_end_s if k == len(nodes) - 1 else ends.get(name, prev_end)
        if name in scatters:
            flush(prev_end)
            program += [Comm(rs, durations[rs]) for rs in scatters[name]]
    flush(compute_end_s)
    return program


def collective_totals(runs: Sequence[CollectiveRun]) -> dict[str, dict[str, Any]]:
    """Per collective op: count, payload bytes, wire bytes (per device) and link time, summed over the step."""
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        t = out.setdefault(r.op, {"count": 0, "payload_bytes": 0, "wire_bytes": 0.0, "time_s": 0.0})
        t["count"] += 1
        t["payload_bytes"] += r.payload_bytes
        t["wire_bytes"] += r.wire_bytes
        t["time_s"] += r.time_s
    return out


def sharded_memory(zero: int, dp: int, *, parameter_bytes: int, weight_bytes: int, gradient_bytes: int,
                   updated_numel: int, saved_bytes: int, forward_peak_bytes: int, backward_peak_bytes: int,
                   root_bytes: int = 0, max_unit_bytes: int = 0, target=None) -> dict[str, Any]:
    """Bytes one device holds under ZeRO stage `zero` (module docstring; 0 is DDP), by component, and whether they
    fit.

    `weight_bytes` are the forward's weights (parameters and buffers); `parameter_bytes` the parameters'. AdamW's
    fp32 moments are counted whether or not the step is timed (``--no-optimizer`` leaves out its time, not its
    states). The activations are the larger of the two peaks of live tensors (graphperf/train/memory.py), each
    taken with the weights' views counted as weights: `forward_peak_bytes` (ending with every saved activation
    live) and `backward_peak_bytes`, which holds the saved activations still alive at it, the gradients produced so
    far and the backward's temporaries: with every gradient live to the end for stages 0 and 1, with each freed at
    its hand-off and its reduced shard live to the end (`peak_with_handoffs`) for stages 2 and 3. `saved_bytes`
    (the activations saved for the backward) is reported, not added: it is inside both peaks. At least the
    gradients a device keeps (`gradients_bytes`) are live after the backward.

    >>> m = sharded_memory(3, 4, parameter_bytes=800, weight_bytes=840, gradient_bytes=800, updated_numel=400,
    ...                    saved_bytes=50, forward_peak_bytes=120, backward_peak_bytes=300, root_bytes=80,
    ...                    max_unit_bytes=60)
    >>> m["weights_bytes"], m["gathered_parameters_bytes"], m["gradients_bytes"], m["optimizer_states_bytes"]
    (240, 200, 200, 800)
    >>> m["needed_bytes"] == 240 + 200 + 800 + max(120, 300, 200)
    True
    """
    from graphperf.report.memory_fit import memory_fit

    buffers = max(0, weight_bytes - parameter_bytes)
    out = {"weights_bytes": weight_bytes if zero < 3 else buffers + shard(parameter_bytes, dp)}
    if zero == 3:
        out["gathered_parameters_bytes"] = root_bytes + 2 * max_unit_bytes
    out["gradients_bytes"] = gradient_bytes if zero < 2 else shard(gradient_bytes, dp)
    out["optimizer_states_bytes"] = 8 * (shard(updated_numel, dp) if zero else updated_numel)
    out["saved_activations_bytes"] = saved_bytes
    out["forward_peak_activation_bytes"] = forward_peak_bytes
    out["backward_peak_activation_bytes"] = backward_peak_bytes
    static = out["weights_bytes"] + out.get("gathered_parameters_bytes", 0) + out["optimizer_states_bytes"]
    dynamic = max(forward_peak_bytes, backward_peak_bytes, out["gradients_bytes"])
    fit = memory_fit(static, dynamic, getattr(target, "memory_gb", None))
    out.update(needed_bytes=fit["memory_needed_bytes"], capacity_bytes=fit["memory_capacity_bytes"],
               fits=fit["fits"], shortfall_bytes=fit["memory_shortfall_bytes"])
    return out


def peak_with_handoffs(graph: Graph, handoffs: Mapping[str, Sequence[str]], dp: int) -> int:
    """The backward's peak of live activations (passes/liveness.py) when the gradients named by ``handoffs[node]``
    are handed to their reduce-scatter right after `node` (its bucket or unit is ready) and freed there, leaving
    this device's reduced shard (``ceil(elements / dp)`` of them) live to the backward's end, instead of every
    full-size gradient living to the end as a graph output.

    >>> from graphperf.ir import Node, TensorType, Value
    >>> from graphperf.ops import canonical
    >>> t = TensorType((256,), "float32")  # 1 KiB each
    >>> vals = {"x": Value("x", t, "input"), "g0": Value("g0", t, producer="n0"), "g1": Value("g1", t, producer="n1")}
    >>> g = Graph("bw", [Node("n0", canonical("relu"), "relu", ("x",), ("g0",)),
    ...                  Node("n1", canonical("relu"), "relu", ("x",), ("g1",))], vals, ["g0", "g1"],
    ...           {"gradients": [{"parameter": "w0", "value": "g0"}, {"parameter": "w1", "value": "g1"}]})
    >>> peak_with_handoffs(g, {"n0": ["g0"], "n1": ["g1"]}, dp=4), peak_with_handoffs(g, {"n1": ["g0", "g1"]}, dp=4)
    (2304, 3072)
    """
    from graphperf.ir import Node, TensorType, Value
    from graphperf.ops import canonical
    from graphperf.passes.liveness import peak_activation_memory

    grads = {g["value"] for g in graph.meta.get("gradients") or ()}
    nodes, values = [], dict(graph.values)
    kept = [o for o in graph.outputs if o not in grads]
    for node in graph.nodes:
        nodes.append(node)
        handed = handoffs.get(node.name)
        if handed:
            types = [graph.values[v].type for v in handed]
            out = f"{node.name}.reduced_shard"
            values[out] = Value(out, TensorType((shard(sum(t.numel for t in types), dp),), types[0].dtype),
                                "activation", f"{node.name}.handoff")
            nodes.append(Node(f"{node.name}.handoff", canonical("reduce_scatter"), "handoff", tuple(handed), (out,),
                              {"group_size": dp}))
            kept.append(out)
    return peak_activation_memory(Graph(graph.name, nodes, values, kept, graph.meta)).bytes
