"""`train(model, target, dp, batch, seq)`: one data-parallel training step on `dp` devices, projected.

Each device runs the forward with the loss and the backward of its own `batch` sequences (``batch`` is per device,
as with DDP: the global batch is ``dp * batch``), then the optimizer step; the gradients are summed over the group
by DDP's bucketed all-reduces, which overlap with the backward:

1. capture: graphperf/train/capture.py (forward + loss and backward ATen graphs on fake tensors);
2. forward: projected and queued in the execution model (`graphperf.pipeline.analyze_graph`), ``forward_s``;
3. backward: passes/data_parallel.py places one ``all_reduce`` per gradient bucket (assuming DDP's
   ``gradient_as_bucket_view=True``: no bucket copy, no second buffer); the backward's compute is
   projected and queued like the forward (each node's end time), each bucket's all-reduce is priced on the
   target's link (graphperf/rules/collective.py, through `graphperf.project`) and graphperf/train/timeline.py
   overlaps the two streams: ``backward_s``, ``allreduce_s``, ``exposed_comm_s``;
4. optimizer: AdamW as one fused elementwise pass (graphperf/train/optimizer.py), ``optimizer_s``;
5. ``step_s = forward_s + backward_s + optimizer_s``; ``tokens_per_s = dp * batch * seq / step_s``.
6. memory per device (graphperf/train/memory.py): weights + AdamW's states + the larger of the forward's and the
   backward's peaks of live tensors (the backward's holds the saved activations still alive there).

With ``zero`` 1, 2 or 3 the step is sharded data parallelism (ZeRO / FSDP FULL_SHARD, graphperf/train/zero.py):
reduce-scatters instead of all-reduces, the optimizer over 1/dp of the parameters, the parameters all-gathered
(after the step for stages 1 and 2, per unit before its forward and its backward for stage 3), memory by component
sharded; the JSON then adds a ``sharding`` object (the stage, each collective kind's bytes and time, FSDP's units).
``zero=0`` is DDP, unchanged.

With ``activation_checkpointing`` ``full`` or ``every=K`` (graphperf/train/checkpoint.py) the checkpointed decoder
layers' forward nodes run again just before their backward: ``recompute_s`` is added to the backward's compute
stream there (the gradients' ready times and the collectives' overlap move with it), and memory is taken with their
saved activations dropped and one layer recomputed at a time. ``none`` (the default) is unchanged.

The JSON (`TrainResult.to_dict`, schema ``graphperf.train/1``) holds these totals, the settings, the buckets and the
notes that state the assumptions (communication does not slow compute; DDP replicates what ``zero`` shards; not
modelled: gradient accumulation, compute-communication contention). Execution modes: ``graph`` (a CUDA-graph replay
of each graph, the default) and ``eager``; the all-reduce's host call is not charged in either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from graphperf.errors import UsageError

__all__ = ["SCHEMA", "MODES", "TrainResult", "train"]

SCHEMA = "graphperf.train/1"
#: Execution modes the step supports (the compiled modes rename nodes by fusing them: not yet).
MODES = ("graph", "eager")

NOTES = (
    "--batch is per device (DDP): the global batch is dp * batch sequences per step",
    "gradients are all-reduced in DDP's buckets (steady state: gradient-ready order, first bucket 1 MiB with the "
    "default 25 MiB cap), one ring all_reduce per bucket on one communication stream, each started when its bucket "
    "is ready and the previous one is done",
    "assumes DDP(gradient_as_bucket_view=True): each gradient is a view into its bucket; PyTorch's default (False) "
    "also holds a gradient-sized bucket buffer and copies every gradient into it and back (about 4 x the gradient "
    "bytes of HBM traffic), neither modelled",
    "communication is assumed not to slow the compute it overlaps (no SM, HBM or copy-engine contention)",
    "optimizer: AdamW as one fused elementwise pass, reading p, g, m, v and writing p, m, v (m, v in fp32)",
    "every device holds the whole model, its gradients and AdamW's states (DDP); --zero 1, 2 or 3 shards them "
    "(ZeRO-1/2, FSDP FULL_SHARD)",
    "not modelled: gradient accumulation, fp32 master weights, gradient clipping, activation checkpointing",
)


@dataclass
class TrainResult:
    """One projected data-parallel training step.

    Attributes
    ----------
    model, target : str
        The workload's description and the target's name.
    settings : dict
        dp, batch (per device), global_batch, seq, dtype, mode, the bucket caps (bytes), loss.
    totals : dict
        forward_s, backward_s, backward_compute_s, optimizer_s, allreduce_s, exposed_comm_s, step_s, tokens_per_s,
        samples_per_s, parameters, gradient_bytes, flops (forward + backward + optimizer per device),
        memory_per_device_bytes, fits.
    buckets : list of dict
        Per bucket: parameters, bytes, dtype, ready_after, ready_s, start_s, end_s, time_s.
    notes : list of str
        The assumptions, as the table prints them.
    memory : dict
        Bytes per device (graphperf/train/memory.py): weights, gradients, optimizer states (fp32 m and v, also with
        ``optimizer=False``), the activations saved for the backward, the forward's and the backward's peaks of live
        tensors (the backward's holds the saved activations still alive, the gradients and its temporaries; views
        of weights are weights); needed (weights + states + the larger peak), capacity (``memory_gb``), fits (None
        when the target states none). Under ZeRO also the gathered parameters (stage 3); for stages 2 and 3 the
        backward's peak frees each gradient at its hand-off to the reduce-scatter and holds the reduced shard.
    sharding : dict
        Empty for DDP (``zero=0``); else the stage, its name, per collective kind (all_gather, reduce_scatter)
        count, payload bytes, wire bytes per device and time, the wire bytes per step, and (stage 3) FSDP's units.
    """

    model: str
    target: str
    settings: dict[str, Any]
    totals: dict[str, Any]
    buckets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    sharding: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, schema ``graphperf.train/1``."""
        from graphperf.version import __version__

        return {"schema": SCHEMA, "tool": {"name": "graphperf", "version": __version__}, "model": self.model,
                "target": self.target, "settings": dict(self.settings), "totals": dict(self.totals),
                "memory": dict(self.memory), "buckets": [dict(b) for b in self.buckets], "notes": list(self.notes),
                **({"sharding": dict(self.sharding)} if self.sharding else {})}


