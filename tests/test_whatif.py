"""What-if rewrites: precision, fusion, target knobs and sweeps.

The fusion properties run over random DAGs drawn by hypothesis (tests/random_graphs.py; the profile
in tests/conftest.py makes the draws deterministic: 200 graphs per property, no example database).
"""

from __future__ import annotations

import copy
import json
import re

import networkx as nx
import pytest
from hypothesis import given

from graphperf.cli import main
from graphperf.count import count
from graphperf.dtypes import itemsize_bits
from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical
from graphperf.passes.canonicalize import canonicalize
from graphperf.passes.fuse_chains import fuse_elementwise, fuse_epilogue, fuse_norm
from graphperf.passes.precision import parse_precision, rewrite_precision
from graphperf.passes.whatif import FUSE_RULES, parse_fuse, parse_sweep, rewrite, sweep, whatif
from graphperf.pipeline import ModelRequest, load_graph
from graphperf.target import load_target

from .random_graphs import graphs

# -- helpers ----------------------------------------------------------------------------------------


def snapshot(g: Graph):
    return copy.deepcopy((g.name, g.nodes, g.values, g.outputs, g.meta))


def totals(g: Graph) -> tuple[int, int, int, int]:
    costs = [nc.cost for nc in count(g)]
    assert all(c is not None for c in costs)
    return (sum(c.flops for c in costs), sum(c.matrix_flops for c in costs),
            sum(c.transcendentals for c in costs), sum(c.bytes for c in costs))



# -- fusion ------------------------------------------------------------------------------------------


CHAIN_RULES = {"elementwise": fuse_elementwise, "epilogue": fuse_epilogue, "norm": fuse_norm}


@pytest.mark.parametrize("rule", sorted(CHAIN_RULES))
@given(g=graphs())
def test_fusion_conserves_flops_never_adds_bytes_and_keeps_a_dag(g, rule):
    before = snapshot(g)
    res = CHAIN_RULES[rule](g, load_target("h100"))
    assert snapshot(g) == before  # the input is not mutated
    flops, mflops, trans, moved = totals(g)
    f2, m2, t2, moved2 = totals(res.graph)
    assert (f2, m2, t2) == (flops, mflops, trans)
    assert moved2 <= moved
    assert nx.is_directed_acyclic_graph(res.graph.digraph())
    assert set(res.graph.outputs) == set(g.outputs)
    # bytes removed = exactly the intermediates that stayed on chip (written once, read by each member)
    fused = [n for n in res.graph.nodes if n.op == canonical("fused")]
    assert len(fused) == len(res.groups)
    for n in fused:
        members = set(n.attrs["members"])
        assert len(members) >= 2 and n.attrs["rule"] == rule
        for v in n.outputs:  # materialised outputs are read outside the group or are graph outputs
            readers = {m.name for m in g.nodes if v in m.inputs}
            assert v in g.outputs or readers - members
        ops = n.attrs["member_ops"]
        if rule == "epilogue":
            assert sum(op == "matmul" for op in ops) == 1
        if rule == "norm":
            assert any(op in ("reduce_mean", "reduce_max", "softmax") for op in ops)
    for r in res.refused:
        assert r["reason"] and r["kind"] in ("cycle", "iteration_space", "joined_another_group", "uncounted",
                                             "capacity")


@given(g=graphs())
def test_all_rules_in_sequence_conserve_flops_and_never_add_bytes(g):
    before = snapshot(g)
    new, rewrites, _ = rewrite(g, list(FUSE_RULES), target=load_target("h100"))
    assert snapshot(g) == before
    assert totals(new)[:3] == totals(g)[:3] and totals(new)[3] <= totals(g)[3]
    assert nx.is_directed_acyclic_graph(new.digraph())
    assert [r["rule"] for r in rewrites] == list(FUSE_RULES)


def test_fusion_bytes_are_the_groups_external_io():
    # silu(x) * y -> add(z): x, y, z read once, the result written once; nothing in between
    t = TensorType((4, 8), "float32")
    vals = {n: Value(n, t, "input") for n in ("x", "y", "z")}
    vals |= {n: Value(n, t, "activation", p) for n, p in (("s", "silu"), ("m", "mul"), ("o", "add"))}
    g = Graph("chain", [Node("silu", canonical("silu"), "silu", ("x",), ("s",)),
                        Node("mul", canonical("mul"), "mul", ("s", "y"), ("m",)),
                        Node("add", canonical("add"), "add", ("m", "z"), ("o",))], vals, ("o",))
    res = fuse_elementwise(g)
    (node,) = res.graph.nodes
    cost = count(res.graph)[0].cost
    n, f32 = 4 * 8, itemsize_bits("float32") // 8
    assert node.inputs == ("x", "y", "z") and node.outputs == ("o",)
    assert (cost.flops, cost.transcendentals) == ((3 + 1 + 1) * n, 1 * n)
    assert (cost.bytes_read, cost.bytes_written) == (3 * n * f32, n * f32)


