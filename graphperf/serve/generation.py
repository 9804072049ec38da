"""`serve`: one generation (a prefill, then a decode step per output token) of a batch on `tp` devices.

How the figures are projected (every step is the graph one device runs, passes/shard.py, projected on the
target and queued in the execution ``mode``, default ``graph``: CUDA-graph replay, as serving engines run):

- every step runs the graph its mode runs: for ``compiled`` and ``reduce-overhead`` the graph rewritten by every
  what-if fusion rule (`graphperf.pipeline.mode_graph`), as ``graphperf analyze --mode`` does;
- **prefill**: the prompt of ``input_len`` tokens for the whole batch in one pass, the LM head on the last
  position only (`graphs.last_token_logits`); its wall time is ``ttft_s`` (the first output token).
- **decode**: output tokens 2..``output_len`` each take one step; step j attends over ``input_len + j``
  positions. The decode graph is captured once and its KV-cache inputs retyped for each sampled context length
  (`graphs.with_kv_len`): ``kv_samples`` lengths spread evenly over the generation are projected exactly, the
  steps between them are interpolated linearly (a decode step's time is linear in the context length up to
  the kernels' tile steps), and summed. ``tpot_s`` is the mean step; ``e2e_s = ttft_s + sum of the steps``.
- **throughput**: ``output_tokens_per_s = batch * output_len / e2e_s`` (the batch runs as one, no continuous
  batching); per device: divided by ``tp``.
- **memory per device**: the sharded graph's weights + the KV cache of the batch at ``input_len + output_len``
  positions + the prefill's peak of live activations (passes/liveness.py). ``fits`` when that is at most
  ``memory_fraction`` (default 0.9, vLLM's ``gpu_memory_utilization``) of ``memory_gb``. A configuration that does
  not fit is not projected (its times are None); the result says the largest batch that fits at this tp and the
  smallest tp that fits this batch (weights and KV cache split by tp, replicated weights kept whole).
- **pipeline parallelism** (``pp`` > 1): the layers split into ``pp`` stages of ``tp`` devices (passes/shard.py
  `split_pipeline`), stages packed into nodes in order; the batch split into ``micro_batches`` (u) micro-batches of
  ``ceil(batch / u)`` sequences, each stage projected on the graph one micro-batch runs. The prefill takes
  `pipeline_step_s`: ``sum(stage_s) + (u - 1) * max(stage_s) + sends``, the first micro-batch through every stage
  and send, the others one slowest stage apart (GPipe's ``(u + pp - 1) * t + sends`` for balanced stages); each
  device idles ``(pp - 1) / (u + pp - 1)`` of it (``pipeline_bubble_fraction`` in the step's breakdown). The decode
  runs in steady state, as engines run it (vLLM's virtual engines, TensorRT-LLM: the ``u`` micro-batches stay in
  flight, a stage takes the next micro-batch as soon as it is free): each micro-batch gets a token every
  `steady_decode_s` ``= max(sum(stage_s) + sends, u * max(stage_s))``, its own trip round the stages or the slowest
  stage serving all ``u``, whichever is longer; the bubble is the stages' idle share of that period. A send is one
  link latency + the micro-batch's boundary activation / bandwidth, on the scale-out network when the two stages
  sit in different nodes (``devices_per_node``), else on the scale-up link. Default u = 1: the batch as one, the
  stages in turn (a bubble of ``(pp - 1) / pp``); u = pp keeps every stage busy when the stages are balanced.
  Memory per device is the fullest stage's, at the whole batch (its KV cache; the activation peak of the whole
  batch, an upper bound);
- **expert parallelism** (``ep`` > 1, mixture-of-experts models): ``ep`` groups of ``tp`` devices (of ``pp``
  stages), each serving ``batch / ep`` of the sequences through attention, norms and router, the experts of every
  MoE block spread over the ``ep`` groups (passes/expert_parallel.py, after the tensor-parallel split: GShard's layout
  with Megatron-Core's expert-tensor parallelism), an all_to_all dispatch and combine per block. Routing is
  uniform by default: every group's experts receive the same share of the tokens, so the groups take the same time
  and a step's time is one group's; with ``expert_imbalance`` f the busiest group's experts receive f times the
  mean (f * ep * C slots each) and every group waits for it at the combine, so the step is the busiest group's
  graph. ``batch`` must divide by ``ep``. Memory per device holds ``E / ep`` experts and the KV cache of
  ``batch / ep`` sequences; ``max_batch_that_fits`` is the whole batch over the ``ep`` groups;
- **sequence parallelism** (``sp``, with ``tp`` > 1): every step's tensor-parallel graph rewritten by
  passes/sequence_parallel.py: the all_reduces become a reduce_scatter and an all_gather over the step's tokens, the
  norms and residual adds between them run on ``1/tp`` of the tokens (same bytes on the wire, less activation
  memory and norm work). A step whose tokens do not divide by tp (a decode step of a batch that does not) keeps
  the tensor-parallel graph; the notes say which;
- **devices**: ``tp * pp * ep``; tokens/s per device and the cost divide by it;
- **cost**: ``usd_per_million_tokens = usd_per_hour * devices / 3600 / output_tokens_per_s * 1e6`` with
  ``usd_per_hour`` the price of one device-hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from graphperf.errors import UsageError

from . import schedule
from .schedule import bubble_fraction, pipeline_step_s, steady_bubble_fraction, steady_decode_s

__all__ = ["ServeResult", "serve", "SCHEMA"]

SCHEMA = "graphperf.serve/1"
_TOTALS = ("ttft_s", "tpot_s", "e2e_s", "output_tokens_per_s", "output_tokens_per_s_per_device",
           "memory_per_device_bytes", "fits", "max_batch_that_fits", "usd_per_million_tokens")


@dataclass
class ServeResult:
    """One projected generation; `to_dict()` is the JSON (``schema`` ``graphperf.serve/1``)."""

    model: str
    target: str
    settings: dict[str, Any]
    totals: dict[str, Any]
    memory: dict[str, Any]
    prefill: Optional[dict[str, Any]] = None
    decode: Optional[dict[str, Any]] = None
    collectives_per_layer: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    offline: Optional[dict[str, Any]] = None  # graphperf/serve/offline.py: many requests in waves

    @property
    def fits(self) -> bool:
        return bool(self.totals["fits"])

    def to_dict(self) -> dict[str, Any]:
        from graphperf.version import __version__

        return {"schema": SCHEMA, "tool": {"name": "graphperf", "version": __version__}, "model": self.model,
                "target": self.target, "settings": dict(self.settings), "totals": dict(self.totals),
                "memory": dict(self.memory), "prefill": self.prefill, "decode": self.decode,
                "collectives_per_layer": list(self.collectives_per_layer), "notes": list(self.notes),
                **({"offline": dict(self.offline)} if self.offline is not None else {})}


def _breakdown(counts, times, execution) -> dict[str, float]:
    """The wall split into collectives and, for the other nodes, their bound (compute, memory, overhead)."""
    from graphperf.rules.collective import COLLECTIVE_OPS

    out = {"compute_s": 0.0, "memory_s": 0.0, "collective_s": 0.0, "overhead_s": 0.0}
    for c, lat, bound in zip(counts, execution.latency_s, execution.bound):
        if lat is None:
            continue
        if c.node.op.name in COLLECTIVE_OPS:
            out["collective_s"] += lat
        elif bound in ("compute", "memory", "overhead"):
            out[f"{bound}_s"] += lat
    return out


def _project(graph, target, mode: str) -> dict[str, Any]:
    from graphperf.count import count
    from graphperf.execution import simulate
    from graphperf.pipeline import mode_graph
    from graphperf.project import project

    graph, _ = mode_graph(graph, target, mode)  # compiled modes: the fused kernels a compiler emits
    counts = count(graph)
    unknown = sorted({str(c.node.op) for c in counts if c.cost is None})
    times = project(graph, counts, target)
    missing = [c.node.name for c, t in zip(counts, times) if c.cost is not None and t.latency_s is None]
    if unknown or missing:
        what = f"ops without a cost rule ({', '.join(unknown)})" if unknown else \
            f"collectives without link figures ({missing[0]}, ...)"
        raise UsageError(f"{graph.name}: the step has {what}; set the target's scale_up_gbps and "
                         "scale_up_latency_us with --set, or serve with --tp 1")
    ex = simulate(times, target, mode, [c.node.op.name for c in counts])
    return {"latency_s": ex.wall_s, "flops": sum(c.cost.flops for c in counts),
            "bytes": sum(c.cost.bytes for c in counts), "breakdown": _breakdown(counts, times, ex)}


def _sample_lengths(first: int, last: int, samples: int) -> list[int]:
    if last <= first or samples <= 1:
        return sorted({first, last})
    step = (last - first) / (samples - 1)
    return sorted({round(first + i * step) for i in range(samples)})


def _interpolated_sum(points: list[tuple[int, float]], first: int, last: int) -> float:
    """Sum over every integer length in [first, last] of the piecewise-linear curve through `points`."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        # lengths x0 .. x1 - 1 on this segment (the last point added after the loop)
        n = x1 - x0
        total += n * y0 + (y1 - y0) * (n - 1) / 2 if n > 0 else 0.0
    if len(points) == 1:
        return points[0][1] * (last - first + 1)
    return total + points[-1][1]


