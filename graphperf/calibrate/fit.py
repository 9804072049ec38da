"""Fit a target's efficiency factors and launch overhead to measured onnxruntime profiles.

Op classes. Each counted node of a profiled model falls in one class by the term that bounds its
projection on the base target: **matrix** (compute-bound with matrix work: ``matrix_flops`` at the
matrix peak), split by op family into **matrix** (matmuls and everything else), **conv**
(convolutions) and **attention** (attention kernels), as onnxruntime's and most libraries' kernels
for the three reach different shares of the same peak; **vector** (compute-bound elementwise,
reduction and transcendental work at the vector peak) and **memory** (bytes moved bound it). A
compute-bound node that does both kinds of work contributes to both compute classes.
Every counted node also pays one **launch overhead**. Free nodes (views, reshapes) are in no class:
the target cannot give them a cost.

Model (per correlated row r, measured m_r, sums over the row's counted nodes n):

    p_r = sum over classes c of k_c * sum(c_s_n) + L * (counted nodes in r)

with c_s the class's time at efficiency 1 (matrix_s of a conv node is in the conv class), only the
bounding side of each node counted, and k = 1 / efficiency. A class with no node in the fitting
profiles keeps the base target's figure (conv and attention: the base `matrix_efficiency` unless the
base gives its own). The fit is linear least squares on relative residuals
(p_r - m_r) / m_r over every row of every fitting profile, plus one row per profile asking the
counted nodes to sum to the profile's whole measured time (weight sqrt(rows)): so the time of
nodes graphperf counts free but onnxruntime runs (layout copies) is spread over the launch
overhead rather than ignored. Which side bounds a node depends on k, so the fit reassigns sides
and solves again, 5 times. Efficiencies stay in (0, 1]: a compute class that ran faster than its
peak is clipped to 1.0 (reported) and the others refitted. A class whose fitted time per unit of work
is zero or negative (its times fall as its work grows) did not fit: that is reported as a failed fit,
the class keeps the base target's efficiency (never the optimistic 1.0) and the others are refitted.
The memory class may run faster than the
measured DRAM bandwidth (small models' tensors stay in cache): its fitted speed-up is written as a
higher effective ``hbm_gbps`` with ``memory_efficiency = 1.0``, and reported. A zero or negative L is a
failed fit too: the base ``launch_overhead_us`` stays. `FitResult.failed` names what did not fit.

Guarantees: the fitted target is the base target with only the efficiencies of the fitted classes
(matrix_efficiency, matrix_efficiency_conv, matrix_efficiency_attention, vector_efficiency,
memory_efficiency),
``launch_overhead_us`` and (memory faster than its peak) ``hbm_gbps`` changed, ``calibrated = true``, and a source naming the profiles and the
date for each; `evaluate` reports held-out error before (base) and after (fitted) with the same
statistics as `graphperf correlate`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..errors import UsageError

__all__ = ["Case", "parse_case", "FitResult", "fit_target", "evaluate", "residuals_by_op", "CLASSES"]

CLASSES = ("matrix", "conv", "attention", "vector", "memory")
_EFF = {"matrix": "matrix_efficiency", "conv": "matrix_efficiency_conv", "attention": "matrix_efficiency_attention",
        "vector": "vector_efficiency", "memory": "memory_efficiency"}
_MEMORY, _LAUNCH = CLASSES.index("memory"), len(CLASSES)  # positions in the parameter vector k
_ROUNDS = 5
_TOTAL_WEIGHT = 1.0  # weight of the per-profile whole-model row, times sqrt(rows)
# lower bounds of [k per class..., L]: efficiencies <= 1 for the compute classes; the memory class may run
# faster than the measured DRAM bandwidth (working sets in cache): down to k = 0.05, written as a higher
# effective hbm_gbps with memory_efficiency 1.0; L >= 0.
_K_MIN = (1.0, 1.0, 1.0, 1.0, 0.05, 0.0)


@dataclass(frozen=True)
class Case:
    """One measured workload: the ONNX model and its onnxruntime profile (with the dims it ran at)."""

    model: str
    profile: str
    dims: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return os.path.basename(self.model)


def parse_case(spec: str, flag: str = "--fit") -> Case:
    """``MODEL.onnx=PROFILE.json`` or ``PROFILE.json`` (the model and dims from the profile's metadata,
    which `graphperf profile` writes)."""
    from ..correlate.reader import read_profile

    model, sep, prof = spec.rpartition("=")
    if not sep:
        prof, model = spec, ""
    p = read_profile(prof)
    model = model or str(p.meta.get("model") or "")
    if not model:
        raise UsageError(f"{flag} {spec}: the profile does not name its model; pass MODEL.onnx={prof}")
    if not os.path.isfile(model):
        raise UsageError(f"{flag} {spec}: model {model} not found; pass MODEL.onnx={prof}")
    return Case(model, prof, {k: int(v) for k, v in (p.meta.get("dims") or {}).items()})


def _family(op: str) -> int:
    """The class index of a node's matrix work: conv, attention, or matrix (matmuls and the rest)."""
    from graphperf.ops import matrix_family

    family = matrix_family(op)
    return CLASSES.index(family) if family in CLASSES else 0


