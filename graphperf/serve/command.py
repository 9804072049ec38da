"""`graphperf serve MODEL --target h100 --tp 8 [--pp 2] [--ep 8] [--sp] --batch 64 --input-len 2048 --output-len 256 [--dtype fp8]
[--kv-dtype bf16] [--usd-per-hour 2.5] [--set FIELD=VALUE] [--format table|json|html] [-o FILE]`.

Projects one generation (graphperf/serve/generation.py) and prints a table or the JSON (``graphperf.serve/1``),
or writes its HTML page (graphperf/serve/html.py; the format follows -o's extension: ``-o serve.html``).
A configuration that does not fit its devices is reported as such (exit 0, ``fits`` false, no times) with the
largest batch and the smallest tp that fit. Errors are one line (UsageError exit 2), as for every command.
"""

from __future__ import annotations

import json

import click

from ..cli_args import set_option

__all__ = ["serve", "render_table"]


def _fmt_s(value) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.3f} s"


def _gb(value) -> str:
    return "-" if value is None else f"{value / 1e9:.2f} GB"


def render_table(d: dict) -> str:
    """The terminal table of a `ServeResult.to_dict()`: settings, totals, memory, step breakdown, collectives."""
    s, t, m = d["settings"], d["totals"], d["memory"]
    ep = (f", ep {s['ep']}" if s.get("ep", 1) > 1 else "") + (", sp" if s.get("sp") else "")
    lines = [f"{d['model']} on {s['devices']} x {d['target']}  (tp {s['tp']}, pp {s.get('pp', 1)}{ep}, "
             f"batch {s['batch']}, input {s['input_len']}, output {s['output_len']}, {s['dtype']} weights, "
             f"{s['kv_dtype']} KV cache, {s['mode']} mode)", ""]
    rows = [("ttft", _fmt_s(t["ttft_s"])), ("tpot", _fmt_s(t["tpot_s"])), ("end to end", _fmt_s(t["e2e_s"])),
            ("output tokens/s", "-" if t["output_tokens_per_s"] is None else f"{t['output_tokens_per_s']:,.0f}"),
            ("output tokens/s per device", "-" if t["output_tokens_per_s_per_device"] is None
             else f"{t['output_tokens_per_s_per_device']:,.0f}"),
            ("memory per device", f"{_gb(t['memory_per_device_bytes'])} of {_gb(m['usable_bytes'])} usable "
                                  f"(weights {_gb(m['weights_bytes'])}, KV {_gb(m['kv_cache_bytes'])}, "
                                  f"activations {_gb(m['activations_bytes'])})"),
            ("fits", "yes" if t["fits"] else "NO: not projected"),
            ("largest batch that fits", str(t["max_batch_that_fits"]))]
    if "smallest_tp_that_fits" in m:
        rows.append(("smallest tp that fits", str(m["smallest_tp_that_fits"] or "none")))
    if m.get("smallest_pp_that_fits_estimate"):
        rows.append(("pipeline stages that fit (estimate)", str(m["smallest_pp_that_fits_estimate"])))
    if t["usd_per_million_tokens"] is not None:
        rows.append(("usd per million output tokens", f"{t['usd_per_million_tokens']:.3f}"))
    off = d.get("offline")
    if off and off.get("concurrency"):
        rows[2:3] = [("end to end (all requests)", _fmt_s(t["e2e_s"])),
                     ("requests", f"{off['requests']:,}, {off['concurrency']} in flight, {off['waves']} wave(s)"),
                     ("total tokens/s", f"{off['total_tokens_per_s']:,.0f}")]
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    steps = []
    if d.get("prefill"):
        steps.append(("prefill", d["prefill"]["latency_s"], d["prefill"]["breakdown"]))
    for sample in (d.get("decode") or {}).get("samples", []):
        steps.append((f"decode kv={sample['kv_len']}", sample["latency_s"], sample["breakdown"]))
    if steps:
        lines += ["", f"  {'step':<18} {'wall':>11} {'compute':>11} {'memory':>11} {'collective':>11} {'launch':>11}"]
        for name, wall, b in steps:
            lines.append(f"  {name:<18} {_fmt_s(wall):>11} {_fmt_s(b['compute_s']):>11} {_fmt_s(b['memory_s']):>11} "
                         f"{_fmt_s(b['collective_s'] + b.get('pipeline_send_s', 0.0)):>11} {_fmt_s(b['overhead_s']):>11}")
    if d["collectives_per_layer"]:
        lines += ["", "  collectives per layer (decode step, layers.0):"]
        for c in d["collectives_per_layer"]:
            time_s = "no link figures" if c["time_s"] is None else f"{c['time_s'] * 1e6:.1f} us"
            place = f"{c.get('where', 'after')} {c['module']}"
            lines.append(f"    {c['op']:<10} {place:<30} {c['payload_bytes']:>12,} B  "
                         f"{c['wire_bytes']:>14,.0f} B on the {c['link']} link  {time_s}")
    lines += [""] + [f"  note: {n}" for n in d["notes"]]
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("model")
@click.option("--target", "-t", default="h100", show_default=True, help="Target name or TOML file.")
@set_option
@click.option("--tp", type=click.IntRange(min=1), default=1, show_default=True, help="Tensor-parallel degree.")
@click.option("--pp", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pipeline-parallel degree (layer stages of tp devices each).")
@click.option("--ep", type=click.IntRange(min=1), default=1, show_default=True,
              help="Expert parallelism (MoE models): the experts over EP groups of tp devices in each stage, "
                   "batch/EP sequences each; tp*pp*ep devices.")
@click.option("--expert-imbalance", type=float, default=1.0, show_default=True,
              help="With --ep: the busiest group's routed tokens over the mean (1 uniform .. ep); it sets the step.")
@click.option("--sp", is_flag=True,
              help="Sequence parallelism over the tp devices (Megatron-LM): norms and residual adds on 1/tp of the "
                   "tokens, each all_reduce a reduce_scatter + all_gather.")
@click.option("--micro-batches", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pipeline micro-batches per step (with --pp > 1): fill and drain bubble (pp-1)/(u+pp-1).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Sequences served together [default: 1].")
@click.option("--requests", type=click.IntRange(min=1),
              help="Offline throughput: this many equal requests, at most --max-batch in flight (in waves).")
@click.option("--max-batch", type=click.IntRange(min=1),
              help="With --requests: the engine's cap on sequences in flight (default: what the memory holds).")
@click.option("--input-len", type=click.IntRange(min=1), default=2048, show_default=True, help="Prompt tokens.")
@click.option("--output-len", type=click.IntRange(min=1), default=256, show_default=True, help="Generated tokens.")
@click.option("--dtype", help="Weights and activations: bf16, fp16, fp8 (default: the model's).")
@click.option("--kv-dtype", help="KV cache dtype (default: the activations', bf16 with --dtype fp8).")
@click.option("--usd-per-hour", type=click.FloatRange(min=0), help="Price of one device-hour, USD.")
@click.option("--config", default="full", show_default=True, help="Workload config (full, tiny).")
@click.option("--mode", type=click.Choice(("graph", "eager", "compiled", "reduce-overhead")), default="graph",
              show_default=True, help="Execution model of every step (graph: CUDA-graph replay).")
@click.option("--kv-samples", type=click.IntRange(min=2), default=4, show_default=True,
              help="Context lengths projected exactly; the decode steps between them are interpolated.")
@click.option("--format", "fmt", type=click.Choice(("table", "json", "html")), default="table", show_default=True,
              help="table, json, or html (a self-contained page, to stdout or -o FILE.html); default: what -o's "
                   "extension names.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def serve(model, target, sets, tp, pp, ep, expert_imbalance, sp, micro_batches, batch, requests, max_batch, input_len,
          output_len, dtype, kv_dtype, usd_per_hour, config, mode, kv_samples, fmt, output):
    """Project a whole generation of MODEL on TP devices: TTFT, TPOT, tokens/s, memory per device."""
    from ..cli_args import emit, output_format, pairs, refuse_overwriting, wrote
    from ..target import load_target
    from ..errors import UsageError
    from .generation import serve as run
    from .offline import serve_requests
    from .html import render_serve_html

    fmt = output_format(fmt, output, ("table", "json", "html"))
    refuse_overwriting(output, model, target)
    tgt = load_target(target, pairs(sets, "--set", as_int=False))
    settings = dict(tp=tp, pp=pp, ep=ep, expert_imbalance=expert_imbalance, sp=sp, input_len=input_len,
                    output_len=output_len, dtype=dtype, kv_dtype=kv_dtype, usd_per_hour=usd_per_hour, config=config,
                    mode=mode, kv_samples=kv_samples, micro_batches=micro_batches)
    if requests is not None:
        if batch is not None:
            raise UsageError("--requests sets the batch (the sequences in flight); leave --batch out")
        result = serve_requests(model, tgt, requests=requests, max_batch=max_batch, **settings)
    elif max_batch is not None:
        raise UsageError("--max-batch caps the sequences in flight of --requests; give --requests N")
    else:
        result = run(model, tgt, batch=batch or 1, **settings)
    d = result.to_dict()
    if fmt == "json":
        text = json.dumps(d, indent=2, sort_keys=False) + "\n"
    else:
        text = render_serve_html(d) if fmt == "html" else render_table(d)
    emit(text, output)
    wrote(output, fmt)
