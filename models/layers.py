"""Building blocks shared by the reference workloads.

Guarantees (graphperf counts what the graph does, so these are written the way
the kernels they stand for work):

- Attention goes through ``F.scaled_dot_product_attention`` on 4-D ``[B, H, L, D]``
  tensors by default, so the captured graph holds one attention node (ATen
  ``scaled_dot_product_attention``, ONNX ``Attention``). Grouped-query attention passes
  K/V with fewer heads and ``enable_gqa=True``; K/V are never repeated.
- ``build(..., attention="eager")`` builds the same models with the unfused attention of
  Hugging Face's ``eager_attention_forward`` instead: ``q @ k^T`` scaled, an additive
  causal mask (built per layer from ``full`` + ``triu``), softmax, ``@ v``, K/V repeated to
  the query heads (``repeat_kv``: expand + reshape, a copy) in the model dtype. Its
  score matrices reach memory: the workload the what-if attention fusion starts from.
- RMSNorm is ``x * rsqrt(mean(x^2) + eps) * w`` in the model dtype (no float32
  upcast), as the brief of ``models/`` fixes it.
- Rotary embeddings read precomputed ``cos``/``sin`` buffers sliced at static
  positions: no position arithmetic happens in the graph.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "RMSNorm",
    "Rotary",
    "Llama3RopeScaling",
    "SwiGLU",
    "EncoderSelfAttention",
    "attend_cached",
    "cache_start",
    "run_layers",
    "decoder_output",
    "split_heads",
    "merge_heads",
    "sdpa",
    "eager_attention",
    "ATTENTION_KERNELS",
    "attention_kernel",
    "attention_implementation",
]


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, L, H*D] -> [B, H, L, D]`` (a view)."""
    b, length, width = x.shape
    return x.view(b, length, heads, width // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, H, L, D] -> [B, L, H*D]`` (materialises the transpose, as eager PyTorch does)."""
    b, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(b, length, heads * dim)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool) -> torch.Tensor:
    """Scaled dot-product attention; GQA when K/V carry fewer heads than Q."""
    if k.shape[1] == q.shape[1]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"query heads {q.shape[1]} not a multiple of key/value heads {k.shape[1]}")
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)


def eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool) -> torch.Tensor:
    """Unfused attention as HF ``eager_attention_forward``: scores and probabilities reach memory."""
    heads, kv_heads = q.shape[1], k.shape[1]
    if heads % kv_heads:
        raise ValueError(f"query heads {heads} not a multiple of key/value heads {kv_heads}")
    if heads != kv_heads:  # HF repeat_kv: [B, Hkv, S, D] -> [B, H, S, D]
        b, _, s, d = k.shape
        k = k[:, :, None].expand(b, kv_heads, heads // kv_heads, s, d).reshape(b, heads, s, d)
        v = v[:, :, None].expand(b, kv_heads, heads // kv_heads, s, v.shape[-1]).reshape(b, heads, s, v.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    if causal:
        length, span = q.shape[-2], k.shape[-2]
        mask = torch.full((length, span), float("-inf"), dtype=q.dtype, device=q.device).triu(span - length + 1)
        scores = scores + mask
    return torch.matmul(torch.softmax(scores, dim=-1), v)


ATTENTION_KERNELS = {"sdpa": sdpa, "eager": eager_attention}
_attention = ["sdpa"]


@contextlib.contextmanager
def attention_implementation(name: str):
    """Modules constructed inside use attention ``name`` (``sdpa`` or ``eager``)."""
    if name not in ATTENTION_KERNELS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_KERNELS)}, got {name!r}")
    _attention.append(name)
    try:
        yield
    finally:
        _attention.pop()


def attention_kernel():
    """The attention function for a module being constructed now (see `attention_implementation`)."""
    return ATTENTION_KERNELS[_attention[-1]]


def attend_cached(attend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past):
    """(attention output, present) of a decoder: without a KV cache (`past` None) causal attention over `k`, `v`
    and no present; in decode, the new queries attend the cache `past` = (k, v), and (k, v) are the present."""
    if past is None:
        return attend(q, k, v, causal=True), None
    return attend(q, past[0], past[1], causal=False), (k, v)


def cache_start(past_key_values) -> int:
    """The position of a step's first token: 0 in prefill (no cache), ``kv_len - 1`` in a decode step (the cache
    ``[B, Hkv, kv_len, D]`` already holds the new token's slot)."""
    return 0 if past_key_values is None else past_key_values[0][0].shape[2] - 1


def run_layers(layers, x: torch.Tensor, past_key_values, *args):
    """`x` through every decoder layer, each called as ``layer(x, *args, past)`` with its own cache entry (None in
    prefill); returns (x, the layers' presents)."""
    present = []
    for i, layer in enumerate(layers):
        x, kv = layer(x, *args, None if past_key_values is None else past_key_values[i])
        present.append(kv)
    return x, tuple(present)


def decoder_output(logits: torch.Tensor, present: tuple, past_key_values):
    """A decoder's return: the logits in prefill, (logits, presents) in a decode step."""
    return logits if past_key_values is None else (logits, present)


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich 2019), Llama style."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


@dataclass(frozen=True)
class Llama3RopeScaling:
    """Llama 3.1 long-context RoPE scaling (HF ``rope_scaling`` with ``rope_type="llama3"``)."""

    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_positions: int = 8192


def _llama3_scaled_inv_freq(inv_freq: torch.Tensor, scaling: Llama3RopeScaling) -> torch.Tensor:
    """Llama 3.1 frequency scaling (Meta reference ``apply_scaling``)."""
    factor = scaling.factor
    low, high = scaling.low_freq_factor, scaling.high_freq_factor
    old_context = scaling.original_max_positions
    wavelen = 2 * math.pi / inv_freq
    low_wavelen, high_wavelen = old_context / low, old_context / high
    smooth = (old_context / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    out = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, smoothed, out)


class Rotary(nn.Module):
    """Rotary position embedding (Su et al. 2021) in the rotate-half layout used by HF Llama.

    ``cos`` and ``sin`` are ``[max_positions, head_dim]`` buffers (not parameters); a
    forward pass slices rows ``start:start+L`` of them, a view at a static offset.
    """

    def __init__(self, head_dim: int, max_positions: int, theta: float, scaling: Llama3RopeScaling | None = None):
        super().__init__()
        dtype = torch.get_default_dtype()
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        if scaling is not None:
            inv_freq = _llama3_scaled_inv_freq(inv_freq, scaling)
        freqs = torch.outer(torch.arange(max_positions, dtype=torch.float32), inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos", emb.cos().to(dtype), persistent=False)
        self.register_buffer("sin", emb.sin().to(dtype), persistent=False)

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Rotate ``x`` of shape ``[B, H, L, D]`` holding positions ``start .. start+L-1``."""
        length = x.shape[2]
        cos = self.cos[start : start + length]
        sin = self.sin[start : start + length]
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin


class SwiGLU(nn.Module):
    """Gated MLP ``down(silu(gate(x)) * up(x))`` (Shazeer 2020), bias-free as in Llama."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class EncoderSelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with biased q/k/v/output projections (BERT, ViT)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} not divisible by {heads} heads")
        self.heads = heads
        self.attend = attention_kernel()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = split_heads(self.query(x), self.heads)
        k = split_heads(self.key(x), self.heads)
        v = split_heads(self.value(x), self.heads)
        return self.output(merge_heads(self.attend(q, k, v, causal=False)))
