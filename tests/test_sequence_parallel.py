"""passes/sequence_parallel.py: sequence parallelism on the tensor-parallel graph, checked against the TP graph and
the formulas of graphperf/rules/collective.py (ring: S the full activation, RS + AG carry the all_reduce's bytes)."""

import math

import pytest

import graphperf
from graphperf.errors import UsageError
from graphperf.ops import POINTWISE_OPS
from graphperf.passes import canonicalize
from graphperf.passes.liveness import peak_activation_memory
from graphperf.passes.result import RefusalKind
from graphperf.passes.sequence_parallel import shard_sequence_parallel, token_shard
from graphperf.passes.shard import collectives_by_layer, shard_tensor_parallel
from graphperf.rules.collective import payload_bytes, steps, wire_bytes

TP = 2  # tiny llama3-8b has 2 KV heads: the one degree > 1 its tensor-parallel plan takes
B, T, HIDDEN, ITEMSIZE, LAYERS = 2, 16, 64, 2, 2  # the prefill below; llama3-8b tiny: d 64, 2 layers, bf16
N = B * T  # the step's tokens: the axis sequence parallelism splits
S = N * HIDDEN * ITEMSIZE  # a collective's payload: the full activation (all_gather: its output, RS: its input)


def _graph(model="llama3-8b", phase="prefill", batch=B, config="tiny", **shape):
    shape = shape or ({"kv_len": 16} if phase == "decode" else {"seq": T})
    req = graphperf.ModelRequest(model, config=config, phase=phase, batch=batch, **shape)
    return canonicalize(graphperf.load_graph(req)[0]).graph


@pytest.fixture(scope="module")
def tp_graph():
    return shard_tensor_parallel(_graph(), TP).graph


@pytest.fixture(scope="module")
def sp(tp_graph):
    return shard_sequence_parallel(tp_graph)


def _costs(graph):
    return {c.node.name: c.cost for c in graphperf.count(graph)}


def _region(node):
    """The nodes TP runs replicated between the blocks: the norms and the residual adds (module ``layers.N``)."""
    parts = node.module.split(".")
    return parts[-1].endswith("norm") or (parts[0] == "layers" and len(parts) == 2)


def test_two_reduce_scatters_and_two_all_gathers_replace_the_two_all_reduces_of_a_layer(tp_graph, sp):
    assert sp.refused == [] and sp.modified
    assert sp.tokens == N and sp.tokens_per_device == N // TP
    before = {k: v for k, v in collectives_by_layer(tp_graph).items() if k.startswith("layers.")}
    after = {k: v for k, v in collectives_by_layer(sp.graph).items() if k.startswith("layers.")}
    assert len(before) == len(after) == LAYERS
    g = sp.graph
    for layer, cs in after.items():
        assert [c["op"] for c in before[layer]] == ["all_reduce", "all_reduce"]
        assert [c["op"] for c in cs] == ["all_gather", "reduce_scatter", "all_gather", "reduce_scatter"]
        assert [c["module"].rsplit(".", 1)[-1] for c in cs] == ["q_proj", "o_proj", "gate_proj", "down_proj"]
        for c in cs:
            node = next(n for n in g.nodes if n.name == c["node"])
            x, out = (g.values[v].type for v in (node.inputs[0], node.outputs[0]))
            assert payload_bytes(c["op"], x, out) == S and c["group_size"] == TP
            assert min(x.numel, out.numel) * TP == max(x.numel, out.numel) == N * HIDDEN
        # ring: RS + AG send (tp-1)/tp * S each, the all_reduce's 2 (tp-1)/tp * S, in as many steps
        assert wire_bytes("reduce_scatter", TP, S) + wire_bytes("all_gather", TP, S) \
            == wire_bytes("all_reduce", TP, S) == 2 * (TP - 1) / TP * S
        assert steps("reduce_scatter", TP) + steps("all_gather", TP) == steps("all_reduce", TP) == 2 * (TP - 1)
    outside = collectives_by_layer(g)
    assert [c["op"] for c in outside["embed_tokens"]] == ["reduce_scatter"]  # was the embedding's all_reduce
    assert [c["op"] for c in outside["lm_head"]] == ["all_gather", "all_gather"]  # the tokens, then the vocabulary
    assert not any(n.op.name == "all_reduce" for n in g.nodes)
    # inserted: per layer 2 RS + 2 AG, the embedding's RS, the LM head's token AG (TP's vocabulary AG stays)
    assert sp.summary()["collectives"] == {"all_gather": 2 * LAYERS + 1, "reduce_scatter": 2 * LAYERS + 1}
    assert g.values[g.outputs[0]].type == tp_graph.values[tp_graph.outputs[0]].type  # logits of every token


