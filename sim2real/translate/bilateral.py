"""Bilateral-grid generators: the output cannot drop or move what the input image shows.

A small network sees the image squashed to a fixed low resolution (``model.bil_low`` square)
and predicts a grid of local affine colour transforms: ``bil_grid x bil_grid`` cells by
``bil_bins`` guide bins, a 3x4 matrix each. The full-resolution image computes its own guide
``g`` in [0, 1] per pixel (a learned pointwise colour map, or plain luma), and slices the grid by
trilinear interpolation at ``(x, y, g(x, y))``. Every output pixel is then

    out(p) = tanh(atanh(c * rgb(p)) + A(p) @ [rgb(p), 1]),     c = 0.995,

a fixed function of its own input colour and the transform the grid gives at ``p``. The
``atanh`` term makes a zero transform the identity (the network learns a departure from the
input) and ``tanh`` keeps the output in [-1, 1] with a gradient everywhere. A pixel depends on
the other pixels only through the grid, which is ``bil_grid`` cells across whatever the
image size: edges and thin instruments stay where they are, at every resolution, and the cost
at full resolution is a few operations per pixel (guide, slice, 3x4 matrix product).

Multimodal like MUNIT: the real generator's low-resolution features are modulated by an
8-D style code (AdaIN, parameters from an MLP, passed as arguments and never stored on the
modules), so K style codes give K grids and K variants. The sim generator is styleless.

An optional detail branch (``bil_detail`` > 0) adds ``bil_detail * tanh(two 3x3 convs)`` of the
full-resolution image after the affine step (texture, specular), its per-colour gain and offset
set by the style in the real generator. It is bounded (at most 0.25 of the [-1, 1] range, by
config validation), so it cannot paint an instrument away: with the grid fixed, changing every
other pixel moves an output pixel by at most ``2 * bil_detail``.

What structure does not give: a colour transform can still make an instrument and the tissue
behind it alike (or invert their contrast); only its position is guaranteed. Keeping them
distinct is the label-aware losses' job (semantic, PatchNCE).

Interface (mirrors :mod:`.generators`; ``guide`` is the full-resolution image being translated):

- :class:`BilateralSimGenerator`: ``encode(x) -> content``, ``decode(content, guide)``.
- :class:`BilateralRealGenerator`: ``encode(x, noise=None) -> (content, style)``,
  ``encode_content``, ``encode_style(x)``, ``decode(content, style, guide)`` -> (B, 3, H, W),
  ``decode_multi(content, styles, guide)`` -> (B, K, 3, H, W), ``grids(content, styles)``.
- :class:`BilateralSimToReal`: the inference model. ``content(x)`` returns a
  :class:`GuidedContent` (the low-resolution content and the image itself; indexing it
  indexes both), so ``decode_multi(content, styles)`` and ``forward(x, styles)`` keep the
  :class:`.generators.SimToReal` signatures and ``inference.MunitTranslator`` /
  ``translate_batch`` (which index ``content[rows]`` for redraws) need no change.
- :func:`make_generators`, :func:`make_sim_to_real`: the pair / the inference model of either
  family from a :class:`ModelConfig`; :func:`nce_spec`: PatchNCE layers and channels.
- :func:`.generators.inference_state` works unchanged for this family (same ``enc.`` /
  ``enc_style.`` naming).

Content is (B, C, bil_grid, bil_grid) whatever the input size, so ``torch.cat([c_s, c_r])``
and the content reconstruction term work as today.

Where the trainer and inference meet this family: ``Trainer`` builds the pair with
:func:`make_generators` and its PatchNCE heads from :func:`nce_spec` (the low-resolution
convs of the sim content encoder, after the squash, and its last block);
``step_losses.generator_pass`` and ``run_log.sample_grid`` pass every decode its guide, the
image being translated (the cycle decodes take the translations); the MUNIT generators
accept and ignore that ``guide``, so no call site branches on the family.
``inference.load_translator`` builds the model with :func:`make_sim_to_real`;
``inference.MunitTranslator.content`` encodes the render at the training scale (what the
low-resolution path saw in training: whole frames, the ``bilateral`` preset) and gives the
render at its own resolution as the guide, so translations keep the render's size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import MLP, AdaINResBlock, ConvBlock, ResBlock
from .config import ModelConfig

SQUASH = 0.995      # atanh(SQUASH * x) keeps the identity term finite at x = +-1
DELTA_SCALE = 0.1   # the grid head's output is scaled so a fresh network starts near the identity
GUIDE_HIDDEN = 8    # hidden width of the learned pointwise guide
DETAIL_HIDDEN = 8   # hidden width of the detail branch


def _luma01(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> Rec. 601 luma (B, 1, H, W) in [0, 1]."""
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return ((x * w).sum(1, keepdim=True) + 1) * 0.5


