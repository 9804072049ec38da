"""Operand alignment of GEMM nodes: which matrix dimensions set a row stride that is not a multiple of 16 bytes.

GPU matrix kernels (cuBLAS, CUTLASS, cuDNN, flash attention) load operands 16 bytes at a time. That
needs every row of every operand to start on a 16-byte boundary, so the row stride, the size of the
dimension that is contiguous in memory times the element size, must be a multiple of 16 bytes.
When one is not, the libraries fall back to kernels that load one element at a time (CUTLASS
``align1``): gpt2's LM head (N = 50257, bf16 rows of 100514 bytes) ran a ``cutlass_75 ... align1``
kernel at about 1/8 of the speed of the aligned GEMMs around it on an H200, and resnet50's first
convolution (3 fp32 input channels, 12 bytes) an ``implicit_gemm_indexed_wo_smem`` fallback
(/work/shared/h200/README.md and its traces). Padding the dimension (gpt2's vocabulary to 50304,
as nanoGPT does) restores the fast kernels; ``graphperf whatif MODEL --pad`` projects it.

The rule, per node (`misaligned_dims`; shapes as the IR states them, row-major, since graphperf
tracks no strides):

- ``matmul`` (a, b, [bias]): a [.., M, K] -> K (M when trans_a); b [.., K, N] -> N (K when trans_b,
  the [N, K] weight of a linear); out [.., M, N] -> N. A 1-D operand or bias has no rows.
- ``conv`` (x, w, [bias]): the channels, contiguous in the channels-last layout that tensor-core
  convolutions run in (NCHW tensors are converted first): x -> Cin per group, w -> Cin per group
  (Cout per group when transposed: w [Cin, Cout/groups, ..]), out -> Cout per group. A group of one
  channel (depthwise) is not a channel GEMM and is not checked.
- ``attention`` (q, k, v): q, k -> the head dim E; v, out -> Ev (3-D [B, L, heads*E] layouts: the
  per-head size). The mask is not checked.
- ``fused`` with one of these among its members (`graphperf.ops.GEMM_OPS`): a flash-attention group
  (rule ``attention``) -> q's E and out's Ev; a group led by its matmul or conv (epilogue) -> that
  op's rule on the group's first two inputs and its last output; any other group -> the last
  dimension of every floating-point input and every output of rank >= 2 (role ``last``).

A stride exists only between rows: an operand with one row (batch-1 decode activations) or with
rows of one element (a vector) has none to align and is never misaligned. An aligned dimension is
one whose size times the element's bits is a multiple of 128: 8 elements for 16-bit dtypes, 4 for
fp32, 16 for int8 and fp8, 32 for 4-bit dtypes.

Everything here is pure and reads only the node's own operand types: `misaligned_dims` is called
once per matrix node by the projection. `misaligned_findings(graph)` turns it into the analyze
report's findings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .dtypes import is_float, itemsize_bits
from .ir import Graph, Node, TensorType
from .ops import GEMM_OPS

__all__ = ["ALIGN_BYTES", "MisalignedDim", "aligned_multiple", "aligned_size", "is_gemm_node", "misaligned_dims",
           "misaligned_findings", "suggested_multiple"]

ALIGN_BYTES = 16
_ALIGN_BITS = 8 * ALIGN_BYTES
_GEMM = frozenset(GEMM_OPS)
_PAD_MULTIPLE = 64  # nanoGPT's vocabulary padding: 16-byte rows in every dtype down to 2 bits


def aligned_multiple(dtype: str) -> int:
    """Elements per 16-byte step of `dtype`: 8 for bf16, 4 for fp32, 16 for fp8/int8, 32 for 4-bit."""
    return _ALIGN_BITS // math.gcd(_ALIGN_BITS, itemsize_bits(dtype))


def aligned_size(size: int, dtype: str) -> int:
    """The smallest size >= `size` whose rows of `dtype` are a multiple of 16 bytes."""
    m = aligned_multiple(dtype)
    return -(-size // m) * m


@dataclass(frozen=True, slots=True)
class MisalignedDim:
    """One operand dimension whose row stride is not a multiple of 16 bytes."""

    operand: str  # "a", "b", "out", "x", "w", "q", "k", "v"; "in0".. / "out0".. for generic fused groups
    role: str  # the dimension's name in the op: "K", "N", "M", "Cin", "Cout", "E", "Ev"; "last" (generic)
    size: int  # elements
    dtype: str  # the operand's dtype
    stride_bytes: float  # size * element size: the byte stride between rows (x.5 for 4-bit dtypes)
    padded_size: int  # the smallest aligned size >= size (`aligned_size`)

    def describe(self) -> str:
        """`out N=50257: bfloat16 rows 100514 B apart, not a multiple of 16 B (aligned: 50264)`."""
        return (f"{self.operand} {self.role}={self.size}: {self.dtype} rows {self.stride_bytes:g} B apart, not a "
                f"multiple of {ALIGN_BYTES} B (aligned: {self.padded_size})")


def _check(out: list, operand: str, role: str, t: Optional[TensorType], size: Optional[int] = None) -> None:
    """Append a MisalignedDim when `t`'s dimension `size` (default: its last) sets a misaligned row stride."""
    if t is None or t.rank == 0:
        return
    if size is None:
        size = t.shape[-1]
    if size <= 1 or t.numel // size <= 1:
        return  # rows of one element, or a single row: no stride between rows
    bits = size * itemsize_bits(t.dtype)
    if bits % _ALIGN_BITS:
        out.append(MisalignedDim(operand, role, size, t.dtype, bits / 8, aligned_size(size, t.dtype)))


