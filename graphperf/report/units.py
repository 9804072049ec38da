"""Human formatting of SI quantities for the terminal (decimal prefixes: 1 GB = 1e9 bytes)."""

from __future__ import annotations

from typing import Optional

__all__ = ["si", "seconds"]

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