def test_fusion_refuses_a_merge_that_would_create_a_cycle():
    # a -> relu -> (matmul) -> add(relu, mm): fusing add into relu's group would need mm both before
    # and after the fused kernel
    t = TensorType((4, 4), "float32")
    vals = {"x": Value("x", t, "input"), "w": Value("w", t, "weight"),
            "r": Value("r", t, "activation", "relu"), "m": Value("m", t, "activation", "mm"),
            "o": Value("o", t, "activation", "add")}
    g = Graph("cyc", [Node("relu", canonical("relu"), "relu", ("x",), ("r",)),
                      Node("mm", canonical("matmul"), "mm", ("r", "w"), ("m",)),
                      Node("add", canonical("add"), "add", ("r", "m"), ("o",))], vals, ("o",))
    res = fuse_elementwise(g)
    assert res.groups == []
    assert [(r["producer"], r["consumer"], r["kind"]) for r in res.refused] == [("relu", "add", "cycle")]
    assert "mm" in res.refused[0]["reason"]


# -- precision ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_decode():
    graph, info = load_graph(ModelRequest("llama3-8b", config="tiny", phase="decode"))
    return graph, info


@pytest.mark.parametrize("config", ["tiny"])
def test_weights_fp8_cuts_weight_bytes_by_the_dtype_ratio(tiny_decode, config):
    graph, info = tiny_decode
    before = snapshot(graph)
    res = rewrite_precision(graph, parse_precision("weights=fp8"))
    assert snapshot(graph) == before
    float_w = [v for v in graph.weights() if v.type.dtype in ("bfloat16", "float16", "float32")]
    other_w = [v for v in graph.weights() if v not in float_w]
    ratio = itemsize_bits("float8_e4m3fn") / itemsize_bits(float_w[0].type.dtype)
    assert {v.type.dtype for v in float_w} == {float_w[0].type.dtype}
    old = sum(v.type.nbytes for v in float_w)
    new = sum(v.type.nbytes for v in res.graph.weights())
    assert new == old * ratio + sum(v.type.nbytes for v in other_w)
    # activations and the KV cache are untouched
    for name, v in graph.values.items():
        if v.kind != "weight":
            assert res.graph.values[name] == v
    r = whatif(graph, load_target("h100"), info, precision=parse_precision("weights=fp8"))
    assert r.after.totals["weight_bytes"] == r.before.totals["weight_bytes"] - old * (1 - ratio)


def test_kv_precision_rewrites_only_the_kv_cache_inputs(tiny_decode):
    graph, _ = tiny_decode
    res = rewrite_precision(graph, parse_precision("kv=fp8"))
    changed = {n for n, v in graph.values.items() if res.graph.values[n] != v}
    assert changed and all(graph.values[n].kind == "input" and graph.values[n].type.rank == 4 for n in changed)
    assert all(n.startswith("past_key_values") for n in changed)


def test_a_dtype_without_a_matrix_peak_is_flagged(tiny_decode):
    graph, info = tiny_decode
    spec = parse_precision("weights=fp8,activations=fp8")
    a100 = whatif(graph, load_target("a100"), info, precision=spec)  # no fp8 tensor cores
    h100 = whatif(graph, load_target("h100"), info, precision=spec)
    assert a100.flags and all("no float8_e4m3fn matrix peak" in f["reason"] for f in a100.flags)
    assert h100.flags == []
    assert snapshot(graph) == snapshot(load_graph(ModelRequest("llama3-8b", config="tiny", phase="decode"))[0])


# -- hardware knobs and sweeps -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_decode():
    return load_graph(ModelRequest("llama3-8b", phase="decode", batch=1))


