"""Run measurement records through graphperf and measure the projection error per category.

For every record: map its hardware to a bundled target (`hardware.map_hardware`), build its
workload and measured time (`workloads.build_case`), canonicalize and count the graph, and project
it four ways on the same rows:

- ``roofline``: the plain roofline at the target's dense peaks, sum over nodes of
  max(compute_s, memory_s) with every efficiency 1, no kernel model and no launch overhead;
- ``efficiency``: graphperf's default projection (`graphperf.project.project`: the size-aware kernel
  model where the target has one (h100, h200), else the target's efficiencies; plus the target's gap
  per kernel: the graph-mode wall);
- ``tiled``: the default model, efficiency and tiling aware: the tiling pass (``--tile auto``)
  first, so matmul, conv and attention nodes use the tile model;
- ``fused``: the default model after every fusion rule (``--fuse auto``): what a graph compiler
  (torch.compile/inductor, XLA) makes of a multi-node workload; single-kernel records are unchanged.

Error statistics (MdAPE, p90, share within 2x; `graphperf.correlate.stats.error_stats`) are
reported per category and overall; every record that could not be run is listed with its reason.
A projection that leaves a node unknown is not compared (the reason says which op).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from graphperf.errors import UsageError

from .hardware import map_hardware
from .workloads import Case, build_case

__all__ = ["MODELS", "ValidationResult", "default_reference", "load_records", "render_markdown", "validate_records"]

MODELS = ("roofline", "efficiency", "tiled", "fused")


@dataclass
class ValidationResult:
    rows: list[dict]  # one per compared record
    skipped: list[dict]  # {"id", "category", "hardware", "reason"}
    stats: dict  # category | "all" -> model -> {"rows", "mdape", "p90", "within_2x"}

    def to_dict(self) -> dict:
        return {"schema": "graphperf.validate/1", "models": list(MODELS), "stats": self.stats,
                "rows": self.rows, "skipped": self.skipped}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"


def default_reference() -> str:
    """$GRAPHPERF_REFERENCE_DIR/measurements.json, else the repository's reference/measurements.json."""
    base = os.environ.get("GRAPHPERF_REFERENCE_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "reference")
    return os.path.join(base, "measurements.json")


def load_records(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
    except OSError as e:
        raise UsageError(f"{path}: cannot read measurements ({e.strerror}); pass --reference FILE") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "category" in r for r in records):
        raise UsageError(f"{path}: expected a JSON list of measurement records with a 'category' each")
    return records


def _project(case: Case, target) -> tuple[Optional[dict], str]:
    from graphperf.count import count
    from graphperf.passes.canonicalize import canonicalize
    from graphperf.passes.tiling import apply_tiling, parse_tile
    from graphperf.passes.rewrite import FUSE_RULES, rewrite
    from graphperf.project import project

    graph = canonicalize(case.graph).graph
    counts = count(graph)
    unknown = sorted({str(c.node.op) for c in counts if c.cost is None})
    if unknown:
        return None, "no cost rule for " + ", ".join(unknown)
    from graphperf.target import EFFICIENCY_FIELDS

    ones = dict.fromkeys(EFFICIENCY_FIELDS, 1.0)
    roof = project(graph, counts, target.with_overrides(**ones, kernel_floor_us=None))  # no size-aware kernel model
    tiled = apply_tiling(graph, target, parse_tile("auto")).graph
    fused = rewrite(graph, list(FUSE_RULES), target=target)[0]
    return {
        "roofline": sum(max(t.compute_s, t.memory_s) for t in roof),
        "efficiency": sum(t.latency_s for t in project(graph, counts, target)),
        "tiled": sum(t.latency_s for t in project(tiled, count(tiled), target)),
        "fused": sum(t.latency_s for t in project(fused, count(fused), target)),
    }, ""


def _stats(rows: list[dict]) -> dict:
    from graphperf.correlate.stats import error_stats

    out = {}
    for model in MODELS:
        s = error_stats([(r["projected_s"][model], r["measured_s"]) for r in rows], 0.0, 0.0)
        out[model] = {"rows": s["rows"], "mdape": s["median_ape"], "p90": s["p90_ape"], "within_2x": s["within_2x"]}
    return out


def validate_records(records: Iterable[dict], categories: Iterable[str] = (),
                     progress: Optional[Callable[[int, int, str], None]] = None) -> ValidationResult:
    """Project every record (of `categories`, all when empty); see the module docstring. `progress` is
    called before each record with (records done, records in all, the record's id)."""
    from graphperf.target import load_target

    wanted = set(categories)
    chosen = [rec for rec in records if not wanted or rec["category"] in wanted]
    rows: list[dict] = []
    skipped: list[dict] = []
    targets: dict[tuple, Any] = {}
    for done, rec in enumerate(chosen):
        if progress is not None:
            progress(done, len(chosen), str(rec.get("id", "?")))
        head = {"id": str(rec.get("id", "?")), "category": rec["category"], "hardware": str(rec.get("hardware", ""))}
        name, note = map_hardware(head["hardware"])
        if name is None:
            skipped.append({**head, "reason": f"unmapped hardware: {note}"})
            continue
        case = build_case(rec)
        if not isinstance(case, Case):
            skipped.append({**head, "reason": case.reason})
            continue
        key = (name, tuple(sorted(case.sets.items())))
        if key not in targets:
            targets[key] = load_target(name, dict(case.sets) or None)
        projected, why = _project(case, targets[key])
        if projected is None:
            skipped.append({**head, "reason": why})
            continue
        rows.append({**head, "workload": rec.get("workload", ""), "target": name, "measured_s": case.measured_s,
                     "projected_s": projected, "note": "; ".join(x for x in (note, case.note) if x)})
    stats = {"all": _stats(rows)} if rows else {}
    for cat in sorted({r["category"] for r in rows}):
        stats[cat] = _stats([r for r in rows if r["category"] == cat])
    return ValidationResult(rows, skipped, stats)


def render_markdown(result: ValidationResult) -> str:
    """Tables: error per category and model, then the skipped records grouped by reason."""
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines = ["| category | rows | " + " | ".join(f"{m} MdAPE" for m in MODELS) + " | "
             + " | ".join(f"{m} p90" for m in MODELS) + " | " + " | ".join(f"{m} within 2x" for m in MODELS) + " |",
             "|---|---|" + "---|" * (3 * len(MODELS))]
    for cat, by_model in result.stats.items():
        cells = [pct(by_model[m][k]) for k in ("mdape", "p90", "within_2x") for m in MODELS]
        lines.append(f"| {cat} | {by_model['roofline']['rows']} | " + " | ".join(cells) + " |")
    reasons: dict[str, list[str]] = {}
    for s in result.skipped:
        reasons.setdefault(f"{s['category']}: {s['reason']}", []).append(s["id"])
    lines += ["", f"Records not compared: {len(result.skipped)}", "", "| records | reason | ids |", "|---|---|---|"]
    for reason, ids in sorted(reasons.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        shown = ", ".join(ids[:4]) + (f", ... ({len(ids)})" if len(ids) > 4 else "")
        lines.append(f"| {len(ids)} | {reason.replace('|', '/')} | {shown} |")
    return "\n".join(lines) + "\n"


