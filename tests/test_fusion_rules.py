"""Epilogue, norm, attention and user-named fusion: bytes from the kernels' external I/O, refusals with reasons.

Expected bytes are derived from the tensors each fused kernel must read and write; the attention
acceptance case derives the score traffic removed from the shapes of Llama-3-8B (32 layers, 32 query
heads, bfloat16) at sequence 8192.
"""

from __future__ import annotations

import copy

import pytest
import torch

from graphperf import models
from graphperf.capture.torch_export import capture_module
from graphperf.count import count
from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical
from graphperf.passes.canonicalize import canonicalize
from graphperf.passes.fuse_attention import fuse_attention
from graphperf.passes.fuse_chains import fuse_epilogue, fuse_norm
from graphperf.passes.fuse_named import fuse_named
from graphperf.passes.tile_model import estimate
from graphperf.passes.tiling import candidates, flash_problem, machine_for
from graphperf.target import load_target

F32 = 4


def graph(nodes, values, outputs) -> Graph:
    return Graph("g", nodes, values, tuple(outputs))


def act(name, shape, producer, dtype="float32"):
    return Value(name, TensorType(shape, dtype), "activation", producer)


def bytes_of(g: Graph) -> int:
    return sum(nc.cost.bytes for nc in count(g))


def flops_of(g: Graph) -> int:
    return sum(nc.cost.flops for nc in count(g))


# -- epilogue --------------------------------------------------------------------------------------

def epilogue_graph():
    """y = gelu(x @ w + b) + r over [M, N]."""
    m, k, n = 64, 32, 48
    v = {"x": Value("x", TensorType((m, k), "float32"), "input"),
         "w": Value("w", TensorType((k, n), "float32"), "weight"),
         "b": Value("b", TensorType((n,), "float32"), "weight"),
         "r": Value("r", TensorType((m, n), "float32"), "input"),
         "mm": act("mm", (m, n), "matmul"), "ab": act("ab", (m, n), "bias"),
         "ge": act("ge", (m, n), "gelu"), "y": act("y", (m, n), "resid")}
    nodes = [Node("matmul", canonical("matmul"), "mm", ("x", "w"), ("mm",)),
             Node("bias", canonical("add"), "add", ("mm", "b"), ("ab",)),
             Node("gelu", canonical("gelu"), "gelu", ("ab",), ("ge",)),
             Node("resid", canonical("add"), "add", ("ge", "r"), ("y",))]
    return graph(nodes, v, ["y"]), (m, k, n)


def test_epilogue_kernel_reads_operands_bias_residual_once_and_writes_the_result():
    g, (m, k, n) = epilogue_graph()
    res = fuse_epilogue(g)
    (node,) = res.graph.nodes
    assert node.attrs["member_ops"] == ("matmul", "add", "gelu", "add") and node.attrs["rule"] == "epilogue"
    assert bytes_of(res.graph) == (m * k + k * n + n + m * n + m * n) * F32
    assert flops_of(res.graph) == flops_of(g)


def test_epilogue_keeps_an_intermediate_read_outside_materialised():
    g, (m, k, n) = epilogue_graph()
    extra = Node("peek", canonical("reduce_sum"), "sum", ("ab",), ("pk",))  # not pointwise: stays outside
    g = graph([*g.nodes, extra], {**g.values, "pk": act("pk", (1,), "peek")}, ["y", "pk"])
    res = fuse_epilogue(g)
    fused = next(nd for nd in res.graph.nodes if nd.op.name == "fused")
    assert set(fused.outputs) == {"ab", "y"}


def test_epilogue_takes_one_matrix_node_per_group():
    g, (m, k, n) = epilogue_graph()
    # a second matmul whose output is added to the first's: the add joins one group only
    v = dict(g.values)
    v |= {"w2": Value("w2", TensorType((k, n), "float32"), "weight"), "mm2": act("mm2", (m, n), "matmul2"),
          "s": act("s", (m, n), "sum")}
    nodes = [g.nodes[0], Node("matmul2", canonical("matmul"), "mm", ("x", "w2"), ("mm2",)),
             Node("sum", canonical("add"), "add", ("mm", "mm2"), ("s",))]
    res = fuse_epilogue(graph(nodes, v, ["s"]))
    assert [grp["member_ops"] for grp in res.groups] == [["matmul", "add"]]
    assert [r["kind"] for r in res.refused] == ["joined_another_group"]


# -- norm ------------------------------------------------------------------------------------------

