"""`AtenAlias`: how one ATen op maps to a canonical graphperf op (the value type of the alias tables).

The bottom of the ATen alias layer: it imports nothing from graphperf, so the hand table
(`aten_ops`) and the tables derived from torch's metadata (`aten_pointwise`) both build on it
without importing each other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

__all__ = ["AtenAlias", "Attrs"]

Attrs = Callable[[Mapping[str, Any], list, list], dict]


@dataclass(frozen=True)
class AtenAlias:
    """`op`: canonical name; `inputs`: schema argument names that are inputs, in canonical
    order (None: every tensor argument in schema order); `attrs(bound, in_vals, out_vals)`."""

    op: str
    inputs: Optional[tuple[str, ...]] = None
    attrs: Optional[Attrs] = None