def _node_terms(rec, target) -> Optional[tuple[float, ...]]:
    """Per class (CLASSES order), the report node's time at efficiency 1 (its matrix work in its op
    family's class); None for free/unknown nodes."""
    if rec.latency_s is None or rec.bound == "free":
        return None
    dtype = rec.dtype or "float32"
    try:
        peak = target.matrix_peak_flops(dtype)
    except ValueError:
        peak = None
    matrix_rate = peak[0] if peak else target.vector_peak_flops(dtype)
    vector_rate = target.vector_peak_flops(dtype)
    terms = [0.0] * len(CLASSES)
    terms[_family(rec.op)] = (rec.matrix_flops or 0) / matrix_rate
    vector_work = (rec.flops or 0) - (rec.matrix_flops or 0) + (rec.transcendentals or 0)
    terms[CLASSES.index("vector")] = vector_work / vector_rate
    terms[_MEMORY] = ((rec.bytes_read or 0) + (rec.bytes_written or 0)) / target.hbm_bytes_per_s
    return tuple(terms)


def _weight(measured_s: float) -> float:
    """Weight of a row's relative residual: 1 (every row counts the same)."""
    return 1.0


@dataclass
class _Row:
    measured_s: float
    terms: list[tuple[float, ...]]  # per counted node, per class


def _rows(corr, target) -> list[_Row]:
    out = []
    for r in corr.rows:
        if r.projected_s is None or r.measured_s <= 0:
            continue
        terms = [t for n in r.nodes if (t := _node_terms(corr.records[n], target)) is not None]
        if terms:
            out.append(_Row(r.measured_s, terms))
    return out


def _features(row: _Row, k: Sequence[float]) -> list[float]:
    """[time per class..., counted nodes] summed over the row, bounding side only (compute classes
    together against memory)."""
    f = [0.0] * len(CLASSES) + [float(len(row.terms))]
    for t in row.terms:
        compute = sum(k[j] * t[j] for j in range(len(CLASSES)) if j != _MEMORY)
        if compute >= k[_MEMORY] * t[_MEMORY]:
            for j in range(len(CLASSES)):
                if j != _MEMORY:
                    f[j] += t[j]
        else:
            f[_MEMORY] += t[_MEMORY]
    return f


@dataclass
class FitResult:
    efficiencies: dict[str, float]  # fitted class -> efficiency in (0, 1] (memory may exceed 1: see overrides)
    launch_overhead_us: float
    clipped: list[str]  # notes on clipped parameters
    rows: int  # correlated rows the fit used
    cases: list[str]  # profile paths fitted on

    bandwidth_scale: float = 1.0  # > 1: the memory class ran faster than hbm_gbps (cache-resident data)
    failed: list[str] = field(default_factory=list)  # classes whose fit failed: they keep the base efficiency

    def overrides(self, base) -> dict[str, float]:
        out = {**{_EFF[c]: min(e, 1.0) for c, e in self.efficiencies.items()},
               "launch_overhead_us": self.launch_overhead_us}
        if self.efficiencies.get("memory", 0.0) > 1.0:
            out["hbm_gbps"] = base.hbm_gbps * self.efficiencies["memory"]
        return out


def _solve(a: list[list[float]], b: list[float], free: list[int], fixed: dict[int, float]) -> dict[int, float]:
    import numpy as np

    A = np.asarray(a, dtype=float)
    rhs = np.asarray(b, dtype=float) - sum(A[:, j] * v for j, v in fixed.items()) if fixed else np.asarray(b)
    sol = np.linalg.lstsq(A[:, free], rhs, rcond=None)[0] if free else []
    return {**fixed, **{j: float(x) for j, x in zip(free, sol)}}