def rmsnorm_graph(rows=8, width=64, dtype="float32"):
    """RMSNorm as the models write it: x * rsqrt(mean(x^2) + eps) * w."""
    t = lambda shape: TensorType(shape, dtype)  # noqa: E731
    v = {"x": Value("x", t((rows, width)), "input"), "w": Value("w", t((width,)), "weight"),
         "eps": Value("eps", t(()), "weight"),
         "sq": Value("sq", t((rows, width)), "activation", "pow"),
         "ms": Value("ms", t((rows, 1)), "activation", "mean"),
         "ae": Value("ae", t((rows, 1)), "activation", "add"),
         "rs": Value("rs", t((rows, 1)), "activation", "rsqrt"),
         "xn": Value("xn", t((rows, width)), "activation", "mul1"),
         "y": Value("y", t((rows, width)), "activation", "mul2")}
    nodes = [Node("pow", canonical("pow"), "pow", ("x",), ("sq",), {"exponent": 2}),
             Node("mean", canonical("reduce_mean"), "mean", ("sq",), ("ms",), {"axes": (-1,), "keepdims": True}),
             Node("add", canonical("add"), "add", ("ms", "eps"), ("ae",)),
             Node("rsqrt", canonical("rsqrt"), "rsqrt", ("ae",), ("rs",)),
             Node("mul1", canonical("mul"), "mul", ("x", "rs"), ("xn",)),
             Node("mul2", canonical("mul"), "mul", ("xn", "w"), ("y",))]
    return graph(nodes, v, ["y"])


def test_norm_fuses_a_decomposed_rmsnorm_into_one_row_kernel():
    rows, width = 8, 64
    g = rmsnorm_graph(rows, width)
    res = fuse_norm(g, load_target("h100"))
    (node,) = res.graph.nodes
    assert node.attrs["member_ops"] == ("pow", "reduce_mean", "add", "rsqrt", "mul", "mul")
    # x, w and eps read once, y written once
    assert bytes_of(res.graph) == (rows * width + width + 1 + rows * width) * F32
    assert flops_of(res.graph) == flops_of(g)
    assert res.groups[0]["row_bytes"] == width * F32


def test_norm_refuses_a_row_that_does_not_fit_on_chip():
    g = rmsnorm_graph(8, 4096)  # a 16 KiB row
    small = load_target("h100").with_overrides(onchip_sram_per_unit_kb=8)
    res = fuse_norm(g, small)
    assert res.groups == [] and [r["kind"] for r in res.refused] == ["capacity"]
    assert "16384 B does not fit in 8 KiB" in res.refused[0]["reason"]


def test_norm_does_not_form_pointwise_only_groups():
    g, _ = epilogue_graph()
    assert fuse_norm(g).groups == []


# -- attention ---------------------------------------------------------------------------------------

def eager_graph(name, phase, **shape):
    wl = models.build(name, config="tiny", phase=phase, attention="eager", **shape)
    return canonicalize(capture_module(wl.module, wl.args, name=name)).graph, wl


def score_traffic_removed(g: Graph, group: dict) -> int:
    """Bytes of every tensor produced inside the group and read inside it: written once, read by each
    reader (each member reads an input value once)."""
    members = set(group["members"])
    total = 0
    for nd in g.nodes:
        if nd.name in members:
            for v in (v for v in nd.outputs if v not in group["outputs"]):
                readers = [u for u in g.nodes if v in u.inputs]
                assert all(u.name in members for u in readers)
                total += g.values[v].type.nbytes * (1 + len(readers))
    return total


@pytest.mark.parametrize("name,phase", [("llama3-8b", "prefill"), ("llama3-8b", "decode"), ("gpt2", "prefill"),
                                        ("bert-base", "forward")])
def test_attention_fusion_removes_exactly_the_score_traffic(name, phase):
    g, wl = eager_graph(name, phase)
    before = copy.deepcopy(g.nodes)
    res = fuse_attention(g, load_target("h100"))
    assert g.nodes == before
    layers = wl.module.cfg.num_layers if hasattr(wl.module, "cfg") else None
    assert res.refused == [] and len(res.groups) == (layers or len(res.groups)) > 0
    for grp in res.groups:
        assert grp["member_ops"][0] == "matmul" and grp["member_ops"][-1] == "matmul"
        assert "softmax" in grp["member_ops"]
    removed = sum(score_traffic_removed(g, grp) for grp in res.groups)
    assert bytes_of(g) - bytes_of(res.graph) == removed
    assert flops_of(res.graph) == flops_of(g)


