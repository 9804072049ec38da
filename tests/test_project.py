"""Projection: the roofline-with-efficiency formula, dtype routing to matrix/vector peaks, bounds.

The formula is what a target without the size-aware kernel model gets (no kernel_floor_us); the bundled h100
has that model (tests/test_kernel_time.py), so these tests take h100 with it switched off."""

from __future__ import annotations

import pytest

from graphperf.count import count
from graphperf.ir import Graph, Node, OpId, TensorType, Value
from graphperf.ops import canonical
from graphperf.project import project
from graphperf.target import load_target

ROOFLINE = {"kernel_floor_us": "none"}  # the plain roofline: no size-aware kernel model


def _graph(op: str, ins: list[TensorType], outs: list[TensorType], attrs=None) -> Graph:
    values = {f"i{k}": Value(f"i{k}", t, "input") for k, t in enumerate(ins)}
    values.update({f"o{k}": Value(f"o{k}", t, producer="n") for k, t in enumerate(outs)})
    opid = canonical(op) if op in ("matmul", "relu", "view", "exp") else OpId("acme", op)
    node = Node("n", opid, op, tuple(values)[: len(ins)], tuple(f"o{k}" for k in range(len(outs))), attrs or {})
    return Graph("g", [node], values)


def _time(graph, target):
    return project(graph, count(graph), target)[0]


def _mm(m, k, n, dtype):
    return _graph("matmul", [TensorType((m, k), dtype), TensorType((k, n), dtype)], [TensorType((m, n), dtype)])


def test_bf16_matmul_runs_on_the_matrix_unit_at_its_peak():
    h100 = load_target("h100", ROOFLINE)
    m = k = n = 8192
    t = _time(_mm(m, k, n, "bfloat16"), h100)
    compute_s = 2 * m * k * n / (h100.matrix_bf16_tflops * 1e12 * h100.matrix_efficiency)
    memory_s = 2 * (m * k + k * n + m * n) / (h100.hbm_gbps * 1e9 * h100.memory_efficiency)
    assert t.compute_s == pytest.approx(compute_s)
    assert t.memory_s == pytest.approx(memory_s)
    assert t.latency_s == pytest.approx(max(compute_s, memory_s) + h100.launch_overhead_us * 1e-6)
    assert t.bound == "compute"


def test_fp32_matmul_uses_vector_peak_unless_tf32_allowed():
    h100 = load_target("h100", ROOFLINE)
    m = k = n = 4096
    flops = 2 * m * k * n
    plain = _time(_mm(m, k, n, "float32"), h100)
    assert plain.compute_s == pytest.approx(flops / (h100.vector_fp32_tflops * 1e12 * h100.matrix_efficiency))
    tf32 = _time(_mm(m, k, n, "float32"), load_target("h100", {**ROOFLINE, "allow_tf32": "true"}))
    assert tf32.compute_s == pytest.approx(flops / (h100.matrix_tf32_tflops * 1e12 * h100.matrix_efficiency))


def test_elementwise_is_memory_bound_and_small_ops_are_overhead_bound():
    h100 = load_target("h100", ROOFLINE)
    big = TensorType((64 * 1024 * 1024,), "bfloat16")
    t = _time(_graph("relu", [big], [big]), h100)
    assert t.bound == "memory"
    assert t.memory_s == pytest.approx(2 * big.nbytes / (h100.hbm_gbps * 1e9 * h100.memory_efficiency))
    small = TensorType((16,), "bfloat16")
    assert _time(_graph("relu", [small], [small]), h100).bound == "overhead"


def test_transcendentals_cost_one_vector_op_each():
    h100 = load_target("h100", {**ROOFLINE, "hbm_gbps": "1e9"})  # make memory negligible
    x = TensorType((1 << 20,), "float32")
    t = _time(_graph("exp", [x], [x]), h100)
    assert t.compute_s == pytest.approx(x.numel / (h100.vector_fp32_tflops * 1e12 * h100.vector_efficiency))


def test_views_are_free_and_unknown_ops_have_no_latency():
    h100 = load_target("h100", ROOFLINE)
    x = TensorType((8, 8), "float32")
    free = _time(_graph("view", [x], [TensorType((64,), "float32")]), h100)
    assert free.bound == "free" and free.latency_s == 0.0
    unknown = _time(_graph("frobnicate", [x], [x]), h100)
    assert unknown.bound == "unknown" and unknown.latency_s is None


def test_hbm_override_scales_memory_time():
    x = TensorType((1 << 24,), "bfloat16")
    base = _time(_graph("relu", [x], [x]), load_target("h100", ROOFLINE))
    faster = _time(_graph("relu", [x], [x]), load_target("h100", {**ROOFLINE, "hbm_gbps": str(2 * 3350)}))
    assert faster.memory_s == pytest.approx(base.memory_s / 2)


def _conv_relu(bf="bfloat16"):
    n, c, hw, k, r = 8, 64, 56, 128, 3  # 3x3 conv, stride 1, padding 1: output [8, 128, 56, 56]
    attrs = {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "group": 1}
    out = TensorType((n, k, hw, hw), bf)
    return Graph("g", [Node("n", canonical("conv"), "conv", ("x", "w"), ("o",), attrs),
                       Node("r", canonical("relu"), "relu", ("o",), ("y",))],
                 {"x": Value("x", TensorType((n, c, hw, hw), bf), "input"),
                  "w": Value("w", TensorType((k, c, r, r), bf), "weight"),
                  "o": Value("o", out, producer="n"), "y": Value("y", out, producer="r")}, ("y",))


def test_conv_and_attention_use_their_own_matrix_efficiency_when_the_target_gives_one():
    from graphperf.ops import matrix_family

    h100 = load_target("h100", ROOFLINE).with_overrides(matrix_efficiency_conv=0.5, matrix_efficiency_attention=0.4)
    conv = _conv_relu()
    nc = count(conv)[0]
    t = project(conv, [nc], h100)[0]
    n, c, hw, k, r = 8, 64, 56, 128, 3
    assert nc.cost.matrix_flops == 2 * n * k * hw * hw * c * r * r
    assert t.compute_s == pytest.approx(nc.cost.matrix_flops / (h100.matrix_bf16_tflops * 1e12 * 0.5))
    mm = _mm(4096, 4096, 4096, "bfloat16")
    assert _time(mm, h100).compute_s == pytest.approx(2 * 4096 ** 3 / (h100.matrix_bf16_tflops * 1e12
                                                                         * h100.matrix_efficiency))
    assert (matrix_family("attention"), h100.matrix_efficiency_for("attention")) == ("attention", 0.4)
    assert matrix_family("fused", {"kernel": "flash_attention", "member_ops": ("matmul",)}) == "attention"


def test_a_fused_conv_epilogue_keeps_the_conv_efficiency():
    from graphperf.passes.fuse_chains import fuse_epilogue

    h100 = load_target("h100", ROOFLINE).with_overrides(matrix_efficiency_conv=0.3)
    g = _conv_relu()
    conv, relu = project(g, count(g), h100)
    fused = fuse_epilogue(g).graph
    (t,) = project(fused, count(fused), h100)
    assert fused.nodes[0].attrs["member_ops"] == ("conv", "relu")
    assert t.compute_s == pytest.approx(conv.compute_s + relu.compute_s)  # conv at 0.3, relu on the vector unit