def _failed_note(name: str, k: float, base_k: float) -> str:
    if name == "launch overhead":
        return (f"launch overhead: the fit failed (it gave {k * 1e6:.3g} us per node); kept the base "
                f"{base_k * 1e6:.3g} us")
    return (f"{name}: the fit failed (it gave a non-positive time per unit of work, k = {k:.3g}); kept the base "
            f"efficiency {1 / base_k:.3g}")


def fit_target(cases: Sequence[Case], base) -> tuple[FitResult, Any]:
    """Fit efficiencies and launch overhead of `base` (a `Target`) to `cases`; returns the result and
    the fitted `Target`."""
    from ..correlate.match import correlate_onnx

    fit_base = base.with_overrides(**dict.fromkeys(_EFF.values(), 1.0))
    per_case = []
    for case in cases:
        corr = correlate_onnx(case.model, case.profile, fit_base, dims=case.dims)
        per_case.append((_rows(corr, fit_base), corr.stats["measured_total_s"]))
    n_rows = sum(len(r) for r, _ in per_case)
    if not n_rows:
        raise UsageError("--fit: no correlated row with a counted node in the profiles; nothing to fit")
    n = _LAUNCH + 1
    base_eff = {"matrix": base.matrix_efficiency, "conv": base.matrix_efficiency_for("conv"),
                "attention": base.matrix_efficiency_for("attention"), "vector": base.vector_efficiency,
                "memory": base.memory_efficiency}
    k = [1.0 / base_eff[c] for c in CLASSES] + [base.launch_overhead_us * 1e-6]
    base_k = list(k)
    names = CLASSES + ("launch overhead",)
    clipped: list[str] = []
    failed: set[int] = set()
    for _ in range(_ROUNDS):
        a, b = [], []
        for rows, total in per_case:
            feats = [_features(r, k) for r in rows]
            a += [[_weight(r.measured_s) * x / r.measured_s for x in f] for r, f in zip(rows, feats)]
            b += [_weight(r.measured_s) for r in rows]
            if rows and total > 0:
                w = _TOTAL_WEIGHT * math.sqrt(len(rows))
                a.append([w * sum(f[j] for f in feats) / total for j in range(n)])
                b.append(w)
        used = [j for j in range(n) if any(row[j] for row in a)]
        fixed = {j: k[j] for j in range(n) if j not in used}
        clipped, failed = [], set()
        while True:
            free = [j for j in used if j not in fixed]
            sol = _solve(a, b, free, fixed)
            # a parameter fitted to zero or less did not fit (a class whose times fall as its work grows, or
            # an overhead below nothing): keep the base figure, never the most optimistic bound, and refit
            nonpositive = [j for j in free if sol[j] <= 0]
            if nonpositive:
                j = min(nonpositive, key=lambda i: sol[i])
                fixed[j] = base_k[j]
                failed.add(j)
                clipped.append(_failed_note(names[j], sol[j], base_k[j]))
                continue
            bad = [j for j in free if sol[j] < _K_MIN[j]]
            if not bad:
                break
            j = min(bad, key=lambda i: sol[i] - _K_MIN[i])
            fixed[j] = _K_MIN[j]
            if j == _MEMORY:
                note = (f"ran {1 / sol[j]:.3g}x faster than hbm_gbps, clipped to {1 / _K_MIN[j]:g}x (an "
                        f"effective bandwidth of {base.hbm_gbps / _K_MIN[j]:.4g} GB/s)")
            elif j < _LAUNCH and sol[j] > 0:
                note = f"efficiency {1 / sol[j]:.3g} > 1, clipped to 1.0"
            else:
                note = f"{sol[j]:.3g}, clipped to {fixed[j]:g}"
            clipped.append(f"{names[j]}: fit gave {note}")
        k = [sol[j] for j in range(n)]
    fitted = [c for j, c in enumerate(CLASSES) if any(row[j] for row in a) and j not in failed]
    clipped += [f"{c}: no node of this class in the profiles; kept the base efficiency"
                for c in CLASSES if c not in fitted]
    result = FitResult({c: 1.0 / k[CLASSES.index(c)] for c in fitted}, k[_LAUNCH] * 1e6, clipped, n_rows,
                       [c.profile for c in cases], failed=[names[j] for j in sorted(failed)])
    if "memory" in fitted and k[_MEMORY] < 1.0:
        clipped.append(f"memory: ran {1 / k[_MEMORY]:.3g}x faster than hbm_gbps {base.hbm_gbps:g} (working sets "
                       f"in cache): written as hbm_gbps {base.hbm_gbps / k[_MEMORY]:.4g} with memory_efficiency 1.0")
    return result, base.with_overrides(**result.overrides(base))


