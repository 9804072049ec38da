"""Mixtral sparse mixture-of-experts LLM (Jiang et al. 2024) with static-shape routing.

Same decoder as :mod:`.llama` (RMSNorm, GQA with rotary positions, the prefill/decode
signatures and KV-cache convention documented there), with every SwiGLU MLP replaced
by a top-2 mixture of 8 SwiGLU experts.

Routing and dispatch (static shapes, so ``torch.export`` can trace it; a data-dependent
``nonzero`` cannot be exported):

1. Router: ``softmax(x @ W_router)`` over the ``E`` experts per token, ``topk(k)`` of it,
   renormalised over the chosen ``k`` (Mixtral's convention). Scattering the chosen
   weights into a zero ``[T, E]`` matrix gives each token's combine weights.
2. Capacity: each expert processes ``C = ceil(k * T / E)`` token slots (capacity factor
   1.0, as in GShard/Switch), so the expert work in the graph is ``E * C ~= k * T``
   tokens: the average active work, ``k`` experts per token. Each expert takes the ``C``
   tokens with the highest routing weight among those routed to it (``topk`` over the
   token axis of the weight matrix). Tokens beyond an expert's capacity are dropped for
   that expert (they keep their other expert and the residual); slots left over when
   fewer than ``C`` tokens chose an expert hold weight 0 and contribute nothing.
   ``C`` rounds up, so tiny token counts overstate the work: a decode step at batch 1
   (T=1) runs 8 expert slots for 2 routed tokens, and reads all 8 experts' weights.
3. Experts run as grouped matmuls over stacked weights ``[E, D, F]`` / ``[E, F, D]``
   (``torch.bmm`` on the gathered ``[E, C, D]`` tokens), outputs are scaled by their
   routing weight and summed back into ``[T, D]`` with ``index_add``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .llama import LlamaConfig, LlamaModel, make_decoder_workload
from .registry import ModelSpec

__all__ = ["MixtralConfig", "MixtralModel", "SparseMoE", "SPECS"]


@dataclass(frozen=True)
class MixtralConfig(LlamaConfig):
    num_experts: int = 8
    experts_per_token: int = 2


class SparseMoE(nn.Module):
    """Token-choice top-k mixture of SwiGLU experts with capacity-based static dispatch."""

    def __init__(self, dim: int, hidden: int, num_experts: int, top_k: int) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"experts per token must be in 1..{num_experts}, got {top_k}")
        self.num_experts, self.top_k = num_experts, top_k
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.w_gate = nn.Parameter(torch.empty(num_experts, dim, hidden))
        self.w_up = nn.Parameter(torch.empty(num_experts, dim, hidden))
        self.w_down = nn.Parameter(torch.empty(num_experts, hidden, dim))
        for w in (self.w_gate, self.w_up, self.w_down):
            nn.init.normal_(w, std=w.shape[1] ** -0.5)

    def capacity(self, tokens: int) -> int:
        return math.ceil(self.top_k * tokens / self.num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xt = x.reshape(-1, shape[-1])                              # [T, D]
        probs = self.router(xt).softmax(dim=-1)                    # [T, E]
        top_w, top_i = probs.topk(self.top_k, dim=-1)              # [T, k]
        top_w = top_w / top_w.sum(dim=-1, keepdim=True)
        combine = torch.zeros_like(probs).scatter(1, top_i, top_w)  # [T, E], 0 where not routed
        gate, token = combine.t().topk(self.capacity(xt.shape[0]), dim=1)  # [E, C]
        xe = xt[token]                                             # [E, C, D]
        h = F.silu(torch.bmm(xe, self.w_gate)) * torch.bmm(xe, self.w_up)
        ye = torch.bmm(h, self.w_down) * gate.unsqueeze(-1)        # [E, C, D]
        out = torch.zeros_like(xt).index_add(0, token.reshape(-1), ye.reshape(-1, shape[-1]))
        return out.view(shape)


class MixtralModel(LlamaModel):
    """Mixtral causal LM: the Llama decoder with :class:`SparseMoE` MLPs."""

    def make_mlp(self, cfg: MixtralConfig) -> nn.Module:
        return SparseMoE(cfg.hidden_size, cfg.intermediate_size, cfg.num_experts, cfg.experts_per_token)


# mistralai/Mixtral-8x7B-v0.1 config.json (Jiang et al. 2024, "Mixtral of Experts", Table 1:
# dim 4096, 32 layers, 32 heads / 8 KV heads, hidden 14336, 8 experts, top-2, vocab 32000,
# context 32768): 46.7B params, 12.9B active per token.
MIXTRAL_8X7B = MixtralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_layers=32,
                             num_heads=32, num_kv_heads=8, max_positions=32768, rope_theta=1e6,
                             rms_norm_eps=1e-5, num_experts=8, experts_per_token=2)
MIXTRAL_TINY = MixtralConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_layers=2,
                             num_heads=4, num_kv_heads=2, max_positions=256, rope_theta=1e6,
                             rms_norm_eps=1e-5, num_experts=8, experts_per_token=2)

SPECS = (
    ModelSpec(name="mixtral-8x7b", family="mixtral",
              description="Mixtral 8x7B: 32 layers, d=4096, GQA 32/8 heads, 8 SwiGLU experts (14336), "
                          "top-2 routing, vocab 32000",
              configs={"full": MIXTRAL_8X7B, "tiny": MIXTRAL_TINY}, phases=("prefill", "decode"),
              default_dtype="bfloat16", default_batch=1, default_seq=2048, default_kv_len=2048,
              source="Jiang et al. 2024, Mixtral of Experts; huggingface.co/mistralai/Mixtral-8x7B-v0.1",
              factory=make_decoder_workload(MixtralModel)),
)
