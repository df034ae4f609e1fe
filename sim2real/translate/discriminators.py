"""Multi-scale PatchGAN discriminators (MUNIT): the same net on 1, 1/2, 1/4 ... of the image."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .blocks import ConvBlock
from .config import ModelConfig


class PatchDiscriminator(nn.Module):
    """Strided 4x4 convs with leaky ReLU, then a 1x1 conv to one score per patch."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        dim = m.dis_dim
        layers: list[nn.Module] = [ConvBlock(3, dim, 4, 2, 1, "none", "lrelu", m.pad_type)]
        for _ in range(m.dis_n_layer - 1):
            layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, "none", "lrelu", m.pad_type))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` patch discriminators on successively average-pooled images."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.nets = nn.ModuleList([PatchDiscriminator(m) for _ in range(m.dis_num_scales)])

    def forward(self, x):
        """A list of score maps, one per scale."""
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(net(x))
        return outs
