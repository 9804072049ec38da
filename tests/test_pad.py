"""passes/pad.py: padding GEMM dimensions (the vocabulary-padding what-if), its record, the CLI and the finding.

Padding adds work and the pass counts it: the padded LM head does 2 * M * K * N_padded FLOPs. Until a
target charges misaligned dimensions (graphperf/alignment.py), padding projects slightly slower, so no
test here asserts a speedup.
"""

from __future__ import annotations

import copy
import json

import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

import graphperf
from graphperf.alignment import misaligned_findings
from graphperf.cli import main
from graphperf.count import count
from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical
from graphperf.passes.pad import PadSpec, pad_dims, parse_pad
from graphperf.passes.whatif import whatif
from graphperf.target import load_target

V, VP, K, M = 50257, 50304, 768, 16  # gpt2's vocabulary, padded to a multiple of 64
LINEAR = {"trans_b": True}


def T(*shape: int, dtype: str = "bfloat16") -> TensorType:
    return TensorType(tuple(shape), dtype)


def snapshot(g: Graph):
    return copy.deepcopy((g.name, g.nodes, g.values, g.outputs, g.meta))


def lm_graph(bias: bool = False) -> Graph:
    """ids -> tied embedding -> linear -> LM head on the embedding table (gpt2's shape, one layer)."""
    values = {
        "ids": Value("ids", T(1, M, dtype="int64"), "input"),
        "wte": Value("wte", T(V, K), "weight"),
        "emb": Value("emb", T(1, M, K), producer="embedding"),
        "w": Value("w", T(K, K), "weight"),
        "h": Value("h", T(1, M, K), producer="proj"),
        "logits": Value("logits", T(1, M, V), producer="lm_head"),
    }
    head_in = ("h", "wte")
    if bias:
        values["b"] = Value("b", T(V), "weight")
        head_in = ("h", "wte", "b")
    nodes = [Node("embedding", canonical("gather"), "embedding", ("wte", "ids"), ("emb",)),
             Node("proj", canonical("matmul"), "linear", ("emb", "w"), ("h",), LINEAR),
             Node("lm_head", canonical("matmul"), "linear", head_in, ("logits",), LINEAR)]
    return Graph("lm", nodes, values, ("logits",))


def node_cost(g: Graph, name: str):
    return next(nc.cost for nc in count(g) if nc.node.name == name)


# -- the pass on hand-built graphs ------------------------------------------------------------------


def test_pad_vocab_pads_the_head_its_logits_and_the_tied_embedding():
    g = lm_graph()
    before = snapshot(g)
    res = pad_dims(g, parse_pad(f"{V}=64"))
    assert snapshot(g) == before  # the input graph is unchanged
    new = res.graph
    assert new.values["wte"].type.shape == (VP, K) and new.values["logits"].type.shape == (1, M, VP)
    assert new.values["h"].type.shape == (1, M, K) and new.values["emb"].type.shape == (1, M, K)
    head = node_cost(new, "lm_head")
    assert head.matrix_flops == head.flops == 2 * M * K * VP  # padded FLOPs counted, exactly
    assert node_cost(new, "embedding") == node_cost(g, "embedding")  # a gather reads only the gathered rows
    rec = res.rewrite
    assert rec["rewrite"] == "pad" and rec["mode"] == "explicit" and res.refused == []
    (size,) = rec["sizes"]
    assert (size["size"], size["multiple"], size["padded_size"]) == (V, 64, VP)
    assert size["values"] == [
        {"name": "logits", "kind": "activation", "before": f"bfloat16[1,{M},{V}]", "after": f"bfloat16[1,{M},{VP}]"},
        {"name": "wte", "kind": "weight", "before": f"bfloat16[{V},{K}]", "after": f"bfloat16[{VP},{K}]"}]
    assert size["nodes"] == ["embedding", "lm_head"] and size["boundaries"] == []
    assert rec["values_padded"] == 2
    assert rec["extra_flops"] == rec["extra_matrix_flops"] == 2 * M * K * (VP - V)
    assert rec["extra_weight_bytes"] == (VP - V) * K * 2
    assert rec["extra_bytes"] == (VP - V) * K * 2 + M * (VP - V) * 2  # the head reads the table, writes logits
    assert [n["node"] for n in rec["nodes"]] == ["lm_head"]
    assert [f["node"] for f in misaligned_findings(g)] == ["lm_head"] and misaligned_findings(new) == []


