"""ResNet-50 (He et al. 2016) in plain PyTorch, torchvision layout ("v1.5").

Stem (7x7/2 conv, BatchNorm, ReLU, 3x3/2 max pool), four stages of bottleneck blocks
(1x1, 3x3, 1x1 convolutions, each followed by BatchNorm; the stride sits on the 3x3
conv; a 1x1 projection shortcut opens each stage), global average pool and a linear
classifier. BatchNorm runs in eval mode (running statistics), as at inference.

Phase ``forward``: ``forward(images[B, 3, H, W]) -> logits[B, classes]`` with
``H = W = image_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ModelSpec, example_tensor

__all__ = ["ResNetConfig", "ResNet", "SPECS"]


@dataclass(frozen=True)
class ResNetConfig:
    blocks_per_stage: tuple[int, ...]
    base_width: int
    num_classes: int
    image_size: int
    expansion: int = 4


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int, expansion: int) -> None:
        super().__init__()
        cout = width * expansion
        self.conv1 = _conv_bn(cin, width, 1)
        self.conv2 = _conv_bn(width, width, 3, stride)
        self.conv3 = _conv_bn(width, cout, 1)
        self.shortcut = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv1(x))
        y = F.relu(self.conv2(y))
        y = self.conv3(y)
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        width = cfg.base_width
        self.stem = _conv_bn(3, width, 7, stride=2)
        blocks, cin = [], width
        for stage, count in enumerate(cfg.blocks_per_stage):
            stage_width = width * 2 ** stage
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(Bottleneck(cin, stage_width, stride, cfg.expansion))
                cin = stage_width * cfg.expansion
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, cfg.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(images)), kernel_size=3, stride=2, padding=1)
        x = self.blocks(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _factory(cfg: ResNetConfig, phase, batch, seq, kv_len, dtype, device):
    return ResNet(cfg), (example_tensor((batch, 3, cfg.image_size, cfg.image_size), dtype, device),)


# He et al. 2016, "Deep Residual Learning for Image Recognition", Table 1 (50-layer: [3, 4, 6, 3]
# bottlenecks, widths 64..512, x4 expansion), ImageNet 1000 classes at 224x224; torchvision
# resnet50 layout: 25,557,032 params.
RESNET50 = ResNetConfig(blocks_per_stage=(3, 4, 6, 3), base_width=64, num_classes=1000, image_size=224)
RESNET_TINY = ResNetConfig(blocks_per_stage=(1, 1, 1, 1), base_width=8, num_classes=10, image_size=32)

SPECS = (
    ModelSpec(name="resnet50", family="resnet",
              description="ResNet-50: bottleneck blocks [3, 4, 6, 3], widths 64-512 (x4), 224x224, "
                          "1000 classes",
              configs={"full": RESNET50, "tiny": RESNET_TINY}, phases=("forward",),
              default_dtype="float32", default_batch=1,
              source="He et al. 2016, Deep Residual Learning; torchvision resnet50",
              factory=_factory),
)
