"""Error statistics of projected against measured times, one pair per correlated row.

Formulas (p = projected seconds, m = measured seconds, over rows with m > 0 and p known):
- absolute percentage error  ape = |p - m| / m; its median and 90th percentile (numpy's linear
  interpolation); the median again over rows with m >= 20 us (`median_ape_20us`);
- share within 2x: the share of rows with p / m in [0.5, 2];
- time-weighted error: sum |p - m| / sum m (big nodes dominate);
- whole-model error: (P - M) / M, signed, with P the projected total of every counted node and M
  the measured total of every profiled node, matched or not;
- outliers: the rows with the largest |p - m|, with their ratio p / m and bound.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["error_stats", "BIG_NODE_S"]

BIG_NODE_S = 20e-6


def _percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))


def error_stats(pairs: Sequence[tuple[float, float]], projected_total_s: float, measured_total_s: float,
                big_node_s: float = BIG_NODE_S) -> dict[str, Any]:
    """Statistics over `pairs` of (projected_s, measured_s); None where a figure has no data."""
    pairs = [(p, m) for p, m in pairs if m > 0 and p is not None]
    ape = [abs(p - m) / m for p, m in pairs]
    big = [abs(p - m) / m for p, m in pairs if m >= big_node_s]
    within = [p / m for p, m in pairs if 0.5 <= p / m <= 2.0]
    sum_m = sum(m for _, m in pairs)
    return {
        "rows": len(pairs),
        "median_ape": _percentile(ape, 50) if ape else None,
        "p90_ape": _percentile(ape, 90) if ape else None,
        "rows_20us": len(big),
        "median_ape_20us": _percentile(big, 50) if big else None,
        "within_2x": (len(within) / len(pairs)) if pairs else None,
        "time_weighted_error": (sum(abs(p - m) for p, m in pairs) / sum_m) if sum_m else None,
        "projected_total_s": projected_total_s,
        "measured_total_s": measured_total_s,
        "whole_model_error": ((projected_total_s - measured_total_s) / measured_total_s)
        if measured_total_s else None,
    }