def test_pad_auto_takes_the_smallest_aligned_size():
    res = pad_dims(lm_graph(), "auto")
    (size,) = res.rewrite["sizes"]
    assert res.rewrite["mode"] == "auto" and (size["size"], size["multiple"], size["padded_size"]) == (V, 8, 50264)
    assert node_cost(res.graph, "lm_head").matrix_flops == 2 * M * K * 50264
    assert misaligned_findings(res.graph) == []


def test_pad_auto_on_an_aligned_graph_pads_nothing():
    g = lm_graph()
    aligned = pad_dims(g, f"{V}=8").graph
    res = pad_dims(aligned, "auto")
    assert res.rewrite["sizes"] == [] and res.refused == [] and res.rewrite["extra_flops"] == 0


def test_bias_follows_the_padded_dimension():
    res = pad_dims(lm_graph(bias=True), PadSpec(multiples={V: 64}))
    assert res.graph.values["b"].type.shape == (VP,)
    head = node_cost(res.graph, "lm_head")
    assert head.matrix_flops == 2 * M * K * VP and head.flops == 2 * M * K * VP + M * VP  # + one bias add each


@pytest.mark.parametrize("text,kind", [(f"{K}=64", "aligned"), ("7=8", "not_found"), (f"{V}=1", "aligned")])
def test_nothing_to_pad_is_refused_with_a_reason(text, kind):
    g = lm_graph()
    res = pad_dims(g, text)
    assert [r["kind"] for r in res.refused] == [kind]
    assert res.refused[0]["rule"] == "pad" and res.refused[0]["reason"]
    assert res.rewrite["sizes"] == [] and snapshot(res.graph) == snapshot(g)


@pytest.mark.parametrize("text", ["0=64", "x", f"{V}=0", "", "auto,5=8", "5=8,5=16", "-3=8", "5=", "=8", "5=8x"])
def test_malformed_specs_are_usage_errors(text):
    with pytest.raises(UsageError, match="--pad"):
        parse_pad(text)


def test_parse_pad():
    assert parse_pad("auto") == PadSpec(auto=True)
    assert parse_pad(f"{V}=64, 100=8").multiples == {V: 64, 100: 8}


def test_conv_pads_channels_never_kernel_or_spatial_dims():
    values = {"x": Value("x", T(8, 3, 3, 3, dtype="float32"), "input"),  # a 3x3 image with 3 channels
              "w": Value("w", T(64, 3, 3, 3, dtype="float32"), "weight"),
              "y": Value("y", T(8, 64, 1, 1, dtype="float32"), producer="conv")}
    g = Graph("c", [Node("conv", canonical("conv"), "conv2d", ("x", "w"), ("y",))], values, ("y",))
    res = pad_dims(g, "auto")
    assert res.graph.values["x"].type.shape == (8, 4, 3, 3) and res.graph.values["w"].type.shape == (64, 4, 3, 3)
    assert node_cost(res.graph, "conv").matrix_flops == 2 * 8 * 64 * 1 * 4 * 9


def test_a_grouped_conv_is_refused():
    values = {"x": Value("x", T(8, 12, 16, 16), "input"), "w": Value("w", T(24, 4, 3, 3), "weight"),
              "y": Value("y", T(8, 24, 14, 14), producer="conv")}
    g = Graph("c", [Node("conv", canonical("conv"), "conv2d", ("x", "w"), ("y",))], values, ("y",))
    res = pad_dims(g, "4=8")
    assert [(r["kind"], r["node"]) for r in res.refused] == [("grouped_conv", "conv")]
    assert res.graph.values["w"].type.shape == (24, 4, 3, 3)


def _with_consumer(op: str, out: TensorType, name: str = "post") -> Graph:
    g = lm_graph()
    values = dict(g.values)
    values["post"] = Value("post", out, producer=name)
    nodes = [*g.nodes, Node(name, canonical(op), op, ("logits",), ("post",))]
    return Graph("lm", nodes, values, ("post",))


