"""GPT-2 (Radford et al. 2019) decoder-only LLM in plain PyTorch.

Learned token and position embeddings, pre-LayerNorm blocks (fused q/k/v projection,
causal SDPA, GELU-tanh MLP), final LayerNorm, LM head tied to the token embedding.
All linear layers carry biases, as in the released checkpoints.

Phases follow :mod:`.llama`: ``prefill`` maps ``input_ids[B, S]`` to
``logits[B, S, vocab]``; ``decode`` maps ``input_ids[B, 1]`` and one ``(K, V)`` pair
per layer (``[B, H, kv_len, D]``, ``kv_len`` counting the current token at position
``kv_len - 1``) to ``(logits[B, 1, vocab], present)``, where ``present`` holds the new
token's ``(K, V)`` per layer, ``[B, H, 1, D]``, for the serving engine to write into its
cache. The cache is read in place, never concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (attend_cached, attention_kernel, cache_start, decoder_output, merge_heads, run_layers,
                     split_heads)
from .registry import ModelSpec, decoder_inputs

__all__ = ["GPT2Config", "GPT2Model", "SPECS"]


@dataclass(frozen=True)
class GPT2Config:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    max_positions: int
    layer_norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_kv_heads(self) -> int:
        return self.num_heads


class Block(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.heads = cfg.num_heads
        self.attend = attention_kernel()
        self.ln_1 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor, past):
        q, k, v = self.c_attn(self.ln_1(x)).split(x.shape[-1], dim=-1)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        out, present = attend_cached(self.attend, q, k, v, past)
        x = x + self.attn_proj(merge_heads(out))
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, present


class GPT2Model(nn.Module):
    """GPT-2 LM head model; see the module docstring for the prefill/decode signatures."""

    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.wpe = nn.Embedding(cfg.max_positions, cfg.hidden_size)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.ln_f = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, past_key_values=None):
        start = cache_start(past_key_values)
        length = input_ids.shape[1]
        x, present = run_layers(self.blocks, self.wte(input_ids) + self.wpe.weight[start : start + length],
                                past_key_values)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied LM head
        return decoder_output(logits, present, past_key_values)


def _factory(cfg: GPT2Config, phase, batch, seq, kv_len, dtype, device):
    return GPT2Model(cfg), decoder_inputs(phase, batch, seq, kv_len, cfg.vocab_size, cfg.num_heads,
                                          cfg.head_dim, cfg.num_layers, dtype, device)


# openai-community/gpt2 config.json (Radford et al. 2019, "Language Models are Unsupervised
# Multitask Learners", smallest model: 12 layers, d_model 768): 124,439,808 params.
GPT2_124M = GPT2Config(vocab_size=50257, hidden_size=768, num_layers=12, num_heads=12, max_positions=1024)
GPT2_TINY = GPT2Config(vocab_size=128, hidden_size=64, num_layers=2, num_heads=4, max_positions=128)

SPECS = (
    ModelSpec(name="gpt2", family="gpt2",
              description="GPT-2 124M: 12 layers, d=768, 12 heads, learned positions, tied LM head, vocab 50257",
              configs={"full": GPT2_124M, "tiny": GPT2_TINY}, phases=("prefill", "decode"),
              default_dtype="bfloat16", default_batch=1, default_seq=1024, default_kv_len=1024,
              source="Radford et al. 2019; huggingface.co/openai-community/gpt2", factory=_factory),
)
