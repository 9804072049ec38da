"""Norm chains left unfused: a decomposed LayerNorm/RMSNorm (mean, subtract, square, rsqrt, scale) or a softmax
with its pointwise neighbours, one kernel each, fused into one row kernel by `whatif --fuse norm`."""

from __future__ import annotations

from ..context import AuditContext
from ..finding import Finding
from ._fusion import fusion_finding
from ..registry import register_check


@register_check("unfused_norm")
def check(ctx: AuditContext) -> list[Finding]:
    return fusion_finding(ctx, "norm", "unfused_norm", "norm chain",
                          "each row passes through memory once per kernel of the chain; one row kernel reads it once",
                          "fuse the chain: a compiler (torch.compile) or a fused norm kernel")
