"""The shared shape of a fusion finding: run the fusion what-if of one rule, report its groups and gain."""

from __future__ import annotations

from ...report.units import count_of
from ..context import AuditContext
from ..finding import Finding, severity_of_gain


def fusion_finding(ctx: AuditContext, rule: str, check: str, what: str, why: str, how: str) -> list[Finding]:
    result = ctx.whatif(fuse=[rule])
    record = next(r for r in result.rewrites if r.get("rewrite") == "fuse")
    groups = record["groups"]
    if not groups:
        return []
    before, after = result.before.totals, result.after.totals
    saved = before["bytes"] - after["bytes"]
    gain_fraction = (before["latency_s"] - after["latency_s"]) / before["latency_s"] if before["latency_s"] else 0.0
    members = tuple(m for g in groups for m in g["members"])
    return [Finding(check, severity_of_gain(gain_fraction),
                    f"{count_of(len(groups), what)} unfused ({count_of(len(members), 'node')})",
                    f"{why}: fusing saves {saved:,} bytes of {before['bytes']:,} moved, FLOPs unchanged",
                    how, {"fuse": rule}, members, before["latency_s"], after["latency_s"],
                    {"bytes_before": before["bytes"], "bytes_after": after["bytes"], "groups": len(groups)})]
