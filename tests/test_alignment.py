"""graphperf/alignment.py: which GEMM dimensions set a row stride that is not a multiple of 16 bytes.

Hand-derived cases: a dimension is misaligned when size * element bytes % 16 != 0, on the innermost
dimension of each operand as it lies in memory (the channels for convolutions, the head dims for
attention), and only where there is more than one row. No torch needed.
"""

from __future__ import annotations

import copy

import pytest

from graphperf.alignment import (MisalignedDim, aligned_multiple, aligned_size, is_gemm_node, misaligned_dims,
                                 misaligned_findings, suggested_multiple)
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import GEMM_OPS, canonical


def T(*shape: int, dtype: str = "bfloat16") -> TensorType:
    return TensorType(tuple(shape), dtype)


def one(op: str, ins: list, outs: list, attrs=None, **extra) -> tuple[Graph, Node]:
    """A graph holding one `op` node reading `ins` (TensorType or None) and writing `outs`."""
    values = {}
    names = []
    for i, t in enumerate(ins):
        if t is None:
            names.append(None)
            continue
        values[f"in{i}"] = Value(f"in{i}", t, "weight" if i == 1 else "input")
        names.append(f"in{i}")
    out_names = tuple(f"out{i}" for i in range(len(outs)))
    for name, t in zip(out_names, outs):
        values[name] = Value(name, t, producer="n")
    node = Node("n", canonical(op), op, tuple(names), out_names, dict(attrs or {}), **extra)
    return Graph("g", [node], values, out_names), node


def dims(op, ins, outs, attrs=None) -> list[tuple[str, str, int, float, int]]:
    g, node = one(op, ins, outs, attrs)
    return [(d.operand, d.role, d.size, d.stride_bytes, d.padded_size) for d in misaligned_dims(g, node)]


LINEAR = {"trans_b": True}

# (id, op, ins, outs, attrs, expected [(operand, role, size, stride_bytes, padded_size)])
CASES = [
    ("bf16-lm-head-N-only", "matmul", [T(16, 768), T(50257, 768)], [T(16, 50257)], LINEAR,
     [("out", "N", 50257, 50257 * 2, 50264)]),
    ("bf16-K768-aligned", "matmul", [T(16, 768), T(3072, 768)], [T(16, 3072)], LINEAR, []),
    ("fp32-N50257", "matmul", [T(16, 768, dtype="float32"), T(50257, 768, dtype="float32")],
     [T(16, 50257, dtype="float32")], LINEAR, [("out", "N", 50257, 50257 * 4, 50260)]),
    ("fp32-N50260-aligned", "matmul", [T(16, 768, dtype="float32"), T(50260, 768, dtype="float32")],
     [T(16, 50260, dtype="float32")], LINEAR, []),
    ("bf16-N50260", "matmul", [T(16, 768), T(50260, 768)], [T(16, 50260)], LINEAR,
     [("out", "N", 50260, 50260 * 2, 50264)]),
    ("b-KxN-innermost-N", "matmul", [T(4, 16, 768), T(768, 50257)], [T(4, 16, 50257)], {},
     [("b", "N", 50257, 50257 * 2, 50264), ("out", "N", 50257, 50257 * 2, 50264)]),
    ("odd-K-in-a-and-trans-b", "matmul", [T(16, 100), T(64, 100)], [T(16, 64)], LINEAR,
     [("a", "K", 100, 100 * 2, 104), ("b", "K", 100, 100 * 2, 104)]),
    ("trans-a-innermost-M", "matmul", [T(768, 17), T(768, 64)], [T(17, 64)], {"trans_a": True},
     [("a", "M", 17, 17 * 2, 24)]),
    ("int8-needs-16", "matmul", [T(16, 768, dtype="int8"), T(768, 50264, dtype="int8")],
     [T(16, 50264, dtype="int32")], {}, [("b", "N", 50264, 50264 * 1, 50272)]),
    ("int8-16-aligned", "matmul", [T(16, 768, dtype="int8"), T(768, 50272, dtype="int8")],
     [T(16, 50272, dtype="int32")], {}, []),
    ("fp8-needs-16", "matmul", [T(16, 768, dtype="float8_e4m3fn"), T(50264, 768, dtype="float8_e4m3fn")],
     [T(16, 50264)], LINEAR, []),  # fp8 inputs aligned on K=768; the bf16 output's N: 50264 * 2 % 16 == 0
    ("fp8-K-misaligned", "matmul", [T(16, 776, dtype="float8_e4m3fn"), T(64, 776, dtype="float8_e4m3fn")],
     [T(16, 64)], LINEAR, [("a", "K", 776, 776 * 1, 784), ("b", "K", 776, 776 * 1, 784)]),
    ("single-row-has-no-stride", "matmul", [T(1, 1, 768), T(50257, 768)], [T(1, 1, 50257)], LINEAR, []),
    ("vector-times-matrix", "matmul", [T(768), T(768, 50257)], [T(50257)], {},
     [("b", "N", 50257, 50257 * 2, 50264)]),
    ("attention-E64-aligned", "attention", [T(1, 12, 128, 64)] * 3, [T(1, 12, 128, 64)], {"is_causal": True}, []),
    ("attention-E100", "attention", [T(1, 12, 128, 100)] * 3, [T(1, 12, 128, 100)], {},
     [("q", "E", 100, 200, 104), ("k", "E", 100, 200, 104), ("v", "Ev", 100, 200, 104),
      ("out", "Ev", 100, 200, 104)]),
    ("attention-3d-per-head", "attention", [T(1, 128, 12 * 100)] * 3, [T(1, 128, 12 * 100)],
     {"q_num_heads": 12, "kv_num_heads": 12},  # 1200 * 2 B is aligned, each head's 100 * 2 B is not
     [("q", "E", 100, 200, 104), ("k", "E", 100, 200, 104), ("v", "Ev", 100, 200, 104),
      ("out", "Ev", 100, 200, 104)]),
    ("conv-fp32-rgb", "conv", [T(8, 3, 32, 32, dtype="float32"), T(64, 3, 3, 3, dtype="float32")],
     [T(8, 64, 30, 30, dtype="float32")], {}, [("x", "Cin", 3, 12, 4), ("w", "Cin", 3, 12, 4)]),
    ("conv-bf16-64-aligned", "conv", [T(8, 64, 7, 7), T(128, 64, 3, 3)], [T(8, 128, 5, 5)], {}, []),
    ("conv-spatial-ignored", "conv", [T(8, 64, 7, 7), T(128, 64, 7, 7)], [T(8, 128, 1, 1)], {}, []),
    ("conv-depthwise-not-a-gemm", "conv", [T(8, 32, 16, 16), T(32, 1, 3, 3)], [T(8, 32, 14, 14)], {}, []),
    ("conv-grouped-per-group", "conv", [T(8, 12, 16, 16), T(24, 4, 3, 3)], [T(8, 24, 14, 14)], {},
     [("x", "Cin", 4, 8, 8), ("w", "Cin", 4, 8, 8)]),  # 3 groups: 4 input channels (8 B), 8 output (16 B)
    ("conv-transposed", "conv", [T(8, 16, 7, 7), T(16, 12, 2, 2)], [T(8, 12, 14, 14)], {"transposed": True},
     [("w", "Cout", 12, 24, 16), ("out", "Cout", 12, 24, 16)]),
]


