"""Models from a Hugging Face config.json (models/hf_config.py): field mapping, parameter counts, same graph as
the built-in workload, errors.

The configs below are typed from the published config.json files (huggingface.co/<repo>/blob/main/config.json)
with their irrelevant keys (token ids, initializer_range, transformers_version) left out; no network, no weights.
"""

from __future__ import annotations

import json

import pytest
import torch

from graphperf.cli import main
from graphperf.errors import UsageError
from graphperf.models import build, get_model
from graphperf.models.hf_config import MODEL_TYPES, config_from_dict
from graphperf.pipeline import ModelRequest, analyze_graph, load_graph
from graphperf.target import load_target

H100 = load_target("h100")

LLAMA2_70B = {  # meta-llama/Llama-2-70b-hf
    "architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 8192, "intermediate_size": 28672,
    "max_position_embeddings": 4096, "model_type": "llama", "num_attention_heads": 64, "num_hidden_layers": 80,
    "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
    "tie_word_embeddings": False, "torch_dtype": "float16", "use_cache": True, "vocab_size": 32000}
LLAMA33_70B = {  # meta-llama/Llama-3.3-70B-Instruct
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "head_dim": 128,
    "hidden_act": "silu", "hidden_size": 8192, "intermediate_size": 28672, "max_position_embeddings": 131072,
    "mlp_bias": False, "model_type": "llama", "num_attention_heads": 64, "num_hidden_layers": 80,
    "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 128256}
LLAMA3_8B = {  # meta-llama/Meta-Llama-3-8B
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "hidden_act": "silu",
    "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 8192, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 500000.0, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "vocab_size": 128256}
MISTRAL_7B = {  # mistralai/Mistral-7B-v0.1
    "architectures": ["MistralForCausalLM"], "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
    "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 32000}
MIXTRAL_8X7B = {  # mistralai/Mixtral-8x7B-v0.1
    "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "hidden_act": "silu", "hidden_size": 4096,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mixtral",
    "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "num_local_experts": 8, "output_router_logits": False, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
    "router_aux_loss_coef": 0.02, "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "vocab_size": 32000}
QWEN25_7B = {  # Qwen/Qwen2.5-7B-Instruct
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "hidden_act": "silu", "hidden_size": 3584,
    "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2",
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_sliding_window": False, "vocab_size": 152064}
GPT2 = {  # openai-community/gpt2
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
    "vocab_size": 50257}
GPTJ_6B = {  # EleutherAI/gpt-j-6b
    "activation_function": "gelu_new", "architectures": ["GPTJForCausalLM"], "layer_norm_epsilon": 1e-05,
    "model_type": "gptj", "n_embd": 4096, "n_head": 16, "n_inner": None, "n_layer": 28, "n_positions": 2048,
    "rotary": True, "rotary_dim": 64, "tie_word_embeddings": False, "vocab_size": 50400}
# The built-in llama3-8b's tiny config (models/llama.py) as a config.json.
TINY_LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128, "max_position_embeddings": 256,
              "rope_theta": 500000.0, "rms_norm_eps": 1e-5}


@pytest.fixture
def write(tmp_path):
    def write(data, name="config.json"):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        path = folder / name
        path.write_text(json.dumps(data))
        return str(path)

    return write


def hf_params(c: dict) -> int:
    """Parameters of a llama/mistral/mixtral/qwen2 config.json in its own field names (closed form)."""
    h, inter, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    heads = c["num_attention_heads"]
    d = h // heads
    kv = c.get("num_key_value_heads", heads) * d
    attn = 2 * h * heads * d + 2 * h * kv                        # q, o; k, v
    if c["model_type"] == "qwen2":
        attn += heads * d + 2 * kv                               # q/k/v biases
    experts = c.get("num_local_experts")
    mlp = 3 * h * inter if experts is None else experts * (3 * h * inter) + h * experts  # + router
    embed = c["vocab_size"] * h * (1 if c.get("tie_word_embeddings") else 2)  # embedding (+ untied LM head)
    return embed + layers * (attn + mlp + 2 * h) + h             # 2 RMSNorms a layer, final norm


# config, published parameter count (HF model card / safetensors total)
PUBLISHED = {
    "Llama-2-70b-hf": (LLAMA2_70B, 68.98e9),
    "Llama-3.3-70B-Instruct": (LLAMA33_70B, 70.55e9),
    "Meta-Llama-3-8B": (LLAMA3_8B, 8.03e9),
    "Mistral-7B-v0.1": (MISTRAL_7B, 7.24e9),
    "Mixtral-8x7B-v0.1": (MIXTRAL_8X7B, 46.7e9),
    "Qwen2.5-7B-Instruct": (QWEN25_7B, 7.61e9),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_formula_and_the_published_size(name, write):
    data, published = PUBLISHED[name]
    w = build(write(data))  # meta: no weights allocated
    counted = sum(p.numel() for p in w.module.parameters())
    assert counted == hf_params(data)
    assert counted == pytest.approx(published, rel=0.01)
    assert {p.device.type for p in w.module.parameters()} == {"meta"}


def test_gpt2_parameter_count_is_the_published_124m(write):
    w = build(write(GPT2))
    assert sum(p.numel() for p in w.module.parameters()) == 124_439_808


def test_gptj_parameter_count_matches_the_formula_and_the_published_6_05b(write):
    c = GPTJ_6B
    d, f = c["n_embd"], 4 * c["n_embd"]
    layer = 2 * d + 4 * d * d + (d * f + f) + (f * d + d)  # LayerNorm; q, k, v, out; fc_in, fc_out with biases
    formula = c["vocab_size"] * d + c["n_layer"] * layer + 2 * d + (d * c["vocab_size"] + c["vocab_size"])
    w = build(write(c))
    counted = sum(p.numel() for p in w.module.parameters())
    assert counted == formula and counted == pytest.approx(6_053_381_344, rel=0.01)  # the model card's count


def test_fields_map_onto_the_builder_configs():
    family, cfg, dtype = config_from_dict(LLAMA2_70B)
    assert (family, dtype, cfg.rope_theta, cfg.rms_norm_eps, cfg.num_kv_heads, cfg.max_positions) == (
        "llama", "float16", 10000.0, 1e-5, 8, 4096)  # rope_theta absent: HF's default
    _, cfg, _ = config_from_dict(LLAMA33_70B)
    assert cfg.rope_scaling.factor == 8.0 and cfg.rope_scaling.original_max_positions == 8192
    _, cfg, _ = config_from_dict(MISTRAL_7B)
    assert cfg.max_positions == 4096  # the sliding window caps the context (module docstring)
    family, cfg, _ = config_from_dict(MIXTRAL_8X7B)
    assert (family, cfg.num_experts, cfg.experts_per_token, cfg.max_positions) == ("mixtral", 8, 2, 32768)
    _, cfg, _ = config_from_dict(QWEN25_7B)
    assert cfg.qkv_bias and not cfg.o_bias and cfg.max_positions == 32768  # use_sliding_window false
    family, cfg, _ = config_from_dict(GPTJ_6B)
    assert (family, cfg.rotary_dim, cfg.intermediate_size, cfg.head_dim) == ("gptj", 64, 16384, 256)
    assert sorted(MODEL_TYPES) == ["gpt2", "gptj", "llama", "mistral", "mixtral", "qwen2"]


@pytest.mark.parametrize("builtin, data, phase, shape", [
    ("llama3-8b", LLAMA3_8B, "prefill", {"seq": 64}),
    ("gpt2", GPT2, "prefill", {"seq": 64}),
    ("mixtral-8x7b", MIXTRAL_8X7B, "decode", {"kv_len": 256}),
])
def test_a_config_equal_to_a_builtin_gives_the_same_totals(builtin, data, phase, shape, write):
    path = write(data)
    mine, ref = (analyze_graph(graph, H100, info) for graph, info in (
        load_graph(ModelRequest(m, phase=phase, batch=2, **shape)) for m in (path, builtin)))
    for key in ("flops", "matrix_flops", "bytes", "weight_bytes", "latency_s"):
        assert mine.totals[key] == ref.totals[key], key
    assert mine.totals["coverage"] == 1.0
    assert mine.model["source"] == path and mine.model["family"] == get_model(builtin).family
    import graphperf

    shaped = graphperf.analyze(path, target=H100, phase=phase, batch=2, **shape)  # the API shapes a config too
    assert shaped.totals["flops"] == ref.totals["flops"]


def test_tiny_qwen2_runs_on_cpu_with_qkv_biases(write):
    data = {**TINY_LLAMA, "model_type": "qwen2", "tie_word_embeddings": True, "torch_dtype": "float32"}
    w = build(write(data), phase="prefill", batch=2, seq=8, device="cpu")
    assert w.dtype == "float32" and w.module.layers[0].attn.q_proj.bias is not None
    assert w.module.layers[0].attn.o_proj.bias is None and w.module.lm_head.weight is w.module.embed_tokens.weight
    with torch.no_grad():
        logits = w.module(*w.args)
    assert tuple(logits.shape) == (2, 8, 128) and torch.isfinite(logits).all()
    assert sum(p.numel() for p in w.module.parameters()) == hf_params(data)


def test_serve_a_config_as_the_builtin_workload(write):
    from graphperf.serve import serve

    shape = dict(batch=2, input_len=32, output_len=9)
    mine = serve(write(TINY_LLAMA), "h100", tp=2, **shape)
    ref = serve("llama3-8b", "h100", tp=2, config="tiny", **shape)
    assert mine.totals == ref.totals and mine.collectives_per_layer == ref.collectives_per_layer


def test_tiny_gptj_runs_decode_as_prefill_and_serves_at_tp2(write):
    """A decode step with the prompt's K/V in the cache gives prefill's last logits (parallel block, partial
    rotary); at tp 2 the rewrite splits fc_in/fc_out like gate/up/down (two all-reduces per layer)."""
    from graphperf.serve import serve

    data = {"model_type": "gptj", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64, "rotary_dim": 8,
            "vocab_size": 128, "torch_dtype": "float32"}
    path = write(data)
    w = build(path, phase="prefill", batch=2, seq=6, device="cpu")
    ids = w.args[0]
    with torch.no_grad():
        ref = w.module(ids)
        # K/V of positions 0..5 from the blocks' own projections, then one decode step at position 5
        cache, x = [], w.module.embed_tokens(ids)
        for block in w.module.layers:
            h = block.ln(x)
            k = block.attn.rotate(torch.stack(block.attn.k_proj(h).split(16, -1), 1), w.module.rotary, 0)
            v = torch.stack(block.attn.v_proj(h).split(16, -1), 1)
            cache.append((k, v))
            x, _ = block(x, w.module.rotary, 0, None)
        logits, _ = w.module(ids[:, 5:6], tuple(cache))
    torch.testing.assert_close(logits[:, 0], ref[:, 5], rtol=1e-4, atol=1e-4)
    res = serve(path, "h100", tp=2, batch=2, input_len=16, output_len=4)
    assert res.totals["fits"] and [c["op"] for c in res.collectives_per_layer] == ["all_reduce", "all_reduce"]


@pytest.mark.parametrize("change, field", [
    ({"model_type": "gpt_neox"}, "model_type"),
    ({"model_type": None}, "model_type"),
    ({"hidden_size": None}, "hidden_size"),
    ({"num_key_value_heads": 3}, "num_key_value_heads"),
    ({"intermediate_size": "big"}, "intermediate_size"),
    ({"head_dim": 256}, "head_dim"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"rope_scaling": {"rope_type": "longrope"}}, "rope_scaling"),
    ({"torch_dtype": "int8"}, "torch_dtype"),
])
def test_a_bad_config_is_a_one_line_usage_error_naming_file_and_field(change, field, write, capsys):
    data = {k: v for k, v in {**LLAMA2_70B, **change}.items() if v is not None}
    path = write(data)
    with pytest.raises(UsageError) as exc:
        get_model(path)
    assert path in str(exc.value) and repr(field) in str(exc.value) and "\n" not in str(exc.value)
    assert main(["analyze", path, "--phase", "decode", "--batch", "8", "--kv-len", "2048"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and path in err and err.count("\n") == 1


def test_unreadable_files_are_usage_errors(write, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    for path in (str(bad), str(tmp_path / "missing" / "config.json"), write([1, 2])):
        with pytest.raises(UsageError, match="json|read|object"):
            load_graph(ModelRequest(path))


def test_cli_analyze_and_serve_take_a_config_path(write, capsys):
    path = write(TINY_LLAMA)
    assert main(["analyze", path, "--phase", "decode", "--batch", "8", "--kv-len", "64", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["source"] == path and "decode batch=8 kv_len=64" in report["model"]["description"]
    assert main(["serve", path, "--tp", "2", "--batch", "2", "--input-len", "32", "--output-len", "9",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["fits"] is True
