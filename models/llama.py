"""Llama-family decoder-only LLMs (Llama 2, Llama 3, Llama 3.1) in plain PyTorch.

Architecture (Touvron et al. 2023; Grattafiori et al. 2024): token embedding, N
pre-norm decoder layers (RMSNorm, grouped-query attention with rotary positions,
RMSNorm, SwiGLU MLP), final RMSNorm, untied LM head. No biases (``qkv_bias`` / ``o_bias`` add
them to the attention projections, for Qwen2 and HF configs with ``attention_bias``).

Phases and their inputs/outputs:

``prefill(batch, seq)``
    ``forward(input_ids[B, S]) -> logits[B, S, vocab]``: causal attention over the
    prompt (SDPA ``is_causal=True``). Logits are computed for every prompt position,
    as ``LlamaForCausalLM`` does (a serving engine that keeps only the last position
    would spend less on the LM head).

``decode(batch, kv_len)``
    ``forward(input_ids[B, 1], past_key_values) -> (logits[B, 1, vocab], present)``.
    ``past_key_values`` holds one ``(K, V)`` pair per layer, each ``[B, Hkv, kv_len, D]``;
    ``kv_len`` is the context the new token attends to, *including* the token itself
    (its position is ``kv_len - 1``). The step computes the new token's K/V projections
    and returns them as ``present``: one ``(K, V)`` pair per layer, each
    ``[B, Hkv, 1, D]``. A serving engine writes those entries into its cache in place
    (vLLM ``reshape_and_cache``) before attention reads the ``kv_len`` slots, so the graph
    neither concatenates nor copies the cache: attention (SDPA, no mask) reads the
    cache inputs directly. (Numerically, slot ``kv_len - 1`` of the given cache stands in
    for the new token's entry.)

Grouped-query attention passes K/V with ``Hkv`` heads and ``enable_gqa=True``; the
cache is never repeated to ``H`` heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import (Llama3RopeScaling, RMSNorm, Rotary, SwiGLU, attend_cached, attention_kernel, cache_start,
                     decoder_output, merge_heads, run_layers, split_heads)
from .registry import ModelSpec, decoder_inputs

__all__ = ["LlamaConfig", "LlamaModel", "SPECS", "make_decoder_workload"]


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_positions: int
    rope_theta: float
    rms_norm_eps: float
    rope_scaling: Llama3RopeScaling | None = None
    tie_embeddings: bool = False
    qkv_bias: bool = False  # q/k/v projections with bias (Qwen2; HF Llama's attention_bias)
    o_bias: bool = False  # o_proj with bias (HF Llama's attention_bias)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


KVPair = tuple[torch.Tensor, torch.Tensor]


class Attention(nn.Module):
    """Causal grouped-query self-attention with rotary positions and an explicit KV cache."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        if cfg.hidden_size % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
            raise ValueError(f"bad head layout: hidden {cfg.hidden_size}, heads {cfg.num_heads}, "
                             f"kv heads {cfg.num_kv_heads}")
        self.heads, self.kv_heads, dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.attend = attention_kernel()
        self.q_proj = nn.Linear(cfg.hidden_size, self.heads * dim, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, self.kv_heads * dim, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, self.kv_heads * dim, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(self.heads * dim, cfg.hidden_size, bias=cfg.o_bias)

    def forward(self, x: torch.Tensor, rotary: Rotary, start: int,
                past: KVPair | None) -> tuple[torch.Tensor, KVPair | None]:
        q = rotary(split_heads(self.q_proj(x), self.heads), start)
        k = rotary(split_heads(self.k_proj(x), self.kv_heads), start)
        v = split_heads(self.v_proj(x), self.kv_heads)
        out, present = attend_cached(self.attend, q, k, v, past)
        return self.o_proj(merge_heads(out)), present


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, mlp: nn.Module) -> None:
        super().__init__()
        self.input_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.attn = Attention(cfg)
        self.post_attention_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = mlp

    def forward(self, x, rotary, start, past):
        h, present = self.attn(self.input_norm(x), rotary, start, past)
        x = x + h
        return x + self.mlp(self.post_attention_norm(x)), present


