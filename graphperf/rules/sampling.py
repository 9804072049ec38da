"""Cost rule for `interpolate`: reading an input at computed, fractional positions (Resize in linear or
cubic mode, GridSample, RoiAlign, CropAndResize, the sampling step of DeformConv).

Guarantees: per output element and per sample, the coordinate arithmetic and the tap arithmetic derived
below for the mode and the number of interpolated dimensions `spatial`; averaging several samples
(`samples` > 1) adds one add per sample; no transcendentals; bytes are every input read once (the source,
the grid, ROIs or offsets) and the output written once. An unknown mode or a bad `spatial` raises
`ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import int_attr, operand, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["interpolate_rule", "flops_per_sample"]

# Per sample, for d interpolated dimensions:
#   coordinates: per dimension, scale and offset the output (or grid) position (mul, add) and split it
#                into an index and a fraction (floor, sub): 3 flops -> 3d (nearest rounds instead of
#                splitting: mul, add, round: 3d as well)
#   nearest:     no tap arithmetic (a copy of the nearest element)
#   linear:      2**d taps, each a weight times a value added in (2 flops), and the per-dimension
#                weights 1 - t and t (1 sub; t is the fraction): 2 * 2**d + d
#   cubic:       4**d taps (2 flops each), and per dimension the four Keys weights, cubic polynomials
#                in t evaluated by Horner's rule from t, t^2, t^3 (2 mul) and 4 x (3 mul + 3 add): 26
#                -> 2 * 4**d + 26d
_TAPS = {"nearest": (0, 0), "linear": (2, 1), "cubic": (4, 26)}  # mode -> (taps per dim, weight flops per dim)


def flops_per_sample(mode: str, spatial: int) -> int:
    per_dim, weights = _TAPS[mode]
    taps = 2 * per_dim ** spatial if per_dim else 0
    return 3 * spatial + weights * spatial + taps


@register("interpolate")
def interpolate_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType],
                     attrs: Mapping[str, Any]) -> Cost:
    operand("interpolate", ins, 0, "x")
    out = out0("interpolate", outs)
    mode = attrs.get("mode")
    if mode not in _TAPS:
        raise RuleError(f"interpolate: mode={mode!r} must be one of {sorted(_TAPS)}")
    spatial = int_attr("interpolate", attrs, "spatial", 1)
    samples = int_attr("interpolate", attrs, "samples", 1) if "samples" in attrs else 1
    per_out = samples * flops_per_sample(mode, spatial) + (samples if samples > 1 else 0)
    return Cost(out.numel * per_out, 0, 0, read_bytes(ins), written_bytes(outs))