class _Squash(nn.Module):
    """Resize any image to the fixed ``size x size`` low resolution (antialiased, fp32)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x):
        x = x.float()
        h, w = x.shape[-2:]
        anti = h > self.size or w > self.size
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=anti)


def _n_down(m: ModelConfig) -> int:
    return int(round(math.log2(m.bil_low // m.bil_grid)))


def content_dim(m: ModelConfig) -> int:
    return m.bil_dim * 2 ** _n_down(m)


class LowResEncoder(nn.Module):
    """Squash to ``bil_low``, 3x3 conv, stride-2 convs down to ``bil_grid``, residual blocks (IN)."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        dim = m.bil_dim
        layers: list[nn.Module] = [_Squash(m.bil_low), ConvBlock(3, dim, 3, 1, 1, "in", "relu", m.pad_type)]
        for _ in range(_n_down(m)):
            layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, "in", "relu", m.pad_type))
            dim *= 2
        layers += [ResBlock(dim, m.pad_type) for _ in range(m.n_res)]
        self.net = nn.Sequential(*layers)
        self.out_dim = dim

    def forward(self, x):
        return self.net(x)


class LowResStyleEncoder(nn.Module):
    """Style code from the squashed image: stride-2 convs (no norm), global average, 1x1 conv."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        dim = m.bil_dim
        n = max(1, min(m.style_n_downsample, int(math.log2(m.bil_low)) - 2))
        layers: list[nn.Module] = [_Squash(m.bil_low), ConvBlock(3, dim, 3, 1, 1, "none", "relu", m.pad_type)]
        for i in range(n):
            nxt = dim * 2 if i < 2 else dim
            layers.append(ConvBlock(dim, nxt, 4, 2, 1, "none", "relu", m.pad_type))
            dim = nxt
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, m.style_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten(1)


class Guide(nn.Module):
    """Per-pixel guide in [0, 1]: luma, plus (``learned``) a pointwise MLP of the pixel's colour."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.learned = m.bil_guide == "learned"
        if self.learned:
            self.net = nn.Sequential(nn.Conv2d(3, GUIDE_HIDDEN, 1), nn.ReLU(), nn.Conv2d(GUIDE_HIDDEN, 1, 1))

    def forward(self, x):
        lum = _luma01(x)
        if not self.learned:
            return lum
        # the 1x1 convs as matrix products: much faster than a 3-channel conv at full resolution
        c1, c2 = self.net[0], self.net[2]
        h = torch.einsum("oc,bchw->bohw", c1.weight.flatten(1), x) + c1.bias.view(1, -1, 1, 1)
        h = torch.einsum("oc,bchw->bohw", c2.weight.flatten(1), h.relu_()) + c2.bias.view(1, -1, 1, 1)
        return torch.sigmoid(6.0 * (lum - 0.5) + h)


