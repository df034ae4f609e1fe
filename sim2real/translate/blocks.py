"""Building blocks of the generators and discriminators; AdaIN is a plain function.

Style parameters are always passed as arguments (``adain(x, gamma, beta)``), never
stored on modules, so one decoder call can carry a different style per batch item and
the networks stay pure for DDP and ``torch.compile``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance-normalise ``x`` (B, C, H, W), then scale by ``gamma`` and shift by ``beta`` (B, C)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    x = (x - mean) * torch.rsqrt(var + eps)
    return x * gamma[:, :, None, None] + beta[:, :, None, None]


class LayerNorm2d(nn.Module):
    """MUNIT's layer norm: per-sample statistics over (C, H, W), per-channel affine."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), keepdim=True)
        # rsqrt(var + eps) rather than MUNIT's 1 / (std + eps): the derivative of std is
        # undefined where a feature map is constant (e.g. an all-black input), giving NaN.
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def _norm(kind: str, dim: int) -> nn.Module:
    if kind == "in":
        return nn.InstanceNorm2d(dim, affine=False)
    if kind == "ln":
        return LayerNorm2d(dim)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def _act(kind: str) -> nn.Module:
    return {"relu": nn.ReLU(inplace=False), "lrelu": nn.LeakyReLU(0.2, inplace=False),
            "tanh": nn.Tanh(), "none": nn.Identity()}[kind]


class ConvBlock(nn.Module):
    """Pad, conv, norm, activation (the MUNIT ``Conv2dBlock``)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, norm: str = "none",
                 act: str = "relu", pad_type: str = "reflect"):
        super().__init__()
        self.pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d,
                    "zero": nn.ZeroPad2d}[pad_type](pad)
        self.conv = nn.Conv2d(cin, cout, k, stride, bias=True)
        self.norm = _norm(norm, cout)
        self.act = _act(act)

    def forward(self, x):
        return self.act(self.norm(self.conv(self.pad(x))))


class ResBlock(nn.Module):
    """Two 3x3 convs with instance norm and a skip connection."""

    def __init__(self, dim: int, pad_type: str = "reflect"):
        super().__init__()
        self.c1 = ConvBlock(dim, dim, 3, 1, 1, "in", "relu", pad_type)
        self.c2 = ConvBlock(dim, dim, 3, 1, 1, "in", "none", pad_type)

    def forward(self, x):
        return x + self.c2(self.c1(x))


class AdaINResBlock(nn.Module):
    """A residual block whose two normalisations take style parameters as arguments."""

    def __init__(self, dim: int, pad_type: str = "reflect"):
        super().__init__()
        self.c1 = ConvBlock(dim, dim, 3, 1, 1, "none", "none", pad_type)
        self.c2 = ConvBlock(dim, dim, 3, 1, 1, "none", "none", pad_type)

    def forward(self, x, params: torch.Tensor):
        """``params`` (B, 4 * dim): gamma1, beta1, gamma2, beta2."""
        g1, b1, g2, b2 = params.chunk(4, dim=1)
        y = F.relu(adain(self.c1(x), g1, b1))
        y = adain(self.c2(y), g2, b2)
        return x + y


class MLP(nn.Module):
    """Style code -> AdaIN parameters."""

    def __init__(self, din: int, dout: int, dim: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = []
        d = din
        for _ in range(n_layers - 1):
            layers += [nn.Linear(d, dim), nn.ReLU()]
            d = dim
        layers.append(nn.Linear(d, dout))
        self.net = nn.Sequential(*layers)

    def forward(self, s):
        return self.net(s.flatten(1))