def test_a_flattening_view_is_a_boundary_and_a_permutation_carries_the_dim():
    flat = pad_dims(_with_consumer("view", T(M * V)), f"{V}=64")
    (size,) = flat.rewrite["sizes"]
    assert [b["node"] for b in size["boundaries"]] == ["post"] and flat.graph.values["post"].type.shape == (M * V,)
    perm = pad_dims(_with_consumer("view", T(V, 1, M)), f"{V}=64")
    assert perm.graph.values["post"].type.shape == (VP, 1, M)
    soft = pad_dims(_with_consumer("softmax", T(1, M, V)), f"{V}=64")
    assert soft.graph.values["post"].type.shape == (1, M, VP)
    assert node_cost(soft.graph, "post").flops > node_cost(_with_consumer("softmax", T(1, M, V)), "post").flops


def test_a_norm_over_the_padded_dim_is_renormalised():
    g = _with_consumer("layer_norm", T(1, M, V))
    g.nodes[-1].attrs = {"norm_numel": V}
    res = pad_dims(g, f"{V}=64")
    assert res.graph.nodes[-1].attrs["norm_numel"] == VP and g.nodes[-1].attrs["norm_numel"] == V


def test_a_fused_node_on_the_padded_dim_is_refused():
    g = lm_graph()
    values = dict(g.values)
    values["post"] = Value("post", T(1, M, V), producer="fused_x")
    cost = {"flops": M * V, "matrix_flops": 0, "transcendentals": 0}
    nodes = [*g.nodes, Node("fused_x", canonical("fused"), "add+mul", ("logits",), ("post",),
                            {"members": ("a", "b"), "member_ops": ("add", "mul"), "cost": cost, "rule": "x"})]
    res = pad_dims(Graph("lm", nodes, values, ("post",)), f"{V}=64")
    assert [(r["kind"], r["node"]) for r in res.refused] == [("fixed_cost", "fused_x")]
    assert res.graph.values["wte"].type.shape == (V, K)


# -- captured modules and the what-if ------------------------------------------------------------


class TiedLM(torch.nn.Module):
    """An embedding table shared with the LM head, as gpt2 ties them."""

    def __init__(self, vocab: int, d: int):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, d)
        self.proj = torch.nn.Linear(d, d)

    def forward(self, ids):
        return F.linear(self.proj(self.wte(ids)), self.wte.weight)


@pytest.fixture(scope="module")
def tied_graph() -> Graph:
    model = TiedLM(V, 64).to(torch.bfloat16)
    return graphperf.capture(model, (torch.zeros(2, 8, dtype=torch.long),))


def test_captured_tied_lm_whatif_pad(tied_graph):
    before_graph = snapshot(tied_graph)
    res = whatif(tied_graph, load_target("h100"), {"name": "tied"}, pad=parse_pad(f"{V}=64"))
    assert snapshot(tied_graph) == before_graph
    (rec,) = [r for r in res.rewrites if r["rewrite"] == "pad"]
    (size,) = rec["sizes"]
    padded = {v["name"]: v for v in size["values"]}
    table = next(name for name, v in padded.items() if v["kind"] == "weight")
    assert padded[table]["before"] == f"bfloat16[{V},64]" and padded[table]["after"] == f"bfloat16[{VP},64]"
    assert any(v["after"] == f"bfloat16[2,8,{VP}]" for v in padded.values())  # the logits
    (finding,) = res.before.findings
    head = finding["node"]
    assert finding["kind"] == "misaligned_gemm" and finding["fix"] == f"graphperf whatif MODEL --pad {V}=64"
    assert res.after.findings == []
    after_head = next(r for r in res.after.nodes if r.name == head)
    before_head = next(r for r in res.before.nodes if r.name == head)
    assert before_head.matrix_flops == 2 * 16 * 64 * V and after_head.matrix_flops == 2 * 16 * 64 * VP
    assert res.after.totals["flops"] - res.before.totals["flops"] == rec["extra_flops"] == 2 * 16 * 64 * (VP - V)
    assert res.after.totals["weight_bytes"] - res.before.totals["weight_bytes"] == rec["extra_weight_bytes"]
    assert res.after.model["whatif"] == ["pad"]


def test_gpt2_tiny_vocab_is_aligned():
    graph, info = graphperf.load_graph(graphperf.ModelRequest("gpt2", config="tiny"))
    assert misaligned_findings(graph) == []  # vocab 128, d 64: nothing to pad (the full model's 50257 is not)


# -- the CLI -------------------------------------------------------------------------------------


