"""The one pass contract (passes/result.py): every rewrite pass returns a `PassResult` whose refusals are typed
`Refusal`s with a `RefusalKind`, declares `requires`/`ensures`, and says whether it changed the graph.

Each pass runs twice on small hand-built graphs: once where it has work to do (``modified``) and once where it
has none. A meta-test checks that every pass carrying a contract in passes/ has its two cases here.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from functools import partial

import pytest

import graphperf.passes as passes_pkg
from graphperf.errors import AnalysisError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical
from graphperf.passes.canonicalize import canonicalize
from graphperf.passes.data_parallel import data_parallel
from graphperf.passes.expert_parallel import shard_expert_parallel
from graphperf.passes.fuse_attention import fuse_attention
from graphperf.passes.fuse_chains import fuse_elementwise, fuse_epilogue, fuse_norm
from graphperf.passes.fuse_named import fuse_named
from graphperf.passes.fully_shard import fully_shard
from graphperf.passes.fusion import Grouper
from graphperf.passes.pad import pad_dims
from graphperf.passes.precision import rewrite_precision
from graphperf.passes.result import PassResult, Refusal, RefusalKind, contract_of
from graphperf.passes.rewrite import rewrite, run_passes
from graphperf.passes.sequence_parallel import shard_sequence_parallel
from graphperf.passes.shard import shard_tensor_parallel
from graphperf.passes.tiling import apply_tiling
from graphperf.target import load_target

# -- small graphs ------------------------------------------------------------------------------------


def t(*shape: int, dtype: str = "float32") -> TensorType:
    return TensorType(shape, dtype)


def act(name: str, ty: TensorType, producer: str) -> Value:
    return Value(name, ty, "activation", producer)


def epilogue() -> Graph:
    """y = gelu(x @ w + b) + r: a bias to fold, an epilogue and an elementwise chain to fuse."""
    m, k, n = 64, 32, 48
    v = {"x": Value("x", t(m, k), "input"), "w": Value("w", t(k, n), "weight"), "b": Value("b", t(n), "weight"),
         "r": Value("r", t(m, n), "input"), "mm": act("mm", t(m, n), "matmul"), "ab": act("ab", t(m, n), "bias"),
         "ge": act("ge", t(m, n), "gelu"), "y": act("y", t(m, n), "resid")}
    nodes = [Node("matmul", canonical("matmul"), "mm", ("x", "w"), ("mm",)),
             Node("bias", canonical("add"), "add", ("mm", "b"), ("ab",)),
             Node("gelu", canonical("gelu"), "gelu", ("ab",), ("ge",)),
             Node("resid", canonical("add"), "add", ("ge", "r"), ("y",))]
    return Graph("epilogue", nodes, v, ("y",))


def lone_matmul(n: int = 50257) -> Graph:
    """One [16, 768] @ [768, n] matmul: nothing to fold or fuse; n = gpt2's vocabulary pads to 50304."""
    v = {"x": Value("x", t(16, 768), "input"), "w": Value("w", t(768, n), "weight"), "y": act("y", t(16, n), "mm")}
    return Graph("mm", [Node("mm", canonical("matmul"), "mm", ("x", "w"), ("y",))], v, ("y",))


def cycle() -> Graph:
    """relu -> mm -> add(relu, mm): fusing add into relu's chain would need mm before and after it."""
    ty = t(4, 4)
    v = {"x": Value("x", ty, "input"), "w": Value("w", ty, "weight"), "r": act("r", ty, "relu"),
         "m": act("m", ty, "mm"), "o": act("o", ty, "add")}
    nodes = [Node("relu", canonical("relu"), "relu", ("x",), ("r",)),
             Node("mm", canonical("matmul"), "mm", ("r", "w"), ("m",)),
             Node("add", canonical("add"), "add", ("r", "m"), ("o",))]
    return Graph("cycle", nodes, v, ("o",))


