"""Alias table: ATen ops (as `torch.ops.aten` overload packets) -> canonical graphperf ops.

Each entry says which canonical op an ATen op is, which of its schema arguments are the
canonical inputs (in canonical order), and how to derive the canonical attributes from the
bound arguments. Keys are op objects, never strings. Ops whose cost depends on the runtime
layout (reshape, to) are resolved by `resolve` from the traced tensor metadata.

`alias_for` also derives aliases from torch's metadata for ops the table does not name: an in-place
op (``relu_``, ``add_.Tensor``, ``__iand__``) is its functional op (`functional_overload`); an
``out=`` overload is already in its functional op's packet and its out arguments are not inputs;
an op tagged ``torch.Tag.pointwise`` gets the canonical elementwise op or the generic ``pointwise``
one (`aten_pointwise`); custom ops of other libraries are keyed by their torch.library name
(`CUSTOM_ALIASES`). An op with none of these is captured as OpId("aten", "<name>.<overload>") and
reported as unknown by the count layer; `tests/test_aten_coverage.py` lists the core and pointwise
ops that would be, against the reasoned exclusions in `aten_coverage.EXCLUDED`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Optional

import torch

from .aten_alias import AtenAlias, Attrs
from .aten_pointwise import pointwise_alias

aten = torch.ops.aten

__all__ = ["AtenAlias", "ALIASES", "OVERLOADS", "TRAINING_ALIASES", "CUSTOM_ALIASES", "alias_for",
           "functional_overload"]


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


def _sampling(mode: str, spatial: int) -> Attrs:
    return lambda bound, ins, outs: {"mode": mode, "spatial": spatial}


_GRID_MODES = {0: "linear", 1: "nearest", 2: "cubic"}  # grid_sampler's interpolation_mode enum


def _grid_sampling(spatial: int) -> Attrs:
    return lambda bound, ins, outs: {"mode": _GRID_MODES[int(bound["interpolation_mode"])], "spatial": spatial}


def _fft(real: bool, from_output: bool) -> Attrs:
    """length = points per transform (the product of the transformed dims: a d-dim FFT of N points costs
    5 N log2 N like a 1-D one), transforms = the rest; c2r counts on its real output's sizes."""

    def attrs(bound, ins, outs):
        t = outs[0] if from_output else ins[0]
        dims = [d % t.dim() for d in bound["dim"]]
        length = math.prod(int(t.shape[d]) for d in dims)
        return {"length": length, "transforms": t.numel() // max(length, 1), "real": real}

    return attrs


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
    # Python operators on tensors (transformers' mask code: `causal & padding`); on bool they are the
    # logical ops, which cost the same
    "__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor",
}

_VIEWS = (
    "view", "_unsafe_view", "squeeze", "unsqueeze", "permute", "transpose", "t", "expand",
    "expand_as", "slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind",
    "tensor_split", "detach", "alias", "lift_fresh_copy", "flatten", "unflatten", "view_as",
    "movedim", "as_strided", "numpy_T", "unfold", "diagonal", "_assert_tensor_metadata",
    "_assert_scalar", "sym_constrain_range_for_size",
    "positive", "conj", "resolve_conj", "resolve_neg", "view_as_real", "view_as_complex",  # identities / views
)

# allocations: free, no kernel runs until something writes the memory (that node counts the write); no
# inputs, so liveness allocates the buffer rather than aliasing a template tensor
_EMPTIES = ("empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided", "empty_permuted")

