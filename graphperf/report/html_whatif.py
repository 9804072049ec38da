"""HTML page of a what-if (`graphperf.passes.whatif.WhatIfResult`): `graphperf whatif --format html`.

The page holds the totals before and after (table and bars split by bound), before/after bars per
fused group (one chart per fusion rule) and per op (the largest latency changes), every group in a
table, the rewrites applied, the precision flags, every refused rewrite with its reason (a table),
the sweep table and a chart of latency against the swept value when a sweep was asked, the model
and the counting conventions.

Guarantees (as the analyze page, `graphperf.report.html`):

- one file, nothing fetched at view time; every table and chart is static HTML/SVG, the inline
  script only sorts tables and records a self-check (`html_assets`);
- every string from the model, the rewrites and the refusals is escaped;
- deterministic: the same result gives the same bytes;
- it reads the result and computes no costs. The only derived figures: a group's "before" is the
  sum of its members' latencies in the before report (a member that an earlier rule fused counts
  as that group's before; a member without a cost rule makes the group's before unknown, never 0),
  its "after" is its fused node's latency in the after report (unknown when a later rule fused it
  again: the later group shows it); changes are after - before and after / before, and a change below
  `NOISE_REL` (1e-9) of the larger side is floating-point noise, shown as "no change" (`change`).

Fusion rules are read generically from the records they emit
(``{"rewrite": "fuse", "rule", "groups": [{"node", "members", "member_ops", "inputs", "outputs"}]}``;
refused: `passes.result.Refusal`s or plain dicts, read as the mapping ``{"rule", "kind", "producer", "consumer",
"reason", ...}``, any key may be missing).
"""

from __future__ import annotations

from typing import Any, Optional

from .diff import Delta
from .html import conventions_section, model_section
from .html_assets import (BOUND_COLOURS, Section, document, esc, hbar_chart, kv_table, line_chart, paired_bars, pct,
                          sort_key, table)
from .units import count_of, seconds, si
from .whatif_report import WHATIF_SCHEMA, GroupChange, by_change, fuse_records, group_changes, pad_summary

__all__ = ["render_whatif_html", "whatif_sections", "group_changes", "GroupChange", "DEFAULT_TOP"]

DEFAULT_TOP = 30  # bar pairs per chart; the tables list every row
#: A change smaller than this fraction of the larger side is floating-point noise (sums taken in another order,
#: a figure set to itself): shown as no change.
NOISE_REL = 1e-9
_REFUSED_KEYS = ("rule", "kind", "producer", "consumer", "reason")


def change(d: Delta) -> Optional[float]:
    """after - before, 0.0 when it is floating-point noise (below `NOISE_REL` of the larger side); None if unknown."""
    if d.delta is None:
        return None
    return 0.0 if abs(d.delta) <= NOISE_REL * max(abs(d.before), abs(d.after)) else d.delta


def changed_ops(result) -> list:
    """Ops whose latency changed (more than noise), largest absolute change first (`Report.compare` order)."""
    return [row for row in result.compare().by_op if change(row["latency_s"])]


# -- entry points -------------------------------------------------------------------------------


def render_whatif_html(result, *, top: int = DEFAULT_TOP, fragment: bool = False) -> str:
    """The what-if page; `top` bar pairs per chart (the tables hold every row)."""
    d = result.compare()
    title = f"graphperf what-if: {d.before['model']} on {d.before['target']} -> {d.after['target']}"
    return document(title, whatif_sections(result, top=top), WHATIF_SCHEMA, fragment=fragment)


def whatif_sections(result, *, top: int = DEFAULT_TOP) -> list[Section]:
    out = [Section("totals", "Totals before and after", totals_body(result)),
           Section("rewrites", "Rewrites applied", rewrites_body(result))]
    if any(r.get("groups") for r in fuse_records(result)):
        out.append(Section("groups", "Fusion groups: before and after", groups_body(result, top), nav="Groups"))
    out += [Section("ops", "Latency by op: before and after", ops_body(result, top), nav="By op"),
            Section("flags", "Precision flags", flags_body(result)),
            Section("refused", "Refused rewrites", refused_body(result))]
    if result.sweep:
        out.append(Section("sweep", f"Sweep of {result.sweep['field']}", sweep_body(result.sweep)))
    return out + [model_section(result.before), conventions_section(result.before)]


# -- sections -----------------------------------------------------------------------------------


