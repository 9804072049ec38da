"""Shapes in an ONNX file: the checks of the shapes it writes, and the shapes of onnxruntime's contrib ops,
which onnx cannot infer.

Guarantees: `declared_shape_problem` and `data_problem` never raise: they return what is wrong, the middle of
a one-line error (``input 'x' has a negative dimension -5 (shape [-5, 8]): fix the shape ...``), or None.
`contrib_shapes` returns the static tensor types onnxruntime's symbolic shape inference gives the values of a
(weightless) model, {} when onnxruntime is missing or cannot; it writes no file.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import onnx
from onnx import TensorProto

__all__ = ["MAX_DIM", "MAX_NUMEL", "declared_shape_problem", "data_problem", "contrib_shapes", "is_static"]

MAX_DIM = 2**31
MAX_NUMEL = 2**40

# bits per element in raw_data, and the typed field that holds one value per element (checked against shapes)
_SUB_BYTE_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}
_ELEMENT_BITS = {code: _SUB_BYTE_BITS.get(name) or 8 * onnx.helper.tensor_dtype_to_np_dtype(code).itemsize
                 for name, code in TensorProto.DataType.items()
                 if name not in ("UNDEFINED", "STRING") and not name.startswith("FLOAT6")
                 and code in onnx.helper.get_all_tensor_dtypes()}
_TYPED_FIELD = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data", TensorProto.INT64: "int64_data",
                **{code: "int32_data" for code in (TensorProto.INT32, TensorProto.INT16, TensorProto.INT8,
                                                   TensorProto.UINT16, TensorProto.UINT8, TensorProto.BOOL,
                                                   TensorProto.FLOAT16, TensorProto.BFLOAT16)}}


def declared_shape_problem(what: str, name: str, dims: Sequence[Any], empty_ok: bool = True) -> Optional[str]:
    """A shape written in the file (ints, and dim_param names that are not checked): a negative dimension, one
    above MAX_DIM, more than MAX_NUMEL elements, or (``empty_ok=False``: graph inputs) a zero-size dimension.

    >>> declared_shape_problem("input", "x", [-5, 8])[:44]
    "input 'x' has a negative dimension -5 (shape"
    >>> declared_shape_problem("input", "x", ["batch", 8]) is None
    True
    """
    sizes = [d for d in dims if isinstance(d, int)]
    shown = "[" + ", ".join(str(d) for d in dims) + "]"
    negative = [d for d in sizes if d < 0]
    if negative:
        return (f"{what} '{name}' has a negative dimension {negative[0]} (shape {shown}): fix the shape in the "
                "model (a dynamic dimension is a name, dim_param, never a negative size)")
    if any(d > MAX_DIM for d in sizes) or math.prod(sizes) > MAX_NUMEL:
        return (f"{what} '{name}' has shape {shown}, above the limit of 2**31 per dimension and 2**40 elements: "
                "the shape is corrupt: re-export the model")
    if not empty_ok and 0 in sizes:
        return (f"{what} '{name}' has a zero-size dimension (shape {shown}): an empty input makes the model do "
                "no work: give it a size in the model (or name it and bind it with --dim)")
    return None


def data_problem(what: str, name: str, t: TensorProto, shape: Sequence[int]) -> Optional[str]:
    """Inline data that contradicts the declared shape (dims [0, 8] holding 8 floats). A tensor with no inline
    data (external, or weights stripped from the file) is not checked."""
    if t.data_location == TensorProto.EXTERNAL:
        return None
    n = math.prod(shape)
    if t.raw_data:
        bits = _ELEMENT_BITS.get(t.data_type)
        held, need, unit = len(t.raw_data), None if bits is None else (n * bits + 7) // 8, "bytes"
    else:
        field = _TYPED_FIELD.get(t.data_type)
        held = len(getattr(t, field)) if field else 0
        need, unit = (n if held else None), "values"
    if need is None or held == need:
        return None
    return (f"{what} '{name}' declares shape {list(shape)} ({n} elements) but holds {held} {unit} of data "
            f"({need} expected): the file is corrupt: re-export the model")


def is_static(tp: Optional[onnx.TypeProto]) -> bool:
    """A tensor type with a shape whose every dimension is a number."""
    return tp is not None and tp.HasField("tensor_type") and tp.tensor_type.HasField("shape") and \
        all(d.HasField("dim_value") for d in tp.tensor_type.shape.dim)


def contrib_shapes(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Value name -> static tensor type, from onnxruntime's symbolic shape inference, which knows the contrib
    ops (Attention, SkipLayerNormalization, MatMulNBits, ...) that onnx's does not."""
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        # SymbolicShapeInference.infer_shapes less its last step: when a shape stays unknown, that saves the
        # model into the working directory and raises; the partial result is what is wanted here
        ssi = SymbolicShapeInference(int_max=2**31 - 1, auto_merge=True, guess_output_rank=False, verbose=0)
        ssi._preprocess(model)
        while ssi.run_:
            ssi._infer_impl()
        ssi._update_output_from_vi()
        out = ssi.out_mp_
    except Exception:  # no onnxruntime, or an op it cannot infer either: no shapes
        return {}
    return {vi.name: vi.type for vi in (*out.graph.value_info, *out.graph.output) if is_static(vi.type)}