def _onnx(path, n: int = 33) -> str:
    """x [batch, 64] @ w [64, n] in fp32: n = 33 rows of 132 B are misaligned (pad to 36)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])
    w = helper.make_tensor("w", TensorProto.FLOAT, [64, n], [0.0] * (64 * n))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "mm", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_analyze_json_lists_the_finding(capsys, tmp_path):
    path = _onnx(tmp_path / "mm.onnx")
    code, out, err = run(capsys, "analyze", path, "--dim", "batch=8", "--format", "json")
    assert code == 0, err
    (f,) = json.loads(out)["findings"]
    assert f["node"] == "mm" and f["kind"] == "misaligned_gemm" and f["fix"] == "graphperf whatif MODEL --pad 33=4"
    assert f["dims"][0].startswith("b N=33: float32 rows 132 B apart")
    code, out, _ = run(capsys, "analyze", path, "--dim", "batch=8")
    assert code == 0 and "1 misaligned GEMM" in out and "--pad 33=4" in out
    code, out, _ = run(capsys, "analyze", _onnx(tmp_path / "ok.onnx", 36), "--dim", "batch=8", "--format", "json")
    assert code == 0 and json.loads(out)["findings"] == []


def test_cli_whatif_pad(capsys, tmp_path):
    path = _onnx(tmp_path / "mm.onnx")
    code, out, err = run(capsys, "whatif", path, "--dim", "batch=8", "--pad", "33=4", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    (rec,) = doc["rewrites"]
    assert rec["rewrite"] == "pad" and rec["sizes"][0]["padded_size"] == 36 and doc["refused"] == []
    mm = next(n for n in doc["after"]["nodes"] if n["name"] == "mm")
    assert mm["matrix_flops"] == 2 * 8 * 64 * 36
    assert doc["before"]["findings"] and doc["after"]["findings"] == []
    code, out, _ = run(capsys, "whatif", path, "--dim", "batch=8", "--pad", "auto")
    assert code == 0 and "padding (auto): 33 -> 36" in out
    code, out, _ = run(capsys, "whatif", path, "--dim", "batch=8", "--pad", "33=64", "--format", "html")
    assert code == 0 and "padding (explicit): 33 -&gt; 64" in out
    code, out, _ = run(capsys, "whatif", path, "--dim", "batch=8", "--pad", "7=8", "--format", "json")
    assert code == 0
    (ref,) = json.loads(out)["refused"]
    assert ref["kind"] == "not_found" and "7" in ref["reason"]


@pytest.mark.parametrize("spec", ["0=64", "x", "33=0", "auto,33=4"])
def test_cli_whatif_bad_pad_is_one_line_exit_2(capsys, tmp_path, spec):
    path = _onnx(tmp_path / "mm.onnx")
    code, out, err = run(capsys, "whatif", path, "--dim", "batch=8", "--pad", spec)
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: --pad"), err


def test_padding_the_vocab_removes_the_align1_slowdown_on_h200():
    """On a target with the size-aware kernel model (h200), the misaligned LM head runs at
    misaligned_matrix_factor of the matrix rate; padded to 50304 it runs at the full rate. With 8192 tokens the
    head is compute-bound, and 50257 and 50304 need the same number of 256- and 128-wide tiles, so the head's
    compute time after / before is exactly that factor."""
    from graphperf.passes.whatif import rewrite
    from graphperf.project import project

    h200 = load_target("h200")
    assert h200.misaligned_matrix_factor is not None and h200.misaligned_matrix_factor < 1
    tokens = 8192
    values = {"h": Value("h", T(1, tokens, K), "input"), "wte": Value("wte", T(V, K), "weight"),
              "logits": Value("logits", T(1, tokens, V), producer="lm_head")}
    before = Graph("head", [Node("lm_head", canonical("matmul"), "linear", ("h", "wte"), ("logits",), LINEAR)],
                   values, ("logits",))
    after = rewrite(before, target=h200, pad=parse_pad("50257=64"))[0]
    times = {}
    for label, g in (("before", before), ("after", after)):
        counts = count(g)
        times[label] = next(t for nc, t in zip(counts, project(g, counts, h200)) if nc.node.name == "lm_head")
    assert times["before"].bound == times["after"].bound == "compute"
    assert times["after"].compute_s / times["before"].compute_s == pytest.approx(h200.misaligned_matrix_factor)