@pytest.mark.parametrize("op,ins,outs,attrs,expected", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_misaligned_dims(op, ins, outs, attrs, expected):
    assert dims(op, ins, outs, attrs) == expected


def test_every_gemm_op_has_a_case():
    assert {c[1] for c in CASES} == set(GEMM_OPS)


def test_stride_rule_is_size_times_element_bytes_mod_16():
    for dtype, nbytes in (("bfloat16", 2), ("float32", 4), ("int8", 1), ("float8_e4m3fn", 1), ("float64", 8)):
        for n in (50257, 50260, 50264, 50272, 768, 100, 3):
            got = dims("matmul", [T(16, 768, dtype=dtype), T(n, 768, dtype=dtype)], [T(16, n, dtype=dtype)], LINEAR)
            assert bool(got) == ((n * nbytes) % 16 != 0), (dtype, n)
            if got:
                assert got[0][3] == n * nbytes and got[0][4] % (16 // nbytes) == 0 and n < got[0][4] < n + 16


def test_aligned_multiple_and_size():
    assert [aligned_multiple(d) for d in ("bfloat16", "float16", "float32", "int8", "float8_e4m3fn", "float4_e2m1",
                                          "float64", "complex128")] == [8, 8, 4, 16, 16, 32, 2, 1]
    assert aligned_size(50257, "bfloat16") == 50264 and aligned_size(50257, "float32") == 50260
    assert aligned_size(50264, "bfloat16") == 50264 and aligned_size(3, "float32") == 4
    assert aligned_size(50257, "float4_e2m1") == 50272  # 4-bit rows: 32 elements per 16 bytes


def test_four_bit_stride_is_fractional_bytes():
    (d,) = misaligned_dims(*one("matmul", [T(16, 64, dtype="float4_e2m1"), T(64, 33, dtype="float4_e2m1")],
                                [T(16, 33)], {}))[:1]
    assert d.operand == "b" and d.stride_bytes == 33 * 4 / 8 and d.padded_size == 64


def test_describe_and_frozen():
    (d,) = misaligned_dims(*one("matmul", [T(16, 768), T(50257, 768)], [T(16, 50257)], LINEAR))
    assert d == MisalignedDim("out", "N", 50257, "bfloat16", 100514.0, 50264)
    assert d.describe() == "out N=50257: bfloat16 rows 100514 B apart, not a multiple of 16 B (aligned: 50264)"
    with pytest.raises(AttributeError):
        d.size = 1


def test_non_gemm_nodes_and_pure():
    g, node = one("add", [T(16, 50257), T(16, 50257)], [T(16, 50257)])
    assert misaligned_dims(g, node) == () and not is_gemm_node(node)
    g, node = one("matmul", [T(16, 768), T(50257, 768)], [T(16, 50257)], LINEAR)
    before = copy.deepcopy((g.nodes, g.values))
    misaligned_dims(g, node)
    misaligned_findings(g)
    assert (g.nodes, g.values) == before


def _fused(ins: list, outs: list, member_ops: tuple, rule: str) -> tuple[Graph, Node]:
    cost = {"flops": 0, "matrix_flops": 0, "transcendentals": 0}
    return one("fused", ins, outs, {"members": tuple(f"m{i}" for i in range(len(member_ops))),
                                    "member_ops": member_ops, "rule": rule, "cost": cost})


def test_fused_groups():
    # epilogue led by the LM head matmul: its a, w, then the bias; the last output is the matmul's space
    g, node = _fused([T(16, 768), T(50257, 768), T(50257)], [T(16, 50257)], ("matmul", "add"), "epilogue")
    assert is_gemm_node(node)
    assert [(d.operand, d.role, d.size) for d in misaligned_dims(g, node)] == [("out", "N", 50257)]
    # a flash-attention group: q's E and the output's Ev (k arrives transposed through a view: not read as stored)
    g, node = _fused([T(1, 12, 128, 100), T(1, 12, 100, 128), T(1, 12, 128, 100)], [T(1, 12, 128, 100)],
                     ("matmul", "mul", "softmax", "matmul"), "attention")
    assert [(d.operand, d.role, d.size) for d in misaligned_dims(g, node)] == [("q", "E", 100), ("out", "Ev", 100)]
    # an epilogue led by a conv: the channel rule
    g, node = _fused([T(8, 3, 32, 32, dtype="float32"), T(64, 3, 3, 3, dtype="float32")],
                     [T(8, 64, 30, 30, dtype="float32")], ("conv", "relu"), "epilogue")
    assert [(d.operand, d.role, d.size) for d in misaligned_dims(g, node)] == [("x", "Cin", 3), ("w", "Cin", 3)]
    # any other group with a GEMM member: the last dim of float inputs and of outputs (int ids skipped)
    g, node = _fused([T(16, 100), T(16, 7, dtype="int64"), T(64, 100)], [T(16, 64), T(16, 100)],
                     ("layer_norm", "matmul"), "named")
    assert [(d.operand, d.role, d.size) for d in misaligned_dims(g, node)] == [("in0", "last", 100),
                                                                               ("in2", "last", 100),
                                                                               ("out1", "last", 100)]
    g, node = _fused([T(16, 100)], [T(16, 100)], ("add", "mul"), "elementwise")
    assert misaligned_dims(g, node) == () and not is_gemm_node(node)


def _lm_graph(vocab: int = 50257) -> Graph:
    values = {
        "x": Value("x", T(16, 768), "input"),
        "w_fc": Value("w_fc", T(3072, 768), "weight"),
        "h": Value("h", T(16, 3072), producer="fc"),
        "w_proj": Value("w_proj", T(768, 3072), "weight"),
        "y": Value("y", T(16, 768), producer="proj"),
        "wte": Value("wte", T(vocab, 768), "weight"),
        "logits": Value("logits", T(16, vocab), producer="lm_head"),
    }
    nodes = [Node("fc", canonical("matmul"), "linear", ("x", "w_fc"), ("h",), LINEAR, "mlp.fc"),
             Node("proj", canonical("matmul"), "linear", ("h", "w_proj"), ("y",), LINEAR, "mlp.proj"),
             Node("lm_head", canonical("matmul"), "linear", ("y", "wte"), ("logits",), LINEAR, "lm_head")]
    return Graph("lm", nodes, values, ("logits",))


def test_findings_name_the_misaligned_node_and_the_fix():
    (f,) = misaligned_findings(_lm_graph())
    assert f["kind"] == "misaligned_gemm" and f["node"] == "lm_head" and f["op"] == "matmul"
    assert f["module"] == "lm_head" and f["summary"] == "lm_head N=50257"
    assert f["dims"] == ["out N=50257: bfloat16 rows 100514 B apart, not a multiple of 16 B (aligned: 50264)"]
    assert f["pad"] == [{"size": 50257, "multiple": 64, "padded_size": 50304}]
    assert f["fix"] == "graphperf whatif MODEL --pad 50257=64"
    assert "lm_head" in f["message"] and "16" in f["message"]
    assert misaligned_findings(_lm_graph(50304)) == []


def test_suggested_multiple():
    big = MisalignedDim("out", "N", 50257, "bfloat16", 100514.0, 50264)
    small = MisalignedDim("x", "Cin", 3, "float32", 12.0, 4)
    odd = MisalignedDim("a", "K", 100, "bfloat16", 200.0, 104)
    assert [suggested_multiple(d) for d in (big, small, odd)] == [64, 4, 8]  # 64 only when it adds <= 1/16
