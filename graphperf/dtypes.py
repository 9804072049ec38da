"""Canonical dtype names and their sizes in bits.

Every frontend maps its own dtype to one of these names; nothing else in graphperf
knows about torch.dtype or ONNX TensorProto codes. `SPELLINGS` is the one table of the short
names users type (``bf16``, ``fp16``, ``half``, ``fp32``, ``float``, ...): `dtype_name` resolves
them, for ``--dtype``, ``--precision`` and the API's ``dtype=``.
"""

from __future__ import annotations

__all__ = ["DTYPE_BITS", "SPELLINGS", "dtype_name", "itemsize_bits", "is_float"]

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
    """Whether the canonical dtype `dtype` is a floating-point type."""
    return dtype in _FLOATS


# Short spellings -> canonical names (the canonical names spell themselves). "float" and "half"
# are PyTorch's (torch.float is float32, torch.half float16); "double" is float64.
SPELLINGS: dict[str, str] = {
    "fp64": "float64", "double": "float64", "fp32": "float32", "float": "float32", "tf32": "tfloat32",
    "bf16": "bfloat16", "fp16": "float16", "half": "float16",
    "fp8": "float8_e4m3fn", "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2", "fp4": "float4_e2m1",
}


def dtype_name(spelling: str) -> str:
    """The canonical name of `spelling` (``"bf16"`` -> ``"bfloat16"``, case-insensitive); a canonical
    name is returned as is. KeyError for anything else."""
    key = spelling.strip().lower() if isinstance(spelling, str) else spelling
    if key in DTYPE_BITS:
        return key
    return SPELLINGS[key]