def _ratio(d: Delta) -> tuple[str, Optional[str], str]:
    return ("-", None, "") if d.ratio is None else (f"x{d.ratio:.3f}", sort_key(d.ratio), "")


def _signed(value: Optional[float], fmt) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "no change"
    return ("+" if value > 0 else "-") + fmt(abs(value))


def _change_cell(d: Delta, fmt) -> tuple[str, Optional[str], str]:
    value = change(d)
    return (esc(_signed(value, fmt)), sort_key(value), "")


_TOTALS = (("latency_s", "projected latency", seconds), ("compute_s", "sum of compute time", seconds),
           ("memory_s", "sum of memory time", seconds), ("flops", "FLOPs", lambda v: si(v, "FLOP")),
           ("matrix_flops", "matrix FLOPs", lambda v: si(v, "FLOP")), ("bytes", "bytes moved", lambda v: si(v, "B")),
           ("weight_bytes", "weights", lambda v: si(v, "B")),
           ("peak_activation_bytes", "peak live activations", lambda v: si(v, "B")), ("nodes", "nodes", str),
           ("coverage", "coverage", pct))


def totals_body(result) -> str:
    d = result.compare()
    rows = []
    for key, label, fmt in _TOTALS:
        delta = d.totals[key]
        rows.append([(esc(label), None, ""),
                     (esc(fmt(delta.before)) if delta.before is not None else "?", sort_key(delta.before), ""),
                     (esc(fmt(delta.after)) if delta.after is not None else "?", sort_key(delta.after), ""),
                     _change_cell(delta, fmt), _ratio(delta)])
    cols = [("total", False), ("before", True), ("after", True), ("after - before", True), ("after / before", True)]
    bars = []
    for name, rep in (("before", result.before), ("after", result.after)):
        by = rep.totals["latency_by_bound_s"]
        bars.append((f"{name} ({rep.target.name})", [(s, f"b-{b}", f"{name}: {b}-bound {seconds(s)}")
                                                    for b, s in by.items() if b in BOUND_COLOURS]))
    legend = "".join(f'<span class="sw b-{b}"></span>{b}-bound' for b in BOUND_COLOURS)
    lower = [n for n, rep in (("before", result.before), ("after", result.after)) if rep.totals["latency_is_lower_bound"]]
    warn = (f'<p class="warn">The {" and ".join(lower)} latency is a lower bound: nodes without a cost rule are '
            "left out (see the unknown ops in the totals of `graphperf analyze`).</p>\n") if lower else ""
    head = kv_table([("model", esc(d.before["model"])), ("target before", esc(result.before.target.title)),
                     ("target after", esc(result.after.target.title))])
    return (head + warn + table(cols, rows, sortable=False) + "<h4>Projected latency by bound</h4>\n"
            + hbar_chart(bars) + f'<div class="legend">{legend}</div>\n')


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_flat(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value) or "-"
    return str(value)


def rewrites_body(result) -> str:
    items = []
    for r in result.rewrites:
        kind = r.get("rewrite", "?")
        if kind == "precision":
            text = "precision: " + "; ".join(
                f"{k} -> {v}: {count_of(r['values_changed'][k], 'value')}, "
                f"{si(r.get('bytes_before', {}).get(k), 'B')} -> {si(r.get('bytes_after', {}).get(k), 'B')}"
                for k, v in r.get("spec", {}).items())
        elif kind == "fuse":
            groups = r.get("groups", [])
            nodes = r.get("nodes_fused", sum(len(g.get("members", [])) for g in groups))
            text = (f"fusion, rule {r.get('rule', '?')}: {count_of(r.get('groups_formed', len(groups)), 'group')} from "
                    f"{count_of(nodes, 'node')}")
        elif kind == "set":
            text = "target fields (after only): " + _flat(r.get("fields", {}))
        elif kind == "pad":
            text = pad_summary(r)
        elif kind == "tile":
            nodes = r.get("nodes", [])
            tiles: dict[str, int] = {}
            for n in nodes:
                key = "x".join(map(str, n.get("tile", ())))
                tiles[key] = tiles.get(key, 0) + 1
            text = (f"tiling ({r.get('mode', '?')}): {count_of(len(nodes), 'matmul/conv/attention node')} tiled; tiles "
                    + ", ".join(f"{k} x{v}" for k, v in sorted(tiles.items(), key=lambda kv: -kv[1])))
        else:
            text = f"{kind}: " + _flat({k: v for k, v in r.items() if k != "rewrite" and not isinstance(v, list)})
        items.append(f"<li>{esc(text)}</li>")
    if not items:
        return "<p>None: the after report projects the same graph on the same target.</p>\n"
    return "<ol>\n" + "\n".join(items) + "\n</ol>\n<p class=note>Applied in this order, on the canonicalized graph; " \
        "the input graph is never changed.</p>\n"