def test_the_link_time_of_a_reduce_scatter_and_an_all_gather_is_the_all_reduce_s(tp_graph, sp):
    h100 = graphperf.load_target("h100")
    link = {}
    for g in (tp_graph, sp.graph):
        counts = graphperf.count(g)
        for c, t in zip(counts, graphperf.project(g, counts, h100)):
            if c.node.op.name in ("all_reduce", "reduce_scatter", "all_gather") and c.node.module != "lm_head":
                link.setdefault((g is tp_graph, c.node.op.name), []).append(t.memory_s)
    ar = link[(True, "all_reduce")]
    rs, ag = link[(False, "reduce_scatter")], link[(False, "all_gather")]
    assert len(ar) == len(rs) == 2 * LAYERS + 1 and len(ag) == 2 * LAYERS
    one = (2 * (TP - 1) * h100.scale_up_latency_us * 1e-6  # 2 (p-1) hops, 2 (p-1)/p * S at the link's rate
           + 2 * (TP - 1) / TP * S / (h100.scale_up_gbps * 1e9 * h100.scale_up_efficiency))
    assert ar == pytest.approx([one] * len(ar))
    assert [r + a for r, a in zip(rs[1:], ag)] == pytest.approx([one] * len(ag))


def test_norms_and_residual_adds_run_on_a_tpth_of_the_tokens(tp_graph, sp):
    before, after = _costs(tp_graph), _costs(sp.graph)
    region = [n for n in tp_graph.nodes if _region(n)]
    assert len(region) == LAYERS * (2 * 6 + 2) + 6  # per layer two RMSNorms of 6 nodes and two adds; the final norm
    for node in region:
        weights = sum(tp_graph.values[i].type.nbytes for i in node.inputs
                      if i is not None and tp_graph.values[i].kind == "weight")  # the norm's scale, read in full
        b, a = before[node.name], after[node.name]
        assert b.flops % TP == 0 and a.flops == b.flops // TP, node.name
        assert a.transcendentals * TP == b.transcendentals
        assert a.bytes == (b.bytes - weights) // TP + weights, node.name
    adds = [n for n in region if n.module.count(".") == 1]
    assert len(adds) == 2 * LAYERS and all(after[n.name].flops == N * HIDDEN // TP for n in adds)


def test_matmul_and_attention_flops_are_the_tensor_parallel_graph_s(tp_graph, sp):
    before, after = _costs(tp_graph), _costs(sp.graph)
    matrix = [n for n in tp_graph.nodes if n.op.name in ("matmul", "attention")]
    assert len(matrix) == LAYERS * 8 + 1  # q, k, v, attention, o, gate, up, down; the LM head
    for n in matrix:
        assert after[n.name].flops == before[n.name].flops and after[n.name].matrix_flops == before[n.name].matrix_flops
    assert sum(c.matrix_flops for c in after.values()) == sum(c.matrix_flops for c in before.values())


def test_the_peak_activation_memory_drops_by_the_residual_held_across_the_mlp(tp_graph, sp):
    tp_peak, sp_peak = peak_activation_memory(tp_graph), peak_activation_memory(sp.graph)
    assert sp_peak.bytes < tp_peak.bytes
    # at the peak (the MLP's gate * up) the residual stream [N, hidden] is live: each device holds N/tp of it
    assert tp_peak.at_node == sp_peak.at_node == "mul_8"
    assert tp_peak.bytes - sp_peak.bytes == (TP - 1) * N * HIDDEN * ITEMSIZE // TP


def test_every_value_has_the_type_its_op_produces(tp_graph, sp):
    g = sp.graph
    counts = graphperf.count(g)  # a RuleBug would raise
    assert all(c.cost is not None for c in counts), [c.node.name for c in counts if c.cost is None]
    split = {name for name, v in g.values.items() if name in tp_graph.values and v.type != tp_graph.values[name].type}
    assert split and all(g.values[v].type.numel * TP == tp_graph.values[v].type.numel for v in split)
    assert all(g.values[v].type == token_shard(tp_graph.values[v].type, N, TP) for v in split)
    for node in g.nodes:
        if node.op.name in POINTWISE_OPS:  # pointwise: the output is the inputs broadcast
            shapes = [g.values[i].type.shape for i in node.inputs if i is not None]
            assert math.prod(g.values[node.outputs[0]].type.shape) == math.prod(
                max(s[len(s) - k] if k <= len(s) else 1 for s in shapes)
                for k in range(1, g.values[node.outputs[0]].type.rank + 1)), node.name
    assert {n.name for n in tp_graph.nodes} - {n.name for n in g.nodes} == {
        n.name for n in tp_graph.nodes if n.op.name == "all_reduce"}


def test_the_graph_projects_on_h100(sp):
    g = sp.graph
    counts = graphperf.count(g)
    times = graphperf.project(g, counts, graphperf.load_target("h100"))
    assert len(times) == len(g.nodes) and all(t.latency_s is not None for t in times)


def test_a_decode_step_whose_batch_divides_is_split_too():
    tp_graph = shard_tensor_parallel(_graph(phase="decode", batch=2), TP).graph
    r = shard_sequence_parallel(tp_graph)
    assert r.refused == [] and r.tokens == 2 and r.tokens_per_device == 2 // TP
    assert all(c.cost is not None for c in graphperf.count(r.graph))


@pytest.mark.parametrize("batch", [1, 3])  # B * T = 1 < tp; 3 not a multiple of tp
def test_a_decode_step_whose_tokens_do_not_divide_is_refused_and_returned_unchanged(batch):
    tp_graph = shard_tensor_parallel(_graph(phase="decode", batch=batch), TP).graph
    r = shard_sequence_parallel(tp_graph)
    assert r.graph is tp_graph and not r.modified and r.collectives == []
    (refusal,) = r.refused
    assert refusal.kind is RefusalKind.INDIVISIBLE and refusal["size"] == batch * 1
    assert f"{batch * 1} tokens" in refusal.reason and "do not divide" in refusal.reason
    assert set(refusal.nodes) == {n.name for n in tp_graph.nodes if n.op.name == "all_reduce"}


def test_the_tensor_parallel_graph_is_not_mutated(tp_graph):
    types = {k: v.type for k, v in tp_graph.values.items()}
    nodes = list(tp_graph.nodes)
    shard_sequence_parallel(tp_graph)
    assert tp_graph.nodes == nodes and {k: v.type for k, v in tp_graph.values.items()} == types


def test_a_graph_that_is_not_tensor_parallel_is_a_one_line_usage_error():
    with pytest.raises(UsageError, match="tensor-parallel graph") as info:
        shard_sequence_parallel(_graph())
    assert "\n" not in str(info.value)


def test_mixtral_keeps_the_expert_all_reduces_and_splits_the_rest():
    tp_graph = shard_tensor_parallel(_graph("mixtral-8x7b"), TP).graph
    r = shard_sequence_parallel(tp_graph)
    kept = [n.name for n in r.graph.nodes if n.op.name == "all_reduce"]
    assert len(kept) == LAYERS and all(n.endswith("_all_reduce") for n in kept)  # the w_down ones, on [E, C, d]
    assert {x["node"] for x in r.refused if "stays an all_reduce" in x.reason} == set(kept)
    assert r.summary()["collectives"]["reduce_scatter"] == LAYERS + 1  # o_proj per layer, the embedding
    assert all(c.cost is not None for c in graphperf.count(r.graph))


def test_a_head_reading_the_last_position_gathers_the_final_norm_without_a_refusal():
    from graphperf.serve.graphs import last_token_logits  # serve's prefill: the LM head on the last position only

    tp_graph = shard_tensor_parallel(last_token_logits(_graph()), TP).graph
    r = shard_sequence_parallel(tp_graph)
    assert r.refused == []
    head = [n for n in r.graph.nodes if n.module == "lm_head"]
    assert [n.op.name for n in head] == ["all_gather", "view", "matmul", "all_gather"]
    assert r.graph.values[head[0].outputs[0]].type.numel == N * HIDDEN  # every token, then the last of each row
    assert r.graph.values[r.graph.outputs[0]].type == tp_graph.values[tp_graph.outputs[0]].type


def test_full_size_llama3_8b_prefill_at_tp8():
    from graphperf.serve.graphs import last_token_logits  # serve's prefill: logits of the last position only

    tp, tokens, hidden, ffn, layers = 8, 128, 4096, 14336, 32
    g = _graph(config="full", batch=1, seq=tokens)
    tp_graph = shard_tensor_parallel(last_token_logits(g), tp).graph
    r = shard_sequence_parallel(tp_graph)
    assert r.refused == [] and r.tokens_per_device == tokens // tp
    per_layer = [v for k, v in collectives_by_layer(r.graph).items() if k.startswith("layers.")]
    assert len(per_layer) == layers
    s = tokens * hidden * ITEMSIZE
    for cs in per_layer:
        assert [c["op"] for c in cs] == ["all_gather", "reduce_scatter"] * 2
        assert all(math.prod(c["shape"]) * ITEMSIZE * (tp if c["op"] == "all_gather" else 1) == s for c in cs)
    # TP's peak is layer 0's input norm: the residual, the normalised and the scaled activation, all tokens
    tp_peak, sp_peak = peak_activation_memory(tp_graph), peak_activation_memory(r.graph)
    assert (tp_peak.at_node, tp_peak.bytes) == ("mul_1", 3 * tokens * hidden * ITEMSIZE)
    # SP's is in the MLP: the gathered norm output (all tokens), gate and silu (ffn/tp wide), the residual's N/tp
    assert (sp_peak.at_node, sp_peak.bytes) == (
        "silu", (tokens * hidden + 2 * tokens * ffn // tp + tokens // tp * hidden) * ITEMSIZE)