def evaluate(cases: Sequence[Case], targets: Sequence[Any]) -> list[dict[str, Any]]:
    """Correlate every case on every target: one dict per case with the model, profile and, per target
    index, the `graphperf correlate` statistics; ``"rows"`` holds the last target's correlated rows
    (for `residuals_by_op`)."""
    from ..correlate.match import correlate_onnx

    out = []
    for case in cases:
        entry: dict[str, Any] = {"model": case.label, "profile": case.profile}
        for i, t in enumerate(targets):
            corr = correlate_onnx(case.model, case.profile, t, dims=case.dims)
            entry[i] = corr.stats
            entry["rows"] = corr.rows
        out.append(entry)
    return out


def residuals_by_op(rows) -> list[dict[str, Any]]:
    """Per graphperf op (a row's op): rows, measured seconds, and the median and time-weighted ratio
    projected / measured, biggest measured time first. Ops far from 1 are what one efficiency per
    class cannot fit (e.g. convolutions slower than matmuls at the same FLOPs), or free ops the
    runtime materializes (ratio 0)."""
    by_op: dict[str, list] = {}
    for r in rows:
        if r.projected_s is not None and r.measured_s > 0:
            by_op.setdefault(r.op, []).append(r)
    out = []
    for op, rs in by_op.items():
        measured = sum(r.measured_s for r in rs)
        out.append({"op": op, "rows": len(rs), "measured_s": measured,
                    "median_ratio": float(sorted(r.projected_s / r.measured_s for r in rs)[len(rs) // 2]),
                    "time_ratio": sum(r.projected_s for r in rs) / measured})
    return sorted(out, key=lambda d: -d["measured_s"])


def fitted_target_dict(base, result: FitResult, date: str, command: str) -> dict[str, Any]:
    """The fitted target as a dict for `target_file.to_toml`: the base target's fields, the fitted
    figures with their sources, calibrated = true."""
    from graphperf.target import _SCALARS

    fitted = base.with_overrides(**result.overrides(base))
    d = fitted.to_dict()
    data = {k: d[k] for k in _SCALARS if d.get(k) is not None}
    data["calibrated"] = True
    data["name"] = f"{base.name}-fitted"
    data["label"] = f"{base.label} (efficiencies fitted by graphperf calibrate --fit)"
    profiles = ", ".join(os.path.basename(p) for p in result.cases)
    stamp = f"fitted by `{command}` on {date} to {result.rows} correlated rows of {profiles}"
    sources = {k: v for k, v in base.sources.items()}
    for c, e in result.efficiencies.items():
        sources[_EFF[c]] = f"fit: {stamp}: {c}-class efficiency {e:.4g}"
    if "hbm_gbps" in result.overrides(base):
        sources["hbm_gbps"] = (f"fit: {stamp}: effective bandwidth of the memory class, "
                               f"{result.efficiencies['memory']:.4g} x the base {base.hbm_gbps:g} GB/s "
                               f"({base.sources.get('hbm_gbps', 'base target')})")
        sources["memory_efficiency"] = f"fit: {stamp}: 1.0, the fitted bandwidth is in hbm_gbps"
    if "launch overhead" not in result.failed:
        sources["launch_overhead_us"] = (f"fit: {stamp}: launch overhead per counted node "
                                         f"{result.launch_overhead_us:.4g} us")
    data["sources"] = sources
    data["references"] = {**dict(base.references), "fit": f"`{command}` run {date}; profiles: {profiles}"}
    data["derived"] = {k: v for k, v in base.derived.items() if k in data and k not in result.overrides(base)}
    notes = [base.notes.rstrip(), f"Efficiencies and launch overhead {stamp}."]
    notes += [f"fit: {c}" for c in result.clipped]
    data["notes"] = "\n".join(n for n in notes if n)
    return data
