"""Canonical dtype names and their sizes in bits.

Every frontend maps its own dtype to one of these names; nothing else in graphperf
knows about torch.dtype or ONNX TensorProto codes.
"""

from __future__ import annotations

__all__ = ["DTYPE_BITS", "itemsize_bits", "is_float"]

DTYPE_BITS: dict[str, int] = {
    "float64": 64,
    "float32": 32,
    "tfloat32": 32,
    "bfloat16": 16,
    "float16": 16,
    "float8_e4m3fn": 8,
    "float8_e5m2": 8,
    "float4_e2m1": 4,
    "int64": 64,
    "int32": 32,
    "int16": 16,
    "int8": 8,
    "uint8": 8,
    "int4": 4,
    "bool": 8,
    "complex64": 64,
    "complex128": 128,
}

_FLOATS = {"float64", "float32", "tfloat32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1"}


def itemsize_bits(dtype: str) -> int:
    """Bits per element of `dtype`; KeyError for a name that is not canonical."""
    return DTYPE_BITS[dtype]


def is_float(dtype: str) -> bool:
    return dtype in _FLOATS
