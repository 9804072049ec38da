"""Attention left unfused: QK^T -> softmax -> PV chains whose score matrix makes a round trip through memory,
fused into flash kernels by the attention fusion what-if (`whatif --fuse attention`)."""

from __future__ import annotations

from ..context import AuditContext
from ..finding import Finding
from ._fusion import fusion_finding
from ..registry import register_check


@register_check("unfused_attention")
def check(ctx: AuditContext) -> list[Finding]:
    if not any(n.op.name == "softmax" for n in ctx.graph.nodes):
        return []
    return fusion_finding(ctx, "attention", "unfused_attention", "attention block",
                          "the score and probability matrices are written to memory and read back once per block; a "
                          "flash kernel keeps them on chip",
                          "use a fused attention kernel (torch SDPA / FlashAttention, or the exporter's fused "
                          "Attention op)")
