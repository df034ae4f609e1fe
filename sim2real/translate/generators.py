"""Generators: a styleless sim generator and a real generator with an 8-D style code.

Images are float tensors in [-1, 1], (B, 3, H, W) with H and W multiples of
``2 ** n_downsample``. Translation sim -> real is ``real.decode(sim.encode(x), style)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import MLP, AdaINResBlock, ConvBlock, ResBlock
from .config import ModelConfig


class ContentEncoder(nn.Module):
    """7x7 conv, strided down-samplings, residual blocks (instance norm); optional narrowing."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        dim = m.gen_dim
        layers: list[nn.Module] = [ConvBlock(3, dim, 7, 1, 3, "in", "relu", m.pad_type)]
        for _ in range(m.n_downsample):
            layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, "in", "relu", m.pad_type))
            dim *= 2
        layers += [ResBlock(dim, m.pad_type) for _ in range(m.n_res)]
        if m.content_channels:
            layers.append(nn.Conv2d(dim, m.content_channels, 1))
        self.net = nn.Sequential(*layers)
        self.out_dim = dim

    def forward(self, x):
        return self.net(x)


class StyleEncoder(nn.Module):
    """Convs down to a global average, then a 1x1 conv to the style code (no normalisation)."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        dim = m.gen_dim
        layers: list[nn.Module] = [ConvBlock(3, dim, 7, 1, 3, "none", "relu", m.pad_type)]
        for i in range(m.style_n_downsample):
            nxt = dim * 2 if i < 2 else dim
            layers.append(ConvBlock(dim, nxt, 4, 2, 1, "none", "relu", m.pad_type))
            dim = nxt
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, m.style_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten(1)


class _Upsampler(nn.Module):
    """Nearest x2 then 5x5 conv with layer norm, repeated; 7x7 conv to RGB with tanh."""

    def __init__(self, dim: int, m: ModelConfig):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(m.n_downsample):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       ConvBlock(dim, dim // 2, 5, 1, 2, "ln", "relu", m.pad_type)]
            dim //= 2
        layers.append(ConvBlock(dim, 3, 7, 1, 3, "none", "tanh", m.pad_type))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def _widen(m: ModelConfig, dim: int) -> nn.Module:
    # A narrowed content code goes back to the decoder's width through a 1x1 conv.
    return nn.Conv2d(m.content_channels, dim, 1) if m.content_channels else nn.Identity()


class SimGenerator(nn.Module):
    """The styleless sim generator: content encoder and a decoder with plain residual blocks."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.enc = ContentEncoder(m)
        dim = self.enc.out_dim
        self.widen = _widen(m, dim)
        self.res = nn.Sequential(*[ResBlock(dim, m.pad_type) for _ in range(m.n_res)])
        self.up = _Upsampler(dim, m)

    def encode(self, x):
        return self.enc(x)

    def decode(self, content, guide=None):
        """``guide`` (the image being translated) is unused: the bilateral family's signature."""
        return self.up(self.res(self.widen(content)))


class RealGenerator(nn.Module):
    """Content encoder, style encoder, and a decoder whose AdaIN parameters come from an MLP."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.style_dim = m.style_dim
        self.input_noise = m.real_input_noise
        self.enc = ContentEncoder(m)
        self.enc_style = StyleEncoder(m)
        dim = self.enc.out_dim
        self.widen = _widen(m, dim)
        self.res = nn.ModuleList([AdaINResBlock(dim, m.pad_type) for _ in range(m.n_res)])
        self.n_adain = 4 * dim * m.n_res
        self.mlp = MLP(m.style_dim, self.n_adain, m.mlp_dim, m.n_mlp)
        self.up = _Upsampler(dim, m)

    def encode_content(self, x, noise: torch.Tensor | None = None):
        """Content code; ``noise`` ~ N(0, 1) like ``x`` is scaled by ``real_input_noise`` and added
        (the method's code does this while training; pass None at inference)."""
        if noise is not None and self.input_noise > 0:
            x = x + self.input_noise * noise
        return self.enc(x)

    def encode_style(self, x):
        return self.enc_style(x)

    def encode(self, x, noise: torch.Tensor | None = None):
        return self.encode_content(x, noise), self.encode_style(x)

    def decode(self, content, style, guide=None):
        """``content`` (B, C, h, w) and ``style`` (B, style_dim) -> images (B, 3, H, W); ``guide`` unused."""
        params = self.mlp(style)
        x = self.widen(content)
        for block, p in zip(self.res, params.chunk(len(self.res), dim=1)):
            x = block(x, p)
        return self.up(x)

    def decode_multi(self, content, styles, guide=None):
        """Decode K styles per content in one batched call (``guide`` unused).

        ``content`` (B, C, h, w), ``styles`` (B, K, style_dim) -> (B, K, 3, H, W).
        """
        b, k = styles.shape[:2]
        out = self.decode(content.repeat_interleave(k, dim=0), styles.reshape(b * k, -1))
        return out.reshape(b, k, *out.shape[1:])


class SimToReal(nn.Module):
    """The inference model: sim content encoder + real style encoder, MLP and decoder."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.style_dim = m.style_dim
        self.sim = SimGenerator(m)
        self.real = RealGenerator(m)
        # Only the parts used for sim -> real are kept; the rest is dropped to save space.
        del self.sim.widen, self.sim.res, self.sim.up, self.real.enc

    def content(self, x):
        return self.sim.encode(x)

    def style(self, x):
        return self.real.encode_style(x)

    def decode_multi(self, content, styles):
        return self.real.decode_multi(content, styles)

    def forward(self, x, styles):
        """Sim images (B, 3, H, W) and styles (B, K, style_dim) -> (B, K, 3, H, W)."""
        return self.decode_multi(self.content(x), styles)


def inference_state(sim_state: dict, real_state: dict) -> dict:
    """The state dict of a :class:`SimToReal` taken from full generators' state dicts."""
    state = {f"sim.{k}": v for k, v in sim_state.items() if k.startswith("enc.")}
    state.update({f"real.{k}": v for k, v in real_state.items() if not k.startswith("enc.")})
    return state