@pytest.mark.slow
def test_attention_fusion_on_llama3_8b_prefill_8192_removes_the_score_matrix_traffic():
    # Per layer, the eager chain writes the bf16 scores S = B*H*L*L*2 bytes (QK^T), reads and writes them
    # for the scale, again for the additive causal mask, again for softmax, and PV reads them: 8 S.
    layers, heads, seq, bf16 = 32, 32, 8192, 2
    wl = models.build("llama3-8b", phase="prefill", seq=seq, attention="eager")
    g = canonicalize(capture_module(wl.module, wl.args, name="llama3-8b")).graph
    res = fuse_attention(g, load_target("h100"))
    assert len(res.groups) == layers
    scores = 1 * heads * seq * seq * bf16
    assert bytes_of(g) - bytes_of(res.graph) == layers * 8 * scores  # 1.1 TB
    tile = res.groups[0]["flash_tile"]
    assert tile["onchip_bytes"] <= tile["onchip_capacity_bytes"] == 256 * 1024


def test_attention_tile_is_the_fastest_that_fits_and_none_fitting_is_refused():
    g, _ = eager_graph("llama3-8b", "prefill")
    h100 = load_target("h100")
    group = fuse_attention(g, h100).groups[0]
    qk, pv = (next(nd for nd in g.nodes if nd.name == group["members"][i]) for i in (0, -1))
    q, kt, v, out = (g.values[x].type for x in (qk.inputs[0], qk.inputs[1], pv.inputs[1], pv.outputs[0]))
    external = set(group["inputs"]) - {qk.inputs[0], qk.inputs[1], pv.inputs[1]}
    problem = flash_problem(q, kt, v, out, sum(g.values[x].type.nbytes for x in external))
    # an independent pass over the candidates with the tile model, at a capacity that rules out half
    needs = sorted({estimate(problem, t, machine_for(h100, q.dtype)).onchip_bytes for t in candidates()})
    cap = needs[len(needs) // 2]
    small = h100.with_overrides(onchip_sram_per_unit_kb=cap / 1024)
    mach = machine_for(small, q.dtype)
    fitting = [estimate(problem, t, mach) for t in candidates()]
    best = min((e for e in fitting if e.onchip_bytes <= cap), key=lambda e: e.latency_s)
    res = fuse_attention(g, small)
    assert {tuple(grp["flash_tile"]["tile"]) for grp in res.groups} == {best.tile}
    res = fuse_attention(g, h100.with_overrides(onchip_sram_per_unit_kb=(needs[0] - 1) / 1024))
    assert res.groups == [] and {r["kind"] for r in res.refused} == {"capacity"}


def test_attention_needs_an_onchip_figure():
    g, _ = eager_graph("gpt2", "prefill")
    res = fuse_attention(g, load_target("gaudi2"))
    assert res.groups == [] and {r["kind"] for r in res.refused} == {"capacity_unknown"}


def test_attention_refuses_when_the_probabilities_are_read_outside():
    g, _ = eager_graph("gpt2", "prefill")
    sm = next(nd for nd in g.nodes if nd.op.name == "softmax")
    g = Graph(g.name, g.nodes, g.values, (*g.outputs, sm.outputs[0]), g.meta)
    res = fuse_attention(g, load_target("h100"))
    assert "scores_escape" in {r["kind"] for r in res.refused}
    assert len(res.groups) == sum(1 for nd in g.nodes if nd.op.name == "softmax") - 1


@pytest.mark.parametrize("name,phase", [("llama3-8b", "prefill"), ("llama3-8b", "decode"), ("gpt2", "prefill"),
                                        ("bert-base", "forward"), ("vit-b16", "forward")])
def test_eager_attention_computes_what_sdpa_computes(name, phase):
    outs = []
    for attention in ("sdpa", "eager"):
        wl = models.build(name, config="tiny", phase=phase, dtype="float32", device="cpu", attention=attention)
        with torch.no_grad():
            out = wl.module(*wl.args)
        outs.append(out[0] if isinstance(out, tuple) else out)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)


# -- named groups --------------------------------------------------------------------------------------

def test_named_group_fuses_the_matching_nodes_and_refuses_bad_specs():
    g, (m, k, n) = epilogue_graph()
    res = fuse_named(g, [["bias", "gelu"], ["resid"], ["matmul", "resid"]])
    assert [grp["members"] for grp in res.groups] == [["bias", "gelu"]]
    kinds = [r["kind"] for r in res.refused]
    assert kinds == ["too_small", "cycle"]
    assert bytes_of(res.graph) == bytes_of(g) - 2 * m * n * F32  # `ab` no longer written and read
    with pytest.raises(UsageError, match=r"--group 'nothing\*' matches no node .* node names \(e\.g\. '"):
        fuse_named(g, [["nothing*"]])  # a spec matching nothing is a typo, not a refused candidate