class LlamaModel(nn.Module):
    """Llama causal LM; see the module docstring for the prefill/decode signatures."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.rotary = Rotary(cfg.head_dim, cfg.max_positions, cfg.rope_theta, cfg.rope_scaling)
        self.layers = nn.ModuleList(DecoderLayer(cfg, self.make_mlp(cfg)) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def make_mlp(self, cfg: LlamaConfig) -> nn.Module:
        return SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, input_ids: torch.Tensor, past_key_values: tuple[KVPair, ...] | None = None):
        # Positions are static: 0.. for prefill, kv_len - 1 for a decode step.
        start = cache_start(past_key_values)
        x, present = run_layers(self.layers, self.embed_tokens(input_ids), past_key_values, self.rotary, start)
        return decoder_output(self.lm_head(self.norm(x)), present, past_key_values)


def make_decoder_workload(model_cls):
    """Factory for decoder-only LLMs whose forward follows the module docstring."""

    def factory(cfg, phase, batch, seq, kv_len, dtype, device):
        return model_cls(cfg), decoder_inputs(phase, batch, seq, kv_len, cfg.vocab_size, cfg.num_kv_heads,
                                              cfg.head_dim, cfg.num_layers, dtype, device)

    return factory


def _tiny(num_kv_heads: int, rope_theta: float, rope_scaling=None) -> LlamaConfig:
    return LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=192, num_layers=2,
                       num_heads=4, num_kv_heads=num_kv_heads, max_positions=256,
                       rope_theta=rope_theta, rms_norm_eps=1e-5, rope_scaling=rope_scaling)


# meta-llama/Llama-2-7b-hf config.json (Touvron et al. 2023, "Llama 2", Table 1): 6.74B params.
LLAMA2_7B = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_layers=32,
                        num_heads=32, num_kv_heads=32, max_positions=4096, rope_theta=10000.0,
                        rms_norm_eps=1e-5)
# meta-llama/Meta-Llama-3-8B config.json (Meta Llama 3 model card, April 2024): 8.03B params.
LLAMA3_8B = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_layers=32,
                        num_heads=32, num_kv_heads=8, max_positions=8192, rope_theta=500000.0,
                        rms_norm_eps=1e-5)
# meta-llama/Meta-Llama-3-70B config.json (Meta Llama 3 model card): 70.6B params.
LLAMA3_70B = LlamaConfig(vocab_size=128256, hidden_size=8192, intermediate_size=28672, num_layers=80,
                         num_heads=64, num_kv_heads=8, max_positions=8192, rope_theta=500000.0,
                         rms_norm_eps=1e-5)
# meta-llama/Llama-3.1-405B config.json (Grattafiori et al. 2024, "The Llama 3 Herd of Models",
# Table 3: 126 layers, model dim 16384, FFN 53248, 128 heads, 8 KV heads): 405.9B params.
LLAMA3_405B = LlamaConfig(vocab_size=128256, hidden_size=16384, intermediate_size=53248, num_layers=126,
                          num_heads=128, num_kv_heads=8, max_positions=131072, rope_theta=500000.0,
                          rms_norm_eps=1e-5, rope_scaling=Llama3RopeScaling())

_factory = make_decoder_workload(LlamaModel)


def _spec(name: str, description: str, full: LlamaConfig, tiny: LlamaConfig, source: str) -> ModelSpec:
    return ModelSpec(name=name, family="llama", description=description,
                     configs={"full": full, "tiny": tiny}, phases=("prefill", "decode"),
                     default_dtype="bfloat16", default_batch=1, default_seq=2048, default_kv_len=2048,
                     source=source, factory=_factory)


SPECS = (
    _spec("llama2-7b", "Llama 2 7B: 32 layers, d=4096, 32 heads (MHA), SwiGLU 11008, vocab 32000",
          LLAMA2_7B, _tiny(num_kv_heads=4, rope_theta=10000.0),
          "Touvron et al. 2023, Llama 2; huggingface.co/meta-llama/Llama-2-7b-hf"),
    _spec("llama3-8b", "Llama 3 8B: 32 layers, d=4096, 32 heads / 8 KV heads (GQA), SwiGLU 14336, vocab 128256",
          LLAMA3_8B, _tiny(num_kv_heads=2, rope_theta=500000.0),
          "Meta Llama 3 model card; huggingface.co/meta-llama/Meta-Llama-3-8B"),
    _spec("llama3-70b", "Llama 3 70B: 80 layers, d=8192, 64 heads / 8 KV heads (GQA), SwiGLU 28672, vocab 128256",
          LLAMA3_70B, _tiny(num_kv_heads=2, rope_theta=500000.0),
          "Meta Llama 3 model card; huggingface.co/meta-llama/Meta-Llama-3-70B"),
    _spec("llama3-405b", "Llama 3.1 405B: 126 layers, d=16384, 128 heads / 8 KV heads (GQA), SwiGLU 53248, "
          "vocab 128256, 128K context",
          LLAMA3_405B, _tiny(num_kv_heads=2, rope_theta=500000.0,
                             rope_scaling=Llama3RopeScaling(original_max_positions=64)),
          "Grattafiori et al. 2024, The Llama 3 Herd of Models; huggingface.co/meta-llama/Llama-3.1-405B"),
)
