"""`graphperf train MODEL --target h100 --dp 8 --batch 8 --seq 1024 [--config full] [--dtype bf16] [--bucket-mb 25]
[--mode graph|eager] [--no-optimizer] [--zero 0|1|2|3] [--activation-checkpointing none|full|every=K]
[--set FIELD=VALUE] [--format table|json] [-o FILE]`.

Projects one data-parallel training step (graphperf/train/step.py) and prints a table or the JSON
(``graphperf.train/1``). ``--batch`` is per device, as with DDP. ``--zero`` picks the ZeRO stage (0: DDP, the default;
3: FSDP FULL_SHARD; graphperf/train/zero.py); ``--activation-checkpointing`` recomputes decoder layers in the
backward (graphperf/train/checkpoint.py). Errors are one line (UsageError, exit 2), as for
every command.
"""

from __future__ import annotations

import json
import math

import click

from ..cli_args import set_option

__all__ = ["train", "render_table"]


def _ms(value) -> str:
    return "-" if value is None else f"{value * 1e3:.3f} ms"


def render_table(d: dict) -> str:
    """The terminal table of a `TrainResult.to_dict()`: settings, the step's times, the buckets, the notes."""
    if d.get("sharding"):
        return _render_sharded(d)
    s, t = d["settings"], d["totals"]
    seq = f", seq {s['seq']}" if s["seq"] is not None else ""
    lines = [f"{d['model']} training step on {s['dp']} x {d['target']}  (data parallel, batch {s['batch_per_device']} "
             f"per device, global {s['global_batch']}{seq}, {s['dtype']}, {s['mode']} mode)", ""]
    rows = [("forward (with loss)", _ms(t["forward_s"])),
            ("backward", f"{_ms(t['backward_s'])}  (compute {_ms(t['backward_compute_s'])}{_recompute(t)} + exposed "
                         f"comm {_ms(t['exposed_comm_s'])})"),
            ("gradient all-reduce", f"{_ms(t['allreduce_s'])} in {len(d['buckets'])} bucket{'s' * (len(d['buckets']) != 1)}, "
                                    f"{t['hidden_comm_fraction']:.0%} hidden behind the backward"),
            ("optimizer (AdamW)", _ms(t["optimizer_s"]) if "optimizer_s" in t else "left out"),
            *_rate_rows(t)]
    if d.get("memory"):
        rows.append(("memory per device", _memory_row(d["memory"])))
    lines += _aligned(rows) + _bucket_lines(d["buckets"], [("all_reduce", "time_s")])
    lines += [""] + [f"  note: {n}" for n in d["notes"]]
    return "\n".join(lines) + "\n"


def _rate_rows(t: dict) -> list[tuple[str, str]]:
    """The step time, the throughput over all devices and the parameter count: the rows every stage shows."""
    return [("step", _ms(t["step_s"])),
            ("tokens/s (all devices)", "-" if t["tokens_per_s"] is None else f"{t['tokens_per_s']:,.0f}"),
            ("samples/s (all devices)", f"{t['samples_per_s']:,.1f}"),
            ("parameters", f"{t['parameters']:,} ({t['gradient_bytes'] / 1e6:,.1f} MB of gradients)")]


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    """Label-value rows, the values aligned after the longest label."""
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]


def _bucket_lines(buckets: list[dict], collectives: list[tuple[str, str]]) -> list[str]:
    """The gradient buckets' table: each bucket's size, ready/start/end times and its `collectives` columns
    (header, key of the bucket's time); nothing without buckets."""
    if not buckets:
        return []
    head = " ".join(f"{h:>11}" for h, _ in collectives)
    lines = ["", f"  {'bucket':>6} {'params':>6} {'bytes':>13} {'ready':>11} {'start':>11} {'end':>11} {head}  "
                 "ready after"]
    for b in buckets:
        times = " ".join(f"{_ms(b[k]):>11}" for _, k in collectives)
        lines.append(f"  {b['index']:>6} {len(b['parameters']):>6} {b['bytes']:>13,} {_ms(b['ready_s']):>11} "
                     f"{_ms(b['start_s']):>11} {_ms(b['end_s']):>11} {times}  {b['ready_after']}")
    return lines