def groups_body(result, top: int) -> str:
    changes = group_changes(result)
    parts = []
    for rule in dict.fromkeys(g.rule for g in changes):
        rows = by_change([g for g in changes if g.rule == rule])
        shown = rows[:top]
        bars = [(f"{g.node} ({'+'.join(g.member_ops) or len(g.members)})", g.before_s, g.after_s,
                 f"{g.node}: {len(g.members)} nodes ({', '.join(g.members)})\nbefore {seconds(g.before_s)} (sum of the "
                 f"members), after {seconds(g.after_s)}; {si(g.bytes_saved, 'B')} no longer moved"
                 + (f"\n{g.note}" if g.note else "")) for g in shown]
        more = f"; the table below holds all {len(rows)}" if len(rows) > len(shown) else ""
        plural = "" if len(rows) == 1 else "s"
        parts.append(f"<h3>Rule {esc(rule)}: {len(rows)} group{plural}</h3>\n<p class=note>The {len(shown)} groups whose "
                     f"latency changed most{more}. Before: the sum of the members' latencies (each a kernel of its own); "
                     "after: the fused kernel.</p>\n" + paired_bars(bars))
    cols = [("fused node", False), ("rule", False), ("members", True), ("member ops", False), ("inputs", True),
            ("outputs", True), ("before", True), ("after", True), ("after - before", True), ("bytes saved", True),
            ("note", False)]
    rows = [[(esc(g.node), None, "mono"), (esc(g.rule), None, ""), (str(len(g.members)), sort_key(len(g.members)), ""),
             (esc(" + ".join(g.member_ops)), None, "mono wrap"), (str(g.inputs), sort_key(g.inputs), ""),
             (str(g.outputs), sort_key(g.outputs), ""), (seconds(g.before_s), sort_key(g.before_s), ""),
             (seconds(g.after_s), sort_key(g.after_s), ""), _change_cell(Delta(g.before_s, g.after_s), seconds),
             (si(g.bytes_saved, "B"), sort_key(g.bytes_saved), ""), (esc(g.note), None, "wrap")] for g in by_change(changes)]
    return "".join(parts) + f"<h3>Every group ({len(changes)})</h3>\n" + table(cols, rows)


def ops_body(result, top: int) -> str:
    rows = changed_ops(result)
    if not rows:
        return "<p>No op's latency changed.</p>\n"
    shown = rows[:top]
    bars = [(row.op, row["latency_s"].before, row["latency_s"].after,
             f"{row.op}: nodes {row['nodes'].before} -> {row['nodes'].after}, latency "
             f"{seconds(row['latency_s'].before)} -> {seconds(row['latency_s'].after)}") for row in shown]
    more = f" (of {len(rows)}; the table holds all)" if len(rows) > len(shown) else ""
    cols = [("op", False), ("nodes before", True), ("nodes after", True), ("latency before", True),
            ("latency after", True), ("after - before", True), ("after / before", True), ("bytes before", True),
            ("bytes after", True), ("FLOPs before", True), ("FLOPs after", True)]
    body = []
    for row in rows:
        lat, b, f, n = row["latency_s"], row["bytes"], row["flops"], row["nodes"]
        body.append([(esc(row.op), None, "mono"), (str(n.before), sort_key(n.before), ""),
                     (str(n.after), sort_key(n.after), ""),
                     (seconds(lat.before), sort_key(lat.before), ""), (seconds(lat.after), sort_key(lat.after), ""),
                     _change_cell(lat, seconds), _ratio(lat),
                     (si(b.before, "B"), sort_key(b.before), ""), (si(b.after, "B"), sort_key(b.after), ""),
                     (si(f.before, "FLOP"), sort_key(f.before), ""), (si(f.after, "FLOP"), sort_key(f.after), "")])
    return (f"<p class=note>The {len(shown)} ops whose total latency changed most{more}; an op with 0 nodes on one "
            "side exists only in the other report (e.g. <span class=mono>fused</span>).</p>\n" + paired_bars(bars)
            + table(cols, body))