# creation ops write their output once and read nothing (a random draw counts no arithmetic)
_FILLS = (
    "full", "zeros", "ones", "arange", "full_like", "zeros_like", "ones_like",
    "new_zeros", "new_ones", "new_full", "scalar_tensor", "rand", "randn", "rand_like",
    "randn_like", "linspace", "logspace", "eye", "fill", "zero", "randperm", "randint", "randint_like",
    "tril_indices", "triu_indices",
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
    aten.adaptive_max_pool1d: AtenAlias("max_pool", ("self",), _adaptive_kernel),
    aten.adaptive_max_pool3d: AtenAlias("max_pool", ("self",), _adaptive_kernel),
    aten._adaptive_avg_pool3d: AtenAlias("avg_pool", ("self",), _adaptive_kernel),
    aten.max_pool3d_with_indices: AtenAlias("max_pool", ("self",), _kernel),
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
    aten.pow: AtenAlias("pow", None, _pow),
    # diff(x, n): x[1:] - x[:-1] along dim (prepend/append joined first), n times: n subs per output element
    aten.diff: AtenAlias("pointwise", ("self", "prepend", "append"),
                         lambda b, i, o: {"flops_per_element": int(b.get("n") or 1), "transcendentals_per_element": 0}),
    # weight norm w = g * v / ||v|| (wav2vec2's positional conv): v*v and the sum (2), the scale (1) per element
    aten._weight_norm: AtenAlias("pointwise", ("v", "g"),
                                 lambda b, i, o: {"flops_per_element": 3, "transcendentals_per_element": 0}),
    aten._weight_norm_interface: AtenAlias("pointwise", ("v", "g"),
                                           lambda b, i, o: {"flops_per_element": 3, "transcendentals_per_element": 0}),
    # a histogram reduces its input into bins: one op per input element, as every reduction (MoE token counts)
    aten.histc: _reduce("reduce_sum"), aten.bincount: _reduce("reduce_sum"),
    # nonzero: the output's size is data-dependent (a --dim u0=N binds it)
    aten.nonzero: AtenAlias("nonzero", ("self",)),
    aten.one_hot: AtenAlias("one_hot", ("self",)),
    aten._grouped_mm: AtenAlias("grouped_matmul", ("self", "mat2", "offs")),
    # resampling (rules/sampling.py): the mode and the number of interpolated dims
    **{getattr(aten, f"{prefix}{d}d"): AtenAlias("interpolate", None, _sampling("nearest", d))
       for prefix in ("upsample_nearest", "_upsample_nearest_exact") for d in (1, 2, 3)},
    aten.upsample_linear1d: AtenAlias("interpolate", None, _sampling("linear", 1)),
    aten.upsample_bilinear2d: AtenAlias("interpolate", None, _sampling("linear", 2)),
    aten._upsample_bilinear2d_aa: AtenAlias("interpolate", None, _sampling("linear", 2)),
    aten.upsample_trilinear3d: AtenAlias("interpolate", None, _sampling("linear", 3)),
    aten.upsample_bicubic2d: AtenAlias("interpolate", None, _sampling("cubic", 2)),
    aten._upsample_bicubic2d_aa: AtenAlias("interpolate", None, _sampling("cubic", 2)),
    aten.grid_sampler_2d: AtenAlias("interpolate", ("input", "grid"), _grid_sampling(2)),
    aten.grid_sampler_3d: AtenAlias("interpolate", ("input", "grid"), _grid_sampling(3)),
    # FFTs (rules/spectral.py): r2c reads and c2r writes real data (half the work)
    aten._fft_r2c: AtenAlias("fft", ("self",), _fft(real=True, from_output=False)),
    aten._fft_c2r: AtenAlias("fft", ("self",), _fft(real=True, from_output=True)),
    aten._fft_c2c: AtenAlias("fft", ("self",), _fft(real=False, from_output=False)),
    # copies: reversed, rotated, padded from the edges, patches unfolded, a slice written into a copy
    aten.flip: AtenAlias("copy", ("self",)), aten.roll: AtenAlias("copy", ("self",)),
    aten.im2col: AtenAlias("copy", ("self",)),
    aten.col2im: _reduce("reduce_sum"),  # folds patches back: one add per input element
    aten.reflection_pad1d: AtenAlias("pad", ("self",)), aten.reflection_pad2d: AtenAlias("pad", ("self",)),
    aten.reflection_pad3d: AtenAlias("pad", ("self",)), aten.replication_pad1d: AtenAlias("pad", ("self",)),
    aten.replication_pad2d: AtenAlias("pad", ("self",)), aten.replication_pad3d: AtenAlias("pad", ("self",)),
    aten.slice_scatter: AtenAlias("copy", ("self", "src")), aten.select_scatter: AtenAlias("copy", ("self", "src")),
    aten.diagonal_scatter: AtenAlias("copy", ("self", "src")),
    aten.as_strided_scatter: AtenAlias("copy", ("self", "src")),
    aten.masked_scatter: AtenAlias("copy", ("self", "mask", "source")),
    aten._index_put_impl: AtenAlias("scatter", ("self", "indices", "values"),
                                    lambda b, i, o: {"reduce": "add" if b.get("accumulate") else "none"}),
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
for _name in _EMPTIES:
    if hasattr(aten, _name):
        ALIASES.setdefault(getattr(aten, _name), AtenAlias("view", ()))


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


# Custom ops of other libraries, keyed by their torch.library name (the op object exists only once the
# library is imported: `--import transformers`).
CUSTOM_ALIASES: dict[str, AtenAlias] = {
    # transformers' MoE experts when torch._grouped_mm cannot run (float32, CPU): input [S, K] sorted by
    # expert, weight [E, K, N], offs [E] cumulative token counts
    "transformers::grouped_mm_fallback": AtenAlias("grouped_matmul", ("input", "weight", "offs")),
}


def functional_overload(overload: Any) -> Any:
    """The functional ATen op an in-place one stands for (``relu_`` -> ``relu``, ``add_.Tensor`` ->
    ``add.Tensor``, ``__iand__.Tensor`` -> ``__and__.Tensor``); any other op is returned as is.

    ATen names every in-place variant after its functional op with a trailing underscore (dunders:
    ``__iop__``), with the same overload names; out= overloads live in the functional op's packet.
    """
    if getattr(overload, "namespace", None) != "aten":
        return overload
    name = overload.overloadpacket.__name__
    if name.startswith("__i") and name.endswith("__"):
        base = "__" + name[3:]
    elif name.endswith("_") and not name.endswith("__"):
        base = name[:-1]
    else:
        return overload
    packet = getattr(aten, base, None)
    if not isinstance(packet, torch._ops.OpOverloadPacket):
        return overload
    # functional overloads: a tensor first argument (ldexp.default is the math-library float one), no out=
    functional = {o: getattr(packet, o) for o in packet.overloads()}
    functional = {o: op for o, op in functional.items() if op._schema.arguments
                  and isinstance(op._schema.arguments[0].type, torch.TensorType)
                  and not any(a.is_out for a in op._schema.arguments)}
    for candidate in (overload._overloadname, "default"):
        if candidate in functional:
            return functional[candidate]
    return next(iter(functional.values())) if len(functional) == 1 else overload  # ldexp_.default -> ldexp.Tensor


def alias_for(overload: Any) -> Optional[AtenAlias]:
    """The alias of an ATen OpOverload: its own entry, else its packet's, else one derived from torch's
    metadata (in-place -> functional, pointwise tag, a custom op's library name); None if none."""
    found = OVERLOADS.get(overload)
    if found is None:
        found = ALIASES.get(getattr(overload, "overloadpacket", None))
    if found is None and isinstance(overload, torch._ops.OpOverload):
        found = _derived(overload)
    return found


@lru_cache(maxsize=None)
def _derived(overload: Any) -> Optional[AtenAlias]:
    functional = functional_overload(overload)
    if functional is not overload:
        return alias_for(functional)
    custom = CUSTOM_ALIASES.get(overload._schema.name)
    if custom is not None:
        return custom
    return pointwise_alias(overload)