def _node_ends(report) -> dict[str, float]:
    """Each node's end on the compute stream (start + device time; an unknown node: the previous node's end)."""
    ends, prev = {}, 0.0
    for r in report.nodes:
        if r.start_s is not None and r.device_s is not None:
            prev = r.start_s + r.device_s
        ends[r.name] = prev
    return ends


def _allreduce_seconds(dp_graph, names, target) -> list[float]:
    """The device time of each named all_reduce node, as `graphperf.project` prices a collective on its link."""
    from graphperf.count import count
    from graphperf.ir import Graph
    from graphperf.project import project

    nodes = [n for n in dp_graph.nodes if n.name in set(names)]
    values = {v: dp_graph.values[v] for n in nodes for v in (*n.inputs, *n.outputs) if v is not None}
    sub = Graph(f"{dp_graph.name} all-reduces", nodes, values, [o for n in nodes for o in n.outputs])
    times = project(sub, count(sub), target)
    missing = [n.name for n, t in zip(nodes, times) if t.device_s is None]
    if missing:
        from graphperf.rules.collective import collective_time

        from .zero import missing_link_message

        n = nodes[0]
        ct = collective_time("all_reduce", n.attrs, sub.values[n.inputs[0]].type, sub.values[n.outputs[0]].type,
                             target)
        raise UsageError(missing_link_message(target.name, n.attrs["group_size"], "all_reduce", ct.missing))
    by_name = {n.name: t.device_s for n, t in zip(nodes, times)}
    return [by_name[n] for n in names]