def _recompute(t: dict) -> str:
    """The backward's recomputation, inside its compute (activation checkpointing), or nothing."""
    if "recompute_s" not in t:
        return ""
    return f" incl. recompute {_ms(t['recompute_s'])} of {t['recomputed_layers']}/{t['layers']} layers"


def _gb(x) -> str:
    return f"{x / 1e9:,.2f}"


def _memory_row(m: dict) -> str:
    """The memory line: needed against capacity, then its terms (weights, gathered parameters, AdamW states, the
    peak of live tensors) and, apart, the gradients and saved activations that peak holds."""
    verdict = {True: "fits", False: "DOES NOT FIT", None: "capacity unknown"}[m["fits"]]
    capacity = "" if m["capacity_bytes"] is None else f" of {m['capacity_bytes'] / 1e9:,.1f} GB"
    fw, bw, grads = m["forward_peak_activation_bytes"], m["backward_peak_activation_bytes"], m["gradients_bytes"]
    peak, where = max((bw, "in the backward, holding the gradients and the saved activations still alive"),
                      (fw, "in the forward"), (grads, "the gradients"), key=lambda x: x[0])
    terms = [("weights", m["weights_bytes"]), ("gathered parameters", m.get("gathered_parameters_bytes")),
             ("AdamW states", m["optimizer_states_bytes"]), ("peak of live tensors", peak)]
    return (f"{m['needed_bytes'] / 1e9:,.2f} GB{capacity}: {verdict} ("
            + " + ".join(f"{k} {_gb(v)}" for k, v in terms if v is not None)
            + f" GB {where}; saved activations {_gb(m['saved_activations_bytes'])}, forward peak {_gb(fw)}, "
              f"gradients kept {_gb(grads)} GB)")


def _render_sharded(d: dict) -> str:
    """The table of a ZeRO (stage >= 1) step: times, each collective kind's bytes and time, exposed communication,
    memory by component, the buckets (stages 1, 2) or FSDP's units (stage 3), the notes."""
    s, t, z, m = d["settings"], d["totals"], d["sharding"], d.get("memory") or {}
    seq = f", seq {s['seq']}" if s["seq"] is not None else ""
    lines = [f"{d['model']} training step on {s['dp']} x {d['target']}  ({z['name']}; batch {s['batch_per_device']} "
             f"per device, global {s['global_batch']}{seq}, {s['dtype']}, {s['mode']} mode)", ""]
    fw = _ms(t["forward_s"]) + (f"  (compute {_ms(t['forward_compute_s'])}, waits for all-gathers "
                                f"{_ms(t['forward_s'] - t['forward_compute_s'])})" if z["stage"] == 3 else "")
    rows = [("forward (with loss)", fw),
            ("backward", f"{_ms(t['backward_s'])}  (compute {_ms(t['backward_compute_s'])}{_recompute(t)} + exposed "
                         f"comm {_ms(t['backward_s'] - t['backward_compute_s'])})"),
            ("optimizer (AdamW, 1/dp)", _ms(t["optimizer_s"]) if "optimizer_s" in t else "left out")]
    if "allgather_after_step_s" in t:
        rows.append(("parameter all-gather",
                     f"{_ms(t['allgather_after_step_s'])}  (after the optimizer step, exposed)"))
    rows += _rate_rows(t)
    for op, c in z["collectives"].items():
        rows.append((op.replace("_", "-"), f"{_ms(c['time_s'])} in {c['count']}, payload "
                                           f"{c['payload_bytes'] / 1e6:,.1f} MB, {c['wire_bytes'] / 1e6:,.1f} MB on "
                                           "the wire per device"))
    rows.append(("communication", f"{_ms(z['comm_s'])}, exposed {_ms(t['exposed_comm_s'])} "
                                  f"({t['hidden_comm_fraction']:.0%} hidden), {t['wire_bytes_per_step'] / 1e6:,.1f} MB "
                                  "on the wire per device per step"))
    if m:
        rows.append(("memory per device", _memory_row(m)))
    lines += _aligned(rows) + _bucket_lines(d["buckets"], [("reduce_sc.", "time_s"), ("all_gather", "all_gather_s")])
    if z.get("units"):
        lines += ["", f"  {'phase':<8} {'unit':<18} {'bytes':>13} {'AG start':>11} {'AG end':>11} {'RS start':>11} "
                      f"{'RS end':>11}  first node"]
        for u in z["units"]:
            ag, rs = u["all_gather"] or {}, u["reduce_scatter"] or {}
            lines.append(f"  {u['phase']:<8} {u['unit']:<18} {u['bytes']:>13,} {_ms(ag.get('start_s')):>11} "
                         f"{_ms(ag.get('end_s')):>11} {_ms(rs.get('start_s')):>11} {_ms(rs.get('end_s')):>11}  "
                         f"{u['first_node']}")
    lines += [""] + [f"  note: {n}" for n in d["notes"]]
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("model")
@click.option("--target", "-t", default="h100", show_default=True, help="Target name or TOML file.")
@set_option
@click.option("--dp", type=click.IntRange(min=1), default=1, show_default=True, help="Data-parallel degree (devices).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Sequences per device per step (global batch = dp * batch).")
@click.option("--seq", type=click.IntRange(min=1), help="Tokens per sequence (default: the model's).")
@click.option("--config", default="full", show_default=True, help="Workload config (full, tiny).")
@click.option("--dtype", help="Parameters, gradients and activations: bf16, fp16, fp32 (default: the model's).")
@click.option("--bucket-mb", type=float, help="DDP bucket cap in MiB (default: DDP's 25, with a 1 MiB first bucket).")
@click.option("--mode", type=click.Choice(("graph", "eager")), default="graph", show_default=True,
              help="Execution model of each graph (graph: CUDA-graph replay).")