def _layer_collectives(graph, target) -> list[dict]:
    """The collectives of ``layers.0`` of `graph` (a decode step one device runs) with their link time on `target`."""
    from graphperf.passes.shard import collectives_by_layer
    from graphperf.rules.collective import collective_time

    out = []
    for c in collectives_by_layer(graph).get("layers.0", []):
        node = next(n for n in graph.nodes if n.name == c["node"])
        x, y = graph.types(node.inputs[:1])[0], graph.types(node.outputs[:1])[0]
        t = collective_time(node.op.name, node.attrs, x, y, target)
        out.append({**c, "where": _where(c["node"]), "payload_bytes": t.payload_bytes, "wire_bytes": t.wire_bytes,
                    "steps": t.steps, "link": t.link, "time_s": t.link_s})
    return out


def _where(node: str) -> str:
    """Where a collective sits against its module: an expert dispatch or combine, a sequence-parallel gather before
    its first reader, otherwise after the node that produces its input."""
    for kind in ("dispatch", "combine"):
        if node.endswith(f"_{kind}_all_to_all"):
            return kind
    return "before" if node.endswith("_sp_all_gather") else "after"


def _check_heads(spec, cfg, tp: int) -> None:
    heads, kv_heads = getattr(cfg, "num_heads", None), getattr(cfg, "num_kv_heads", None)
    if heads is None:
        raise UsageError(f"{spec.name}: serve projects decoder LLMs (llama, mixtral); {spec.name} has no heads "
                         "config")
    if heads % tp or kv_heads % tp:
        raise UsageError(f"{spec.name}: --tp {tp} does not divide its {heads} attention heads and {kv_heads} KV "
                         f"heads; choose one of "
                         f"{', '.join(str(t) for t in range(1, kv_heads + 1) if kv_heads % t == 0 and heads % t == 0)}")


