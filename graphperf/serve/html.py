"""The HTML page of one projected generation (``graphperf serve --format html`` or ``-o FILE.html``).

Built from a `ServeResult.to_dict()` (schema ``graphperf.serve/1``) alone with the report's page helpers
(graphperf/report/html_assets.py): the page shows the figures the JSON holds and computes none, except sums
of a step's breakdown (the bars) and shares of it. Sections: the settings and totals; the time of every
projected step (the prefill and each sampled decode step) split into compute, memory, collective, launch
overhead and pipeline send, as stacked bars with each part in a table; the decode step against the KV length;
memory per device against usable and capacity (each pipeline stage's when pp > 1); the collectives of one
layer; the notes.

Guarantees: one file, nothing fetched at view time (`document`); every string from the result is escaped;
the same dict gives the same bytes; a figure the result does not hold (a configuration that does not fit
has no times) is never shown as 0 or "None": such a page says "does not fit" and what would fit.
"""

from __future__ import annotations

from typing import Any, Optional

from ..report.html_assets import Section, document, esc, hbar_chart, kv_table, line_chart, pct, sort_key, table
from ..report.units import seconds, si

__all__ = ["render_serve_html"]

#: The parts of a step's time: (breakdown key, label, css class of its bar segment).
PARTS = (("compute_s", "compute", "b-compute"), ("memory_s", "memory", "b-memory"),
         ("collective_s", "collective", "c2"), ("overhead_s", "launch overhead", "b-overhead"),
         ("pipeline_send_s", "pipeline send", "c6"))
#: The parts of the memory per device: (memory key, label, css class).
MEMORY_PARTS = (("weights_bytes", "weights", "c0"), ("kv_cache_bytes", "KV cache", "c1"),
                ("activations_bytes", "activations (peak)", "c4"))


def render_serve_html(d: dict[str, Any], *, fragment: bool = False) -> str:
    """The self-contained page of one projected generation.

    Parameters
    ----------
    d : dict
        ``ServeResult.to_dict()`` (schema ``graphperf.serve/1``).
    fragment : bool
        A ``<div>`` for a notebook instead of a whole document.

    Returns
    -------
    str
        One HTML document (nothing is fetched when it is viewed).

    Example
    -------
    >>> from graphperf.serve import serve
    >>> d = serve("llama3-8b", "h100", tp=2, batch=2, input_len=32, output_len=8, config="tiny").to_dict()
    >>> "ttft" in render_serve_html(d)
    True
    """
    return document(page_title(d), serve_sections(d), d["schema"], fragment=fragment)


def page_title(d: dict[str, Any]) -> str:
    """The model, the devices (the target's tag) and every setting that changes the figures."""
    s = d["settings"]
    pp = s.get("pp", 1)
    pipe = f", pp {pp} x {s.get('micro_batches', 1)} micro-batches" if pp > 1 else ""
    pipe += f", ep {s['ep']}" if s.get("ep", 1) > 1 else ""
    pipe += f" (busiest {s['expert_imbalance']:g} x mean)" if s.get("expert_imbalance", 1) != 1 else ""
    pipe += ", sequence parallel" if s.get("sp") else ""
    return (f"graphperf serve: {d['model']} on {s['devices']} x {d['target']} (tp {s['tp']}{pipe}, batch {s['batch']}, "
            f"{s['input_len']} in + {s['output_len']} out tokens, {s['dtype']} weights, {s['kv_dtype']} KV cache, "
            f"{s['mode']} mode)")


def serve_sections(d: dict[str, Any]) -> list[Section]:
    """The page's sections: a configuration that does not fit gets what would fit instead of its times."""
    fits = bool(d["totals"]["fits"])
    out = [Section("summary", "Settings and totals", summary_body(d), nav="Totals")]
    if not fits:
        out.append(Section("fit", "Does not fit: what would fit", fit_body(d), nav="What fits"))
    if fits and d.get("prefill"):
        out.append(Section("steps", "Time per step, by kind", steps_body(d), nav="Steps"))
    if fits and (d.get("decode") or {}).get("samples"):
        out.append(Section("decode", "Decode step against the KV length", decode_body(d), nav="Decode"))
    out.append(Section("memory", "Memory per device", memory_body(d), nav="Memory"))
    if d["collectives_per_layer"]:
        out.append(Section("collectives", "Collectives per layer", collectives_body(d["collectives_per_layer"]),
                           nav="Collectives"))
    return out + [Section("notes", "Notes", notes_body(d["notes"]))]


# -- formatting -------------------------------------------------------------------------------


def nbytes(value: float) -> str:
    """Bytes with a decimal prefix (1 GB = 1e9 B), three significant digits."""
    return si(value, "B")


