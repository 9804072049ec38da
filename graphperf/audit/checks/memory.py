"""A model that does not fit the target's memory: the projection is the time of the work alone, not a run.
Reports what is needed against the capacity, the devices the weights and activations need at least, and
whether float8 weights (`whatif --precision weights=fp8`) would fit."""

from __future__ import annotations

import math

from ..context import AuditContext
from ..finding import Finding
from ..registry import register_check


@register_check("does_not_fit")
def check(ctx: AuditContext) -> list[Finding]:
    from graphperf.passes.precision import parse_precision

    t = ctx.base.totals
    if t.get("fits") is not False:
        return []
    need, capacity = t["memory_needed_bytes"], t["memory_capacity_bytes"]
    devices = math.ceil(need / capacity)
    fp8 = ctx.whatif(precision=parse_precision("weights=fp8")).after.totals
    fp8_text = ("float8 weights would fit" if fp8.get("fits") else
                f"float8 weights still need {fp8['memory_needed_bytes'] / 1e9:.1f} GB")
    return [Finding("does_not_fit", "critical",
                    f"does not fit: {need / 1e9:.1f} GB needed, {capacity / 1e9:.1f} GB on {ctx.target.name}",
                    f"weights {t['weight_bytes'] / 1e9:.1f} GB + peak activations {t['peak_activation_bytes'] / 1e9:.1f}"
                    f" GB; the projected latency is the work alone, not a run; {fp8_text}",
                    f"shard it over at least {devices} devices (tensor or pipeline parallel: graphperf serve MODEL "
                    f"--tp N, N >= {devices} dividing the heads, projects a workload sharded), or quantize the weights",
                    {"precision": "weights=fp8"}, (), None, None,
                    {"memory_needed_bytes": need, "memory_capacity_bytes": capacity, "devices_needed_at_least": devices,
                     "memory_needed_fp8_weights_bytes": fp8["memory_needed_bytes"], "fits_fp8_weights": fp8.get("fits")})]