def rmsnorm(width: int = 64) -> Graph:
    v = {"x": Value("x", t(8, width), "input"), "w": Value("w", t(width), "weight"), "eps": Value("eps", t(), "weight"),
         "sq": act("sq", t(8, width), "pow"), "ms": act("ms", t(8, 1), "mean"), "ae": act("ae", t(8, 1), "add"),
         "rs": act("rs", t(8, 1), "rsqrt"), "xn": act("xn", t(8, width), "mul1"), "y": act("y", t(8, width), "mul2")}
    nodes = [Node("pow", canonical("pow"), "pow", ("x",), ("sq",), {"exponent": 2}),
             Node("mean", canonical("reduce_mean"), "mean", ("sq",), ("ms",), {"axes": (-1,), "keepdims": True}),
             Node("add", canonical("add"), "add", ("ms", "eps"), ("ae",)),
             Node("rsqrt", canonical("rsqrt"), "rsqrt", ("ae",), ("rs",)),
             Node("mul1", canonical("mul"), "mul", ("x", "rs"), ("xn",)),
             Node("mul2", canonical("mul"), "mul", ("xn", "w"), ("y",))]
    return Graph("rmsnorm", nodes, v, ("y",))


def attention() -> Graph:
    """softmax(q @ kt) @ v over [1, 2, 8, 16]."""
    v = {"q": Value("q", t(1, 2, 8, 16), "input"), "kt": Value("kt", t(1, 2, 16, 8), "input"),
         "v": Value("v", t(1, 2, 8, 16), "input"), "s": act("s", t(1, 2, 8, 8), "qk"),
         "p": act("p", t(1, 2, 8, 8), "softmax"), "o": act("o", t(1, 2, 8, 16), "pv")}
    nodes = [Node("qk", canonical("matmul"), "matmul", ("q", "kt"), ("s",)),
             Node("softmax", canonical("softmax"), "softmax", ("s",), ("p",), {"axis": -1}),
             Node("pv", canonical("matmul"), "matmul", ("p", "v"), ("o",))]
    return Graph("attention", nodes, v, ("o",))


def mlp() -> Graph:
    """A column-parallel up_proj, relu, a row-parallel down_proj, and a row sum over up_proj's split features."""
    v = {"x": Value("x", t(2, 16), "input"), "wu": Value("wu", t(16, 32), "weight"),
         "wd": Value("wd", t(32, 16), "weight"), "u": act("u", t(2, 32), "up"), "r": act("r", t(2, 32), "relu"),
         "y": act("y", t(2, 16), "down"), "s": act("s", t(2, 1), "sum")}
    nodes = [Node("up", canonical("matmul"), "mm", ("x", "wu"), ("u",), {}, "layers.0.mlp.up_proj"),
             Node("relu", canonical("relu"), "relu", ("u",), ("r",), {}, "layers.0.mlp"),
             Node("down", canonical("matmul"), "mm", ("r", "wd"), ("y",), {}, "layers.0.mlp.down_proj"),
             Node("sum", canonical("reduce_sum"), "sum", ("u",), ("s",), {"axes": (-1,), "keepdims": True},
                  "layers.0.mlp")]
    return Graph("mlp", nodes, v, ("y", "s"))