def _expected_device_s(graph, counts, target, hbm_gbps):
    """The roofline per kernel, written out: max(compute, memory), in graph order (free nodes launch none)."""
    out = []
    for nc in counts:
        c = nc.cost
        if c.bytes == 0 and c.flops == 0 and c.transcendentals == 0:
            continue
        dtype = graph.values[nc.node.inputs[0]].type.dtype
        peak = target.matrix_peak_flops(dtype)
        compute_s = c.matrix_flops / (peak[0] * target.matrix_efficiency) if c.matrix_flops else 0.0
        compute_s += (c.flops - c.matrix_flops + c.transcendentals) / (
            target.vector_fp32_tflops * 1e12 * target.vector_efficiency)
        memory_s = c.bytes / (hbm_gbps * 1e9 * target.memory_efficiency)
        out.append(max(compute_s, memory_s))
    return out


def _graph_mode_wall_s(device_s, launch_s):
    """The issue queue of graph mode, written out: nothing waits for the host (one CUDA-graph replay); each
    kernel starts launch_s (the device's gap between kernels) after the one before it ends."""
    ended = 0.0
    for d in device_s:
        ended += launch_s + d
    return ended


@pytest.mark.slow
def test_hbm_sweep_on_decode_follows_the_roofline_and_flattens_when_compute_bound(full_decode):
    graph, _ = full_decode
    h100 = load_target("h100", {"kernel_floor_us": "none"})  # the roofline (no size-aware kernel model): its knee
    canon = canonicalize(graph).graph
    key, values = parse_sweep("hbm_gbps=1000:6000:1000")
    rows = sweep(canon, h100, key, values)["rows"]
    lat = [r["latency_s"] for r in rows]
    counts = count(canon)
    for r in rows:
        device = _expected_device_s(canon, counts, h100, r["value"])
        assert r["device_s"] == pytest.approx(sum(device), rel=1e-9)
        assert r["latency_s"] == pytest.approx(_graph_mode_wall_s(device, h100.launch_overhead_us * 1e-6), rel=1e-9)
    assert all(b < a for a, b in zip(lat, lat[1:]))  # decode batch 1 is memory-bound: more bandwidth helps
    # the bandwidth above which each node is compute-bound: bytes / (compute_s * memory_efficiency)
    knees = []
    for nc in counts:
        c = nc.cost
        if c.bytes and (c.flops or c.transcendentals):
            dtype = canon.values[nc.node.inputs[0]].type.dtype
            compute_s = (c.matrix_flops / (h100.matrix_peak_flops(dtype)[0] * h100.matrix_efficiency)
                         + (c.flops - c.matrix_flops + c.transcendentals)
                         / (h100.vector_fp32_tflops * 1e12 * h100.vector_efficiency))
            knees.append(c.bytes / (compute_s * h100.memory_efficiency) / 1e9)
    knee = max(knees)
    flat = sweep(canon, h100, "hbm_gbps", [knee, 2 * knee, 4 * knee])["rows"]
    # above the knee every node that computes is compute-bound and stops changing; only pure data
    # movement (copies, concats: no arithmetic) still follows bandwidth
    moving = sum(nc.cost.bytes for nc in counts if not (nc.cost.flops or nc.cost.transcendentals))
    mem_s = [moving / (bw * 1e9 * h100.memory_efficiency) for bw in (knee, 4 * knee)]
    assert flat[0]["device_s"] - flat[2]["device_s"] == pytest.approx(mem_s[0] - mem_s[1], rel=1e-6)
    assert mem_s[0] - mem_s[1] < 1e-3 * flat[0]["device_s"]  # i.e. flat
    assert flat[0]["device_s"] < rows[-1]["device_s"] and flat[0]["latency_s"] <= lat[-1]
    # the through-line: latency never increases with bandwidth
    more = sweep(canon, h100, "hbm_gbps", [1000 * 2 ** i for i in range(16)])["rows"]
    assert all(b["latency_s"] <= a["latency_s"] and b["device_s"] <= a["device_s"] for a, b in zip(more, more[1:]))


def test_set_changes_the_target_of_the_after_report_only(tiny_decode):
    graph, info = tiny_decode
    r = whatif(graph, load_target("h100"), info, sets={"hbm_gbps": "6700"})
    assert r.before.target.hbm_gbps == 3350 and r.after.target.hbm_gbps == 6700
    assert r.after.totals["memory_s"] == pytest.approx(r.before.totals["memory_s"] * 3350 / 6700)
    assert r.after.totals["bytes"] == r.before.totals["bytes"]


