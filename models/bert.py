"""BERT encoder (Devlin et al. 2019) in plain PyTorch.

Embeddings (token + learned position + token type, LayerNorm), post-LayerNorm encoder
layers (bidirectional SDPA with no mask, GELU (erf) MLP) and the tanh pooler on the
first token: ``BertModel``, without a task head.

Phase ``forward``: ``forward(input_ids[B, S], token_type_ids[B, S]) ->
(sequence_output[B, S, d], pooled_output[B, d])``. Every token is valid (no padding
mask), so attention is plain non-causal SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import EncoderSelfAttention
from .registry import ModelSpec, token_ids

__all__ = ["BertConfig", "BertModel", "SPECS"]


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.attn = EncoderSelfAttention(d, cfg.num_heads)
        self.attn_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(d, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, d)
        self.output_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn_norm(x + self.attn(x))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


class BertModel(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, d)
        self.position_embeddings = nn.Embedding(cfg.max_positions, d)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, d)
        self.embedding_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_layers))
        self.pooler = nn.Linear(d, d)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor):
        length = input_ids.shape[1]
        x = (self.word_embeddings(input_ids) + self.position_embeddings.weight[:length]
             + self.token_type_embeddings(token_type_ids))
        x = self.embedding_norm(x)
        for layer in self.layers:
            x = layer(x)
        return x, torch.tanh(self.pooler(x[:, 0]))


def _factory(cfg: BertConfig, phase, batch, seq, kv_len, dtype, device):
    ids = token_ids(batch, seq, cfg.vocab_size, device)
    types = token_ids(batch, seq, cfg.type_vocab_size, device)
    return BertModel(cfg), (ids, types)


# google-bert/bert-base-uncased config.json (Devlin et al. 2019, BERT-Base: L=12, H=768, A=12,
# 110M params): 109,482,240 params with the pooler.
BERT_BASE = BertConfig(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
                       intermediate_size=3072, max_positions=512)
BERT_TINY = BertConfig(vocab_size=128, hidden_size=64, num_layers=2, num_heads=4,
                       intermediate_size=256, max_positions=128)

SPECS = (
    ModelSpec(name="bert-base", family="bert",
              description="BERT-Base (uncased): 12 post-LN layers, d=768, 12 heads, GELU MLP 3072, vocab 30522",
              configs={"full": BERT_BASE, "tiny": BERT_TINY}, phases=("forward",),
              default_dtype="float32", default_batch=1, default_seq=128,
              source="Devlin et al. 2019, BERT; huggingface.co/google-bert/bert-base-uncased",
              factory=_factory),
)