def moe() -> Graph:
    """Two MoE blocks of 4 experts, 2 slots each: layers.0's chain is followed; layers.1's w_gate output is also a
    graph output, so its experts stay on every device."""
    v = {"x": Value("x", t(4, 16), "input"), "idx": Value("idx", t(4, 2, dtype="int64"), "input")}
    nodes = []
    for i in (0, 1):
        m = f"layers.{i}.mlp"
        v |= {f"p_{i}_w_gate": Value(f"p_{i}_w_gate", t(4, 16, 8), "weight"),
              f"p_{i}_w_down": Value(f"p_{i}_w_down", t(4, 8, 16), "weight"),
              f"xe{i}": act(f"xe{i}", t(4, 2, 16), f"pack{i}"), f"h{i}": act(f"h{i}", t(4, 2, 8), f"gate{i}"),
              f"r{i}": act(f"r{i}", t(4, 2, 8), f"relu{i}"), f"y{i}": act(f"y{i}", t(4, 2, 16), f"down{i}")}
        nodes += [Node(f"pack{i}", canonical("gather"), "index", ("x", "idx"), (f"xe{i}",), {}, m),
                  Node(f"gate{i}", canonical("matmul"), "bmm", (f"xe{i}", f"p_{i}_w_gate"), (f"h{i}",), {}, m),
                  Node(f"relu{i}", canonical("relu"), "relu", (f"h{i}",), (f"r{i}",), {}, m),
                  Node(f"down{i}", canonical("matmul"), "bmm", (f"r{i}", f"p_{i}_w_down"), (f"y{i}",), {}, m)]
    return Graph("moe", nodes, v, ("y0", "y1", "h1"))


def gradients() -> Graph:
    """A backward of two parameter gradients, produced in reverse order (w1's first)."""
    v = {"x": Value("x", t(64, 32), "input"), "g1": act("g1", t(64, 32), "grad1"), "g0": act("g0", t(64, 32), "grad0")}
    nodes = [Node("grad1", canonical("relu"), "relu", ("x",), ("g1",)),
             Node("grad0", canonical("relu"), "relu", ("g1",), ("g0",))]
    return Graph("backward", nodes, v, ("g0", "g1"), {"gradients": [{"parameter": "w0", "value": "g0"},
                                                                    {"parameter": "w1", "value": "g1"}]})


def layered() -> Graph:
    """mlp() as two FSDP units: its weights named as parameters of layers.0 and layers.1."""
    g = mlp()
    return Graph("layered", g.nodes, g.values, g.outputs, {"parameters": {"layers.0.up_proj.weight": ["wu"],
                                                                          "layers.1.down_proj.weight": ["wd"]}})


H100 = load_target("h100")
TINY_SRAM = H100.with_overrides(onchip_sram_per_unit_kb=1)

# pass -> [(label, graph, run, modified)]: a case with work to do and one without (most with refusals)
CASES = {
    canonicalize: [("bias", epilogue, canonicalize, True),
                   ("nothing", cycle, partial(canonicalize, layout_as_views=False), False)],
    rewrite_precision: [("bf16", lone_matmul, partial(rewrite_precision, spec={"weights": "bfloat16"}), True),
                        ("same dtype", lone_matmul, partial(rewrite_precision, spec={"weights": "float32"}), False)],
    pad_dims: [("vocab", lone_matmul, partial(pad_dims, spec="50257=64"), True),
               ("absent size", lone_matmul, partial(pad_dims, spec="7=8"), False)],
    fuse_elementwise: [("chain", epilogue, fuse_elementwise, True), ("cycle", cycle, fuse_elementwise, False)],
    fuse_epilogue: [("epilogue", epilogue, fuse_epilogue, True), ("lone", lone_matmul, fuse_epilogue, False)],
    fuse_norm: [("rmsnorm", rmsnorm, partial(fuse_norm, target=H100), True),
                ("row too big", partial(rmsnorm, 4096), partial(fuse_norm, target=TINY_SRAM), False)],
    fuse_attention: [("flash", attention, partial(fuse_attention, target=H100), True),
                     ("no target", attention, fuse_attention, False)],
    fuse_named: [("group", epilogue, partial(fuse_named, specs=[["bias", "gelu"]]), True),
                 ("too small", epilogue, partial(fuse_named, specs=[["resid"], ["matmul", "resid"]]), False)],
    apply_tiling: [("auto", partial(lone_matmul, 256), partial(apply_tiling, target=H100, spec="auto"), True),
                   ("tiny on-chip", partial(lone_matmul, 256), partial(apply_tiling, target=TINY_SRAM, spec="auto"),
                    False)],
    shard_tensor_parallel: [("tp2", mlp, partial(shard_tensor_parallel, tp=2), True),
                            ("tp1", mlp, partial(shard_tensor_parallel, tp=1), False)],
    shard_expert_parallel: [("ep2", moe, partial(shard_expert_parallel, ep=2), True),
                            ("ep1", moe, partial(shard_expert_parallel, ep=1), False)],
    fully_shard: [("dp2", layered, partial(fully_shard, dp=2), True),
                  ("dp1", layered, partial(fully_shard, dp=1), False)],
    data_parallel: [("dp2", gradients, partial(data_parallel, dp=2), True),
                    ("dp1", gradients, partial(data_parallel, dp=1), False)],
    # tp 2 splits mlp's 2 rows (tokens); at tp 4 they do not divide: the TP graph comes back unchanged
    shard_sequence_parallel: [("tp2", lambda: shard_tensor_parallel(mlp(), 2).graph, shard_sequence_parallel, True),
                              ("tp4", lambda: shard_tensor_parallel(mlp(), 4).graph, shard_sequence_parallel, False)],
}
PARAMS = [pytest.param(build, run, modified, id=f"{contract_of(fn).name}-{label}")
          for fn, cases in CASES.items() for label, build, run, modified in cases]


