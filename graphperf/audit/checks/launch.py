"""Launch-bound graphs: the device idles more than half the wall. In eager mode a CUDA-graph replay
(`--mode graph`) removes the host dispatch; in compiled mode ``reduce-overhead`` does; in a replay the gaps
between kernels remain, and fusing (`whatif --fuse auto`) removes kernels."""

from __future__ import annotations

from ..context import AuditContext
from ..finding import Finding, severity_of_gain
from ..registry import register_check

_REPLAY = {"eager": ("graph", "capture the step in a CUDA graph (torch.cuda.graphs, or torch.compile "
                              "mode='reduce-overhead')"),
           "compiled": ("reduce-overhead", "compile with torch.compile(mode='reduce-overhead') to replay the "
                                           "compiled kernels as a CUDA graph")}


@register_check("launch_bound")
def check(ctx: AuditContext) -> list[Finding]:
    t = ctx.base.totals
    if not t["launch_bound"] or not t["latency_s"]:
        return []
    idle = t["idle_s"] / t["latency_s"]
    why = (f"the device idles {idle:.0%} of the {t['latency_s'] * 1e3:.3g} ms wall: {t['kernels']} kernels of "
           f"{t['device_s'] / max(t['kernels'], 1) * 1e6:.3g} us on average, host issue {t['host_s'] * 1e3:.3g} ms")
    if ctx.mode in _REPLAY:
        mode, how = _REPLAY[ctx.mode]
        from graphperf.pipeline import analyze_graph

        after = analyze_graph(ctx.graph, ctx.target, dict(ctx.info), mode=mode).totals
        spec = {"mode": mode}
    else:
        from graphperf.passes.rewrite import FUSE_RULES

        result = ctx.whatif(fuse=list(FUSE_RULES))
        after, spec = result.after.totals, {"fuse": "auto"}
        how = "fuse kernels (torch.compile, or the fusion rules of whatif --fuse auto): fewer launches, fewer gaps"
    fraction = (t["latency_s"] - after["latency_s"]) / t["latency_s"]
    return [Finding("launch_bound", severity_of_gain(fraction), f"launch-bound: device idle {idle:.0%} of the wall",
                    why, how, spec, (), t["latency_s"], after["latency_s"],
                    {"kernels_before": t["kernels"], "kernels_after": after["kernels"]})]
