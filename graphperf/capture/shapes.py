"""Binding symbolic dimensions to integers, with one error naming every unbound one.

Used by the torch.export frontend (sympy expressions behind SymInts). A dimension is bound by
the user's `dims` mapping (symbol name -> int); sizes must be positive and sane.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..errors import UsageError

__all__ = ["DimBinder", "MAX_DIM"]

MAX_DIM = 2**31  # a larger single dimension is taken as a mistake


class DimBinder:
    def __init__(self, where: str, dims: Optional[Mapping[str, int]]):
        self.where = where
        self.dims = dict(dims or {})
        self.unbound: dict[str, str] = {}  # symbol -> first place seen
        self.used: set[str] = set()

    def size(self, d: Any, place: str) -> int:
        """An int for dimension `d` (int or SymInt); 1 as a placeholder while unbound symbols are collected."""
        if isinstance(d, int):
            value = d
        else:
            expr = d.node.expr
            if expr.is_number:
                value = int(expr)
            else:
                missing = [str(s) for s in expr.free_symbols if str(s) not in self.dims]
                if missing:
                    for sym in missing:
                        self.unbound.setdefault(sym, place)
                    return 1
                self.used.update(str(s) for s in expr.free_symbols)
                value = int(expr.subs({s: self.dims[str(s)] for s in expr.free_symbols}))
        if value < 0 or value > MAX_DIM:
            raise UsageError(f"{self.where}: dimension {value} at {place} is out of range (0..{MAX_DIM}); check --dim values")
        return value

    def raise_unbound(self) -> None:
        if self.unbound:
            listed = ", ".join(f"{s} (first at {p})" for s, p in sorted(self.unbound.items()))
            flags = " ".join(f"--dim {s}=N" for s in sorted(self.unbound))
            raise UsageError(f"{self.where}: unbound dynamic dimensions {listed}; bind them with {flags}")