def serve(model: str, target: Any = "h100", tp: int = 1, batch: int = 1, input_len: int = 2048,
          output_len: int = 256, dtype: Optional[str] = None, kv_dtype: Optional[str] = None,
          usd_per_hour: Optional[float] = None, config: str = "full", mode: str = "graph", kv_samples: int = 4,
          memory_fraction: float = 0.9, algorithm: str = "ring", overrides: Optional[dict] = None,
          pp: int = 1, micro_batches: int = 1, ep: int = 1, sp: bool = False,
          expert_imbalance: float = 1.0) -> ServeResult:
    """Project one generation of `model` (a graphperf.models LLM) on `tp` devices of `target` (module docstring).

    Parameters
    ----------
    model : str
        A decoder LLM of graphperf.models (``graphperf models``): llama2-7b, llama3-8b/70b/405b, mixtral-8x7b.
    target : str or Target
        The device (its name, a TOML path or a `Target`).
    tp : int
        Tensor-parallel degree; must divide the attention heads and the KV heads.
    pp : int
        Pipeline-parallel degree: the decoder layers split into `pp` stages of `tp` devices each.
    ep : int
        Expert-parallel degree (mixture-of-experts models): the experts spread over `ep` groups of ``tp * pp``
        devices, each serving ``batch / ep`` sequences; must divide the expert count and the batch.
    expert_imbalance : float
        With `ep` > 1: the busiest group's routed tokens over the mean, 1 (uniform, the default) to `ep`.
    sp : bool
        Sequence parallelism over the tp devices of a group (Megatron-LM; needs `tp` > 1; module docstring).
    micro_batches : int
        With `pp` > 1: the batch split into this many micro-batches (of ``ceil(batch / micro_batches)``
        sequences) that cross the stages one behind the other: fill and drain for the prefill (`pipeline_step_s`), in
        steady state for the decode (`steady_decode_s`); default 1 (module docstring).
    batch, input_len, output_len : int
        Sequences served together, prompt tokens each, generated tokens each.
    dtype, kv_dtype : str, optional
        Weights and activations (``bf16``, ``fp16``, ...; default the model's); an 8-bit or narrower type (``fp8``)
        is served as FP8 engines do, the decoder's linear layers in it (W8A8, `graphs.with_quantized_linears`), the
        rest in the model's dtype. KV cache (default: the activation dtype; bf16 with an 8-bit `dtype`).
    usd_per_hour : float, optional
        Price of one device-hour; gives ``usd_per_million_tokens``.

    Returns
    -------
    ServeResult

    Example
    -------
    >>> from graphperf.serve import serve
    >>> r = serve("llama3-8b", "h100", tp=2, batch=2, input_len=32, output_len=8, config="tiny")
    >>> r.fits, r.totals["ttft_s"] > 0, r.totals["e2e_s"] > r.totals["ttft_s"]
    (True, True, True)
    """
    from graphperf import models
    from graphperf.dtypes import DTYPE_BITS, dtype_name
    from graphperf.execution import check_mode
    from graphperf.passes.expert_parallel import shard_expert_parallel
    from graphperf.passes.liveness import peak_activation_memory
    from graphperf.passes.sequence_parallel import shard_sequence_parallel
    from graphperf.passes.shard import shard_tensor_parallel
    from graphperf.target import Target, load_target

    from .graphs import (capture_phase, kv_inputs, last_token_logits, with_kv_len, with_precision,
                         with_quantized_linears)

    check_mode(mode)
    for what, value in (("--tp", tp), ("--pp", pp), ("--ep", ep), ("--batch", batch), ("--input-len", input_len),
                        ("--output-len", output_len), ("kv_samples", kv_samples), ("--micro-batches", micro_batches)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{what} {value!r}: must be an integer >= 1")
    if expert_imbalance != 1 and ep == 1:
        raise UsageError(f"--expert-imbalance {expert_imbalance:g}: skewed routing loads one expert-parallel group "
                         "more than the others; use it with --ep 2 or more")
    if sp and tp == 1:
        raise UsageError("--sp splits the tokens over the tensor-parallel devices: use it with --tp 2 or more")
    if batch % ep:
        raise UsageError(f"--batch {batch} does not split over --ep {ep}: each of the {ep} expert-parallel groups "
                         f"serves batch / ep sequences; use a batch that is a multiple of {ep}")
    local_batch = batch // ep  # the sequences one expert-parallel group serves
    if micro_batches > local_batch:
        raise UsageError(f"--micro-batches {micro_batches}: more micro-batches than the {local_batch} sequences "
                         f"{'of the batch' if ep == 1 else f'each of the {ep} expert-parallel groups serves'}")
    if micro_batches > 1 and pp == 1:
        raise UsageError(f"--micro-batches {micro_batches}: micro-batches pipeline the stages of --pp > 1; with "
                         "--pp 1 the batch runs as one")
    try:
        spec = models.get_model(model)
    except KeyError:
        names = ", ".join(m.name for m in models.list_models() if m.is_llm)
        raise UsageError(f"unknown model {model!r}: serve projects one of {names}") from None
    if not spec.is_llm or config not in spec.configs:
        raise UsageError(f"{model}: serve needs a decoder LLM config ({', '.join(spec.configs)})")
    cfg = spec.configs[config]
    _check_heads(spec, cfg, tp)
    if input_len + output_len > cfg.max_positions:
        raise UsageError(f"{model}: --input-len {input_len} + --output-len {output_len} exceeds its "
                         f"{cfg.max_positions} positions")
    tgt = target if isinstance(target, Target) else load_target(str(target), overrides or {})
    if tgt.memory_gb is None:
        raise UsageError(f"target {tgt.name} has no memory_gb; set one with --set memory_gb=N")

    def resolve(d):
        try:
            return None if d is None else dtype_name(d)
        except KeyError:
            raise UsageError(f"dtype {d!r}: use bf16, fp16, fp32, fp8 (or a canonical name)") from None

    want, want_kv = resolve(dtype), resolve(kv_dtype)
    build = want if want in models.DTYPES else spec.default_dtype
    narrow = want is not None and DTYPE_BITS[want] <= 8  # W8A8: the linear layers only (with_quantized_linears)
    act = want if (want is not None and want != build and not narrow) else None
    kv = want_kv if want_kv is not None else ("bfloat16" if narrow else None)
    served = {"weights": want or build, "activations": build if narrow else want or build,
              "kv": want_kv or ("bfloat16" if narrow else want or build)}

    def precise(graph):
        graph = with_precision(graph, act, kv if (kv and kv != build) else None)
        return with_quantized_linears(graph, want) if narrow else graph

    sp_refused: dict[str, str] = {}  # step -> why sequence parallelism left it tensor-parallel

    def shard(graph, t, phase="decode"):  # the graph one device runs: tensor (sequence) parallel, experts over ep
        graph = shard_tensor_parallel(graph, t, algorithm).graph
        if sp and t > 1:
            split = shard_sequence_parallel(graph)
            if not split.modified and phase is not None:
                sp_refused[phase] = split.refused[0].reason
            graph = split.graph
        return shard_expert_parallel(graph, ep, expert_imbalance).graph if ep > 1 else graph

    prefill_graph = shard(precise(last_token_logits(capture_phase(
        model, config, "prefill", local_batch, input_len, build))), tp, "prefill")
    first, last = input_len + 1, input_len + output_len - 1
    decode_unsharded = precise(capture_phase(model, config, "decode", local_batch, first, build))
    decode_base = shard(decode_unsharded, tp)
    prefill_stages = schedule.stages(prefill_graph, pp)
    decode_stages = schedule.stages(decode_base, pp)
    devices = tp * pp * ep
    micro_size = math.ceil(local_batch / micro_batches)

    # -- memory per device: the fullest pipeline stage ---------------------------------------------
    capacity = tgt.memory_gb * 1e9
    usable = capacity * memory_fraction
    per_stage = []
    for pre_stage, dec_stage in zip(prefill_stages, decode_stages):
        w = sum(v.type.nbytes for v in dec_stage.graph.weights())
        kv_b = sum(dec_stage.graph.values[n].type.nbytes for n in kv_inputs(dec_stage.graph)) / first * (
            input_len + output_len)
        act_b = peak_activation_memory(pre_stage.graph).bytes
        per_stage.append((w + kv_b + act_b, w, kv_b, act_b))
    total, weights, kv_bytes, activations = max(per_stage)
    fits = total <= usable
    max_batch = min((max(int((usable - w) // ((k + a) / local_batch)), 0) * ep if k + a > 0 else None)
                    for _, w, k, a in per_stage)
    memory = {"weights_bytes": int(weights), "kv_cache_bytes": int(kv_bytes), "activations_bytes": int(activations),
              "capacity_bytes": int(capacity), "usable_bytes": int(usable), "memory_fraction": memory_fraction}
    if pp > 1:
        memory["per_stage_bytes"] = [int(t) for t, *_ in per_stage]
    fit_tp = None
    if not fits:  # the smallest tp that fits this batch at this pp: weights sharded that far, KV and activations / tp
        for t in range(tp + 1, cfg.num_kv_heads + 1):
            if cfg.num_kv_heads % t or cfg.num_heads % t:
                continue
            stages_t = schedule.stages(shard(decode_unsharded, t, None), pp)
            if all(sum(v.type.nbytes for v in st.graph.weights()) + (k + a) * tp / t <= usable
                   for st, (_, _, k, a) in zip(stages_t, per_stage)):
                fit_tp = t
                break
        memory["smallest_tp_that_fits"] = fit_tp
        # an estimate: the fullest stage's bytes spread over more stages (embedding and LM head kept whole)
        need_pp = math.ceil(total * pp / usable) if usable > 0 else None
        memory["smallest_pp_that_fits_estimate"] = need_pp if need_pp and need_pp <= cfg.num_layers else None
    totals: dict[str, Any] = {k: None for k in _TOTALS}
    totals.update(memory_per_device_bytes=int(total), fits=fits, max_batch_that_fits=max_batch)
    settings = {"tp": tp, "pp": pp, "ep": ep, "expert_imbalance": expert_imbalance, "sp": sp, "batch": batch,
                "input_len": input_len, "output_len": output_len, "config": config, "dtype": served["weights"],
                "kv_dtype": served["kv"], "mode": mode,
                "kv_samples": kv_samples, "algorithm": algorithm, "usd_per_hour": usd_per_hour, "devices": devices,
                "micro_batches": micro_batches, "micro_batch_size": micro_size}
    per_layer = _layer_collectives(decode_stages[0].graph, tgt)
    quant = [f"{want} linear layers (W8A8: their weights and input activations in {want}, the quantization fused "
             f"into the producer where it feeds only them); embedding, LM head, norms and attention in {build}"
             ] if narrow else []
    notes = quant + [f"decode: {kv_samples} context lengths projected exactly, the steps between them interpolated "
                     "linearly",
             "prefill computes the LM head for the last position only",
             "the batch runs as one (no continuous batching); usd per device-hour"]

    def sp_note():  # after every step is sharded: which kept the tensor-parallel graph
        return (f"sequence parallel over tp {tp}: norms and residual adds on 1/{tp} of the tokens, each all_reduce a "
                "reduce_scatter + all_gather" + "".join(f"; the {phase} kept tensor-parallel: {why}"
                                                       for phase, why in sorted(sp_refused.items())))
    if ep > 1:
        notes.append(f"experts: {ep} expert-parallel groups of {tp} device(s) in each of the {pp} stage(s) (a stage "
                     f"spans {tp * ep} devices), each group serving {local_batch} of the {batch} sequences with "
                     f"1/{ep} of every MoE block's experts; an all_to_all dispatch and combine per "
                     "MoE block; " + ("uniform routing (every group takes the same time)" if expert_imbalance == 1 else
                                      f"the busiest group's experts get {expert_imbalance:g} x the mean tokens and "
                                      "set the step (its graph is projected, and its memory)"))
    if pp > 1:
        notes.append(f"pipeline: {pp} stages, the batch in {micro_batches} micro-batch(es) of {micro_size}: the prefill "
                     f"is sum(stage) + {micro_batches - 1} x slowest stage + sends (each device idles "
                     f"{bubble_fraction(pp, micro_batches):.0%} of it, (pp-1)/(u+pp-1)); the decode runs in steady "
                     f"state, a token per micro-batch every max(sum(stage) + sends, {micro_batches} x slowest stage)")
    result = ServeResult(model, tgt.tag, settings, totals, memory, collectives_per_layer=per_layer, notes=notes)
    if not fits:
        result.notes.append(
            f"does not fit: {total / 1e9:.1f} GB per device > {usable / 1e9:.1f} GB usable "
            f"({memory_fraction:.0%} of {tgt.memory_gb:g} GB); not projected. Largest batch at tp {tp}: {max_batch}; "
            f"smallest tp for batch {batch}: {fit_tp or 'none'}; about "
            f"{memory['smallest_pp_that_fits_estimate'] or 'no'} pipeline stages of tp {tp} would hold it")
        result.notes += [sp_note()] if sp else []
        return result

    # -- time: the micro-batches cross the stages in order, a send between two ------------------------------
    if micro_batches > 1:  # the graphs one micro-batch runs: their collectives and refusals are the ones reported
        sp_refused.clear()
        prefill_stages = schedule.stages(shard(precise(last_token_logits(
            capture_phase(model, config, "prefill", micro_size, input_len, build))), tp, "prefill"), pp)
        decode_stages = schedule.stages(
            shard(precise(capture_phase(model, config, "decode", micro_size, first, build)), tp), pp)
        result.collectives_per_layer = _layer_collectives(decode_stages[0].graph, tgt)

    def step(stages, kv_len=None):
        parts = [_project(st.graph if kv_len is None else with_kv_len(st.graph, kv_len), tgt, mode) for st in stages]
        stage_s = [p["latency_s"] for p in parts]
        # a stage is tp * ep devices wide (Megatron's order: tp innermost, then ep, pp outermost)
        send_s = [schedule.send_s(st.received_bytes, tgt, s, tp * ep) for s, st in enumerate(stages) if s > 0]
        slowest = max(range(len(parts)), key=stage_s.__getitem__)
        u, keys = micro_batches, parts[0]["breakdown"]
        if kv_len is None:  # the prefill, fill and drain: the first micro-batch through every stage and send,
            # then the others behind the slowest stage; each term's split by bound from the stage that runs it
            latency, idle = pipeline_step_s(stage_s, send_s, u), bubble_fraction(pp, u)
            breakdown = {k: sum(p["breakdown"][k] for p in parts) + (u - 1) * parts[slowest]["breakdown"][k]
                         for k in keys}
            breakdown["pipeline_send_s"] = sum(send_s)
        else:  # a decode step in steady state: the micro-batch's trip or the slowest stage serving all u
            latency = steady_decode_s(stage_s, send_s, u)
            idle = steady_bubble_fraction(stage_s, latency, u)
            stage_bound = u * stage_s[slowest] > sum(stage_s) + sum(send_s)
            breakdown = {k: u * parts[slowest]["breakdown"][k] if stage_bound else sum(p["breakdown"][k] for p in parts)
                         for k in keys}
            breakdown["pipeline_send_s"] = 0.0 if stage_bound else sum(send_s)
        out = {"latency_s": latency, "flops": u * sum(p["flops"] for p in parts),
               "bytes": u * sum(p["bytes"] for p in parts), "breakdown": breakdown}
        if pp > 1:
            breakdown["pipeline_bubble_fraction"] = idle
            out["pipeline"] = {"micro_batches": u, "micro_batch_size": micro_size, "stage_s": stage_s,
                               "send_s": send_s, "slowest_stage": slowest, "bubble_fraction": idle,
                               "schedule": "fill-drain" if kv_len is None else "steady"}
        return out

    pre = step(prefill_stages)
    samples = []
    if output_len > 1:
        for kv_len in _sample_lengths(first, last, kv_samples):
            one = step(decode_stages, kv_len)
            samples.append({"kv_len": kv_len, "latency_s": one["latency_s"], "breakdown": one["breakdown"],
                            **({"pipeline": one["pipeline"]} if pp > 1 else {})})
    decode_s = _interpolated_sum([(s["kv_len"], s["latency_s"]) for s in samples], first, last) if samples else 0.0
    steps = output_len - 1
    ttft = pre["latency_s"]
    e2e = ttft + decode_s
    tokens_per_s = batch * output_len / e2e
    totals.update(ttft_s=ttft, tpot_s=decode_s / steps if steps else None, e2e_s=e2e,
                  output_tokens_per_s=tokens_per_s, output_tokens_per_s_per_device=tokens_per_s / devices)
    if usd_per_hour is not None:
        totals["usd_per_million_tokens"] = usd_per_hour * devices / 3600 / tokens_per_s * 1e6
    result.prefill = {"latency_s": ttft, "flops": pre["flops"], "bytes": pre["bytes"], "breakdown": pre["breakdown"],
                      **({"pipeline": pre["pipeline"]} if pp > 1 else {})}
    result.decode = {"steps": steps, "total_s": decode_s, "samples": samples}
    result.notes += [sp_note()] if sp else []
    return result
