"""Misaligned GEMM dimensions: each size the alignment findings name (graphperf/alignment.py), padded to the
multiple they ask for by the padding what-if (`whatif --pad SIZE=MULTIPLE`)."""

from __future__ import annotations

from ...report.units import count_of
from ..context import AuditContext
from ..finding import Finding, severity_of_gain
from ..registry import register_check


@register_check("misaligned_gemm")
def check(ctx: AuditContext) -> list[Finding]:
    from graphperf.passes.pad import parse_pad

    pads: dict[int, int] = {}
    nodes: dict[int, list[str]] = {}
    for f in ctx.base.findings:
        if f["kind"] != "misaligned_gemm":
            continue
        for p in f["pad"]:
            pads[p["size"]] = max(pads.get(p["size"], 1), p["multiple"])
            nodes.setdefault(p["size"], []).append(f["node"])
    out = []
    for size, multiple in sorted(pads.items()):
        spec = f"{size}={multiple}"
        result = ctx.whatif(pad=parse_pad(spec))
        before, after = result.before.totals, result.after.totals
        padded = -(-size // multiple) * multiple
        finding = Finding(
            "misaligned_gemm", "low", f"GEMM dimension {size} is not 16-byte aligned ({count_of(len(nodes[size]), 'node')})",
            f"rows of {size} elements are not a multiple of 16 bytes, so GPU matrix kernels fall back to "
            f"unvectorized (align-1) loads; padding to {padded} adds {after['flops'] - before['flops']:,} FLOPs",
            f"pad {size} to {padded} (a multiple of {multiple}): in the model (vocabulary, hidden size) or in the "
            "exporter", {"pad": spec}, tuple(nodes[size]), before["latency_s"], after["latency_s"],
            {"flops_before": before["flops"], "flops_after": after["flops"]})
        out.append(_ranked(finding))
    return out


def _ranked(f: Finding) -> Finding:
    from dataclasses import replace

    return replace(f, severity=severity_of_gain(f.gain_fraction or 0.0))
