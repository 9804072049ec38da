"""Cost rule for `fft`: discrete Fourier transforms (ONNX DFT, STFT's per-frame transforms, Rfft, Irfft).

Guarantees: a complex transform of N points costs 5 N log2 N flops, the convention of FFTW's benchFFT
(radix-2 count, used for every N); a transform with a real input or a real output (``real``) costs half;
the twiddle factors are precomputed constants (no transcendentals); bytes are the input read once and the
output written once. `length` and `transforms` come from the capture (the frontend knows the axis, the
padding to dft_length and the one-sided output); a missing or non-positive one raises `ValueError`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..ir import TensorType
from ._common import int_attr, operand, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["fft_rule", "fft_flops"]


def fft_flops(length: int, real: bool) -> int:
    """Flops of one transform of `length` points: 5 N log2 N (complex), half for real data."""
    if length <= 1:
        return 0
    flops = 5 * length * math.log2(length)
    return round(flops / 2 if real else flops)


@register("fft")
def fft_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    operand("fft", ins, 0, "x")
    out0("fft", outs)
    length = int_attr("fft", attrs, "length", 1)
    transforms = int_attr("fft", attrs, "transforms", 0)
    return Cost(transforms * fft_flops(length, bool(attrs.get("real"))), 0, 0, read_bytes(ins), written_bytes(outs))
