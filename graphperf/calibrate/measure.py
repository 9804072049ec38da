"""Repeated measurements: every figure `graphperf calibrate` reports is a `Measurement` holding all
its repetitions, so min / median / max and the spread are always available.

Guarantees:
- ``spread = (max - min) / median``; a measurement whose spread exceeds `SPREAD_LIMIT` (0.25, i.e.
  the fastest and slowest repetitions differ by more than a quarter of the median) is `noisy`, and
  the command says so: on a shared machine that figure cannot be trusted to better than its spread.
- `repeat` times a callable with `time.perf_counter`, one warm-up call first (thread pools, page
  faults, kernel selection), and converts each repetition to a rate with the work it was given.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["Measurement", "repeat", "slope", "SPREAD_LIMIT"]

SPREAD_LIMIT = 0.25


@dataclass(frozen=True)
class Measurement:
    name: str  # what was measured, e.g. "torch matmul float32 1024^3"
    unit: str  # GFLOP/s, GB/s, us
    values: tuple[float, ...]  # one per repetition, in the unit

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def max(self) -> float:
        return max(self.values)

    @property
    def spread(self) -> float:
        return (self.max - self.min) / self.median if self.median else float("inf")

    @property
    def noisy(self) -> bool:
        return self.spread > SPREAD_LIMIT

    def summary(self) -> str:
        """``"min/median/max 1.0/2.0/3.0 GB/s, 7 repeats, spread 100%"`` (3 significant digits)."""
        return (f"min/median/max {self.min:.4g}/{self.median:.4g}/{self.max:.4g} {self.unit}, "
                f"{len(self.values)} repeats, spread {self.spread:.0%}")

    def to_dict(self) -> dict:
        return {"name": self.name, "unit": self.unit, "min": self.min, "median": self.median, "max": self.max,
                "spread": self.spread, "noisy": self.noisy, "values": list(self.values)}


def repeat(name: str, unit: str, fn: Callable[[], object], repeats: int, per_call: Callable[[float], float],
           inner: int = 1) -> Measurement:
    """Time `fn` `repeats` times (after one warm-up call); each repetition runs it `inner` times and
    `per_call(seconds per call)` turns the time into the reported figure (a rate, or microseconds)."""
    fn()
    values: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        values.append(per_call((time.perf_counter() - t0) / inner))
    return Measurement(name, unit, tuple(values))


def slope(name: str, unit: str, small: Sequence[float], large: Sequence[float], extra_items: int) -> Measurement:
    """Per-item cost from paired timings of a small and a large workload that differ by `extra_items`
    items: ``(large_i - small_i) / extra_items`` for each repetition i (seconds in, microseconds out)."""
    return Measurement(name, unit, tuple((b - a) / extra_items * 1e6 for a, b in zip(small, large)))
