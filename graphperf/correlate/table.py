"""Terminal rendering of a `Correlation`: the error statistics, the biggest outliers, and what was
not matched. It reads the correlation; it computes nothing but formatting. Times read in us, ms or s
(`seconds`: `359 ms`, never `359,299.7 us`); tables and lines fit the console's width (`fit_table`, `wrap`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..report.table import Col, fit_table, wrap
from ..report.units import seconds
from .match import Correlation

__all__ = ["render_correlation"]


def _s(s) -> str:
    return "-" if s is None else seconds(s)


def _signed(x) -> str:
    return "-" if x is None else f"{x:+.1%}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _say(console: Console, text: str) -> None:
    """A line of prose, wrapped for the console (a quantity stays with its unit); names in it are not markup."""
    console.print(escape(wrap(text, console.width)))


def step_lines(s: dict) -> list[str]:
    """The per-step comparisons: kernel time against projected device time, measured wall against the
    simulated wall of the execution mode (with what measured it)."""
    out = []
    if s.get("measured_kernel_s") is not None:
        out.append(f"device time per step: projected {_s(s['projected_device_s'])}, measured "
                   f"{_s(s['measured_kernel_s'])} of kernels, error {_signed(s['device_error'])}")
    if s.get("measured_wall_s") is not None:
        out.append(f"wall time per step ({s['mode']} mode): projected {_s(s['projected_wall_s'])}, measured "
                   f"{_s(s['measured_wall_s'])} ({s['wall_measured_as']}), error {_signed(s['wall_error'])}")
        if s.get("launch_bound") and s["mode"] != "graph":
            out.append(f"  projected device idle {_s(s['projected_idle_s'])} of the wall: launch-bound; "
                       f"a CUDA graph (--mode graph) would take {_s(s['graph_mode_wall_s'])}")
    return out


def render_correlation(c: Correlation, console: Console, top: int = 10) -> None:
    s = c.stats
    p = c.profile
    console.print(f"[bold]{c.model}[/bold] projected on [bold]{c.target}[/bold] vs measured "
                  f"({p.get('path')}: {p['runs'] - p['warmup_runs']} measured runs, {p['warmup_runs']} warm-up skipped"
                  f"{', optimization ' + p['optimization'] if p.get('optimization') else ''}"
                  f"{', dims ' + ' '.join(f'{k}={v}' for k, v in sorted(p['dims'].items())) if p.get('dims') else ''})")
    run = "" if s["run_median_s"] is None else f"; model_run median {_s(s['run_median_s'])}"
    _say(console, f"whole model: projected {_s(s['projected_total_s'])}, measured {_s(s['measured_total_s'])} "
                  f"(sum of node medians{run}), error {_signed(s['whole_model_error'])}")
    for line in step_lines(s):
        _say(console, line)
    _say(console, f"per node ({s['rows']} rows, projected = {s.get('per_row_projection', 'device_s')}): "
                  f"median |error| {_pct(s['median_ape'])}, p90 {_pct(s['p90_ape'])}, "
                  f"within 2x {_pct(s['within_2x'])}, time-weighted error {_pct(s['time_weighted_error'])}; "
                  f"nodes >= 20 us ({s['rows_20us']}): median |error| {_pct(s['median_ape_20us'])}")
    cols = (Col("node"), Col("op", min_width=8), Col("bound", drop=1, min_width=7), Col("projected", True),
            Col("measured", True), Col("proj/meas", True), Col("profiled as", drop=2, min_width=12))
    rows = [(r.name, r.op, r.bound, _s(r.projected_s), _s(r.measured_s), "-" if r.ratio is None else f"{r.ratio:.2f}",
             ", ".join(r.events)) for r in c.outliers(top)]
    table = fit_table(cols, rows, console.width, title=f"biggest outliers (top {top} by |projected - measured|)",
                      title_justify="left")
    console.print(table)
    if c.unmatched:
        _say(console, f"unmatched profiled nodes ({len(c.unmatched)}, {_s(s['unmatched_s'])}, in the measured "
                      "total, not in per-node rows):")
        for u in sorted(c.unmatched, key=lambda u: -u["measured_s"]):
            _say(console, f"  {u['name']} ({u['op']}): {_s(u['measured_s'])}: {u['reason']}")
    if c.unmeasured:
        _say(console, f"projected nodes with no profiled node ({len(c.unmeasured)}, "
                      f"{_s(s['unmeasured_projected_s'])} projected; {c.unmeasured_cause}):")
        for u in sorted(c.unmeasured, key=lambda u: -u["projected_s"])[:top]:
            why = f": {u['reason']}" if u.get("reason") else ""
            _say(console, f"  {u['name']} ({u['op']}): {_s(u['projected_s'])}{why}")
    if c.unknown:
        _say(console, f"rows left out of the statistics (no cost rule): {', '.join(c.unknown)}")