# -- specs and CLI -------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda: parse_precision("weights"), "expected CLASS=DTYPE"),
    (lambda: parse_precision("bias=fp8"), "unknown class 'bias'"),
    (lambda: parse_precision("weights=fp7"), "unknown float dtype 'fp7'"),
    (lambda: parse_sweep("hbm_gbps=1:2"), "expected FIELD=START:STOP:STEP"),
    (lambda: parse_sweep("hbm_gbps=a:2:1"), "must be numbers"),
    (lambda: parse_sweep("hbm_gbps=5:1:1"), "STOP >= START"),
    (lambda: parse_fuse("flash"), "choose none, auto, or a comma-separated list of attention, epilogue"),
    (lambda: parse_fuse(","), "choose none, auto"),
    (lambda: parse_sweep("allow_tf32=0:1:1"), "not a numeric target field"),
])
def test_bad_specs_raise_usage_errors(call, match):
    with pytest.raises(UsageError, match=match):
        call()


def test_parse_sweep_includes_stop():
    assert parse_sweep("hbm_gbps=1000:3000:1000") == ("hbm_gbps", [1000.0, 2000.0, 3000.0])


@pytest.mark.parametrize("argv", [
    ["--precision", "weights=fp7"], ["--fuse", "epilogue,flash"], ["--group", " , "], ["--sweep", "bogus=1:2:1"],
    ["--set", "hbm=1"], ["--sweep", "hbm_gbps=1:2"], ["--target", "nope"],
])
def test_cli_usage_errors_are_one_line_exit_2(capsys, argv):
    code = main(["whatif", "llama3-8b", "--config", "tiny", "--phase", "decode", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_cli_json_has_the_whatif_schema(capsys):
    code = main(["whatif", "llama3-8b", "--config", "tiny", "--phase", "decode", "--fuse", "elementwise",
                 "--precision", "weights=fp8,kv=fp8", "--sweep", "hbm_gbps=1000:3000:1000", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "graphperf.whatif/1"
    assert doc["before"]["schema"] == doc["after"]["schema"] == "graphperf.report/1"
    assert [r["rewrite"] for r in doc["rewrites"]] == ["precision", "fuse"]
    assert all(r["reason"] for r in doc["refused"])
    assert doc["after"]["totals"]["flops"] == doc["before"]["totals"]["flops"]
    assert doc["after"]["totals"]["bytes"] < doc["before"]["totals"]["bytes"]
    assert [r["value"] for r in doc["sweep"]["rows"]] == [1000.0, 2000.0, 3000.0]


def test_cli_table_renders(capsys):
    code = main(["whatif", "llama3-8b", "--config", "tiny", "--phase", "decode", "--fuse", "elementwise"])
    out, _ = capsys.readouterr()
    assert code == 0 and "what-if" in out and "fused" in out


def test_cli_fuse_auto_runs_every_rule_in_order_and_reports_refusals(capsys):
    code = main(["whatif", "llama3-8b", "--config", "tiny", "--attention", "eager", "--fuse", "auto",
                 "--group", "layers.0.mlp*", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    fuses = [r for r in doc["rewrites"] if r["rewrite"] == "fuse"]
    assert [r["rule"] for r in fuses] == ["named", *FUSE_RULES]
    assert all(r["groups_formed"] > 0 for r in fuses)
    assert doc["before"]["model"]["description"].endswith("attention=eager")
    assert doc["after"]["totals"]["flops"] == doc["before"]["totals"]["flops"]
    assert all(r["reason"] and r["rule"] for r in doc["refused"])
    code = main(["whatif", "llama3-8b", "--config", "tiny", "--attention", "eager", "--fuse", "auto"])
    out, err = capsys.readouterr()
    assert code == 0 and "fusion (attention): 2 groups" in out
    groups = sum(int(n) for n in re.findall(r"fusion \(\w+\): (\d+) groups", out))
    assert groups > 10 and f"by fused group (largest latency change first, 10 of {groups})" in out


def test_cli_tile_auto_tiles_or_refuses_every_matrix_node_left_after_fusion(capsys):
    code = main(["whatif", "llama3-8b", "--config", "tiny", "--phase", "decode", "--attention", "eager",
                 "--fuse", "attention", "--tile", "auto", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert [r["rewrite"] for r in doc["rewrites"]] == ["fuse", "tile"]
    tiled = doc["rewrites"][-1]["nodes"]
    refused = [r for r in doc["refused"] if r["rule"] == "tile"]
    matrix = [n for n in doc["after"]["nodes"] if n["op"] in ("matmul", "conv", "attention")]
    assert len(tiled) + len(refused) == len(matrix) > 0
    assert all(t["spread_s"]["min"] <= t["latency_s"] <= t["spread_s"]["max"] for t in tiled)