def flags_body(result) -> str:
    if not any(r.get("rewrite") == "precision" for r in result.rewrites):
        return "<p>No precision rewrite was asked (--precision).</p>\n"
    if not result.flags:
        return "<p>None: every matrix node's new dtype has a matrix peak of its own on the target.</p>\n"
    rows = [[(esc(f.get("node", "-")), None, "mono"), (esc(f.get("op", "-")), None, "mono"),
             (esc(f.get("dtype", "-")), None, "mono"), (esc(f.get("reason", "-")), None, "wrap")] for f in result.flags]
    return (f'<p class="warn">{len(result.flags)} matrix nodes run at a dtype the target has no matrix peak for: '
            "they fall back to another peak or to the vector unit.</p>\n"
            + table([("node", False), ("op", False), ("dtype", False), ("reason", False)], rows))


def refused_body(result) -> str:
    refused = result.refused
    if not refused:
        asked = [r.get("rule", "?") for r in fuse_records(result)]
        return "<p>None" + (f": every candidate of {', '.join(map(str, asked))} fusion was accepted" if asked
                            else ": no fusion was asked (--fuse)") + ".</p>\n"
    counts: dict[tuple[str, str], int] = {}
    for r in refused:
        key = (str(r.get("rule", "?")), str(r.get("kind", "?")))
        counts[key] = counts.get(key, 0) + 1
    summary = table([("rule", False), ("kind", False), ("refused", True)],
                    [[(esc(rule), None, ""), (esc(kind), None, "mono"), (str(n), sort_key(n), "")]
                     for (rule, kind), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))])
    extra = sorted({k for r in refused for k in r if k not in _REFUSED_KEYS})
    cols = [("#", True), ("rule", False), ("kind", False), ("producer", False), ("consumer", False), ("reason", False)]
    if extra:
        cols.append(("details", False))
    rows = []
    for i, r in enumerate(refused, 1):
        row = [(str(i), str(i), ""), (esc(r.get("rule", "-")), None, ""), (esc(r.get("kind", "-")), None, "mono"),
               (esc(r.get("producer", "-")), None, "mono"), (esc(r.get("consumer", "-")), None, "mono"),
               (esc(r.get("reason", "-")), None, "wrap")]
        if extra:
            row.append((esc(_flat({k: r[k] for k in extra if k in r})), None, "mono wrap"))
        rows.append(row)
    return (f"<p>{count_of(len(refused), 'candidate was', 'candidates were')} refused, each with its reason.</p>\n"
            + summary
            + f"<h3>Every refusal ({len(refused)})</h3>\n" + table(cols, rows))


def sweep_body(sweep: dict) -> str:
    key, rows = sweep["field"], sweep["rows"]
    first = rows[0]["latency_s"] if rows else None
    cols = [(key, True), ("projected latency", True), ("vs first", True), ("sum of compute time", True),
            ("sum of memory time", True), ("time by bound", False)]
    body = [[(f"{r['value']:g}", sort_key(r["value"]), ""), (seconds(r["latency_s"]), sort_key(r["latency_s"]), ""),
             (f"x{r['latency_s'] / first:.3f}" if first else "-", sort_key(r["latency_s"] / first) if first else None, ""),
             (seconds(r["compute_s"]), sort_key(r["compute_s"]), ""), (seconds(r["memory_s"]), sort_key(r["memory_s"]), ""),
             (esc(", ".join(f"{b} {pct(v / r['latency_s'])}" for b, v in r["latency_by_bound_s"].items() if v > 0)
                  if r["latency_s"] > 0 else "-"), None, "")] for r in rows]
    xs = [r["value"] for r in rows]
    chart = line_chart(xs, [("projected latency", "s0", [r["latency_s"] for r in rows]),
                            ("sum of compute time", "s1 dash", [r["compute_s"] for r in rows]),
                            ("sum of memory time", "s2 dash", [r["memory_s"] for r in rows])],
                       key, "seconds") if rows else ""
    return (f"<p class=note>The rewritten graph, counted once, projected on the after target with {esc(key)} set to "
            f"each value ({len(rows)} points). Latency is per node max(compute, memory) + launch overhead, summed; "
            "the compute and memory lines are sums over nodes.</p>\n" + chart + table(cols, body))
