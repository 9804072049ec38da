"""passes/shard.py and passes/expert_parallel.py: tensor and expert parallelism as graph rewrites, checked against
the unsharded graph and the formulas."""

import math

import pytest

import graphperf
from graphperf.errors import UsageError
from graphperf.passes import canonicalize
from graphperf.passes.expert_parallel import shard_expert_parallel
from graphperf.passes.shard import collectives_by_layer, shard_tensor_parallel
from graphperf.rules.collective import collective_time, wire_bytes


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


# -- expert parallelism (passes/expert_parallel.py) ------------------------------------------------------------

E, K, HIDDEN, FFN, ITEMSIZE = 8, 2, 64, 96, 2  # mixtral tiny: 8 experts, top-2, d 64, expert width 96, bf16


def _moe(phase="decode", batch=4, **shape):
    return _graph("mixtral-8x7b", phase=phase, batch=batch, **shape)


def _tokens(g):
    x = next(v for v in g.values.values() if v.kind == "input" and v.type.dtype == "int64")  # input ids [B, T]
    return x.type.numel


@pytest.mark.parametrize("ep", [2, 4, 8])
@pytest.mark.parametrize("phase,batch,shape", [("decode", 4, {"kv_len": 16}), ("prefill", 2, {"seq": 16})])
def test_expert_flops_per_device_are_the_groups_over_ep(ep, phase, batch, shape):
    g = _moe(phase, batch, **shape)
    r = shard_expert_parallel(g, ep)
    assert r.refused == [] and r.experts_per_device == {"layers.0.mlp": E // ep, "layers.1.mlp": E // ep}
    tokens = _tokens(g)
    assert K * tokens % E == 0  # E divides k * B * T: capacity C = k*B*T/E, no rounding
    before, after = _flops(g), _flops(r.graph)
    bmms = [n for n in r.graph.nodes if n.op.name == "matmul" and r.graph.values[n.inputs[1]].type.rank == 3]
    assert len(bmms) == 2 * 3
    for n in bmms:  # E/ep experts, each on ep*C = ep*k*B*T/E slots: 2 * (E/ep) * (ep*C) * D * F
        assert after[n.name] == 2 * (E // ep) * (ep * K * tokens // E) * HIDDEN * FFN == 2 * K * tokens * HIDDEN * FFN
    # each device runs as many expert slots as the unsharded graph (uniform routing) ...
    assert after == {**before, **{c: after[c] for c in r.collectives}}
    # ... which is 1/ep of the expert FLOPs of the group's ep * B tokens
    group = _moe(phase, batch * ep, **shape)
    group_flops = _flops(group)
    group_bmms = [n for n in group.nodes if n.op.name == "matmul" and group.values[n.inputs[1]].type.rank == 3]
    assert sum(after[n.name] for n in bmms) * ep == sum(group_flops[n.name] for n in group_bmms)
    assert all(after[c] == 0 for c in r.collectives)  # an all_to_all adds nothing


@pytest.mark.parametrize("ep", [2, 4, 8])
@pytest.mark.parametrize("phase,batch,shape", [("decode", 4, {"kv_len": 16}), ("prefill", 2, {"seq": 16})])
def test_all_to_all_dispatch_and_combine_carry_the_routed_token_copies(ep, phase, batch, shape):
    g = _moe(phase, batch, **shape)
    r = shard_expert_parallel(g, ep)
    tokens = _tokens(g)
    payload = tokens * K * HIDDEN * ITEMSIZE  # B*T tokens, k copies each, hidden wide
    layers = {k: v for k, v in collectives_by_layer(r.graph).items() if k.startswith("layers.")}
    assert len(layers) == 2 and len(collectives_by_layer(r.graph)) == 2
    for cs in layers.values():
        assert [c["op"] for c in cs] == ["all_to_all", "all_to_all"]
        assert [c["node"].endswith(end) for c, end in zip(cs, ("_dispatch_all_to_all", "_combine_all_to_all"))] \
            == [True, True]
        assert all(c["group_size"] == ep and math.prod(c["shape"]) * ITEMSIZE == payload for c in cs)
    # each device sends (ep-1)/ep of its copies to the other devices and receives as many
    assert wire_bytes("all_to_all", ep, payload) == pytest.approx(payload * (ep - 1) / ep)
    dispatch = next(n for n in r.graph.nodes if n.name in r.collectives)
    src, dst = (r.graph.values[v].type.shape for v in (dispatch.inputs[0], dispatch.outputs[0]))
    c = K * tokens // E
    assert src == (E, c, HIDDEN) and dst == (E // ep, ep * c, HIDDEN)


def test_expert_weights_are_spread_and_the_router_replicated():
    g = _moe()
    ep = 4
    r = shard_expert_parallel(g, ep)
    for v in g.weights():
        after = r.graph.values[v.name].type
        if v.name.rsplit("_", 2)[-2:] in (["w", "gate"], ["w", "up"], ["w", "down"]):
            assert after.shape == (E // ep, *v.type.shape[1:]) and after.nbytes * ep == v.type.nbytes
        else:  # router, attention, norms, embedding, LM head
            assert after == v.type
    assert any("router" in v.name for v in g.weights())
    assert r.graph.values[r.graph.outputs[0]].type == g.values[g.outputs[0]].type
    assert r.graph.meta["expert_parallel"] == ep


def test_expert_parallel_leaves_its_input_alone_and_ep_one_is_the_graph():
    g = _moe()
    types, n = {k: v.type for k, v in g.values.items()}, len(g.nodes)
    assert shard_expert_parallel(g, 2).modified
    assert len(g.nodes) == n and {k: v.type for k, v in g.values.items()} == types
    r = shard_expert_parallel(g, 1)
    assert r.graph is g and not r.modified and r.collectives == []


@pytest.mark.parametrize("ep", [3, 16])
def test_an_ep_that_does_not_divide_the_experts_is_refused_in_one_line(ep):
    with pytest.raises(UsageError, match=f"--ep {ep} does not divide the {E} experts") as info:
        shard_expert_parallel(_moe(), ep)
    assert "\n" not in str(info.value)


def test_bad_ep_and_a_dense_model_are_refused(decode):
    with pytest.raises(UsageError, match="integer >= 1"):
        shard_expert_parallel(_moe(), 0)
    with pytest.raises(UsageError, match="no MoE experts"):
        shard_expert_parallel(decode, 2)


@pytest.mark.parametrize("ep,f", [(2, 1.5), (4, 1.5), (4, 4.0), (8, 2.0)])
def test_skewed_routing_is_the_busiest_devices_graph(ep, f):
    """imbalance f: the busiest device's experts get ceil(f * ep * C) slots each; its dispatch receives that much."""
    g = _moe(batch=8)
    uniform, skewed = shard_expert_parallel(g, ep), shard_expert_parallel(g, ep, f)
    c = math.ceil(K * _tokens(g) / E)  # each expert's capacity on one device (models/mixtral.py)
    slots = math.ceil(f * ep * c)
    flops_u, flops_s = _flops(uniform.graph), _flops(skewed.graph)
    bmms = [n for n in skewed.graph.nodes if n.op.name == "matmul" and skewed.graph.values[n.inputs[1]].type.rank == 3]
    for n in bmms:  # E/ep experts of `slots` slots: 2 * (E/ep) * slots * D * F, f times the uniform ones
        assert flops_s[n.name] == 2 * (E // ep) * slots * HIDDEN * FFN
        assert flops_s[n.name] * (ep * c) == flops_u[n.name] * slots
    layers = [v for k, v in collectives_by_layer(skewed.graph).items() if k.startswith("layers.")]
    h100 = graphperf.load_target("h100")
    for cs in layers:
        for c_ in cs:  # the exchange is priced on its larger side: what the busiest device receives (or returns)
            node = next(n for n in skewed.graph.nodes if n.name == c_["node"])
            x, out = (skewed.graph.values[v].type for v in (node.inputs[0], node.outputs[0]))
            t = collective_time("all_to_all", node.attrs, x, out, h100)
            assert t.payload_bytes == (E // ep) * slots * HIDDEN * ITEMSIZE == max(x.nbytes, out.nbytes)
    assert skewed.graph.meta["expert_imbalance"] == f
    assert [v.type for v in shard_expert_parallel(g, ep, 1.0).graph.values.values()] == \
        [v.type for v in uniform.graph.values.values()]


@pytest.mark.parametrize("f", [0.5, 9.0, True])
def test_an_imbalance_outside_one_to_ep_is_refused(f):
    with pytest.raises(UsageError, match="between 1 \\(uniform\\) and ep = 8") as info:
        shard_expert_parallel(_moe(), 8, f)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("tp,ep", [(2, 2), (2, 4), (2, 8)])
def test_expert_parallel_composes_with_tensor_parallel(tp, ep):
    """tp * ep devices: every expert split over tp (Megatron), the experts over ep groups, exchanges tp apart."""
    g = _moe()
    r = shard_expert_parallel(shard_tensor_parallel(g, tp).graph, ep)
    assert r.refused == [] and r.graph.meta["tensor_parallel"] == tp and r.graph.meta["expert_parallel"] == ep
    for v in g.weights():  # an expert's weights: 1/(tp*ep) of the model's per device
        if v.name.rsplit("_", 2)[-2:] in (["w", "gate"], ["w", "up"], ["w", "down"]):
            assert r.graph.values[v.name].type.nbytes * tp * ep == v.type.nbytes
    before, after = _flops(g), _flops(r.graph)
    bmms = [n.name for n in r.graph.nodes if n.op.name == "matmul" and r.graph.values[n.inputs[1]].type.rank == 3]
    assert len(bmms) == 6 and all(after[n] * tp == before[n] for n in bmms)  # as many slots, 1/tp of each expert
    payload = _tokens(g) * K * HIDDEN * ITEMSIZE  # the whole routed copies: replicated over the tp ranks
    for cs in (v for k, v in collectives_by_layer(r.graph).items() if k.startswith("layers.")):
        moe = [c for c in cs if c["module"].endswith(".mlp")]
        assert [c["op"] for c in moe] == ["all_to_all", "all_to_all", "all_reduce"]  # dispatch, combine, w_down's
        assert [c["group_size"] for c in moe] == [ep, ep, tp]
        assert all(math.prod(c["shape"]) * ITEMSIZE == payload for c in moe)
    h100 = graphperf.load_target("h100")  # 8 devices a node: the exchange leaves the node when ep * tp > 8
    counts = graphperf.count(r.graph)
    exchanges = [(c.node, t) for c, t in zip(counts, graphperf.project(r.graph, counts, h100))
                 if c.node.op.name == "all_to_all"]
    assert len(exchanges) == 4 and all(n.attrs["stride"] == tp and t.latency_s is not None for n, t in exchanges)
    node = exchanges[0][0]
    x, out = (r.graph.values[v].type for v in (node.inputs[0], node.outputs[0]))
    assert collective_time("all_to_all", node.attrs, x, out, h100).link == \
        ("scale_out" if ep * tp > h100.devices_per_node else "scale_up")


def test_all_to_alls_are_projected_on_the_link():
    h100 = graphperf.load_target("h100")
    ep = 4
    g = shard_expert_parallel(_moe(), ep).graph
    counts = graphperf.count(g)
    times = graphperf.project(g, counts, h100)
    seen = 0
    for c, t in zip(counts, times):
        if c.node.op.name == "all_to_all":
            s = g.values[c.node.inputs[0]].type.nbytes
            link_s = ((ep - 1) * h100.scale_up_latency_us * 1e-6  # ring: p-1 steps, (p-1)/p * S on the wire
                      + (ep - 1) / ep * s / (h100.scale_up_gbps * 1e9 * h100.scale_up_efficiency))
            assert t.memory_s == pytest.approx(link_s)
            seen += 1
    assert seen == 4


def test_full_size_mixtral_8x7b_at_ep8_holds_one_expert_per_device():
    ep, batch, hidden, ffn, experts = 8, 8, 4096, 14336, 8
    g = _moe(batch=batch, config="full", kv_len=128)
    r = shard_expert_parallel(g, ep)
    assert r.refused == [] and set(r.experts_per_device.values()) == {experts // ep} and len(r.experts_per_device) == 32
    layers = [v for k, v in collectives_by_layer(r.graph).items() if k.startswith("layers.")]
    assert len(layers) == 32 and all(len(cs) == 2 for cs in layers)
    payload = batch * 1 * K * hidden * ITEMSIZE
    assert all(math.prod(c["shape"]) * ITEMSIZE == payload for cs in layers for c in cs)
    expert_bytes = 3 * experts * hidden * ffn * ITEMSIZE  # w_gate, w_up, w_down of one layer
    before = sum(v.type.nbytes for v in g.weights())
    after = sum(v.type.nbytes for v in r.graph.weights())
    assert before - after == 32 * expert_bytes * (ep - 1) // ep
