"""float32 matrix work on a target whose bf16 matrix peak is far higher: the precision what-if
(`whatif --precision weights=bf16,activations=bf16`), with the numerics caveat."""

from __future__ import annotations

from ...report.units import count_of
from ..context import AuditContext
from ..finding import Finding, severity_of_gain
from ..registry import register_check

#: The float32 share of the matrix FLOPs, and the bf16-over-fp32 peak ratio, from which the check runs the what-if.
MIN_FP32_SHARE = 0.5
MIN_PEAK_RATIO = 2.0


@register_check("fp32_matrix_work")
def check(ctx: AuditContext) -> list[Finding]:
    from graphperf.passes.precision import parse_precision
    from graphperf.peaks import matrix_peak

    fp32 = [r for r in ctx.base.nodes if r.matrix_flops and r.peak is not None and r.peak.dtype == "float32"]
    total = ctx.base.totals["matrix_flops"]
    share = sum(r.matrix_flops for r in fp32) / total if total else 0.0
    if share < MIN_FP32_SHARE:
        return []
    t = ctx.target
    ratio = matrix_peak(t, "bfloat16", "matmul").rate_flops / matrix_peak(t, "float32", "matmul").rate_flops
    if ratio < MIN_PEAK_RATIO:
        return []
    spec = "weights=bf16,activations=bf16"
    result = ctx.whatif(precision=parse_precision(spec))
    before, after = result.before.totals, result.after.totals
    fraction = (before["latency_s"] - after["latency_s"]) / before["latency_s"] if before["latency_s"] else 0.0
    return [Finding("fp32_matrix_work", severity_of_gain(fraction),
                    f"{share:.0%} of the matrix FLOPs run in float32 ({count_of(len(fp32), 'node')})",
                    f"{t.name}'s bf16 matrix rate is {ratio:.1f}x its float32 one; bf16 also halves the bytes "
                    "moved. Numerics change: check the model's accuracy in bf16 before adopting it",
                    "run the model in bfloat16 (autocast or a bf16 export)", {"precision": spec},
                    tuple(r.name for r in fp32), before["latency_s"], after["latency_s"],
                    {"bytes_before": before["bytes"], "bytes_after": after["bytes"]})]
