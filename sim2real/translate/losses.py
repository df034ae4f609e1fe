"""Losses and the structure score (grayscale MS-SSIM via ``pytorch_msssim``).

``pytorch_msssim.ms_ssim`` uses 5 scales and an 11-px window, which needs a short side
above 160 px. For smaller images :func:`msssim_gray` shrinks the window (largest odd size
with ``short_side > (win - 1) * 16``, the library's own check), drops the coarsest scales
whose side would fall below the window (renormalising the standard scale weights), and
below 48 px upsamples both images bilinearly to 48 px first. At the paper's 256 px every
image uses the library's defaults unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_MIN_SIDE = 48


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luma (ITU-R BT.601 weights)."""
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def msssim_settings(short_side: int) -> tuple[int, list[float], bool]:
    """(window size, scale weights, upsample?) used for images of this short side."""
    upsample = short_side < _MIN_SIDE
    side = max(short_side, _MIN_SIDE)
    win = 11
    while win > 3 and not side > (win - 1) * 16:
        win -= 2
    levels = 5
    while levels > 1 and side / 2 ** (levels - 1) < win:
        levels -= 1
    w = list(MSSSIM_WEIGHTS[:levels])
    total = sum(w)
    return win, [v / total for v in w], upsample


def msssim_gray(a: torch.Tensor, b: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """Grayscale MS-SSIM of images in [0, 1], (B, 3, H, W); per image when ``reduce`` is False."""
    from pytorch_msssim import ms_ssim

    a, b, win, weights = _prepare(a, b)
    weights = None if len(weights) == 5 and win == 11 else weights
    return ms_ssim(a, b, data_range=1.0, size_average=reduce, win_size=win, weights=weights)


def _prepare(a: torch.Tensor, b: torch.Tensor):
    a, b = to_gray(a.float()), to_gray(b.float())
    win, weights, upsample = msssim_settings(min(a.shape[-2:]))
    if upsample:
        h, w = a.shape[-2:]
        scale = _MIN_SIDE / min(h, w)
        size = (max(_MIN_SIDE, round(h * scale)), max(_MIN_SIDE, round(w * scale)))
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    return a, b, win, weights


def msssim_gray_safe(a: torch.Tensor, b: torch.Tensor, floor: float = 1e-4) -> torch.Tensor:
    """Mean grayscale MS-SSIM with bounded gradients, for training.

    Same per-scale SSIM/contrast-structure terms as ``pytorch_msssim.ms_ssim`` (its
    ``_ssim`` is used), but each term is clamped to ``floor`` before the weighted
    product: ``t ** 0.0448`` has an unbounded derivative at 0, and an untrained
    generator's output often has a contrast-structure term of exactly 0 (after ReLU),
    which turned the gradients into inf/NaN. Equals ``ms_ssim`` wherever every term
    exceeds ``floor``.
    """
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    a, b, win_size, weights = _prepare(a, b)
    win = _fspecial_gauss_1d(win_size, 1.5).repeat(a.shape[1], 1, 1, 1)
    terms = []
    for i in range(len(weights)):
        ssim_pc, cs = _ssim(a, b, data_range=1.0, win=win, size_average=False, K=(0.01, 0.03))
        if i < len(weights) - 1:
            terms.append(cs)
            pad = [s % 2 for s in a.shape[2:]]
            a = F.avg_pool2d(a, kernel_size=2, padding=pad)
            b = F.avg_pool2d(b, kernel_size=2, padding=pad)
    terms.append(ssim_pc)
    stacked = torch.stack(terms, dim=0).clamp(min=floor)  # (levels, B, 1)
    w = stacked.new_tensor(weights).view(-1, 1, 1)
    return torch.prod(stacked ** w, dim=0).mean()


def structure_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 - grayscale MS-SSIM between images in [-1, 1] (colour may change, structure may not)."""
    return 1.0 - msssim_gray_safe((x.float() + 1) / 2, (y.float() + 1) / 2)


def chroma_structure_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Mean absolute difference between the horizontal and vertical pixel differences of the
    chroma (R - G, B - G) of images ``x`` and ``y`` (B, 3, H, W), summed over ``scales`` scales
    (each one 2x2-averaged from the last, while both sides stay >= 2 px): what grayscale
    MS-SSIM does not see. A colour edge, band or patch that one image has and the other lacks
    costs, the coarser scales seeing the broad ones; a tint shared by every pixel costs nothing."""
    def chroma(im):
        im = im.float()
        return im[:, (0, 2)] - im[:, 1:2]

    d = chroma(x) - chroma(y)          # the differences of the gradients are the gradients of this
    total = d.new_zeros(())
    for i in range(scales):
        if i:
            if min(d.shape[-2:]) < 4:
                break
            d = F.avg_pool2d(d, 2)
        total = total + (d[..., :, 1:] - d[..., :, :-1]).abs().mean() + (d[..., 1:, :] - d[..., :-1, :]).abs().mean()
    return total


def mode_seeking_loss(y1: torch.Tensor, y2: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """Mode seeking (MSGAN, Mao et al. CVPR 2019): ``1 / (d_img / d_style + eps)``, mean over
    the batch, where ``d_img`` is the mean absolute difference of two translations ``y1``,
    ``y2`` (B, 3, H, W) of the same input and ``d_style`` that of their style codes ``s1``,
    ``s2`` (B, D). Small when different codes give different images: it pushes the
    generator away from ignoring its style code (a collapse to one look per render)."""
    d_img = (y1.float() - y2.float()).abs().mean(dim=(1, 2, 3))
    d_style = (s1.float() - s2.float()).abs().mean(dim=1)
    return (1.0 / (d_img / d_style + eps)).mean()


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs().mean()


def gan_d_loss(real_outs: list, fake_outs: list, kind: str = "lsgan") -> torch.Tensor:
    """Discriminator loss summed over scales (real -> 1, fake -> 0)."""
    loss = 0.0
    for r, f in zip(real_outs, fake_outs):
        r, f = r.float(), f.float()
        if kind == "lsgan":
            loss = loss + ((r - 1) ** 2).mean() + (f ** 2).mean()
        else:
            loss = loss + F.softplus(-r).mean() + F.softplus(f).mean()
    return loss


def gan_g_loss(fake_outs: list, kind: str = "lsgan") -> torch.Tensor:
    """Generator loss summed over scales (fake -> 1)."""
    loss = 0.0
    for f in fake_outs:
        f = f.float()
        loss = loss + (((f - 1) ** 2).mean() if kind == "lsgan" else F.softplus(-f).mean())
    return loss


# ----------------------------------------------------------------------------- label-aware terms

def semantic_loss(logits: torch.Tensor, labels: torch.Tensor, weights: dict[int, float] | None = None) -> torch.Tensor:
    """Cross-entropy of a segmenter's ``logits`` (B, C, H, W) on a translation against the
    render's labels (B, H, W) (CyCADA's semantic consistency); ids >= C count as background.
    ``weights`` ({class id: weight}, others 1): a weighted mean over the pixels."""
    labels = torch.where(labels.long() < logits.shape[1], labels.long(), torch.zeros_like(labels.long()))
    w = None
    if weights:
        w = torch.ones(logits.shape[1], device=logits.device)
        for cid, v in weights.items():
            w[cid] = v
    return F.cross_entropy(logits.float(), labels, weight=w)


def encoder_features(enc: torch.nn.Module, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
    """Outputs of the given child indices of a content encoder's ``net`` (CUT's ``encode_only``)."""
    feats, want = [], set(layers)
    for i, layer in enumerate(enc.net):
        x = layer(x)
        if i in want:
            feats.append(x)
        if i >= max(layers):
            break
    return feats


class PatchHeads(torch.nn.Module):
    """One 2-layer MLP per feature layer projecting patch features to unit vectors (CUT)."""

    def __init__(self, channels: list[int], dim: int = 64):
        super().__init__()
        self.mlps = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(c, dim), torch.nn.ReLU(), torch.nn.Linear(dim, dim)) for c in channels)

    def forward(self, feats: list[torch.Tensor], idx: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for mlp, f, ix in zip(self.mlps, feats, idx):
            flat = f.flatten(2).permute(0, 2, 1)              # (B, HW, C)
            z = mlp(flat[:, ix].float())                      # (B, P, dim)
            out.append(F.normalize(z, dim=-1))
        return out


def patch_nce_loss(q_feats: list[torch.Tensor], k_feats: list[torch.Tensor], heads: PatchHeads,
                   n_patches: int, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """PatchNCE (Park et al. 2020): each patch of the translation (queries ``q_feats``) must
    match the same location of the input (keys ``k_feats``, detached) against the other
    sampled locations of the same image (negatives). Mean over layers."""
    idx = []
    for f in k_feats:
        hw = f.shape[-2] * f.shape[-1]
        idx.append(torch.randperm(hw, generator=generator)[:min(n_patches, hw)].to(f.device))
    qs = heads(q_feats, idx)
    ks = heads([f.detach() for f in k_feats], idx)
    total = 0.0
    for q, k in zip(qs, ks):
        logits = torch.bmm(q, k.detach().transpose(1, 2)) / tau   # (B, P, P): diagonal = positives
        target = torch.arange(q.shape[1], device=q.device).expand(q.shape[0], -1)
        total = total + F.cross_entropy(logits.flatten(0, 1), target.flatten())
    return total / len(qs)