@click.option("--no-optimizer", is_flag=True,
              help="Leave the AdamW step out of the step time (its states stay in memory).")
@click.option("--zero", type=int, default=0, show_default=True,
              help="ZeRO stage: 0 DDP, 1 optimizer states sharded, 2 + gradients, 3 + parameters (FSDP FULL_SHARD).")
@click.option("--activation-checkpointing", "ac", default="none", show_default=True, metavar="none|full|every=K",
              help="Checkpoint every decoder layer (full) or one in K (every=K): activations dropped after the "
                   "forward, the layer's forward run again before its backward.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True,
              help="table or json (default: what -o's extension names).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def train(model, target, sets, dp, batch, seq, config, dtype, bucket_mb, mode, no_optimizer, zero, ac, fmt, output):
    """Project one data-parallel training step of MODEL on DP devices: forward, backward with the gradient
    all-reduces overlapped, optimizer."""
    from ..cli_args import emit, output_format, pairs, refuse_overwriting, wrote
    from ..errors import UsageError
    from ..target import load_target
    from .checkpoint import parse_checkpointing
    from .step import train as run
    from .zero import check_stage

    fmt = output_format(fmt, output, ("table", "json"))
    refuse_overwriting(output, model, target)
    if bucket_mb is not None and not (bucket_mb > 0 and math.isfinite(bucket_mb)):
        raise UsageError(f"--bucket-mb {bucket_mb:g}: the bucket cap must be a finite positive number of MiB, e.g. 25")
    check_stage(zero, dp)
    parse_checkpointing(ac)
    tgt = load_target(target, pairs(sets, "--set", as_int=False))
    result = run(model, tgt, dp=dp, batch=batch, seq=seq, config=config, dtype=dtype, bucket_cap_mb=bucket_mb,
                 mode=mode, optimizer=not no_optimizer, zero=zero, activation_checkpointing=ac)
    d = result.to_dict()
    text = json.dumps(d, indent=2) + "\n" if fmt == "json" else render_table(d)
    emit(text, output)
    wrote(output, fmt)
