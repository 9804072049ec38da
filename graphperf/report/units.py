"""Human formatting of SI quantities for the terminal (decimal prefixes: 1 GB = 1e9 bytes)."""

from __future__ import annotations

from typing import Optional

__all__ = ["si", "seconds", "delta_seconds", "count_of"]

#: A difference of two latencies smaller than this is floating-point noise, shown as 0.
NOISE_S = 1e-12

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: Optional[float], unit: str) -> str:
    if value is None:
        return "?"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def seconds(value: Optional[float]) -> str:
    if value is None:
        return "?"
    if value == 0:
        return "0"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def delta_seconds(value: Optional[float]) -> str:
    """A signed change of time (`after - before`): "+2.5 us", "-26 us"; |value| under `NOISE_S` is "0",
    so that two sums of the same figures in another order do not print "-1.03e-07 ns"."""
    if value is None:
        return "?"
    if abs(value) < NOISE_S:
        return "0"
    return ("+" if value > 0 else "-") + seconds(abs(value))


def count_of(n: int, noun: str, plural: str = "") -> str:
    """`n` and `noun`, plural unless `n` is 1: count_of(1, "group") == "1 group", count_of(3, "group") == "3 groups"."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