def per_s(value: float, unit: str) -> str:
    """A rate with thousands separators: ``6,329 tokens/s``."""
    return f"{value:,.0f} {unit}"


def legend(parts) -> str:
    """A colour key: parts are (label, css class)."""
    return '<div class="legend">' + "".join(f'<span class="sw {cls}"></span>{esc(label)}' for label, cls in parts) + \
        "</div>\n"


# -- settings and totals ----------------------------------------------------------------------


def settings_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """The settings, each with its unit."""
    s = d["settings"]
    rows = [("model", f"{d['model']} ({s['config']} config)"), ("target", d["target"]),
            ("devices", f"{s['devices']} (tp {s['tp']} x pp {s.get('pp', 1)}"
                        + (f" x ep {s['ep']})" if s.get("ep", 1) > 1 else ")"))]
    if s.get("sp"):
        rows.append(("sequence parallel", f"norms and residual adds on 1/{s['tp']} of the tokens"))
    if s.get("expert_imbalance", 1) != 1:
        rows.append(("expert imbalance", f"the busiest group's experts get {s['expert_imbalance']:g} x the mean tokens"))
    if s.get("pp", 1) > 1:
        rows.append(("micro-batches", f"{s['micro_batches']} of {s['micro_batch_size']} sequences"))
    rows += [("batch", f"{s['batch']} sequences"), ("input length", f"{s['input_len']} tokens"),
             ("output length", f"{s['output_len']} tokens"), ("weights and activations dtype", s["dtype"]),
             ("KV cache dtype", s["kv_dtype"]), ("execution mode", s["mode"]),
             ("decode context lengths projected", str(s["kv_samples"]))]
    if s.get("usd_per_hour") is not None:
        rows.append(("price", f"{s['usd_per_hour']:g} USD per device-hour"))
    return rows


def totals_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """The projected totals with their units; only the ones the result holds (none when it does not fit)."""
    t, s = d["totals"], d["settings"]
    if not t["fits"]:
        return []
    rows = [("time to first token (ttft)", seconds(t["ttft_s"]))]
    if t["tpot_s"] is not None:
        rows.append(("time per output token (tpot, mean decode step)", seconds(t["tpot_s"])))
    off = d.get("offline") or {}
    if off.get("concurrency"):  # graphperf/serve/offline.py: many requests in waves
        rows += [("requests", f"{off['requests']:,}, {off['concurrency']} in flight, {off['waves']} wave(s) "
                              "(ttft and tpot: a full wave's)"),
                 ("total tokens/s (input + output)", per_s(off["total_tokens_per_s"], "tokens/s"))]
    rows += [("end to end (e2e)" if not off.get("concurrency") else "end to end (all requests)", seconds(t["e2e_s"])),
             ("output tokens/s", per_s(t["output_tokens_per_s"], "tokens/s")),
             ("output tokens/s per device", per_s(t["output_tokens_per_s_per_device"],
                                                  f"tokens/s per device ({s['devices']} devices)"))]
    if t.get("usd_per_million_tokens") is not None:
        rows.append(("cost", f"{t['usd_per_million_tokens']:.3f} USD per million output tokens"))
    return rows


def summary_body(d: dict[str, Any]) -> str:
    """Settings, then the totals (or the "does not fit" verdict)."""
    t, m = d["totals"], d["memory"]
    usable = f"{nbytes(m['usable_bytes'])} usable ({m['memory_fraction']:.0%} of {nbytes(m['capacity_bytes'])})"
    used = f"{nbytes(t['memory_per_device_bytes'])} of {usable}"
    head = kv_table([(k, esc(v)) for k, v in settings_rows(d)])
    if not t["fits"]:
        verdict = (f'<p class="warn"><b>Does not fit</b>: it needs {esc(nbytes(t["memory_per_device_bytes"]))} per '
                   f"device, more than the {esc(usable)}. This configuration is not projected: it has no times. "
                   "What would fit is below.</p>\n")
        return head + verdict
    rows = totals_rows(d) + [("memory per device", used)]
    return head + "<h3>Totals</h3>\n" + kv_table([(k, esc(v)) for k, v in rows])


def fit_body(d: dict[str, Any]) -> str:
    """What would fit: the largest batch at this tp, the smallest tp for this batch, about how many stages."""
    s, t, m = d["settings"], d["totals"], d["memory"]
    batch = t.get("max_batch_that_fits")
    rows = [(f"largest batch at tp {s['tp']}, pp {s.get('pp', 1)}",
             "none: the weights alone exceed the usable memory" if batch == 0 else
             ("not bounded by memory" if batch is None else f"{batch} sequences"))]
    if "smallest_tp_that_fits" in m:
        tp = m["smallest_tp_that_fits"]
        rows.append((f"smallest tp for batch {s['batch']}",
                     f"tp {tp}" if tp else "none (no tp that divides the heads fits)"))
    if "smallest_pp_that_fits_estimate" in m:
        pp = m["smallest_pp_that_fits_estimate"]
        rows.append((f"pipeline stages of tp {s['tp']} that would hold it (estimate)",
                     f"pp {pp}" if pp else "none (more stages than layers)"))
    return kv_table([(k, esc(v)) for k, v in rows])