def _matmul(out: list, a, b, o, trans_a: bool, trans_b: Optional[bool]) -> None:
    if a is not None and a.rank >= 2:
        _check(out, "a", "M" if trans_a else "K", a)
    if b is not None and b.rank >= 2:
        if trans_b is None:  # unknown (a fused member): [K, N] when its last dim is the output's
            trans_b = o is None or o.rank == 0 or b.shape[-1] != o.shape[-1]
        _check(out, "b", "K" if trans_b else "N", b)
    if o is not None and o.rank >= 2:
        _check(out, "out", "N", o)


def _conv(out: list, x, w, o, transposed: bool) -> None:
    if x is None or w is None or o is None or x.rank < 3 or w.rank != x.rank or o.rank != x.rank or not w.shape[1]:
        return
    if transposed:  # w [Cin, Cout/groups, *k]
        groups, rem = divmod(o.shape[1], w.shape[1])
        cin_g = x.shape[1] // groups if groups and not x.shape[1] % groups else 0
        cout_g = w.shape[1]
    else:  # w [Cout, Cin/groups, *k]
        groups, rem = divmod(x.shape[1], w.shape[1])
        cin_g = w.shape[1]
        cout_g = o.shape[1] // groups if groups and not o.shape[1] % groups else 0
    if rem or not groups:
        return  # shapes the conv rule refuses
    if cin_g > 1:
        _check(out, "x", "Cin", x, cin_g)
        if not transposed:
            _check(out, "w", "Cin", w, cin_g)
    if cout_g > 1:
        if transposed:
            _check(out, "w", "Cout", w, cout_g)
        _check(out, "out", "Cout", o, cout_g)


def _head_dim(t: TensorType, heads) -> int:
    if t.rank == 3 and isinstance(heads, int) and heads > 0 and t.shape[-1] % heads == 0:
        return t.shape[-1] // heads
    return t.shape[-1]


def _attention(out: list, q, k, v, o, attrs) -> None:
    hq, hkv = attrs.get("q_num_heads"), attrs.get("kv_num_heads")
    for name, role, t, heads in (("q", "E", q, hq), ("k", "E", k, hkv), ("v", "Ev", v, hkv), ("out", "Ev", o, hq)):
        if t is not None and t.rank >= 2:
            _check(out, name, role, t, _head_dim(t, heads))


def _fused(out: list, node: Node, ins: list, outs: list) -> None:
    ops = tuple(node.attrs.get("member_ops", ()))
    if not _GEMM.intersection(ops):
        return
    last = outs[-1] if outs else None
    if node.attrs.get("rule") == "attention":  # flash kernel: q [.., L, E] in, out [.., L, Ev] written
        q = ins[0] if ins else None
        _attention(out, q, None, None, outs[0] if outs else None, {})
    elif ops[0] == "matmul" and len(ins) >= 2:
        _matmul(out, ins[0], ins[1], last, False, None)
    elif ops[0] == "conv" and len(ins) >= 2:
        _conv(out, ins[0], ins[1], last, False)
    else:
        for i, t in enumerate(ins):
            if t is not None and t.rank >= 2 and is_float(t.dtype):
                _check(out, f"in{i}", "last", t)
        for i, t in enumerate(outs):
            if t is not None and t.rank >= 2:
                _check(out, f"out{i}", "last", t)


