"""Vision Transformer (Dosovitskiy et al. 2021) in plain PyTorch.

Patch embedding as a strided ``Conv2d``, a learned class token prepended, learned
position embeddings, pre-LayerNorm encoder blocks (bidirectional SDPA, GELU (erf) MLP),
final LayerNorm and a linear classifier on the class token (timm
``vit_base_patch16_224``; the original JAX ViT-B/16 ImageNet model).

Phase ``forward``: ``forward(images[B, 3, H, W]) -> logits[B, classes]`` with
``H = W = image_size``; the sequence is ``(image_size / patch)^2 + 1`` tokens (197 for
ViT-B/16 at 224), fixed by the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import EncoderSelfAttention
from .registry import ModelSpec, example_tensor

__all__ = ["ViTConfig", "ViT", "SPECS"]


@dataclass(frozen=True)
class ViTConfig:
    image_size: int
    patch_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_size: int
    num_classes: int
    layer_norm_eps: float = 1e-6

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.attn_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.attn = EncoderSelfAttention(d, cfg.num_heads)
        self.mlp_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(d, cfg.mlp_size)
        self.fc2 = nn.Linear(cfg.mlp_size, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_norm(x))))


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image size {cfg.image_size} not a multiple of patch size {cfg.patch_size}")
        d = cfg.hidden_size
        self.patch_embed = nn.Conv2d(3, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.num_patches + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(d, cfg.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2)     # [B, N, d]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def _factory(cfg: ViTConfig, phase, batch, seq, kv_len, dtype, device):
    return ViT(cfg), (example_tensor((batch, 3, cfg.image_size, cfg.image_size), dtype, device),)


# google/vit-base-patch16-224 (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", Table 1
# ViT-Base: 12 layers, hidden 768, MLP 3072, 12 heads, 86M params), ImageNet-1k head, 224x224:
# 86,567,656 params (timm vit_base_patch16_224).
VIT_B16 = ViTConfig(image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12,
                    mlp_size=3072, num_classes=1000)
VIT_TINY = ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_layers=2, num_heads=4,
                     mlp_size=256, num_classes=10)

SPECS = (
    ModelSpec(name="vit-b16", family="vit",
              description="ViT-B/16: 16x16 patches at 224x224 (197 tokens), 12 pre-LN layers, d=768, "
                          "12 heads, MLP 3072, 1000 classes",
              configs={"full": VIT_B16, "tiny": VIT_TINY}, phases=("forward",),
              default_dtype="float32", default_batch=1,
              source="Dosovitskiy et al. 2021, An Image is Worth 16x16 Words; "
                     "huggingface.co/google/vit-base-patch16-224",
              factory=_factory),
)
