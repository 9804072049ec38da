"""Reference workloads (graphperf.models): registry, shapes, parameter counts, capture."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._pytree import tree_leaves

import graphperf.models as models
from graphperf.models import build, get_model, list_models
from graphperf.models.mixtral import SparseMoE

aten = torch.ops.aten

NAMES = ["bert-base", "gpt2", "llama2-7b", "llama3-405b", "llama3-70b", "llama3-8b", "mixtral-8x7b",
         "resnet50", "vit-b16"]
LLMS = ["gpt2", "llama2-7b", "llama3-405b", "llama3-70b", "llama3-8b", "mixtral-8x7b"]
CASES = [(name, phase) for name in NAMES for phase in get_model(name).phases]
B, S, KV = 2, 8, 16


def tiny(name: str, phase: str, **kw):
    shape = {"prefill": {"seq": S}, "decode": {"kv_len": KV}}.get(phase, {})
    if phase == "forward" and get_model(name).default_seq is not None:
        shape = {"seq": S}
    return build(name, config="tiny", phase=phase, batch=B, dtype="float32", device="cpu", **{**shape, **kw})


# ----------------------------------------------------------------------------- registry


def test_public_api_is_pinned():
    assert sorted(models.__all__) == ["DTYPES", "ModelSpec", "Workload", "build", "get_model", "list_models"]


def test_list_models_sorted_with_full_and_tiny_configs():
    specs = list_models()
    assert [s.name for s in specs] == NAMES
    for s in specs:
        assert {"full", "tiny"} <= set(s.configs)
        assert type(s.configs["full"]) is type(s.configs["tiny"])
        llm = s.name in LLMS
        assert s.phases == (("prefill", "decode") if llm else ("forward",))
        assert s.default_dtype == ("bfloat16" if llm else "float32")
        assert s.source and s.description


def test_get_model_unknown_name_lists_known_names():
    with pytest.raises(KeyError, match="llama3-8b"):
        get_model("llama9")


def test_default_build_is_on_meta_in_default_dtype():
    w = build("llama3-8b", config="tiny")
    assert w.description == "llama3-8b[tiny] prefill batch=1 seq=256 bfloat16"  # seq clamped to max positions
    assert not w.module.training
    assert {p.device.type for p in w.module.parameters()} == {"meta"}
    assert {p.dtype for p in w.module.parameters()} == {torch.bfloat16}
    assert w.args[0].shape == (1, 256) and w.args[0].dtype == torch.long
    assert build("llama3-8b", phase="decode", batch=4, kv_len=4096).description == \
        "llama3-8b decode batch=4 kv_len=4096 bfloat16"
    assert build("resnet50", batch=8).description == "resnet50 forward batch=8 image=224 float32"


def test_build_is_deterministic():
    a, b = tiny("llama3-8b", "decode"), tiny("llama3-8b", "decode")
    for x, y in zip(tree_leaves((a.module.state_dict(), a.args)), tree_leaves((b.module.state_dict(), b.args))):
        assert torch.equal(x, y)


@pytest.mark.parametrize("kwargs, match", [
    ({"phase": "forward"}, "no phase 'forward'"),
    ({"batch": 0}, "batch must be a positive integer"),
    ({"batch": -3}, "batch must be a positive integer"),
    ({"batch": True}, "batch must be a positive integer"),
    ({"seq": 0}, "seq must be a positive integer"),
    ({"seq": 8193}, "seq=8193 exceeds the 8192 positions"),
    ({"phase": "decode", "kv_len": 8193}, "kv_len=8193 exceeds"),
    ({"phase": "decode", "kv_len": 0}, "kv_len must be a positive integer"),
    ({"phase": "decode", "seq": 128}, "not seq=128"),
    ({"kv_len": 128}, "kv_len applies to the decode phase only"),
    ({"dtype": "float64"}, "dtype must be one of"),
    ({"config": "huge"}, "no config 'huge'"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build("llama3-8b", **kwargs)


def test_vision_models_take_no_seq_and_no_decode():
    with pytest.raises(ValueError, match="takes no seq"):
        build("vit-b16", seq=197)
    with pytest.raises(ValueError, match="no phase 'decode'"):
        build("resnet50", phase="decode")
    with pytest.raises(ValueError, match="seq=513 exceeds the 512"):
        build("bert-base", seq=513)


# ----------------------------------------------------------------------------- tiny models run


def expected_shapes(name: str, phase: str, cfg) -> list[tuple[int, ...]]:
    if name in ("vit-b16", "resnet50"):
        return [(B, cfg.num_classes)]
    if name == "bert-base":
        return [(B, S, cfg.hidden_size), (B, cfg.hidden_size)]
    if phase == "prefill":
        return [(B, S, cfg.vocab_size)]
    kv = (B, cfg.num_kv_heads, 1, cfg.head_dim)  # the new token's K/V, one pair per layer
    return [(B, 1, cfg.vocab_size)] + [kv] * (2 * cfg.num_layers)


@pytest.mark.parametrize("name, phase", CASES)
def test_tiny_forward_is_finite_with_expected_shapes(name, phase):
    w = tiny(name, phase)
    with torch.no_grad():
        out = tree_leaves(w.module(*w.args))
    assert [tuple(t.shape) for t in out] == expected_shapes(name, phase, w.spec.configs["tiny"])
    assert all(torch.isfinite(t).all() for t in out)


@pytest.mark.parametrize("name", ["gpt2", "llama3-8b", "llama3-405b"])
def test_decode_steps_reproduce_prefill_logits(name):
    """Decode with a cache of the prompt's K/V gives prefill's logits at every position.

    The step reads slot kv_len-1 of the cache as the new token's entry (a serving engine
    writes the returned K/V there first), so each step runs num_layers+1 times: pass p
    returns correct K/V for layers < p and the last pass sees a fully correct cache.
    """
    w = tiny(name, "prefill", seq=6)
    cfg, (ids,) = w.spec.configs["tiny"], w.args
    empty = torch.zeros(B, cfg.num_kv_heads, 0, cfg.head_dim)
    cache = [(empty, empty)] * cfg.num_layers
    with torch.no_grad():
        ref = w.module(ids)
        for t in range(ids.shape[1]):
            slot = torch.zeros(B, cfg.num_kv_heads, 1, cfg.head_dim)
            cache = [(torch.cat([k, slot], 2), torch.cat([v, slot], 2)) for k, v in cache]
            for _ in range(cfg.num_layers + 1):
                logits, present = w.module(ids[:, t:t + 1], tuple(cache))
                cache = [(torch.cat([k[:, :, :-1], nk], 2), torch.cat([v[:, :, :-1], nv], 2))
                         for (k, v), (nk, nv) in zip(cache, present)]
            torch.testing.assert_close(logits[:, 0], ref[:, t], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- parameter counts


def llama_params(c) -> int:
    d, hd = c.hidden_size, c.head_dim
    attn = d * c.num_heads * hd * 2 + d * c.num_kv_heads * hd * 2          # q, o; k, v
    if hasattr(c, "num_experts"):
        mlp = c.num_experts * 3 * d * c.intermediate_size + d * c.num_experts  # experts + router
    else:
        mlp = 3 * d * c.intermediate_size                                      # gate, up, down
    return c.vocab_size * d * (1 if c.tie_embeddings else 2) + c.num_layers * (attn + mlp + 2 * d) + d


def gpt2_params(c) -> int:
    d = c.hidden_size
    block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    return c.vocab_size * d + c.max_positions * d + c.num_layers * block + 2 * d


def bert_params(c) -> int:
    d, f = c.hidden_size, c.intermediate_size
    layer = 4 * (d * d + d) + 2 * 2 * d + (d * f + f) + (f * d + d)
    embeddings = (c.vocab_size + c.max_positions + c.type_vocab_size) * d + 2 * d
    return embeddings + c.num_layers * layer + d * d + d  # + pooler


def vit_params(c) -> int:
    d, f = c.hidden_size, c.mlp_size
    layer = 4 * (d * d + d) + 2 * 2 * d + (d * f + f) + (f * d + d)
    embed = 3 * c.patch_size ** 2 * d + d + d + (c.num_patches + 1) * d  # conv, cls token, positions
    return embed + c.num_layers * layer + 2 * d + d * c.num_classes + c.num_classes


def resnet_params(c) -> int:
    def conv_bn(cin, cout, k):
        return cin * cout * k * k + 2 * cout

    total, cin = conv_bn(3, c.base_width, 7), c.base_width
    for stage, count in enumerate(c.blocks_per_stage):
        w = c.base_width * 2 ** stage
        cout = w * c.expansion
        for i in range(count):
            total += conv_bn(cin, w, 1) + conv_bn(w, w, 3) + conv_bn(w, cout, 1)
            total += conv_bn(cin, cout, 1) if i == 0 else 0  # projection shortcut opens each stage
            cin = cout
    return total + cin * c.num_classes + c.num_classes


# Published totals: model cards and papers named in models/*.py.
PUBLISHED = {
    "gpt2": (gpt2_params, 124e6), "bert-base": (bert_params, 110e6), "vit-b16": (vit_params, 86e6),
    "resnet50": (resnet_params, 25.6e6), "llama2-7b": (llama_params, 6.74e9),
    "llama3-8b": (llama_params, 8.03e9), "llama3-70b": (llama_params, 70.6e9),
    "llama3-405b": (llama_params, 405e9), "mixtral-8x7b": (llama_params, 46.7e9),
}


@pytest.mark.parametrize("name", NAMES)
def test_full_parameter_count_matches_formula_and_published_size(name):
    formula, published = PUBLISHED[name]
    w = build(name)  # meta: no weights allocated
    counted = sum(p.numel() for p in w.module.parameters())
    assert counted == formula(w.spec.configs["full"])
    assert counted == pytest.approx(published, rel=0.01)


def test_mixtral_active_parameters_match_published_12_9b():
    c = get_model("mixtral-8x7b").configs["full"]
    inactive = (c.num_experts - c.experts_per_token) * 3 * c.hidden_size * c.intermediate_size * c.num_layers
    assert llama_params(c) - inactive == pytest.approx(12.9e9, rel=0.01)


# ----------------------------------------------------------------------------- capture


def sdpa_nodes(ep):
    nodes = [n for n in ep.graph.nodes if n.target is aten.scaled_dot_product_attention.default]
    names = [a.name for a in aten.scaled_dot_product_attention.default._schema.arguments]
    return [(n, {**dict(zip(names, n.args)), **n.kwargs}) for n in nodes]


@pytest.mark.parametrize("name, phase", CASES)
def test_tiny_exports_with_one_sdpa_per_attention(name, phase):
    w = tiny(name, phase)
    ep = torch.export.export(w.module, w.args)
    cfg = w.spec.configs["tiny"]
    attn = sdpa_nodes(ep)
    assert len(attn) == (0 if name == "resnet50" else cfg.num_layers)
    for node, a in attn:
        q, k = (node.args[i].meta["val"] for i in (0, 1))
        assert a.get("is_causal", False) == (phase == "prefill")
        assert a.get("attn_mask") is None
        assert a.get("enable_gqa", False) == (k.shape[1] < q.shape[1])
    ops = {n.target for n in ep.graph.nodes}
    assert aten.repeat_interleave.self_int not in ops and aten.repeat_interleave.Tensor not in ops


@pytest.mark.parametrize("name", LLMS)
def test_decode_reads_the_cache_only_through_attention(name):
    w = tiny(name, "decode")
    ep = torch.export.export(w.module, w.args)
    cache = set(ep.graph_signature.user_inputs[1:])
    assert len(cache) == 2 * w.spec.configs["tiny"].num_layers
    for n in ep.graph.nodes:
        if n.op == "placeholder" and n.name in cache:
            assert {u.target for u in n.users} == {aten.scaled_dot_product_attention.default}


def test_gqa_full_size_llama3_8b_prefill_exports_on_meta():
    w = build("llama3-8b", seq=128)
    ep = torch.export.export(w.module, w.args)
    (node, a), *_ = sdpa_nodes(ep)
    q, k = (node.args[i].meta["val"] for i in (0, 1))
    assert (tuple(q.shape), tuple(k.shape)) == ((1, 32, 128, 128), (1, 8, 128, 128))
    assert a["enable_gqa"] and a["is_causal"] and q.device.type == "meta" and q.dtype == torch.bfloat16
    out = [n for n in ep.graph.nodes if n.op == "output"][0].args[0][0].meta["val"]
    assert tuple(out.shape) == (1, 128, 128256)


# ----------------------------------------------------------------------------- mixture of experts


def test_moe_graph_runs_experts_as_grouped_matmuls_at_capacity():
    w = tiny("mixtral-8x7b", "prefill")
    cfg = w.spec.configs["tiny"]
    ep = torch.export.export(w.module, w.args)
    capacity = math.ceil(cfg.experts_per_token * B * S / cfg.num_experts)
    bmm = [n for n in ep.graph.nodes if n.target is aten.bmm.default]
    assert len(bmm) == 3 * cfg.num_layers
    for n in bmm:
        assert n.args[0].meta["val"].shape[:2] == (cfg.num_experts, capacity)
    assert aten.nonzero.default not in {n.target for n in ep.graph.nodes}


def moe_reference(moe: SparseMoE, x: torch.Tensor, capacity: int) -> torch.Tensor:
    """Loop reference: each expert keeps its `capacity` highest-weight routed tokens."""
    xt = x.reshape(-1, x.shape[-1])
    probs = moe.router(xt).softmax(-1)
    top_w, top_i = probs.topk(moe.top_k, dim=-1)
    top_w = top_w / top_w.sum(-1, keepdim=True)
    out = torch.zeros_like(xt)
    for e in range(moe.num_experts):
        routed = [(float(top_w[t][top_i[t] == e]), t) for t in range(len(xt)) if e in top_i[t]]
        for weight, t in sorted(routed, reverse=True)[:capacity]:
            h = torch.nn.functional.silu(xt[t] @ moe.w_gate[e]) * (xt[t] @ moe.w_up[e])
            out[t] += weight * (h @ moe.w_down[e])
    return out.view(x.shape)


@pytest.mark.parametrize("capacity", ["default", "unbounded"])
def test_moe_dispatch_matches_loop_reference(capacity):
    torch.manual_seed(0)
    moe = SparseMoE(dim=16, hidden=24, num_experts=4, top_k=2)
    x = torch.randn(2, 7, 16)
    tokens = 14
    if capacity == "unbounded":
        moe.capacity = lambda t: t  # no token dropped: plain top-2 mixture
    cap = moe.capacity(tokens)
    assert cap == (math.ceil(2 * tokens / 4) if capacity == "default" else tokens)
    with torch.no_grad():
        torch.testing.assert_close(moe(x), moe_reference(moe, x, cap), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- ONNX


@pytest.mark.slow
@pytest.mark.parametrize("name, phase", [(n, get_model(n).phases[0]) for n in NAMES] + [("llama3-8b", "decode")])
def test_tiny_exports_to_onnx_opset23_with_attention_ops(name, phase):
    onnx = pytest.importorskip("onnx")
    w = tiny(name, phase)
    program = torch.onnx.export(w.module, w.args, dynamo=True, opset_version=23, verbose=False)
    graph = program.model_proto.graph
    attention = [n for n in graph.node if n.op_type == "Attention"]
    assert len(attention) == (0 if name == "resnet50" else w.spec.configs["tiny"].num_layers)
    for n in attention:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs.get("is_causal", 0) == (phase == "prefill")