def train(model: str, target: Union[str, Any] = "h100", *, dp: int = 1, batch: int = 1, seq: Optional[int] = None,
          config: str = "full", dtype: Optional[str] = None, bucket_cap_mb: Optional[float] = None,
          mode: str = "graph", optimizer: bool = True, zero: int = 0,
          activation_checkpointing: Optional[str] = None) -> TrainResult:
    """Project one data-parallel training step of `model` on `dp` devices of `target`.

    Parameters
    ----------
    model : str
        A graphperf.models name (``gpt2``, ``llama3-8b``) or a Hugging Face config.json path.
    target : str or Target
        A bundled target name, a TOML path or a `Target`.
    dp : int
        Data-parallel degree (devices, each with a whole replica).
    batch : int
        Sequences per device per step (the global batch is ``dp * batch``).
    seq : int, optional
        Tokens per sequence (the model's default when None; vision models take none).
    config, dtype : str
        The workload's config (``full``, ``tiny``) and dtype (default: the model's).
    bucket_cap_mb : float, optional
        DDP's bucket cap in MiB; None: DDP's default (25 MiB, first bucket 1 MiB).
    mode : str
        Execution model of every graph: ``graph`` (CUDA-graph replay) or ``eager``.
    optimizer : bool
        Include the AdamW step's time (True) or leave it out (``optimizer_s`` absent); AdamW's states are counted in
        memory either way (the optimizer exists, its step is not timed).
    zero : int
        0: DDP (every device a whole replica); 1, 2, 3: ZeRO stage (optimizer states; + gradients; + parameters
        sharded over dp, stage 3 as FSDP FULL_SHARD), graphperf/train/zero.py. A stage >= 1 needs ``dp >= 2``.
    activation_checkpointing : str, optional
        ``none`` (default, None), ``full`` (every decoder layer under ``torch.utils.checkpoint``) or ``every=K``
        (one layer in K): graphperf/train/checkpoint.py. The layers' activations are dropped after the forward and
        their forward nodes run again before their backward (``recompute_s``).

    Returns
    -------
    TrainResult

    Example
    -------
    >>> from graphperf.train import train
    >>> r = train("gpt2", "h100", dp=4, batch=2, seq=16, config="tiny", dtype="float32")
    >>> t = r.totals
    >>> 0 <= t["exposed_comm_s"] <= t["allreduce_s"], len(r.buckets)
    (True, 1)
    >>> abs(t["step_s"] - (t["forward_s"] + t["backward_s"] + t["optimizer_s"])) < 1e-15
    True
    """
    from graphperf.api import _target
    from graphperf.passes import canonicalize
    from graphperf.passes.data_parallel import data_parallel
    from graphperf.pipeline import analyze_graph

    from .capture import capture_training_step
    from .memory import step_memory
    from .optimizer import adamw_graph
    from .timeline import overlap

    from .checkpoint import checkpoint_plan, parse_checkpointing, recompute_seconds, shifted_ends
    from .zero import check_stage

    every = parse_checkpointing(activation_checkpointing)
    if mode not in MODES:
        raise UsageError(f"--mode {mode}: a training step is projected in {' or '.join(MODES)} mode")
    zero = check_stage(zero, dp)
    if zero == 3 and bucket_cap_mb is not None:
        raise UsageError("--bucket-mb has no effect with --zero 3: FSDP reduce-scatters one unit (layer) at a time")
    tgt = _target(target)
    step = capture_training_step(model, config, batch, seq, dtype)
    info = {"frontend": "torch (aot_autograd on fake tensors)", "source": model}
    fw_graph = canonicalize(step.forward).graph
    fw = analyze_graph(fw_graph, tgt, {**info, "name": fw_graph.name}, mode=mode)
    bw_graph = canonicalize(step.backward).graph
    plan = checkpoint_plan(fw_graph, bw_graph, every) if every else None
    extra = recompute_seconds(plan, fw) if plan is not None else {}
    if zero:
        bw = analyze_graph(bw_graph, tgt, {**info, "name": bw_graph.name}, mode=mode)
        return _sharded(step, tgt, fw, fw_graph, bw, bw_graph, dp=dp, zero=zero, bucket_cap_mb=bucket_cap_mb,
                        mode=mode, optimizer=optimizer, batch=batch, config=config, dtype=dtype, plan=plan,
                        extra=extra)
    dp_result = data_parallel(bw_graph, dp, bucket_cap_mb)
    bw = analyze_graph(bw_graph, tgt, {**info, "name": bw_graph.name}, mode=mode)
    ends = shifted_ends([n.name for n in bw_graph.nodes], _node_ends(bw), extra)
    buckets = dp_result.buckets
    durations = _allreduce_seconds(dp_result.graph, [b.all_reduce for b in buckets], tgt) if buckets else []
    timeline = overlap(bw.totals["latency_s"] + sum(extra.values()),
                       [ends[b.ready_after] if b.ready_after else 0.0 for b in buckets], durations)
    opt = analyze_graph(adamw_graph(step.parameters), tgt, {"name": "adamw"}, mode=mode) if optimizer else None
    optimizer_s = opt.totals["latency_s"] if opt is not None else None
    step_s = fw.totals["latency_s"] + timeline.backward_s + (optimizer_s or 0.0)
    seq = step.seq
    totals = {
        "forward_s": fw.totals["latency_s"],
        "backward_s": timeline.backward_s,
        "backward_compute_s": timeline.compute_end_s,
        **_recompute(plan, extra),
        "optimizer_s": optimizer_s,
        "allreduce_s": timeline.allreduce_s,
        "exposed_comm_s": timeline.exposed_comm_s,
        "hidden_comm_fraction": timeline.hidden_fraction,
        "step_s": step_s,
        **_rates(step, dp, batch, step_s),
        **_work(fw, bw, opt, plan),
    }
    if optimizer_s is None:
        del totals["optimizer_s"]
    memory = step_memory(fw_graph, bw_graph, step.parameters, dp=dp, target=tgt, plan=plan)
    totals["memory_per_device_bytes"], totals["fits"] = memory["needed_bytes"], memory["fits"]
    bucket_rows = [{**b.to_dict(), "ready_s": r, "start_s": s, "end_s": e, "time_s": d}
                   for b, r, s, e, d in zip(buckets, timeline.ready_s, timeline.start_s, timeline.end_s,
                                            timeline.duration_s)]
    settings = {"dp": dp, "batch_per_device": batch, "global_batch": dp * batch, "seq": seq, "config": config,
                "dtype": step.parameters[0].dtype if step.parameters else dtype, "mode": mode,
                "bucket_cap_bytes": dp_result.bucket_cap_bytes,
                "first_bucket_cap_bytes": dp_result.first_bucket_cap_bytes, "loss": step.loss,
                "optimizer": "adamw" if optimizer else None, **_ac_setting(plan)}
    notes = list(NOTES) if optimizer else [n for n in NOTES if not n.startswith("optimizer")] + [
        "optimizer: left out (--no-optimizer): step_s is forward + backward; AdamW's states still count in memory"]
    notes = _ac_notes(notes, plan)
    return TrainResult(step.description, tgt.name, settings, totals, bucket_rows, notes, memory)


