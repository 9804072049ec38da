"""`train(model, target, dp, batch, seq)`: one data-parallel training step on `dp` devices, projected.

Each device runs the forward with the loss and the backward of its own `batch` sequences (``batch`` is per device,
as with DDP: the global batch is ``dp * batch``), then the optimizer step; the gradients are summed over the group
by DDP's bucketed all-reduces, which overlap with the backward:

1. capture: graphperf/train/capture.py (forward + loss and backward ATen graphs on fake tensors);
2. forward: projected and queued in the execution model (`graphperf.pipeline.analyze_graph`), ``forward_s``;
3. backward: passes/data_parallel.py places one ``all_reduce`` per gradient bucket; the backward's compute is
   projected and queued like the forward (each node's end time), each bucket's all-reduce is priced on the
   target's link (graphperf/rules/collective.py, through `graphperf.project`) and graphperf/train/timeline.py
   overlaps the two streams: ``backward_s``, ``allreduce_s``, ``exposed_comm_s``;
4. optimizer: AdamW as one fused elementwise pass (graphperf/train/optimizer.py), ``optimizer_s``;
5. ``step_s = forward_s + backward_s + optimizer_s``; ``tokens_per_s = dp * batch * seq / step_s``.

The JSON (`TrainResult.to_dict`, schema ``graphperf.train/1``) holds these totals, the settings, the buckets and the
notes that state the assumptions (communication does not slow compute; not modelled: ZeRO/FSDP, gradient
accumulation, compute-communication contention). Execution modes: ``graph`` (a CUDA-graph replay of each
graph, the default) and ``eager``; the all-reduce's host call is not charged in either.
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
    "communication is assumed not to slow the compute it overlaps (no SM, HBM or copy-engine contention)",
    "optimizer: AdamW as one fused elementwise pass, reading p, g, m, v and writing p, m, v (m, v in fp32)",
    "not modelled: ZeRO / FSDP sharding, gradient accumulation, fp32 master weights, gradient clipping, "
    "activation checkpointing",
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
        Bytes per device: weights, gradients, optimizer states (fp32 m and v), saved activations, the backward's
        peak of live activations; needed, capacity (``memory_gb``), fits (None when the target states none).
    """

    model: str
    target: str
    settings: dict[str, Any]
    totals: dict[str, Any]
    buckets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, schema ``graphperf.train/1``."""
        from graphperf.version import __version__

        return {"schema": SCHEMA, "tool": {"name": "graphperf", "version": __version__}, "model": self.model,
                "target": self.target, "settings": dict(self.settings), "totals": dict(self.totals),
                "memory": dict(self.memory), "buckets": [dict(b) for b in self.buckets], "notes": list(self.notes)}


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

        n = nodes[0]
        ct = collective_time("all_reduce", n.attrs, sub.values[n.inputs[0]].type, sub.values[n.outputs[0]].type,
                             target)
        raise UsageError(f"target {target.name} has no link figures for a {n.attrs['group_size']}-device all_reduce "
                         f"(missing {ct.missing}): pass them with --set, e.g. --set scale_up_gbps=450")
    by_name = {n.name: t.device_s for n, t in zip(nodes, times)}
    return [by_name[n] for n in names]


def train(model: str, target: Union[str, Any] = "h100", *, dp: int = 1, batch: int = 1, seq: Optional[int] = None,
          config: str = "full", dtype: Optional[str] = None, bucket_cap_mb: Optional[float] = None,
          mode: str = "graph", optimizer: bool = True) -> TrainResult:
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
        Include the AdamW step (True) or leave it out (``optimizer_s`` None).

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
    from .optimizer import adamw_graph
    from .timeline import overlap

    if mode not in MODES:
        raise UsageError(f"--mode {mode}: a training step is projected in {' or '.join(MODES)} mode")
    tgt = _target(target)
    step = capture_training_step(model, config, batch, seq, dtype)
    info = {"frontend": "torch (aot_autograd on fake tensors)", "source": model}
    fw_graph = canonicalize(step.forward).graph
    fw = analyze_graph(fw_graph, tgt, {**info, "name": fw_graph.name}, mode=mode)
    bw_graph = canonicalize(step.backward).graph
    dp_result = data_parallel(bw_graph, dp, bucket_cap_mb)
    bw = analyze_graph(bw_graph, tgt, {**info, "name": bw_graph.name}, mode=mode)
    ends = _node_ends(bw)
    buckets = dp_result.buckets
    durations = _allreduce_seconds(dp_result.graph, [b.all_reduce for b in buckets], tgt) if buckets else []
    timeline = overlap(bw.totals["latency_s"], [ends[b.ready_after] if b.ready_after else 0.0 for b in buckets],
                       durations)
    opt = analyze_graph(adamw_graph(step.parameters), tgt, {"name": "adamw"}, mode=mode) if optimizer else None
    optimizer_s = opt.totals["latency_s"] if opt is not None else None
    step_s = fw.totals["latency_s"] + timeline.backward_s + (optimizer_s or 0.0)
    seq = step.seq
    tokens = dp * batch * seq if seq is not None else None
    flops = fw.totals["flops"] + bw.totals["flops"] + (opt.totals["flops"] if opt is not None else 0)
    totals = {
        "forward_s": fw.totals["latency_s"],
        "backward_s": timeline.backward_s,
        "backward_compute_s": timeline.compute_end_s,
        "optimizer_s": optimizer_s,
        "allreduce_s": timeline.allreduce_s,
        "exposed_comm_s": timeline.exposed_comm_s,
        "hidden_comm_fraction": timeline.hidden_fraction,
        "step_s": step_s,
        "tokens_per_s": tokens / step_s if tokens is not None and step_s > 0 else None,
        "samples_per_s": dp * batch / step_s if step_s > 0 else None,
        "parameters": step.parameter_count,
        "gradient_bytes": step.gradient_bytes,
        "flops_per_device": flops,
        "matrix_flops_per_device": fw.totals["matrix_flops"] + bw.totals["matrix_flops"],
        "forward_nodes": fw.totals["nodes"],
        "backward_nodes": bw.totals["nodes"],
        "coverage": min(fw.totals["coverage"], bw.totals["coverage"]),
    }
    if optimizer_s is None:
        del totals["optimizer_s"]
    memory = _memory(step, fw, fw_graph, bw, bw_graph, optimizer, tgt)
    totals["memory_per_device_bytes"], totals["fits"] = memory["needed_bytes"], memory["fits"]
    bucket_rows = [{**b.to_dict(), "ready_s": r, "start_s": s, "end_s": e, "time_s": d}
                   for b, r, s, e, d in zip(buckets, timeline.ready_s, timeline.start_s, timeline.end_s,
                                            timeline.duration_s)]
    settings = {"dp": dp, "batch_per_device": batch, "global_batch": dp * batch, "seq": seq, "config": config,
                "dtype": step.parameters[0].dtype if step.parameters else dtype, "mode": mode,
                "bucket_cap_bytes": dp_result.bucket_cap_bytes,
                "first_bucket_cap_bytes": dp_result.first_bucket_cap_bytes, "loss": step.loss,
                "optimizer": "adamw" if optimizer else None}
    notes = list(NOTES) if optimizer else [n for n in NOTES if not n.startswith("optimizer")] + [
        "optimizer: left out (--no-optimizer): step_s is forward + backward"]
    return TrainResult(step.description, tgt.name, settings, totals, bucket_rows, notes, memory)


def _weight_views(fw, fw_graph) -> set[str]:
    """Values of the forward that are views of a weight (``t(w)`` saved for the backward): no memory of their own."""
    free = {r.name for r in fw.nodes if r.bound == "free"}
    views = {v.name for v in fw_graph.weights()}
    for node in fw_graph.nodes:
        if node.name in free and node.inputs and node.inputs[0] in views:
            views.update(node.outputs)
    return views


def _memory(step, fw, fw_graph, bw, bw_graph, optimizer: bool, target) -> dict[str, Any]:
    """Bytes one device holds: the weights (parameters and buffers), AdamW's two fp32 moments per updated
    parameter, the activations saved for the backward (the backward graph's inputs, less the views of weights) and
    the backward's own peak of live tensors, which holds the gradients (its outputs live to its end; at least the
    gradients' bytes). An upper bound: the saved activations are freed as the backward goes."""
    from graphperf.report.memory_fit import memory_fit

    updated = sum(p.numel for p in step.parameters if p.gradient is not None)
    views = _weight_views(fw, fw_graph)
    saved = sum(v.type.nbytes for v in bw_graph.values.values()
                if v.kind == "input" and v.type is not None and v.name not in views)
    out = {"weights_bytes": fw.totals["weight_bytes"], "gradients_bytes": step.gradient_bytes,
           "optimizer_states_bytes": 8 * updated if optimizer else 0, "saved_activations_bytes": saved,
           "backward_peak_activation_bytes": bw.totals["peak_activation_bytes"]}
    backward = max(out["backward_peak_activation_bytes"], out["gradients_bytes"])
    fit = memory_fit(out["weights_bytes"] + out["optimizer_states_bytes"], saved + backward,
                     getattr(target, "memory_gb", None))
    out.update(needed_bytes=fit["memory_needed_bytes"], capacity_bytes=fit["memory_capacity_bytes"],
               fits=fit["fits"], shortfall_bytes=fit["memory_shortfall_bytes"])
    return out