def is_gemm_node(node: Node) -> bool:
    """A canonical matmul, conv or attention node, or a fused group with one among its members."""
    if node.op.domain != "graphperf":
        return False
    name = node.op.name
    return name in _GEMM or (name == "fused" and not _GEMM.isdisjoint(node.attrs.get("member_ops", ())))


def misaligned_dims(graph: Graph, node: Node) -> tuple[MisalignedDim, ...]:
    """The dimensions of `node`'s operands and output whose row stride is not a multiple of 16 bytes.

    Empty for an aligned node and for any node that is not a GEMM (`is_gemm_node`). Reads only the
    types of the node's own inputs and outputs in `graph.values`; never changes anything.

    >>> from graphperf.ir import Graph, Node, TensorType, Value
    >>> from graphperf.ops import canonical
    >>> vals = {"x": Value("x", TensorType((16, 768), "bfloat16"), "input"),
    ...         "w": Value("w", TensorType((50257, 768), "bfloat16"), "weight"),
    ...         "y": Value("y", TensorType((16, 50257), "bfloat16"), producer="lm_head")}
    >>> node = Node("lm_head", canonical("matmul"), "linear", ("x", "w"), ("y",), {"trans_b": True})
    >>> [d.describe() for d in misaligned_dims(Graph("g", [node], vals, ("y",)), node)]
    ['out N=50257: bfloat16 rows 100514 B apart, not a multiple of 16 B (aligned: 50264)']
    """
    if node.op.domain != "graphperf":
        return ()
    op = node.op.name
    if op not in _GEMM and op != "fused":
        return ()
    values = graph.values
    ins = [None if n is None else values[n].type for n in node.inputs]
    outs = [values[n].type for n in node.outputs]
    first = ins + [None] * 3
    o = outs[0] if outs else None
    found: list[MisalignedDim] = []
    if op == "matmul":
        _matmul(found, first[0], first[1], o, bool(node.attrs.get("trans_a")), bool(node.attrs.get("trans_b")))
    elif op == "conv":
        _conv(found, first[0], first[1], o, bool(node.attrs.get("transposed")))
    elif op == "attention":
        _attention(found, first[0], first[1], first[2], o, node.attrs)
    else:
        _fused(found, node, ins, outs)
    return tuple(found)


def suggested_multiple(dim: MisalignedDim) -> int:
    """The multiple a finding suggests padding `dim` to: 64 (nanoGPT's vocabulary padding, aligned in every
    dtype) when that adds at most 1/16 to the dimension, else the dtype's 16-byte multiple."""
    if (-(-dim.size // _PAD_MULTIPLE) * _PAD_MULTIPLE - dim.size) * 16 <= dim.size:
        return _PAD_MULTIPLE
    return aligned_multiple(dim.dtype)


def misaligned_findings(graph: Graph) -> list[dict]:
    """One ``misaligned_gemm`` finding per GEMM node with a misaligned dimension, in graph order.

    Each: ``{"kind", "node", "op", "module", "dims": [MisalignedDim.describe()...], "summary",
    "pad": [{"size", "multiple", "padded_size"}], "message", "fix"}``. The time padding would gain is
    what ``graphperf whatif MODEL --pad`` projects; no estimate is made here.
    """
    found = []
    for node in graph.nodes:
        if not is_gemm_node(node):
            continue
        dims = misaligned_dims(graph, node)
        if not dims:
            continue
        pads: dict[int, int] = {}
        for d in dims:
            pads[d.size] = max(pads.get(d.size, 1), suggested_multiple(d))
        spec = ",".join(f"{s}={m}" for s, m in pads.items())
        roles = " ".join(dict.fromkeys(f"{d.role}={d.size}" for d in dims))
        found.append({
            "kind": "misaligned_gemm", "node": node.name, "op": str(node.op), "module": node.module,
            "dims": [d.describe() for d in dims],
            "summary": f"{node.name} {roles}",
            "pad": [{"size": s, "multiple": m, "padded_size": -(-s // m) * m} for s, m in pads.items()],
            "message": (f"{node.name} ({node.op}): {'; '.join(d.describe() for d in dims)}. GPU matrix kernels "
                        f"need {ALIGN_BYTES}-byte rows for vectorized loads and fall back to element-wise loads "
                        "(align1) otherwise: gpt2's LM head ran at ~1/8 of aligned speed on an H200"),
            "fix": f"graphperf whatif MODEL --pad {spec}",
        })
    return found