ZERO_NOTES = {
    1: "ZeRO-1: AdamW's fp32 moments sharded over dp (each device updates 1/dp of the parameters); gradients "
       "reduce-scattered in DDP's buckets, overlapped with the backward as DDP's all-reduces; the updated parameters "
       "all-gathered after the optimizer step, exposed (ZeroRedundancyOptimizer's and DeepSpeed stage 1/2's default)",
    2: "ZeRO-2: as ZeRO-1, and the gradients sharded: a device keeps 1/dp of the reduced gradients, a bucket's "
       "full-size gradients live until its reduce-scatter is issued",
    3: "ZeRO-3 / FSDP FULL_SHARD: parameters, gradients and AdamW's moments sharded over dp; one unit per numbered "
       "layer (the root holds the rest); each layer unit all-gathered before its forward and before its backward, "
       "prefetched one unit ahead on the communication stream (the first all-gather exposed); the root gathered "
       "once and held through the backward (FSDP does not reshard the root after the forward); each unit's "
       "gradients reduce-scattered after its last gradient; compute waits for a unit's all-gather",
}


def _sharded(step, tgt, fw, fw_graph, bw, bw_graph, *, dp: int, zero: int, bucket_cap_mb, mode: str, optimizer: bool,
             batch: int, config: str, dtype, plan=None, extra=None) -> TrainResult:
    """One ZeRO stage `zero` (1-3) training step (graphperf/train/zero.py), assembled as `train` does DDP's."""
    from graphperf.ir import TensorType
    from graphperf.passes.data_parallel import data_parallel
    from graphperf.passes.fully_shard import ROOT, fully_shard
    from graphperf.pipeline import analyze_graph

    from .capture import Parameter
    from .memory import step_memory
    from .optimizer import adamw_graph
    from .timeline import overlap, schedule
    from .zero import STAGE_NAMES, collective_totals, fsdp_program, price, price_nodes, shard

    from dataclasses import replace

    from .checkpoint import shifted_ends

    extra = extra or {}
    fw_latency, bw_latency = fw.totals["latency_s"], bw.totals["latency_s"] + sum(extra.values())
    bw_ends = shifted_ends([n.name for n in bw_graph.nodes], _node_ends(bw), extra)
    grad = {g["parameter"]: g["value"] for g in bw_graph.meta["gradients"]}
    bucket_rows, unit_rows, runs = [], [], []
    after_s = 0.0
    memory_extra: dict[str, int] = {}
    if zero < 3:
        res = data_parallel(bw_graph, dp, bucket_cap_mb, reduce="reduce_scatter")
        buckets = res.buckets
        ends = bw_ends
        rs = price_nodes(res.graph, [b.all_reduce for b in buckets], dp, tgt, "backward, overlapped")
        line = overlap(bw_latency, [ends[b.ready_after] if b.ready_after else 0.0 for b in buckets],
                       [rs[b.all_reduce].time_s for b in buckets])
        ag = [price("all_gather", f"zero_bucket{b.index}_all_gather", TensorType((shard(b.numel, dp),), b.dtype),
                    TensorType((dp * shard(b.numel, dp),), b.dtype), dp, tgt, "after the optimizer step, exposed")
              for b in buckets]
        runs = list(rs.values()) + ag
        after_s = sum(a.time_s for a in ag)
        forward_s = forward_compute_s = fw_latency
        backward_s, backward_compute_s, exposed = line.backward_s, line.compute_end_s, line.exposed_comm_s + after_s
        bucket_rows = [{**b.to_dict(), "ready_s": r, "start_s": s, "end_s": e, "time_s": d, "all_gather_s": a.time_s}
                       for b, r, s, e, d, a in zip(buckets, line.ready_s, line.start_s, line.end_s, line.duration_s,
                                                   ag)]
        handoffs = {b.ready_after: [grad[p] for p in b.parameters] for b in buckets}
        caps = (res.bucket_cap_bytes, res.first_bucket_cap_bytes)
    else:
        sizes = {p.name: (p.numel, p.dtype) for p in step.parameters}
        fwr, bwr = fully_shard(fw_graph, dp, numel=sizes), fully_shard(bw_graph, dp, numel=sizes)
        fw_ag = price_nodes(fwr.graph, [u.all_gather for u in fwr.units if u.all_gather], dp, tgt,
                            "forward, prefetched one unit ahead")
        bw_ag = price_nodes(bwr.graph, [u.all_gather for u in bwr.units if u.all_gather], dp, tgt,
                            "backward, prefetched one unit ahead")
        bw_rs = price_nodes(bwr.graph, [u.reduce_scatter for u in bwr.units if u.reduce_scatter], dp, tgt,
                            "backward, overlapped")
        runs = [*fw_ag.values(), *bw_ag.values(), *bw_rs.values()]
        times = {r.name: r.time_s for r in runs}
        fws = schedule(fsdp_program([n.name for n in fw_graph.nodes], _node_ends(fw), fw_latency, fwr.units, times))
        bw_units = bwr.units
        if plan is not None:  # FSDP gathers a layer before its recomputation (its pre-backward hook runs first)
            at = {s.unit: b for s, b in zip(plan.spans, plan.before)}
            pos = {n.name: i for i, n in enumerate(bw_graph.nodes)}
            bw_units = [replace(u, first_node=at[u.name]) if u.name in at and pos[at[u.name]] < pos[u.first_node]
                        else u for u in bw_units]
        bws = schedule(fsdp_program([n.name for n in bw_graph.nodes], bw_ends, bw_latency, bw_units, times))
        forward_s, forward_compute_s = fws.wall_s, fws.compute_s
        backward_s, backward_compute_s = bws.wall_s, bws.compute_s
        exposed = fws.exposed_comm_s + bws.exposed_comm_s
        for sched, res in ((fws, fwr), (bws, bwr)):
            for u in res.units:
                row = {**u.to_dict(), "phase": res.phase}
                for op, name in (("all_gather", u.all_gather), ("reduce_scatter", u.reduce_scatter)):
                    if name:
                        r, st, e = sched.collective(name)
                        row[op] = {"node": name, "ready_s": r, "start_s": st, "end_s": e, "time_s": times[name]}
                    else:
                        row[op] = None
                unit_rows.append(row)
        layer = [u.nbytes for u in fwr.units if u.name != ROOT]
        handoffs = {u.last_gradient: [grad[p] for p in u.parameters if p in grad] for u in bwr.units
                    if u.last_gradient}
        memory_extra["root_bytes"] = sum(u.nbytes for u in fwr.units if u.name == ROOT)
        memory_extra["max_unit_bytes"] = max(layer, default=0)
        caps = (None, None)
    opt = None
    if optimizer:
        numel: dict[str, int] = {}
        for p in step.parameters:
            if p.gradient is not None:
                numel[p.dtype] = numel.get(p.dtype, 0) + p.numel
        shards = [Parameter(f"shard.{d}", shard(n, dp), d, TensorType((shard(n, dp),), d).nbytes, "shard")
                  for d, n in numel.items()]
        opt = analyze_graph(adamw_graph(shards, "adamw_shard"), tgt, {"name": "adamw (1/dp shard)"}, mode=mode)
    optimizer_s = opt.totals["latency_s"] if opt is not None else None
    step_s = forward_s + backward_s + (optimizer_s or 0.0) + after_s
    comm_s = sum(r.time_s for r in runs)
    seq = step.seq
    collectives = collective_totals(runs)
    totals = {"forward_s": forward_s, "forward_compute_s": forward_compute_s, "backward_s": backward_s,
              "backward_compute_s": backward_compute_s, **_recompute(plan, extra), "optimizer_s": optimizer_s}
    if zero < 3:
        totals["allgather_after_step_s"] = after_s
    totals.update({
        "comm_s": comm_s,
        "reduce_scatter_s": collectives.get("reduce_scatter", {}).get("time_s", 0.0),
        "all_gather_s": collectives.get("all_gather", {}).get("time_s", 0.0),
        "exposed_comm_s": exposed,
        "hidden_comm_fraction": max(0.0, 1.0 - exposed / comm_s) if comm_s > 0 else 1.0,
        "step_s": step_s,
        **_rates(step, dp, batch, step_s),
        "wire_bytes_per_step": sum(r.wire_bytes for r in runs),
        **_work(fw, bw, opt, plan),
    })
    if optimizer_s is None:
        del totals["optimizer_s"]
    memory = step_memory(fw_graph, bw_graph, step.parameters, zero=zero, dp=dp, handoffs=handoffs, target=tgt,
                         plan=plan, **memory_extra)
    totals["memory_per_device_bytes"], totals["fits"] = memory["needed_bytes"], memory["fits"]
    settings = {"dp": dp, "batch_per_device": batch, "global_batch": dp * batch, "seq": seq, "config": config,
                "dtype": step.parameters[0].dtype if step.parameters else dtype, "mode": mode,
                "bucket_cap_bytes": caps[0], "first_bucket_cap_bytes": caps[1], "loss": step.loss,
                "optimizer": "adamw" if optimizer else None, "zero": zero, **_ac_setting(plan)}
    notes = [n for n in NOTES if not n.startswith(("gradients are all-reduced", "assumes DDP", "every device holds",
                                                  "not modelled"))]
    if not optimizer:
        notes = [n for n in notes if not n.startswith("optimizer")] + [
            "optimizer: left out (--no-optimizer): step_s is forward + backward"
            + (" + the parameters' all-gather" if zero < 3 else "") + "; AdamW's states still count in memory"]
    notes += [ZERO_NOTES[zero], "not modelled: DeepSpeed's own bucket sizes (ZeRO-1/2 use DDP's buckets here), "
              "gradient accumulation, fp32 master weights, gradient clipping, activation checkpointing, separate "
              "streams for all-gather and reduce-scatter (one communication stream here)"]
    notes = _ac_notes(notes, plan)
    sharding = {"stage": zero, "name": STAGE_NAMES[zero], "collectives": collectives,
                "wire_bytes_per_step": totals["wire_bytes_per_step"], "comm_s": comm_s, "exposed_comm_s": exposed,
                "collective_runs": [r.to_dict() for r in runs]}
    if unit_rows:
        sharding["units"] = unit_rows
    return TrainResult(step.description, tgt.name, settings, totals, bucket_rows, notes, memory, sharding)


