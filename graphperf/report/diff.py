"""Before/after comparison of two reports (`Report.compare`): what a rewrite, a target change or a
hardware what-if did to the totals and to each op.

Guarantees: every delta is ``after - before`` of figures the two reports already hold (nothing is
recomputed); ``ratio`` is ``after / before`` (None when ``before`` is 0 or a figure is missing);
ops present in only one report appear with 0 nodes on the other side. Rows are sorted by the
largest absolute latency change, then by op name, so the output is deterministic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from .units import delta_seconds, seconds, si

__all__ = ["Delta", "OpDelta", "ReportDiff", "TOTALS_COMPARED"]

TOTALS_COMPARED = (
    "nodes", "counted_nodes", "coverage", "flops", "matrix_flops", "transcendentals", "bytes", "bytes_read",
    "bytes_written", "weight_bytes", "peak_activation_bytes", "latency_s", "compute_s", "memory_s",
    "device_s", "host_s", "idle_s", "kernels",
)
_OP_FIGURES = ("nodes", "flops", "matrix_flops", "bytes", "latency_s")


@dataclass(frozen=True)
class Delta:
    """One figure before and after: ``delta`` is ``after - before``, ``ratio`` ``after / before`` (None where
    a figure is missing, or ``before`` is 0 for the ratio)."""

    before: Optional[float]
    after: Optional[float]

    @property
    def delta(self) -> Optional[float]:
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def ratio(self) -> Optional[float]:
        return None if self.delta is None or not self.before else self.after / self.before

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "delta": self.delta, "ratio": self.ratio}


@dataclass(frozen=True)
class OpDelta:
    """One op's figures (nodes, flops, matrix_flops, bytes, latency_s) as `Delta`s; ``row["flops"]`` reads one."""

    op: str
    figures: dict[str, Delta]  # nodes, flops, matrix_flops, bytes, latency_s

    def __getitem__(self, key: str) -> Delta:
        return self.figures[key]

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, **{k: d.to_dict() for k, d in self.figures.items()}}


@dataclass(frozen=True)
class ReportDiff:
    """`totals`: figure -> Delta; `by_op`: one OpDelta per op in either report; `unknown_ops`:
    op -> Delta of its unknown-node count; `before` / `after`: the two reports' model and target names.

    Build one with `Report.compare` (``before.compare(after)``); ``str(diff)`` is a text summary.

    Attributes
    ----------
    before, after : dict of str
        ``{"model": ..., "target": ...}`` of each report (the target's tag names its ``--set`` overrides).
    totals : dict of str to Delta
        Each figure of `TOTALS_COMPARED` (latency_s, flops, bytes, coverage, ...).
    by_op : list of OpDelta
        One row per op in either report (0 nodes on the side that lacks it), largest latency change first.
    unknown_ops : dict of str to Delta
        The unknown-node count of each op unknown in either report.

    Example
    -------
    >>> import graphperf
    >>> before = graphperf.analyze("gpt2", config="tiny")
    >>> faster_hbm = graphperf.load_target("h100").with_overrides(hbm_gbps=6700)
    >>> diff = before.compare(graphperf.analyze("gpt2", config="tiny", target=faster_hbm))
    >>> diff.after["target"], diff.totals["flops"].delta, diff.totals["memory_s"].ratio
    ('h100 --set hbm_gbps=6700', 0, 0.5)
    >>> diff.op("matmul")["flops"].ratio
    1.0
    """

    before: dict[str, str]
    after: dict[str, str]
    totals: dict[str, Delta]
    by_op: list[OpDelta]
    unknown_ops: dict[str, Delta]

    @classmethod
    def of(cls, before, after) -> "ReportDiff":
        """The diff of two reports (`after` relative to `before`); `Report.compare` calls it."""
        totals = {k: Delta(before.totals.get(k), after.totals.get(k)) for k in TOTALS_COMPARED}
        rows_b = {r["name"]: r for r in before.by_op}
        rows_a = {r["name"]: r for r in after.by_op}
        by_op = [OpDelta(op, {f: Delta(rows_b.get(op, {}).get(f, 0), rows_a.get(op, {}).get(f, 0)) for f in _OP_FIGURES})
                 for op in set(rows_b) | set(rows_a)]
        by_op.sort(key=lambda d: (-abs(d["latency_s"].delta), d.op))
        ub, ua = before.totals.get("unknown_ops", {}), after.totals.get("unknown_ops", {})
        unknown = {op: Delta(ub.get(op, 0), ua.get(op, 0)) for op in sorted(set(ub) | set(ua))}
        return cls(_label(before), _label(after), totals, by_op, unknown)

    def op(self, name: str) -> OpDelta:
        """The row of op `name` (KeyError if neither report has it)."""
        for row in self.by_op:
            if row.op == name:
                return row
        raise KeyError(f"neither report has op {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after,
                "totals": {k: d.to_dict() for k, d in self.totals.items()},
                "by_op": [row.to_dict() for row in self.by_op],
                "unknown_ops": {k: d.to_dict() for k, d in self.unknown_ops.items()}}

    def to_json(self) -> str:
        """`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def __str__(self) -> str:
        lines = [f"{self.before['model']} on {self.before['target']} -> {self.after['model']} on {self.after['target']}"]
        for key in ("latency_s", "flops", "bytes", "weight_bytes", "peak_activation_bytes", "coverage"):
            lines.append(f"  {key:<22} {_fmt(self.totals[key], _UNITS.get(key))}")
        changed = [row for row in self.by_op if any(d.delta for d in row.figures.values())]
        if changed:
            lines.append("  by op (latency, FLOPs, bytes):")
            for row in changed[:10]:
                lines.append(f"    {row.op:<20} {_fmt(row['latency_s'], 's')}; {_fmt(row['flops'], 'FLOP')}; "
                             f"{_fmt(row['bytes'], 'B')}")
        return "\n".join(lines)


def _label(report) -> dict[str, str]:
    return {"model": str(report.model.get("name", "?")), "target": str(getattr(report.target, "tag", "?"))}


#: The unit each figure of the text summary is shown in ("s": `seconds`, else an SI unit; None: a fraction).
_UNITS = {"latency_s": "s", "flops": "FLOP", "bytes": "B", "weight_bytes": "B", "peak_activation_bytes": "B"}


def _fmt(d: Delta, unit: Optional[str]) -> str:
    """`before -> after (change, xratio)` in units: `151 us -> 125 us (-26 us, x0.829)`; a time change under
    1e-12 s (float noise) is 0."""
    def show(v):
        return seconds(v) if unit == "s" else f"{v:.1%}" if unit is None else si(v, unit)

    if d.delta is None:
        return f"{'?' if d.before is None else show(d.before)} -> {'?' if d.after is None else show(d.after)}"
    change = (delta_seconds(d.delta) if unit == "s" else "0" if not d.delta
              else ("+" if d.delta > 0 else "-") + show(abs(d.delta)))
    ratio = "" if d.ratio is None else f", x{d.ratio:.3g}"
    return f"{show(d.before)} -> {show(d.after)} ({change}{ratio})"
