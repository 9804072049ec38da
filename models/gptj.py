"""GPT-J (Wang and Komatsuzaki 2021) decoder-only LLM in plain PyTorch, reached through a Hugging Face
``config.json`` (``model_type: gptj``, :mod:`.hf_config`); it has no registered workload name.

Architecture (``GPTJForCausalLM``): token embedding, N blocks with one pre-LayerNorm feeding attention and the
MLP in parallel (``x + attn(ln(x)) + mlp(ln(x))``), final LayerNorm, untied LM head with bias. Attention:
multi-head, q/k/v/out projections without bias, rotary positions on the first ``rotary_dim`` dimensions of each
head (the rest pass through). MLP: ``fc_out(gelu_tanh(fc_in(x)))`` with biases, ``4 * hidden`` wide unless
``n_inner`` says otherwise.

Module names follow the Llama spelling (``attn.q_proj/k_proj/v_proj/o_proj``, ``mlp.up_proj/down_proj``,
``embed_tokens``, ``lm_head``) so the tensor-parallel rewrite (``passes/shard.py`` ``TP_PLAN``) splits GPT-J
like Llama: fc_in column-parallel, fc_out row-parallel. The rotary layout is :class:`.layers.Rotary`'s
rotate-half; GPT-J rotates interleaved pairs, which costs the same elementwise work (values differ, not costs).

Phases and the KV-cache convention are :mod:`.llama`'s: ``prefill(input_ids[B, S]) -> logits``;
``decode(input_ids[B, 1], past) -> (logits, present)`` with one ``(K, V)`` of ``[B, H, kv_len, D]`` per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (Rotary, attend_cached, attention_kernel, cache_start, decoder_output, merge_heads, run_layers,
                     split_heads)
from .registry import ModelSpec, decoder_inputs

__all__ = ["GPTJConfig", "GPTJModel", "SPEC"]


@dataclass(frozen=True)
class GPTJConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    max_positions: int
    rotary_dim: int
    layer_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_kv_heads(self) -> int:
        return self.num_heads


class Attention(nn.Module):
    def __init__(self, cfg: GPTJConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.heads, self.rotary_dim = cfg.num_heads, cfg.rotary_dim
        self.attend = attention_kernel()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def rotate(self, x: torch.Tensor, rotary: Rotary, start: int) -> torch.Tensor:
        r = self.rotary_dim
        return torch.cat([rotary(x[..., :r], start), x[..., r:]], dim=-1) if r < x.shape[-1] else rotary(x, start)

    def forward(self, x, rotary, start, past):
        q = self.rotate(split_heads(self.q_proj(x), self.heads), rotary, start)
        k = self.rotate(split_heads(self.k_proj(x), self.heads), rotary, start)
        v = split_heads(self.v_proj(x), self.heads)
        out, present = attend_cached(self.attend, q, k, v, past)
        return self.o_proj(merge_heads(out)), present


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.up_proj = nn.Linear(dim, hidden)  # HF fc_in
        self.down_proj = nn.Linear(hidden, dim)  # HF fc_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GPTJConfig) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x, rotary, start, past):
        h = self.ln(x)
        a, present = self.attn(h, rotary, start, past)
        return x + a + self.mlp(h), present


class GPTJModel(nn.Module):
    """GPT-J causal LM; see the module docstring for the prefill/decode signatures."""

    def __init__(self, cfg: GPTJConfig) -> None:
        super().__init__()
        if cfg.hidden_size % cfg.num_heads or not 0 < cfg.rotary_dim <= cfg.head_dim or cfg.rotary_dim % 2:
            raise ValueError(f"bad head layout: hidden {cfg.hidden_size}, heads {cfg.num_heads}, "
                             f"rotary_dim {cfg.rotary_dim}")
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.rotary = Rotary(cfg.rotary_dim, cfg.max_positions, cfg.rope_theta)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, input_ids: torch.Tensor, past_key_values=None):
        start = cache_start(past_key_values)
        x, present = run_layers(self.layers, self.embed_tokens(input_ids), past_key_values, self.rotary, start)
        return decoder_output(self.lm_head(self.norm(x)), present, past_key_values)


def _factory(cfg: GPTJConfig, phase, batch, seq, kv_len, dtype, device):
    return GPTJModel(cfg), decoder_inputs(phase, batch, seq, kv_len, cfg.vocab_size, cfg.num_heads, cfg.head_dim,
                                          cfg.num_layers, dtype, device)


# EleutherAI/gpt-j-6b config.json (Wang and Komatsuzaki 2021): 28 layers, d 4096, 16 heads, rotary_dim 64,
# vocab 50400 (padded from 50257), 2048 positions: 6.05B params.
GPTJ_6B = GPTJConfig(vocab_size=50400, hidden_size=4096, intermediate_size=16384, num_layers=28, num_heads=16,
                     max_positions=2048, rotary_dim=64)

#: The template a gptj config.json fills in (:mod:`.hf_config`); not registered under a name.
SPEC = ModelSpec(name="gpt-j-6b", family="gptj",
                 description="GPT-J 6B: 28 parallel attention+MLP blocks, d=4096, 16 heads, partial rotary (64), "
                             "vocab 50400",
                 configs={"full": GPTJ_6B}, phases=("prefill", "decode"), default_dtype="bfloat16",
                 default_batch=1, default_seq=2048, default_kv_len=2048,
                 source="Wang and Komatsuzaki 2021; huggingface.co/EleutherAI/gpt-j-6b", factory=_factory)