def test_every_pass_with_a_contract_has_a_case():
    declared = set()
    for info in pkgutil.iter_modules(passes_pkg.__path__):
        module = importlib.import_module(f"graphperf.passes.{info.name}")
        declared |= {fn for fn in vars(module).values() if callable(fn) and hasattr(fn, "contract")}
    assert declared == set(CASES)


@pytest.mark.parametrize("build,run,modified", PARAMS)
def test_a_pass_returns_a_pass_result_with_typed_refusals(build, run, modified):
    g = build()
    res = run(g)
    assert isinstance(res, PassResult) and isinstance(res.graph, Graph)
    assert res.modified is modified
    assert res.rewrites and all(isinstance(r, dict) and r["rewrite"] for r in res.rewrites)
    names = {n.name for n in g.nodes}
    for r in res.refused:
        assert isinstance(r, Refusal) and isinstance(r.kind, RefusalKind) and r.reason
        assert set(r.nodes) <= names
        literal = {"rule": r.rule, "kind": r.kind.value, **r.where, "reason": r.reason}
        assert r.to_dict() == literal and list(r.to_dict()) == list(literal)  # today's keys, in today's order
        assert dict(r) == literal and r == literal and r["kind"] == r.kind  # read as the dict it replaces
        assert json.dumps(r.to_dict()) == json.dumps(literal)


def test_the_cases_refuse_with_the_kinds_each_pass_documents():
    kinds = {contract_of(fn).name: {r.kind for _, build, run, _ in cases for r in run(build()).refused}
             for fn, cases in CASES.items()}
    assert kinds["fuse_elementwise"] == {RefusalKind.CYCLE}
    assert kinds["fuse_norm"] == {RefusalKind.CAPACITY}
    assert kinds["fuse_attention"] == {RefusalKind.CAPACITY_UNKNOWN}
    assert kinds["fuse_named"] == {RefusalKind.TOO_SMALL, RefusalKind.CYCLE}
    assert kinds["pad_dims"] == {RefusalKind.NOT_FOUND}
    assert kinds["apply_tiling"] == {RefusalKind.NO_FIT}
    assert kinds["shard_tensor_parallel"] == {RefusalKind.REPLICATED}
    assert kinds["shard_expert_parallel"] == {RefusalKind.REPLICATED}
    assert kinds["shard_sequence_parallel"] == {RefusalKind.INDIVISIBLE}


def test_a_refusal_keeps_the_key_order_of_the_dict_it_replaces():
    r = Refusal("elementwise", "cycle", "would create a cycle through mm", {"producer": "relu", "consumer": "add"})
    assert list(r) == ["rule", "kind", "producer", "consumer", "reason"] and len(r) == 5
    assert r.nodes == ("relu", "add") and "producer" in r and r.get("node") is None
    assert Refusal("pad", RefusalKind.ALIGNED, "x", {"size": 64}).nodes == ()


