"""Nodes without a cost rule: the projected latency leaves them out, so it is a lower bound."""

from __future__ import annotations

from ..context import AuditContext
from ..finding import Finding
from ..registry import register_check


@register_check("unknown_ops")
def check(ctx: AuditContext) -> list[Finding]:
    t = ctx.base.totals
    if not t["unknown_ops"]:
        return []
    listed = ", ".join(f"{op} x{n}" for op, n in t["unknown_ops"].items())
    nodes = tuple(r.name for r in ctx.base.nodes if r.flops is None)
    return [Finding("unknown_ops", "high", f"{len(nodes)} nodes have no cost rule (coverage {t['coverage']:.1%})",
                    f"the projection leaves out {listed}: every figure is a lower bound",
                    "register a cost rule for each op (README: 'Adding a cost rule', or graphperf.register_rule)",
                    {}, nodes)]
