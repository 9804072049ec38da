"""What-if: rewrite a captured graph (precision, padding, fusion, tiling) and/or change the target, then project again.

`whatif(graph, target, model_info, fuse=..., precision=..., sets=..., sweep_spec=..., groups=..., tile=..., pad=...)`
returns a `WhatIfResult` holding the report before (the graph as captured, on the target as loaded) and after
(the rewritten graph on the target with `sets` applied), the rewrites applied, every refused
candidate with its reason, the precision flags (matrix nodes whose new dtype has no peak of its
own on the target) and, for a sweep, one row of totals per value of the swept field. Before, after
and every sweep row are projected in the same execution mode (`mode`: graph | eager | compiled,
graphperf/execution.py; compiled runs every fusion rule on both sides).

Fusion rules run in a fixed order, each on the graph the previous one returned: user-named groups
(passes/fuse_named.py), attention (passes/fuse_attention.py), then GEMM/conv epilogues, norms and
elementwise chains (passes/fuse_chains.py); `--fuse auto` is all four rules. Earlier rules take the
larger kernels first, so a residual add joins its GEMM's epilogue before a norm or a chain can claim it.

The input graph is never mutated: every rewrite returns a new `Graph`. A sweep counts the rewritten
graph once and projects it once per value (capture and counting are the slow parts).

Spec parsing (`parse_sweep`, `parse_fuse`; `parse_precision` lives in passes/precision.py, `parse_pad` in
passes/pad.py) raises
one-line `UsageError`s naming what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from graphperf.errors import UsageError
from graphperf.ir import Graph

from .precision import no_peak_nodes
from .rewrite import FUSE_CHOICES, FUSE_RULES, parse_fuse, rewrite

__all__ = ["FUSE_CHOICES", "FUSE_RULES", "WhatIfResult", "parse_fuse", "parse_sweep", "rewrite", "sweep", "whatif"]

_MAX_SWEEP_POINTS = 1000


@dataclass
class WhatIfResult:
    """The reports before and after a what-if, the rewrites applied, the refusals, precision flags and sweep rows."""

    before: Any  # Report
    after: Any  # Report
    rewrites: list[dict]
    refused: list  # passes.result.Refusal (read as {"rule", "kind", ..., "reason"})
    flags: list[dict] = field(default_factory=list)
    sweep: Optional[dict] = None  # {"field", "rows": [{"value", "latency_s", ...}]}

    def compare(self):
        """The `ReportDiff` of after relative to before."""
        return self.before.compare(self.after)


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """`hbm_gbps=1000:5000:1000` -> ("hbm_gbps", [1000.0, 2000.0, ..., 5000.0]) (STOP included)."""
    key, sep, rng = text.partition("=")
    parts = rng.split(":")
    if not sep or not key or len(parts) != 3:
        raise UsageError(f"--sweep {text!r}: expected FIELD=START:STOP:STEP, e.g. --sweep hbm_gbps=1000:6000:1000")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise UsageError(f"--sweep {text!r}: START, STOP and STEP must be numbers") from None
    from graphperf.target import FIGURE_FIELDS

    if key not in FIGURE_FIELDS:
        raise UsageError(f"--sweep {text!r}: {key!r} is not a numeric target field; choose from "
                         + ", ".join(FIGURE_FIELDS))
    if step <= 0 or stop < start:
        raise UsageError(f"--sweep {text!r}: need STEP > 0 and STOP >= START")
    n = int((stop - start) / step + 1e-9) + 1
    if n > _MAX_SWEEP_POINTS:
        raise UsageError(f"--sweep {text!r}: {n} points; at most {_MAX_SWEEP_POINTS}")
    return key, [start + i * step for i in range(n)]


def sweep(graph: Graph, target, key: str, values: list[float], mode: str = "graph") -> dict:
    """Count `graph` once and project it on `target` with `key` set to each value, queued in execution
    `mode`: one row of totals each (``latency_s`` the wall, ``device_s``, ``host_s``, ``idle_s``, ``compute_s``,
    ``memory_s``, ``latency_by_bound_s``). In ``compiled`` mode the graph is fused once, on `target`."""
    from graphperf.count import count
    from graphperf.execution import simulate
    from graphperf.pipeline import mode_graph
    from graphperf.project import project

    from graphperf.target import FIGURE_FIELDS

    if key not in FIGURE_FIELDS:
        raise UsageError(f"--sweep {key}: not a numeric target field; choose from " + ", ".join(FIGURE_FIELDS))
    graph, _ = mode_graph(graph, target, mode)
    counts = count(graph)
    rows = []
    for v in values:
        point = target.with_overrides(**{key: v})
        times = project(graph, counts, point)
        ex = simulate(times, point, mode, [nc.node.op.name for nc in counts])
        known = [t for t in times if t.latency_s is not None]
        rows.append({"value": v, "latency_s": ex.wall_s, "device_s": ex.totals["device_s"],
                     "host_s": ex.totals["host_s"], "idle_s": ex.totals["idle_s"],
                     "compute_s": sum(t.compute_s for t in known), "memory_s": sum(t.memory_s for t in known),
                     "latency_by_bound_s": ex.latency_by_bound_s()})
    return {"field": key, "mode": mode, "rows": rows}


def whatif(graph: Graph, target, model: Mapping[str, Any], *, fuse: list[str] = (),
           precision: Mapping[str, str] | None = None, sets: Mapping[str, str] | None = None,
           sweep_spec: tuple[str, list[float]] | None = None, groups: list[list[str]] = (), pad=None,
           tile=None, mode: str = "graph") -> WhatIfResult:
    """Project `graph` as captured, rewrite it (and the target, with `sets`) and project it again (module
    docstring); the input graph is never mutated."""
    from graphperf.count import count
    from graphperf.pipeline import analyze_graph

    from .canonicalize import canonicalize

    graph = canonicalize(graph).graph  # once: the before report and the rewrite chain find it canonical
    before = analyze_graph(graph, target, dict(model), mode=mode)
    after_target = target.with_overrides(**dict(sets)) if sets else target
    new, rewrites, refused = rewrite(graph, list(fuse), precision, after_target, groups, tile, pad)
    if sets:
        rewrites.append({"rewrite": "set", "fields": dict(sets)})
    after = analyze_graph(new, after_target, {**model, "whatif": [r["rewrite"] for r in rewrites]}, mode=mode)
    flags = no_peak_nodes(new, count(new), after_target) if precision else []
    swept = sweep(new, after_target, *sweep_spec, mode=mode) if sweep_spec else None
    return WhatIfResult(before, after, rewrites, refused, flags, swept)
