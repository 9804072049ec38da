"""Terminal rendering of a `Correlation`: the error statistics, the biggest outliers, and what was
not matched. It reads the correlation; it computes nothing but formatting."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .match import Correlation

__all__ = ["render_correlation"]


def _us(s) -> str:
    return "-" if s is None else f"{s * 1e6:,.1f}"


def _signed(x) -> str:
    return "-" if x is None else f"{x:+.1%}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def step_lines(s: dict) -> list[str]:
    """The per-step comparisons: kernel time against projected device time, measured wall against the
    simulated wall of the execution mode (with what measured it)."""
    out = []
    if s.get("measured_kernel_s") is not None:
        out.append(f"device time per step: projected {_us(s['projected_device_s'])} us, measured "
                   f"{_us(s['measured_kernel_s'])} us of kernels, error {_signed(s['device_error'])}")
    if s.get("measured_wall_s") is not None:
        out.append(f"wall time per step ({s['mode']} mode): projected {_us(s['projected_wall_s'])} us, measured "
                   f"{_us(s['measured_wall_s'])} us ({s['wall_measured_as']}), error {_signed(s['wall_error'])}")
        if s.get("launch_bound") and s["mode"] != "graph":
            out.append(f"  projected device idle {_us(s['projected_idle_s'])} us of the wall: launch-bound; "
                       f"a CUDA graph (--mode graph) would take {_us(s['graph_mode_wall_s'])} us")
    return out


def render_correlation(c: Correlation, console: Console, top: int = 10) -> None:
    s = c.stats
    p = c.profile
    console.print(f"[bold]{c.model}[/bold] projected on [bold]{c.target}[/bold] vs measured "
                  f"({p.get('path')}: {p['runs'] - p['warmup_runs']} measured runs, {p['warmup_runs']} warm-up skipped"
                  f"{', optimization ' + p['optimization'] if p.get('optimization') else ''}"
                  f"{', dims ' + ' '.join(f'{k}={v}' for k, v in sorted(p['dims'].items())) if p.get('dims') else ''})")
    run = "" if s["run_median_s"] is None else f"; model_run median {_us(s['run_median_s'])} us"
    console.print(f"whole model: projected {_us(s['projected_total_s'])} us, measured {_us(s['measured_total_s'])} us "
                  f"(sum of node medians{run}), error {_signed(s['whole_model_error'])}")
    for line in step_lines(s):
        console.print(line)
    console.print(f"per node ({s['rows']} rows, projected = {s.get('per_row_projection', 'device_s')}): "
                  f"median |error| {_pct(s['median_ape'])}, p90 {_pct(s['p90_ape'])}, "
                  f"within 2x {_pct(s['within_2x'])}, time-weighted error {_pct(s['time_weighted_error'])}; "
                  f"nodes >= 20 us ({s['rows_20us']}): median |error| {_pct(s['median_ape_20us'])}")
    table = Table(title=f"biggest outliers (top {top} by |projected - measured|)", title_justify="left")
    for col in ("node", "op", "bound", "projected us", "measured us", "projected/measured", "profiled as"):
        table.add_column(col, justify="right" if "us" in col or "/" in col else "left")
    for r in c.outliers(top):
        table.add_row(r.name, r.op, r.bound, _us(r.projected_s), _us(r.measured_s),
                      "-" if r.ratio is None else f"{r.ratio:.2f}", ", ".join(r.events))
    console.print(table)
    if c.unmatched:
        console.print(f"unmatched profiled nodes ({len(c.unmatched)}, {_us(s['unmatched_s'])} us, in the measured "
                      "total, not in per-node rows):")
        for u in sorted(c.unmatched, key=lambda u: -u["measured_s"]):
            console.print(f"  {u['name']} ({u['op']}): {_us(u['measured_s'])} us: {u['reason']}")
    if c.unmeasured:
        console.print(f"projected nodes with no profiled node ({len(c.unmeasured)}, "
                      f"{_us(s['unmeasured_projected_s'])} us projected; {c.unmeasured_cause}):")
        for u in sorted(c.unmeasured, key=lambda u: -u["projected_s"])[:top]:
            why = f": {u['reason']}" if u.get("reason") else ""
            console.print(f"  {u['name']} ({u['op']}): {_us(u['projected_s'])} us{why}")
    if c.unknown:
        console.print(f"rows left out of the statistics (no cost rule): {', '.join(c.unknown)}")