def test_an_unknown_refusal_kind_is_a_bug():
    with pytest.raises(ValueError, match="'no_such_kind' .* not a RefusalKind"):
        Grouper(cycle(), "elementwise").refuse("no_such_kind", "a reason", producer="relu", consumer="add")


# -- contracts -------------------------------------------------------------------------------------------


def test_contracts_declare_what_fusion_needs_and_canonicalize_ensures():
    assert contract_of(canonicalize).ensures == {"canonical"} and not contract_of(canonicalize).requires
    for fn in (fuse_elementwise, fuse_epilogue, fuse_norm, fuse_attention, fuse_named, pad_dims, apply_tiling,
               shard_tensor_parallel, shard_expert_parallel, shard_sequence_parallel):
        assert "canonical" in contract_of(fn).requires
    assert contract_of(partial(fuse_norm, target=H100)) == contract_of(fuse_norm)


def test_the_chain_refuses_a_pass_whose_requires_are_unmet():
    g = epilogue()
    with pytest.raises(AnalysisError, match="pass fuse_epilogue requires a canonical graph.*ran before it: "
                                            "rewrite_precision"):
        run_passes(g, [partial(rewrite_precision, spec={"weights": "bfloat16"}), fuse_epilogue])
    res = run_passes(g, [canonicalize, fuse_epilogue])
    assert res.modified and [r.get("rewrite") for r in res.rewrites] == ["canonicalize", "fuse"]
    assert run_passes(canonicalize(g).graph, [fuse_epilogue], ensured={"canonical"}).modified


def test_the_chain_is_modified_only_when_a_pass_modified_the_graph():
    g = canonicalize(cycle()).graph
    res = run_passes(g, [fuse_elementwise, partial(fuse_norm, target=H100)], ensured={"canonical"})
    assert not res.modified and [r.kind for r in res.refused] == [RefusalKind.CYCLE]


def test_rewrite_returns_the_chain_records_and_typed_refusals():
    g = cycle()
    new, rewrites, refused = rewrite(g, ["elementwise"], target=H100)
    direct = fuse_elementwise(canonicalize(g).graph)
    assert rewrites == direct.rewrites == [direct.to_dict()]
    assert refused == direct.refused and all(isinstance(r, Refusal) for r in refused)


def test_a_pipeline_canonicalizes_a_graph_once():
    """The canonical graph carries its mark through the passes that require it: canonicalizing it again is a no-op
    that reports the counts of the run that made it, and the what-if's reports keep those counts."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    import graphperf
    from graphperf.passes import canonicalize
    from graphperf.passes.whatif import whatif

    weights = [numpy_helper.from_array(np.ones((8, 16), np.float32), "w"),
               numpy_helper.from_array(np.ones(16, np.float32), "b")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"]),
             helper.make_node("Relu", ["y"], ["z"])]
    model = helper.make_model(helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                             [4, 8])],
                                                [helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 16])],
                                                initializer=weights), opset_imports=[helper.make_opsetid("", 17)])
    graph = graphperf.capture(model)
    info = {"name": "mlp"}
    first = canonicalize(graph)
    again = canonicalize(first.graph)
    assert first.modified and not again.modified and again.graph is first.graph
    assert again.summary() == first.summary() and first.summary()["bias_adds_folded"] == 1
    assert "canonical" not in graph.meta  # the input graph is untouched
    assert canonicalize(first.graph, layout_as_views=False).graph is not first.graph  # other options: a new run
    result = whatif(graph, graphperf.load_target("h100"), info, fuse=["elementwise"])
    assert result.before.model["canonicalized"] == result.after.model["canonicalized"] == first.summary()
    assert result.before.totals == graphperf.analyze_graph(graph, graphperf.load_target("h100"), info).totals
