"""Alias table: ATen ops (as `torch.ops.aten` overload packets) -> canonical graphperf ops.

Each entry says which canonical op an ATen op is, which of its schema arguments are the
canonical inputs (in canonical order), and how to derive the canonical attributes from the
bound arguments. Keys are op objects, never strings. Ops whose cost depends on the runtime
layout (reshape, to) are resolved by `resolve` from the traced tensor metadata.

An ATen op not in this table is captured as OpId("aten", "<name>.<overload>") and reported
as unknown by the count layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch

aten = torch.ops.aten

__all__ = ["AtenAlias", "ALIASES", "OVERLOADS", "TRAINING_ALIASES", "alias_for"]

Attrs = Callable[[Mapping[str, Any], list, list], dict]


@dataclass(frozen=True)
class AtenAlias:
    """`op`: canonical name; `inputs`: schema argument names that are inputs, in canonical
    order (None: every tensor argument in schema order); `attrs(bound, in_vals, out_vals)`."""

    op: str
    inputs: Optional[tuple[str, ...]] = None
    attrs: Optional[Attrs] = None


def _norm_numel(bound, ins, outs):
    return {"norm_numel": math.prod(bound["normalized_shape"])}


def _kernel(bound, ins, outs):
    k = bound["kernel_size"]
    dims = ins[0].dim() - 2
    return {"kernel": tuple(k) * (dims if len(k) == 1 else 1)}


def _adaptive_kernel(bound, ins, outs):
    # adaptive pooling: each output reads about in/out elements per spatial dim
    x, y = ins[0], outs[0]
    return {"kernel": tuple(-(-a // b) for a, b in zip(x.shape[2:], y.shape[2:]))}


def _topk(bound, ins, outs):
    return {"k": int(bound["k"]), "axis": int(bound["dim"])}


def _pow(bound, ins, outs):
    e = bound.get("exponent")
    if isinstance(e, (int, float)) and not isinstance(e, bool) and float(e).is_integer():
        return {"exponent": int(e)}
    return {}


def _reduce(kind: str) -> AtenAlias:
    return AtenAlias(kind, ("self",))


def _const(name: str) -> Attrs:
    value = {"add": "add", "none": "none"}[name]
    return lambda bound, ins, outs: {"reduce": value}


def _scatter_reduce(bound, ins, outs):
    r = bound.get("reduce") or "none"
    return {"reduce": {"sum": "add", "prod": "mul", "amax": "max", "amin": "min", "mean": "add"}.get(r, r)}


_ELEMENTWISE_ATEN = {
    "add": "add", "sub": "sub", "rsub": "sub", "mul": "mul", "div": "div", "true_divide": "div",
    "neg": "neg", "abs": "abs", "maximum": "maximum", "minimum": "minimum", "clamp": "clamp",
    "clamp_min": "maximum", "clamp_max": "minimum", "reciprocal": "reciprocal", "square": "square",
    "relu": "relu", "leaky_relu": "leaky_relu", "hardtanh": "hardtanh", "silu": "silu",
    "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp", "log": "log", "erf": "erf", "sqrt": "sqrt",
    "rsqrt": "rsqrt", "sin": "sin", "cos": "cos", "where": "where", "masked_fill": "masked_fill",
    "eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
    "logical_and": "logical_and", "logical_or": "logical_or", "logical_not": "logical_not",
    "logical_xor": "logical_xor", "bitwise_and": "bitwise_and", "bitwise_or": "bitwise_or",
    "bitwise_not": "bitwise_not", "floor": "floor", "ceil": "ceil", "round": "round", "sign": "sign",
    "remainder": "mod", "fmod": "mod", "floor_divide": "floor_div", "isnan": "isnan", "isinf": "isinf",
    "dropout": "dropout", "tril": "where", "triu": "where",
}

_VIEWS = (
    "view", "_unsafe_view", "squeeze", "unsqueeze", "permute", "transpose", "t", "expand",
    "expand_as", "slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind",
    "tensor_split", "detach", "alias", "lift_fresh_copy", "flatten", "unflatten", "view_as",
    "movedim", "as_strided", "numpy_T", "unfold", "diagonal", "_assert_tensor_metadata",
    "_assert_scalar", "sym_constrain_range_for_size",
)

_FILLS = (
    "full", "zeros", "ones", "empty", "arange", "full_like", "zeros_like", "ones_like", "empty_like",
    "new_zeros", "new_ones", "new_full", "new_empty", "scalar_tensor", "rand", "randn", "rand_like",
    "randn_like", "linspace", "eye", "scalar_tensor",
)

ALIASES: dict[Any, AtenAlias] = {
    # matrix ops
    aten.mm: AtenAlias("matmul", ("self", "mat2")),
    aten.bmm: AtenAlias("matmul", ("self", "mat2")),
    aten.matmul: AtenAlias("matmul", ("self", "other")),
    aten.addmm: AtenAlias("matmul", ("mat1", "mat2", "self")),
    aten.baddbmm: AtenAlias("matmul", ("batch1", "batch2", "self")),
    aten.linear: AtenAlias("matmul", ("input", "weight", "bias"), lambda b, i, o: {"trans_b": True}),
    aten.einsum: AtenAlias("einsum", ("tensors",), lambda b, i, o: {"equation": b["equation"]}),
    aten.convolution: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": bool(b["transposed"])}),
    aten._convolution: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": bool(b["transposed"])}),
    aten.conv1d: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": False}),
    aten.conv2d: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": False}),
    aten.conv3d: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": False}),
    aten.conv_transpose1d: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": True}),
    aten.conv_transpose2d: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": True}),
    aten.conv_transpose3d: AtenAlias("conv", ("input", "weight", "bias"), lambda b, i, o: {"transposed": True}),
    aten.scaled_dot_product_attention: AtenAlias(
        "attention", ("query", "key", "value", "attn_mask"), lambda b, i, o: {"is_causal": bool(b.get("is_causal"))}),
    aten._scaled_dot_product_flash_attention_for_cpu: AtenAlias(
        "attention", ("query", "key", "value", "attn_mask"), lambda b, i, o: {"is_causal": bool(b.get("is_causal"))}),
    aten._scaled_dot_product_efficient_attention: AtenAlias(
        "attention", ("query", "key", "value", "attn_bias"), lambda b, i, o: {"is_causal": bool(b.get("is_causal"))}),
    aten._scaled_dot_product_flash_attention: AtenAlias(
        "attention", ("query", "key", "value"), lambda b, i, o: {"is_causal": bool(b.get("is_causal"))}),
    # normalisation and softmax
    aten.softmax: AtenAlias("softmax", ("self",), lambda b, i, o: {"axis": b["dim"], "log": False}),
    aten._softmax: AtenAlias("softmax", ("self",), lambda b, i, o: {"axis": b["dim"], "log": False}),
    aten.log_softmax: AtenAlias("softmax", ("self",), lambda b, i, o: {"axis": b["dim"], "log": True}),
    aten._log_softmax: AtenAlias("softmax", ("self",), lambda b, i, o: {"axis": b["dim"], "log": True}),
    aten.layer_norm: AtenAlias("layer_norm", ("input", "weight", "bias"), _norm_numel),
    aten.native_layer_norm: AtenAlias("layer_norm", ("input", "weight", "bias"), _norm_numel),
    aten.rms_norm: AtenAlias("rms_norm", ("input", "weight"), _norm_numel),
    aten._fused_rms_norm: AtenAlias("rms_norm", ("input", "weight"), _norm_numel),
    aten.batch_norm: AtenAlias("batch_norm", ("input", "weight", "bias", "running_mean", "running_var")),
    aten._native_batch_norm_legit_no_training: AtenAlias(
        "batch_norm", ("input", "weight", "bias", "running_mean", "running_var")),
    aten.group_norm: AtenAlias("group_norm", ("input", "weight", "bias"), lambda b, i, o: {"num_groups": b["num_groups"]}),
    aten.native_group_norm: AtenAlias("group_norm", ("input", "weight", "bias"), lambda b, i, o: {"num_groups": b["group"]}),
    # pooling
    aten.max_pool1d: AtenAlias("max_pool", ("self",), _kernel),
    aten.max_pool2d: AtenAlias("max_pool", ("self",), _kernel),
    aten.max_pool3d: AtenAlias("max_pool", ("self",), _kernel),
    aten.max_pool2d_with_indices: AtenAlias("max_pool", ("self",), _kernel),
    aten.avg_pool1d: AtenAlias("avg_pool", ("self",), _kernel),
    aten.avg_pool2d: AtenAlias("avg_pool", ("self",), _kernel),
    aten.avg_pool3d: AtenAlias("avg_pool", ("self",), _kernel),
    aten.adaptive_avg_pool1d: AtenAlias("avg_pool", ("self",), _adaptive_kernel),
    aten.adaptive_avg_pool2d: AtenAlias("avg_pool", ("self",), _adaptive_kernel),
    aten._adaptive_avg_pool2d: AtenAlias("avg_pool", ("self",), _adaptive_kernel),
    aten.adaptive_avg_pool3d: AtenAlias("avg_pool", ("self",), _adaptive_kernel),
    aten.adaptive_max_pool2d: AtenAlias("max_pool", ("self",), _adaptive_kernel),
    # reductions
    aten.sum: _reduce("reduce_sum"), aten.mean: _reduce("reduce_mean"), aten.amax: _reduce("reduce_max"),
    aten.amin: _reduce("reduce_min"), aten.max: _reduce("reduce_max"), aten.min: _reduce("reduce_min"),
    aten.prod: _reduce("reduce_prod"), aten.argmax: _reduce("argmax"), aten.argmin: _reduce("argmin"),
    aten.var: _reduce("reduce_var"), aten.std: _reduce("reduce_std"), aten.any: _reduce("reduce_any"),
    aten.all: _reduce("reduce_all"), aten.cumsum: _reduce("cumsum"), aten.norm: _reduce("reduce_sum"),
    aten.topk: AtenAlias("topk", ("self",), _topk),
    aten.sort: AtenAlias("sort", ("self",), lambda b, i, o: {"axis": int(b.get("dim", -1))}),
    aten.argsort: AtenAlias("sort", ("self",), lambda b, i, o: {"axis": int(b.get("dim", -1))}),
    # gather / scatter
    aten.embedding: AtenAlias("gather", ("weight", "indices")),
    aten.index_select: AtenAlias("gather", ("self", "index")),
    aten.gather: AtenAlias("gather", ("self", "index")),
    aten.index: AtenAlias("gather", ("self", "indices")),
    aten.scatter: AtenAlias("scatter", ("self", "index", "src"), lambda b, i, o: {"reduce": b.get("reduce") or "none"}),
    aten.scatter_add: AtenAlias("scatter", ("self", "index", "src"), _const("add")),
    aten.scatter_reduce: AtenAlias("scatter", ("self", "index", "src"), _scatter_reduce),
    aten.index_add: AtenAlias("scatter", ("self", "index", "source"), _const("add")),
    aten.index_copy: AtenAlias("scatter", ("self", "index", "source"), _const("none")),
    aten.index_put: AtenAlias("scatter", ("self", "indices", "values"),
                              lambda b, i, o: {"reduce": "add" if b.get("accumulate") else "none"}),
    # data movement
    aten.cat: AtenAlias("concat", ("tensors",)),
    aten.stack: AtenAlias("concat", ("tensors",)),
    aten.constant_pad_nd: AtenAlias("pad", ("self",)),
    aten.pad: AtenAlias("pad", ("self",)),
    aten.clone: AtenAlias("copy", ("self",)),
    aten.contiguous: AtenAlias("copy", ("self",)),
    aten.repeat: AtenAlias("copy", ("self",)),
    aten.repeat_interleave: AtenAlias("copy", ("self",)),
    aten.copy: AtenAlias("copy", ("src",)),
    aten._to_copy: AtenAlias("cast", ("self",)),
    aten.type_as: AtenAlias("cast", ("self",)),
    aten.one_hot: AtenAlias("fill", ("self",)),
    aten.pow: AtenAlias("pow", None, _pow),
    aten.gelu: AtenAlias("gelu", ("self",)),  # resolved to gelu_tanh by approximate="tanh"
    # resolved from layout or dtype by the frontend: view vs reshape_copy, view vs cast
    aten.reshape: AtenAlias("view", ("self",)),
    aten.to: AtenAlias("cast", ("self",)),
}

for _name, _canon in _ELEMENTWISE_ATEN.items():
    ALIASES.setdefault(getattr(aten, _name), AtenAlias(_canon))
for _name in _VIEWS:
    if hasattr(aten, _name):
        ALIASES.setdefault(getattr(aten, _name), AtenAlias("view"))
for _name in _FILLS:
    if hasattr(aten, _name):
        ALIASES.setdefault(getattr(aten, _name), AtenAlias("fill"))


# Training graphs (aot_autograd forward and backward): backward ops, losses, training-mode ops.
_LOSS_REDUCTION = {0: "none", 1: "mean", 2: "sum"}  # ATen's at::Reduction enum


def _output_mask(bound, ins, outs):
    return {"output_mask": tuple(bool(m) for m in bound["output_mask"])}


def _loss(bound, ins, outs):
    return {"reduction": _LOSS_REDUCTION[int(bound["reduction"])]}


def _adaptive_backward_kernel(bound, ins, outs):
    # the forward's window: grad_input has the forward input's size, grad_out the forward output's
    return {"kernel": tuple(-(-a // b) for a, b in zip(outs[0].shape[2:], ins[0].shape[2:]))}


def _causal(bound, ins, outs):
    return {"is_causal": bool(bound.get("is_causal"))}


_SDPA_BACKWARD = ("grad_out", "query", "key", "value", "out", "logsumexp")
_BN_BACKWARD = ("grad_out", "input", "weight", "running_mean", "running_var", "save_mean", "save_invstd")

TRAINING_ALIASES: dict[Any, AtenAlias] = {
    aten._scaled_dot_product_flash_attention_for_cpu_backward: AtenAlias(
        "attention_backward", (*_SDPA_BACKWARD, "attn_mask"), _causal),
    aten._scaled_dot_product_flash_attention_backward: AtenAlias("attention_backward", _SDPA_BACKWARD, _causal),
    aten._scaled_dot_product_efficient_attention_backward: AtenAlias(
        "attention_backward", ("grad_out_", "query", "key", "value", "out", "logsumexp", "attn_bias"), _causal),
    aten.convolution_backward: AtenAlias(
        "conv_backward", ("grad_output", "input", "weight"),
        lambda b, i, o: {"transposed": bool(b["transposed"]), **_output_mask(b, i, o)}),
    aten._softmax_backward_data: AtenAlias(
        "softmax_backward", ("grad_output", "output"), lambda b, i, o: {"axis": b["dim"], "log": False}),
    aten._log_softmax_backward_data: AtenAlias(
        "softmax_backward", ("grad_output", "output"), lambda b, i, o: {"axis": b["dim"], "log": True}),
    aten.native_layer_norm_backward: AtenAlias(
        "layer_norm_backward", ("grad_out", "input", "mean", "rstd", "weight"),
        lambda b, i, o: {**_norm_numel(b, i, o), **_output_mask(b, i, o)}),
    aten.native_batch_norm_backward: AtenAlias(
        "batch_norm_backward", _BN_BACKWARD, lambda b, i, o: {"training": bool(b["train"]), **_output_mask(b, i, o)}),
    aten.embedding_dense_backward: AtenAlias("embedding_backward", ("grad_output", "indices")),
    aten.embedding_backward: AtenAlias("embedding_backward", ("grad", "indices")),
    aten.max_pool2d_with_indices_backward: AtenAlias("max_pool_backward", ("grad_output", "indices")),
    aten.max_pool3d_with_indices_backward: AtenAlias("max_pool_backward", ("grad_output", "indices")),
    aten.avg_pool2d_backward: AtenAlias("avg_pool_backward", ("grad_output",), _kernel),
    aten.avg_pool3d_backward: AtenAlias("avg_pool_backward", ("grad_output",), _kernel),
    aten._adaptive_avg_pool2d_backward: AtenAlias("avg_pool_backward", ("grad_output",), _adaptive_backward_kernel),
    aten._adaptive_avg_pool3d_backward: AtenAlias("avg_pool_backward", ("grad_output",), _adaptive_backward_kernel),
    aten.nll_loss_forward: AtenAlias("nll_loss", ("self", "target", "weight"), _loss),
    aten.nll_loss_backward: AtenAlias("nll_loss_backward", ("grad_output", "target", "weight", "total_weight"), _loss),
    aten.mse_loss: AtenAlias("mse_loss", ("self", "target"), _loss),
    aten.mse_loss_backward: AtenAlias("mse_loss_backward", ("grad_output", "self", "target"), _loss),
    aten.threshold_backward: AtenAlias("threshold_backward", ("grad_output", "self")),
    aten.gelu_backward: AtenAlias("gelu_backward", ("grad_output", "self")),  # gelu_tanh_backward by approximate
    aten.silu_backward: AtenAlias("silu_backward", ("grad_output", "self")),
    aten.sigmoid_backward: AtenAlias("sigmoid_backward", ("grad_output", "output")),
    aten.tanh_backward: AtenAlias("tanh_backward", ("grad_output", "output")),
    aten.native_dropout: AtenAlias("dropout_train", ("input",)),
    aten.native_dropout_backward: AtenAlias("dropout_backward", ("grad_output", "mask")),
    # zeros of the input's size with the gradient copied into the slice: a pad
    aten.slice_backward: AtenAlias("pad", ("grad_output",)),
    aten.select_backward: AtenAlias("pad", ("grad_output",)),
    # training-mode batch norm: batch statistics (the running-stat update is not counted)
    aten._native_batch_norm_legit_functional: AtenAlias("batch_norm", ("input", "weight", "bias")),
    aten._native_batch_norm_legit: AtenAlias("batch_norm", ("input", "weight", "bias")),
}
for _op, _alias in TRAINING_ALIASES.items():
    if _op in ALIASES:
        raise RuntimeError(f"{_op} is aliased twice")
    ALIASES[_op] = _alias


# Overloads whose meaning differs from their packet's (binary max/min are elementwise).
OVERLOADS: dict[Any, AtenAlias] = {
    aten.max.other: AtenAlias("maximum"),
    aten.min.other: AtenAlias("minimum"),
    aten.max.dim: AtenAlias("reduce_max", ("self",)),
    aten.min.dim: AtenAlias("reduce_min", ("self",)),
}


def alias_for(overload: Any) -> Optional[AtenAlias]:
    """The alias of an ATen OpOverload: its own entry, else its packet's."""
    found = OVERLOADS.get(overload)
    if found is None:
        found = ALIASES.get(getattr(overload, "overloadpacket", None))
    return found