class Detail(nn.Module):
    """``bound * tanh((1 + gamma) * conv3x3(relu(conv3x3(x))) + beta)`` of the full-resolution image.

    The convolutions run once per image; a style changes only the per-colour gain ``gamma`` and
    offset ``beta`` of the texture (a linear map of the style code), so K variants cost little more
    than one. The sim generator's branch has no style (gamma = beta = 0)."""

    def __init__(self, m: ModelConfig, styled: bool):
        super().__init__()
        self.bound = float(m.bil_detail)
        self.c1 = nn.Conv2d(3, DETAIL_HIDDEN, 3, padding=1, padding_mode="replicate")
        self.c2 = nn.Conv2d(DETAIL_HIDDEN, 3, 3, padding=1, padding_mode="replicate")
        self.film = nn.Linear(m.style_dim, 6) if styled else None

    def forward(self, x, styles: torch.Tensor | None = None):
        """``x`` (B, 3, H, W), ``styles`` (B, K, style_dim) or None -> (B, K, 3, H, W) (K = 1 without)."""
        t = self.c2(F.relu(self.c1(x)))[:, None]                              # (B, 1, 3, H, W)
        if self.film is not None and styles is not None:
            gamma, beta = self.film(styles).chunk(2, dim=-1)                  # (B, K, 3)
            t = t * (1 + gamma[..., None, None]) + beta[..., None, None]
        return self.bound * torch.tanh(t)


def _hat(n_out: int, n_in: int, device) -> torch.Tensor:
    """(n_out, n_in) linear-interpolation weights of ``n_in`` samples spanning ``n_out`` pixels,
    first and last on the first and last pixel (``align_corners=True``)."""
    pos = torch.linspace(0, n_in - 1, n_out, device=device)
    return (1 - (pos[:, None] - torch.arange(n_in, device=device)[None]).abs()).clamp_(min=0)