def _rates(step, dp: int, batch: int, step_s: float) -> dict:
    """Tokens and samples per second over the dp devices, with the step's parameter and gradient counts."""
    tokens = dp * batch * step.seq if step.seq is not None else None
    return {"tokens_per_s": tokens / step_s if tokens is not None and step_s > 0 else None,
            "samples_per_s": dp * batch / step_s if step_s > 0 else None,
            "parameters": step.parameter_count, "gradient_bytes": step.gradient_bytes}


def _work(fw, bw, opt, plan=None) -> dict:
    """The work one device does in a step: FLOPs (the optimizer's and the recomputed layers' included), matrix
    FLOPs, nodes, coverage."""
    from .checkpoint import recompute_work

    re_flops, re_matrix = recompute_work(plan, fw) if plan is not None else (0, 0)
    opt_flops = opt.totals["flops"] if opt is not None else 0
    return {"flops_per_device": fw.totals["flops"] + bw.totals["flops"] + opt_flops + re_flops,
            "matrix_flops_per_device": fw.totals["matrix_flops"] + bw.totals["matrix_flops"] + re_matrix,
            "forward_nodes": fw.totals["nodes"], "backward_nodes": bw.totals["nodes"],
            "coverage": min(fw.totals["coverage"], bw.totals["coverage"])}


def _recompute(plan, extra) -> dict:
    """The totals' recomputation figures (absent without activation checkpointing): ``recompute_s`` (inside
    ``backward_compute_s``) and the layers recomputed of all."""
    if plan is None:
        return {}
    return {"recompute_s": sum(extra.values()), "recomputed_layers": len(plan.spans), "layers": plan.layers}


def _ac_setting(plan) -> dict:
    return {} if plan is None else {"activation_checkpointing": plan.option}


def _ac_notes(notes: list, plan) -> list:
    """With activation checkpointing: the not-modelled lists lose it and a note says what is modelled."""
    if plan is None:
        return notes
    out = [n.replace(", activation checkpointing", "") if n.startswith("not modelled") else n for n in notes]
    return out + [f"activation checkpointing {plan.option}: {len(plan.spans)} of {plan.layers} decoder layers under "
                  "torch.utils.checkpoint; their saved activations dropped (their inputs kept), their forward nodes "
                  "run again just before their backward (recompute_s, inside the backward's compute), one layer's "
                  "activations live again at a time; the recomputation's temporaries and torchtitan's op-level "
                  "selective policy are not modelled"]
