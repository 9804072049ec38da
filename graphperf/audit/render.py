"""The audit's terminal table (ranked findings, fitted to the console width) and its HTML page (the top findings
first, each with before/after bars and the nodes involved). JSON is `AuditResult.to_json`."""

from __future__ import annotations

from rich.console import Console

from ..report.units import seconds
from .finding import AuditResult

__all__ = ["render_audit_table", "render_audit_html"]


def command_of(f, mode: str) -> str:
    """The command that projects a finding's after figure: ``graphperf whatif MODEL FLAGS`` in the audit's mode,
    or ``graphperf analyze MODEL --mode M`` for a change of execution mode."""
    if "mode" in f.whatif:
        return f"graphperf analyze MODEL --mode {f.whatif['mode']}"
    flags = " ".join(f"--{k} {v}" for k, v in f.whatif.items())
    return f"graphperf whatif MODEL {flags}" + ("" if mode == "graph" else f" --mode {mode}")


def _gain(f) -> str:
    return "-" if f.gain_s is None else f"{seconds(f.gain_s)} ({f.gain_fraction:.0%})"


def render_audit_table(result: AuditResult, console: Console) -> None:
    """The findings, ranked, one row each, and the recommendation with its what-if under the table."""
    from ..report.table import Col, fit_table

    t = result.target
    cols = (Col("id", min_width=3), Col("severity", min_width=8), Col("gain", True), Col("finding", min_width=24),
            Col("check", drop=1, min_width=10))
    rows = [(i, f.severity, _gain(f), f.title, f.check) for f, i in zip(result.findings, result.ids())]
    title = (f"audit of {result.model.get('description', result.model.get('name'))} on {t.title} "
             f"({result.mode} mode): projected {seconds(result.latency_s)}, {len(result.findings)} findings")
    if not result.findings:
        console.print(title + f"\nno findings from the checks: {', '.join(result.checks_run)}")
        return
    console.print(fit_table(cols, rows, console.width, title=title, title_justify="left"))
    for f, i in zip(result.findings, result.ids()):
        measured = (f"; {command_of(f, result.mode)} projects {seconds(f.after_s)} (now {seconds(f.before_s)})"
                    if f.gain_s is not None else "")
        console.print(f"{i} {f.why}. Do: {f.recommendation}{measured}", highlight=False, markup=False)


def render_audit_html(result: AuditResult) -> str:
    """A page a person can hand on: the findings in rank order, each with its why, its recommendation, before
    and after bars of the what-if that measured the gain, and the nodes involved."""
    from ..report.html_assets import Section, document, esc, kv_table, paired_bars

    t = result.target
    head = kv_table([("model", esc(result.model.get("description", result.model.get("name")))),
                     ("target", esc(t.title)), ("mode", esc(result.mode)),
                     ("projected latency", esc(seconds(result.latency_s))),
                     ("checks run", esc(", ".join(result.checks_run)))])
    sections = [Section("summary", "Audit", head)]
    for f, i in zip(result.findings, result.ids()):
        body = kv_table([("severity", esc(f.severity)), ("why", esc(f.why)), ("recommendation", esc(f.recommendation)),
                         ("what-if", esc(command_of(f, result.mode) if f.whatif else "-")),
                         ("gain", esc(_gain(f))),
                         ("nodes", esc(", ".join(f.nodes[:20]) + (f" and {len(f.nodes) - 20} more"
                                                                  if len(f.nodes) > 20 else "") or "-"))])
        if f.gain_s is not None:
            body += paired_bars([("latency", f.before_s, f.after_s, "")])
        sections.append(Section(i.lower(), f"{i}: {f.title}", body))
    return document(f"graphperf audit: {result.model.get('name')} on {t.name}", sections, "graphperf.audit/1")