def _slice_rows(grids: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Trilinear slicing in row layout: ``grids`` (B, K, C, D, Gh, Gw), ``guide`` (B, 1, H, W) in
    [0, 1] -> (B, H, K, C, W), fp32.

    Interpolation along the image height is the same for every pixel of a row, so it is done
    first on the small grid (a matrix product); then each row is one 2-D bilinear lookup in
    (guide bin, grid column) per pixel. Same values as a trilinear ``grid_sample`` on the 5-D
    grid (and its gradients), several times faster on a CPU.
    """
    b, k, c, d, gh, gw = grids.shape
    h, w = guide.shape[-2:]
    rows = torch.einsum("hi,bkcdij->bhkcdj", _hat(h, gh, guide.device), grids.float())  # (B, H, K, C, D, Gw)
    xs = torch.linspace(-1, 1, w, device=guide.device).view(1, 1, w).expand(b, h, w)
    coords = torch.stack([xs, guide[:, 0].float() * 2 - 1], dim=-1)                # (B, H, W, 2): column, bin
    out = F.grid_sample(rows.reshape(b * h, k * c, d, gw), coords.reshape(b * h, 1, w, 2), mode="bilinear",
                        padding_mode="border", align_corners=True)                  # (B*H, K*C, 1, W)
    return out.view(b, h, k, c, w)


def slice_grid(grids: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Trilinear slicing: ``grids`` (B, K, C, D, Gh, Gw), ``guide`` (B, 1, H, W) in [0, 1] -> (B, K, C, H, W).

    Pixel (y, x) reads the grid at its own relative position and its own guide value; the
    grid's corner cells sit on the image's corners."""
    return _slice_rows(grids, guide).permute(0, 2, 3, 1, 4)


def apply_grids(grids: torch.Tensor, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """The affine step: ``grids`` (B, K, 12, D, Gh, Gw) (channel ``4 * c + j``: output colour c,
    input colour j = r, g, b or the offset), image ``x`` (B, 3, H, W) in [-1, 1] and its guide
    (B, 1, H, W) -> (B, K, 3, H, W) in (-1, 1)."""
    b, k = grids.shape[:2]
    h, w = x.shape[-2:]
    # coefficient-major channels (j, k, c): each term below reads one contiguous block per row
    by_coef = grids.unflatten(2, (3, 4)).permute(0, 3, 1, 2, 4, 5, 6).reshape(b, 4 * k, 3, *grids.shape[3:])
    a = _slice_rows(by_coef, guide).view(b, h, 4, k * 3, w)
    xr = x.float().permute(0, 2, 1, 3)                                    # (B, H, 3, W)
    y = torch.atanh(SQUASH * xr.clamp(-1, 1)).repeat(1, 1, k, 1) + a[:, :, 3]   # identity term + offset
    for j in range(3):                                                    # + A[:, :3] @ rgb
        y.addcmul_(a[:, :, j], xr[:, :, j:j + 1])
    return y.tanh_().view(b, h, k, 3, w).permute(0, 2, 3, 1, 4).contiguous()


def _render(grids, x, guide_net: Guide, detail: Detail | None, styles=None) -> torch.Tensor:
    """Full-resolution part (guide, slice, affine, detail) in fp32, outside any autocast."""
    with torch.autocast(x.device.type, enabled=False):
        x = x.float()
        out = apply_grids(grids, x, guide_net(x))
        if detail is not None:
            out = (out + detail(x, None if styles is None else styles.float())).clamp(-1, 1)
    return out


class _GridHead(nn.Module):
    """Low-resolution features (B, C, G, G) -> grids (B, 12, D, G, G), scaled by ``DELTA_SCALE``."""

    def __init__(self, dim: int, m: ModelConfig):
        super().__init__()
        self.bins = m.bil_bins
        self.conv = nn.Conv2d(dim, 12 * m.bil_bins, 1)

    def forward(self, f):
        g = self.conv(f) * DELTA_SCALE
        return g.view(g.shape[0], 12, self.bins, *g.shape[-2:])


class BilateralSimGenerator(nn.Module):
    """The styleless sim generator: low-resolution encoder, residual blocks, grid head, guide."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.enc = LowResEncoder(m)
        dim = self.enc.out_dim
        self.res = nn.Sequential(*[ResBlock(dim, m.pad_type) for _ in range(m.n_res)])
        self.head = _GridHead(dim, m)
        self.guide = Guide(m)
        self.detail = Detail(m, styled=False) if m.bil_detail > 0 else None

    def encode(self, x):
        return self.enc(x)

    def grids(self, content):
        """(B, C, G, G) -> (B, 1, 12, D, G, G)."""
        return self.head(self.res(content))[:, None]

    def decode(self, content, guide):
        """``content`` of any image, ``guide`` the image to transform (B, 3, H, W) -> (B, 3, H, W)."""
        return _render(self.grids(content), guide, self.guide, self.detail)[:, 0]


class BilateralRealGenerator(nn.Module):
    """Low-resolution content and style encoders; AdaIN residual blocks (style MLP), grid head, guide."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.style_dim = m.style_dim
        self.input_noise = m.real_input_noise
        self.enc = LowResEncoder(m)
        self.enc_style = LowResStyleEncoder(m)
        dim = self.enc.out_dim
        self.res = nn.ModuleList([AdaINResBlock(dim, m.pad_type) for _ in range(m.n_res)])
        self.mlp = MLP(m.style_dim, 4 * dim * m.n_res, m.mlp_dim, m.n_mlp)
        self.head = _GridHead(dim, m)
        self.guide = Guide(m)
        self.detail = Detail(m, styled=True) if m.bil_detail > 0 else None

    def encode_content(self, x, noise: torch.Tensor | None = None):
        """Content code; ``noise`` ~ N(0, 1) like ``x`` is scaled by ``real_input_noise`` and added."""
        if noise is not None and self.input_noise > 0:
            x = x + self.input_noise * noise
        return self.enc(x)

    def encode_style(self, x):
        return self.enc_style(x)

    def encode(self, x, noise: torch.Tensor | None = None):
        return self.encode_content(x, noise), self.encode_style(x)

    def grids(self, content, styles):
        """``content`` (B, C, G, G), ``styles`` (B, K, style_dim) -> (B, K, 12, D, G, G).

        The low-resolution part runs once per (content, style) pair; it does not depend on
        the output resolution."""
        b, k = styles.shape[:2]
        f = content.repeat_interleave(k, dim=0)
        params = self.mlp(styles.reshape(b * k, -1))
        for block, p in zip(self.res, params.chunk(len(self.res), dim=1)):
            f = block(f, p)
        g = self.head(f)
        return g.view(b, k, *g.shape[1:])

    def decode_multi(self, content, styles, guide):
        """K styles per content in one call: (B, C, G, G), (B, K, style_dim), guide images
        (B, 3, H, W) -> (B, K, 3, H, W). The guide is computed and the grid sliced once per image."""
        return _render(self.grids(content, styles), guide, self.guide, self.detail, styles)

    def decode(self, content, style, guide):
        """``content`` (B, C, G, G), ``style`` (B, style_dim), ``guide`` (B, 3, H, W) -> (B, 3, H, W)."""
        return self.decode_multi(content, style[:, None], guide)[:, 0]


class GuidedContent:
    """What :class:`BilateralSimToReal` decodes: the low-resolution content and the image it
    came from (the guide). Indexing (``content[rows]``) and ``.to`` apply to both."""

    def __init__(self, code: torch.Tensor, guide: torch.Tensor):
        self.code, self.guide = code, guide

    def __getitem__(self, idx):
        return GuidedContent(self.code[idx], self.guide[idx])

    def __len__(self):
        return self.code.shape[0]

    @property
    def shape(self):
        return self.code.shape

    def to(self, *args, **kwargs):
        return GuidedContent(self.code.to(*args, **kwargs), self.guide.to(*args, **kwargs))


class BilateralSimToReal(nn.Module):
    """The inference model: sim content encoder + the real generator's style encoder, MLP,
    residual blocks, grid head, guide (and detail branch)."""

    def __init__(self, m: ModelConfig):
        super().__init__()
        self.style_dim = m.style_dim
        self.sim = BilateralSimGenerator(m)
        self.real = BilateralRealGenerator(m)
        # Only the parts used for sim -> real are kept (same keys as generators.inference_state gives).
        del self.sim.res, self.sim.head, self.sim.guide, self.sim.detail, self.real.enc

    def content(self, x, guide=None) -> GuidedContent:
        """The content of ``x``; its guide (the image the grid is applied to) is ``x`` itself, or
        ``guide``: the same picture at another resolution (the grid is predicted from ``x``)."""
        return GuidedContent(self.sim.encode(x), x if guide is None else guide)

    def style(self, x):
        return self.real.encode_style(x)

    def decode_multi(self, content: GuidedContent, styles, guide=None):
        """(B, K, style_dim) styles -> (B, K, 3, H, W); the guide is the content's own image unless given."""
        return self.real.decode_multi(content.code, styles, content.guide if guide is None else guide)

    def forward(self, x, styles):
        """Sim images (B, 3, H, W) and styles (B, K, style_dim) -> (B, K, 3, H, W)."""
        return self.decode_multi(self.content(x), styles)


def make_generators(m: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(sim generator, real generator) of ``m.family``."""
    if m.family == "bilateral":
        return BilateralSimGenerator(m), BilateralRealGenerator(m)
    from .generators import RealGenerator, SimGenerator

    return SimGenerator(m), RealGenerator(m)


def make_sim_to_real(m: ModelConfig) -> nn.Module:
    """The inference model of ``m.family``."""
    if m.family == "bilateral":
        return BilateralSimToReal(m)
    from .generators import SimToReal

    return SimToReal(m)


def nce_spec(m: ModelConfig) -> tuple[tuple[int, ...], list[int]]:
    """PatchNCE: child indices of the sim content encoder's ``net`` to read, and their channels."""
    if m.family == "bilateral":
        n = _n_down(m)
        # child 0 squashes, 1 is the first conv at bil_low, 2..n+1 the down-samplings; last = content
        layers = tuple(range(1, n + 2)) + (n + 1 + m.n_res,)
        chans = [m.bil_dim * 2 ** i for i in range(n + 1)] + [content_dim(m)]
        return layers, chans
    n = 1 + m.n_downsample + m.n_res + (1 if m.content_channels else 0)
    layers = tuple(range(m.n_downsample + 1)) + (n - 1,)
    chans = [m.gen_dim * 2 ** i for i in range(m.n_downsample + 1)]
    chans.append(m.content_channels or m.gen_dim * 2 ** m.n_downsample)
    return layers, chans