# -- time per step ----------------------------------------------------------------------------


def steps(d: dict[str, Any]) -> list[tuple[str, float, dict[str, float]]]:
    """(name, latency_s, breakdown) of the prefill and of every sampled decode step."""
    out = [("prefill", d["prefill"]["latency_s"], d["prefill"]["breakdown"])]
    for sample in (d.get("decode") or {}).get("samples", []):
        out.append((f"decode at KV {sample['kv_len']}", sample["latency_s"], sample["breakdown"]))
    return out


def shown_parts(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The parts of `PARTS` the steps hold (pipeline send only with pp > 1)."""
    b = d["prefill"]["breakdown"]
    return [p for p in PARTS if p[0] in b and (p[0] != "pipeline_send_s" or d["settings"].get("pp", 1) > 1)]


def step_bars(d: dict[str, Any]) -> str:
    """One stacked bar per step; its total is the sum of its parts, the step's latency."""
    parts = shown_parts(d)
    rows = [(name, [(b[k], cls, f"{name}: {label} {seconds(b[k])}") for k, label, cls in parts])
            for name, _, b in steps(d)]
    return hbar_chart(rows, fmt=seconds) + legend([(label, cls) for _, label, cls in parts])


def step_row(name: str, latency_s: float, b: dict[str, float], parts, pipelined: bool):
    """One table row: the step's latency, each part with its share, the pipeline's idle fraction."""
    cells = [(esc(name), None, ""), (esc(seconds(latency_s)), sort_key(latency_s), "")]
    for k, _, _ in parts:
        share = f" ({pct(b[k] / latency_s)})" if latency_s > 0 else ""
        cells.append((esc(seconds(b[k]) + share), sort_key(b[k]), ""))
    if pipelined:
        cells.append((esc(pct(b["pipeline_bubble_fraction"])), sort_key(b["pipeline_bubble_fraction"]), ""))
    return cells


def steps_body(d: dict[str, Any]) -> str:
    """Bars and the table of every step's parts; with pp > 1 also each stage's time."""
    parts = shown_parts(d)
    pipelined = d["settings"].get("pp", 1) > 1
    cols = [("step", False), ("latency", True)] + [(label, True) for _, label, _ in parts]
    cols += [("idle: pipeline bubble", True)] if pipelined else []
    rows = [step_row(name, lat, b, parts, pipelined) for name, lat, b in steps(d)]
    note = ('<p class="note">Each step\'s latency is the sum of its parts: compute-bound and memory-bound kernels, '
            "collectives, launch overhead" + (", sends between pipeline stages" if pipelined else "") +
            ". The decode rows are the sampled context lengths; the steps between them are interpolated.</p>\n")
    out = step_bars(d) + table(cols, rows, sortable=False) + note
    return out + (stages_table(d) if pipelined else "")


def stage_row(name: str, p: dict[str, Any], scheduled: bool):
    """One step of the pipeline: each stage's time, the sends, the slowest stage (and the schedule)."""
    sends = sum(p["send_s"])
    return ([(esc(name), None, "")] + [(esc(seconds(v)), sort_key(v), "") for v in p["stage_s"]] +
            [(esc(seconds(sends)), sort_key(sends), ""), (esc(p["slowest_stage"]), str(p["slowest_stage"]), "")] +
            ([(esc(p["schedule"]), None, "")] if scheduled else []))


def stages_table(d: dict[str, Any]) -> str:
    """Per step, each pipeline stage's time for one micro-batch and the sends into it."""
    named = [("prefill", d["prefill"])] + [(f"decode at KV {s['kv_len']}", s) for s in d["decode"]["samples"]]
    scheduled = all("schedule" in step["pipeline"] for _, step in named)
    cols = [("step", False)] + [(f"stage {i}", True) for i in range(d["settings"]["pp"])]
    cols += [("sends", True), ("slowest stage", True)] + ([("schedule", False)] if scheduled else [])
    rows = [stage_row(name, step["pipeline"], scheduled) for name, step in named]
    return "<h3>Pipeline stages (one micro-batch each)</h3>\n" + table(cols, rows, sortable=False)


# -- decode against the KV length -------------------------------------------------------------


def decode_body(d: dict[str, Any]) -> str:
    """The sampled decode steps against their context length, with compute- and memory-bound parts."""
    samples = d["decode"]["samples"]
    xs = [s["kv_len"] for s in samples]
    series = [("decode step", "s0", [s["latency_s"] for s in samples]),
              ("memory-bound part", "s1 dash", [s["breakdown"]["memory_s"] for s in samples]),
              ("compute-bound part", "s2 dash", [s["breakdown"]["compute_s"] for s in samples])]
    chart = line_chart(xs, series, "KV length (tokens attended)", "decode step latency")
    dec = d["decode"]
    note = (f'<p class="note">{len(samples)} context lengths projected exactly (the marks); the decode steps '
            f"between them are interpolated linearly. {dec['steps']} decode steps take {seconds(dec['total_s'])} "
            "in all.</p>\n")
    return chart + note


# -- memory -----------------------------------------------------------------------------------


def memory_rows(d: dict[str, Any]) -> list[tuple[str, list[tuple[float, str, str]]]]:
    """Bars: the fullest device split into its parts, each stage's total (pp > 1), usable and capacity."""
    m = d["memory"]
    fullest = "per device (fullest stage)" if "per_stage_bytes" in m else "per device"
    rows = [(fullest, [(m[k], cls, f"{label} {nbytes(m[k])}") for k, label, cls in MEMORY_PARTS])]
    for i, total in enumerate(m.get("per_stage_bytes", [])):
        rows.append((f"stage {i}", [(total, "c5", f"stage {i}: {nbytes(total)}")]))
    rows.append((f"usable ({m['memory_fraction']:.0%})", [(m["usable_bytes"], "c3", "usable")]))
    return rows + [("capacity", [(m["capacity_bytes"], "cx", "capacity")])]


def memory_body(d: dict[str, Any]) -> str:
    """The memory bars (bytes, decimal prefixes) and the figures in a table."""
    m, t = d["memory"], d["totals"]
    keys = [(label, nbytes(m[k])) for k, label, _ in MEMORY_PARTS]
    total = t["memory_per_device_bytes"]
    share = f" ({pct(total / m['usable_bytes'])} of usable)" if m["usable_bytes"] > 0 else ""
    keys += [("total per device", nbytes(total) + share),
             (f"usable ({m['memory_fraction']:.0%} of capacity)", nbytes(m["usable_bytes"])),
             ("capacity", nbytes(m["capacity_bytes"]))]
    keys += [(f"stage {i}", nbytes(v)) for i, v in enumerate(m.get("per_stage_bytes", []))]
    chart = hbar_chart(memory_rows(d), fmt=nbytes)
    key = legend([(label, cls) for _, label, cls in MEMORY_PARTS] + [("usable", "c3"), ("capacity", "cx")])
    ep = d["settings"].get("ep", 1)
    whose = "the batch's" if ep == 1 else f"one expert-parallel group's ({d['settings']['batch'] // ep} sequences)"
    note = ('<p class="note">Bytes with decimal prefixes (1 GB = 1e9 B). The KV cache is '
            f"{whose} at input + output length; activations are the prefill's peak of live tensors.</p>\n")
    return chart + key + kv_table([(k, esc(v)) for k, v in keys]) + note


# -- collectives and notes --------------------------------------------------------------------


def collective_row(c: dict[str, Any]):
    """One collective: op, module, payload, wire bytes, steps, link, time (or why there is none)."""
    time_s: Optional[float] = c.get("time_s")
    return [(esc(c["op"]), None, ""), (esc(f"{c.get('where', 'after')} {c['module']}"), None, "mono"),
            (esc(nbytes(c["payload_bytes"])), sort_key(c["payload_bytes"]), ""),
            (esc(nbytes(c["wire_bytes"])), sort_key(c["wire_bytes"]), ""),
            (esc(c["steps"]), sort_key(c["steps"]), ""), (esc(c["link"]), None, ""),
            (esc("no link figures" if time_s is None else seconds(time_s)), sort_key(time_s), "")]


def collectives_body(collectives: list[dict[str, Any]]) -> str:
    """The collectives of one decoder layer (layers.0) in a decode step."""
    cols = [("op", False), ("where", False), ("payload per device", True), ("bytes on the wire", True),
            ("steps", True), ("link", False), ("time", True)]
    note = '<p class="note">One decoder layer (layers.0) of a decode step; every layer has the same.</p>\n'
    return table(cols, [collective_row(c) for c in collectives]) + note


def notes_body(notes: list[str]) -> str:
    """The result's notes, one item each."""
    return "<ul>\n" + "".join(f"<li>{esc(n)}</li>\n" for n in notes) + "</ul>\n"
