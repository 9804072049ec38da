"""passes/shard.py: tensor parallelism as a graph rewrite, checked against the unsharded graph and the formulas."""

import pytest

import graphperf
from graphperf.errors import UsageError
from graphperf.passes import canonicalize
from graphperf.passes.shard import collectives_by_layer, shard_tensor_parallel
from graphperf.rules.collective import wire_bytes


def _graph(model="llama3-8b", config="tiny", phase="decode", batch=2, **shape):
    shape = shape or ({"kv_len": 16} if phase == "decode" else {"seq": 16})
    req = graphperf.ModelRequest(model, config=config, phase=phase, batch=batch, **shape)
    return canonicalize(graphperf.load_graph(req)[0]).graph


@pytest.fixture(scope="module")
def decode():
    return _graph()


def _flops(graph):
    return {c.node.name: c.cost.flops for c in graphperf.count(graph)}


def _replicated(node):
    """Nodes Megatron runs in full on every device: the norms, the residual adds, the embedding lookup."""
    parts = node.module.split(".")
    return parts[-1].endswith("norm") or (parts[0] == "layers" and len(parts) == 2) or node.op.name == "gather"


@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_sharded_flops_times_tp_is_the_unsharded_flops_of_the_split_nodes(phase):
    tp = 2  # tiny llama3-8b has 2 KV heads
    g = _graph(phase=phase)
    r = shard_tensor_parallel(g, tp)
    assert r.refused == []
    before, after = _flops(g), _flops(r.graph)
    for node in g.nodes:
        if before[node.name] == 0:
            continue
        expected = before[node.name] if _replicated(node) else before[node.name] // tp
        assert after[node.name] == expected, (node.name, node.module, before[node.name], after[node.name])
    # the rest of the sharded graph's work is the all-reduces' additions
    reduces = [n for n in r.graph.nodes if n.op.name == "all_reduce"]
    assert sum(after[n] for n in r.collectives) == sum(
        (tp - 1) * r.graph.values[n.inputs[0]].type.numel // tp for n in reduces)
    assert sum(after.values()) == sum(
        f if _replicated(n) else f // tp for n in g.nodes for f in [before[n.name]]) + sum(
        after[n.name] for n in reduces)


def test_two_all_reduces_per_layer_of_the_activation(decode):
    tp, batch, hidden, itemsize = 2, 2, 64, 2
    r = shard_tensor_parallel(decode, tp)
    layers = {k: v for k, v in collectives_by_layer(r.graph).items() if k.startswith("layers.")}
    assert len(layers) == 2
    for layer, cs in layers.items():
        assert [c["op"] for c in cs] == ["all_reduce", "all_reduce"]
        assert [c["module"].rsplit(".", 1)[-1] for c in cs] == ["o_proj", "down_proj"]
        payload = sum(batch * 1 * hidden * itemsize for _ in cs)
        assert payload == 2 * batch * 1 * hidden * itemsize
        assert all(c["shape"] == [batch, 1, hidden] and c["group_size"] == tp for c in cs)
        assert sum(wire_bytes("all_reduce", tp, batch * hidden * itemsize) for _ in cs) == \
            2 * 2 * (tp - 1) / tp * batch * hidden * itemsize
    outside = collectives_by_layer(r.graph)
    assert [c["op"] for c in outside["embed_tokens"]] == ["all_reduce"]
    assert [c["op"] for c in outside["lm_head"]] == ["all_gather"]
    logits = r.graph.values[r.graph.outputs[0]].type
    assert logits == decode.values[decode.outputs[0]].type  # gathered back to the full vocabulary


def test_kv_cache_heads_and_weights_are_split(decode):
    r = shard_tensor_parallel(decode, 2)
    caches = [v for v in decode.values.values() if v.kind == "input" and v.type.rank == 4]
    assert caches
    for v in caches:
        assert r.graph.values[v.name].type.shape[1] == v.type.shape[1] // 2
    before = sum(v.type.nbytes for v in decode.weights())
    after = sum(v.type.nbytes for v in r.graph.weights())
    replicated = sum(v.type.nbytes for v in decode.weights() if v.type.rank == 1 or "rotary" in v.name
                     or v.name.startswith("b_") or "cos" in v.name or "sin" in v.name)
    assert after == pytest.approx((before - replicated) / 2 + replicated, rel=0.02)


def test_the_input_graph_is_not_mutated(decode):
    types = {k: v.type for k, v in decode.values.items()}
    n = len(decode.nodes)
    shard_tensor_parallel(decode, 2)
    assert len(decode.nodes) == n and {k: v.type for k, v in decode.values.items()} == types


@pytest.mark.parametrize("tp", [3, 4])
def test_a_tp_that_does_not_divide_the_heads_is_refused_in_one_line(decode, tp):
    with pytest.raises(UsageError, match="does not divide") as info:
        shard_tensor_parallel(decode, tp)
    assert "\n" not in str(info.value)


def test_tp_one_is_the_graph_itself_and_bad_tp_is_refused(decode):
    assert shard_tensor_parallel(decode, 1).graph is decode
    with pytest.raises(UsageError, match="integer >= 1"):
        shard_tensor_parallel(decode, 0)


def test_a_model_without_a_plan_is_refused():
    with pytest.raises(UsageError, match="tensor-parallel plan"):
        shard_tensor_parallel(_graph("gpt2", phase="prefill"), 2)


def test_mixtral_experts_are_split_too():
    g = _graph("mixtral-8x7b")
    r = shard_tensor_parallel(g, 2)
    assert r.refused == [] and r.summary()["collectives"] == {"all_gather": 1, "all_reduce": 5}


def test_collectives_are_projected_on_the_link():
    h100 = graphperf.load_target("h100")
    g = shard_tensor_parallel(_graph(), 2).graph
    counts = graphperf.count(g)
    times = graphperf.project(g, counts, h100)
    for c, t in zip(counts, times):
        if c.node.op.name == "all_reduce":
            s = g.values[c.node.inputs[0]].type.nbytes
            link_s = (2 * h100.scale_up_latency_us * 1e-6  # p = 2: 2 steps, S on the wire (the base is host time)
                      + s / (h100.scale_up_gbps * 1e9 * h100.scale_up_efficiency))
            assert t.memory_s == pytest.approx(link_s) and t.device_s >= link_s
    no_link = graphperf.load_target("l4")  # no scale-up link figures
    times = graphperf.project(g, counts, no_link)
    assert all(t.latency_s is None for c, t in zip(counts, times) if c.node.op.name == "all_reduce")


def test_full_size_llama3_8b_at_tp8():
    g = _graph(config="full", batch=4, kv_len=128)
    r = shard_tensor_parallel(g, 8)
    assert r.refused == []
    hidden = 4096
    layers = [v for k, v in collectives_by_layer(r.graph).items() if k.startswith("layers.")]
    assert len(layers) == 32
    for cs in layers:
        assert sum(c["shape"][0] * c["shape"][1] * c["shape"][2] * 2 for c in cs) == 2 * 4 * 1 * hidden * 2
    attn = next(n for n in r.graph.nodes if n.op.name == "attention")
    q, k = (r.graph.values[i].type.shape for i in attn.inputs[:2])
    assert (q[1], k[1]) == (32 // 8, 8 // 8)


def test_pipeline_stages_partition_the_graph_and_receive_the_hidden_state(decode):
    from graphperf.passes.shard import split_pipeline

    stages = split_pipeline(decode, 2)
    assert [n.name for s in stages for n in s.graph.nodes] == [n.name for n in decode.nodes]
    assert [s.layers for s in stages] == [(0, 0), (1, 1)]
    flops = _flops(decode)
    assert sum(sum(_flops(s.graph).values()) for s in stages) == sum(flops.values())
    (hidden,) = stages[1].received
    assert decode.values[hidden].type.shape == (2, 1, 64) and stages[1].received_bytes == 2 * 64 * 2
    assert stages[0].graph.nodes[0].op.name == "gather" and stages[-1].graph.nodes[-1].module == "lm_head"
    with pytest.raises(UsageError, match="decoder layers"):
        split_pipeline(decode, 3)
