"""The Fourier baseline (Fourier domain adaptation, Yang & Soatto, CVPR 2020): no training.

Each variant picks a random real frame (the same seeded draw over the same real frames as
:mod:`.colour`, so one seed gives both methods the same references). The real frame, its
black bars trimmed, is resized to the render's size; per RGB channel, the render keeps the
phase of its 2-D Fourier transform everywhere and takes the real frame's amplitude in the
low-frequency band: the centred square of frequencies ``|k_y|, |k_x| <= b`` with
``b = floor(beta * min(H, W))`` (side ``2b + 1``; ``beta = 0`` leaves the render as it is).
Low frequencies carry the global colour, brightness and slow shading; edges and
instruments, carried by the phase and the high frequencies, stay where the render has them.

Both images are taken inside their own field of view: pixels outside it are filled with
the field of view's mean colour before the transform (so the black corners do not dominate
the low frequencies), and the variant's pixels outside the render's field of view are black
again. Labels are hard links to the render's files, byte for byte; the output has the
layout of :func:`~sim2real.translate.colour.colour_dataset`'s.
"""

from __future__ import annotations

import numpy as np

from ..appearance.stats import real_fov
from ..dataset.format import open_renders
from ..errors import Sim2RealError
from .colour import REAL_BLACK, usable_real_frames, write_reference_variants
from .data import _read, trim_black_borders

DEFAULT_BETA = 0.05  # the middle of the paper's range (0.01-0.09)
MAX_BETA = 0.5       # b = min(H, W) / 2: the whole spectrum


def check_beta(beta: float) -> float:
    beta = float(beta)
    if not 0.0 <= beta <= MAX_BETA:
        raise Sim2RealError(f"--beta {beta:g}: must be in [0, {MAX_BETA}] (the low band's half-width as a fraction "
                            f"of the short side; the paper uses 0.01-0.09)")
    return beta


def band_half_width(h: int, w: int, beta: float) -> int:
    """``b``: the low band holds the frequencies with ``|k_y|, |k_x| <= b``; -1 (no band) when ``beta`` is 0."""
    return -1 if beta <= 0 else int(np.floor(beta * min(h, w)))


def low_band(h: int, w: int, beta: float) -> np.ndarray:
    """Bool (H, W) in ``numpy.fft.fft2`` order: the frequencies whose amplitude is swapped."""
    b = band_half_width(h, w, beta)
    ky = np.abs(np.fft.fftfreq(h) * h).round()
    kx = np.abs(np.fft.fftfreq(w) * w).round()
    return (ky[:, None] <= b) & (kx[None, :] <= b)


def swap_amplitude(image: np.ndarray, amplitude: np.ndarray, band: np.ndarray) -> np.ndarray:
    """``image`` (float (H, W, C)) with its Fourier amplitude replaced by ``amplitude``
    (float (n, C), the values at ``band``'s true positions) there, its phase kept; float out."""
    if not band.any():
        return image.astype(np.float64, copy=True)
    spec = np.fft.fft2(image.astype(np.float64), axes=(0, 1))
    mag = np.abs(spec[band])
    unit = np.where(mag > 0, spec[band] / np.maximum(mag, 1e-300), 1.0)  # phase of a zero coefficient: 0
    spec[band] = amplitude * unit
    # the band is symmetric (k and -k), so the spectrum stays Hermitian and the result real
    return np.fft.ifft2(spec, axes=(0, 1)).real


def band_amplitude(reference: np.ndarray, band: np.ndarray) -> np.ndarray:
    """(n, C): the Fourier amplitude of ``reference`` (float (H, W, C)) at ``band``."""
    return np.abs(np.fft.fft2(reference.astype(np.float64), axes=(0, 1))[band])


def fourier_transfer(render: np.ndarray, reference: np.ndarray, beta: float) -> np.ndarray:
    """FDA of two float images of the same shape (H, W, C): the render's phase everywhere and
    amplitude outside the low band, ``reference``'s amplitude inside it (float out)."""
    if render.shape != reference.shape:
        raise ValueError(f"shapes differ: {render.shape} vs {reference.shape}")
    band = low_band(render.shape[0], render.shape[1], beta)
    return swap_amplitude(render, band_amplitude(reference, band), band)


def fill_outside(img: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Float copy of ``img`` whose pixels outside ``inside`` hold the mean colour inside it."""
    out = img.astype(np.float64, copy=True)
    if inside.any() and not inside.all():
        out[~inside] = out[inside].mean(axis=0)
    return out


def resize_rgb(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """uint8 (H0, W0, 3) -> float (h, w, 3) in 0..255 (antialiased bilinear)."""
    import torch
    import torch.nn.functional as F

    if img.shape[:2] == (h, w):
        return img.astype(np.float64)
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return t[0].permute(1, 2, 0).double().numpy()


class RealSpectra:
    """The real frames FDA draws from (those :mod:`.colour` uses), and their low-band
    amplitudes, computed when a frame is first drawn for a render size."""

    def __init__(self, paths, videos: list[str] | None = None, exclude_videos: list[str] | None = None):
        self.names = [str(p) for p, _ in usable_real_frames(paths, videos, exclude_videos, "fourier")]
        self._cache: dict = {}

    def __len__(self) -> int:
        return len(self.names)

    def reference(self, i: int, h: int, w: int) -> np.ndarray:
        """Real frame ``i`` at (h, w), float, black bars trimmed, outside its field of view filled."""
        img = trim_black_borders(_read(self.names[i], "real frame"), REAL_BLACK)
        ref = resize_rgb(img, h, w)
        return fill_outside(ref, real_fov(ref))

    def amplitude(self, i: int, band: np.ndarray) -> np.ndarray:
        key = (i, band.shape, band.sum())
        if key not in self._cache:
            self._cache[key] = band_amplitude(self.reference(i, *band.shape), band)
        return self._cache[key]


def fourier_dataset(data, real, out, k: int = 5, seed: int = 0, beta: float = DEFAULT_BETA, progress=None,
                    shard=(0, 1)) -> dict:
    """Write ``k`` Fourier-transferred variants of every render of ``data`` under ``out``.

    ``real``: folders/files of real frames, or a :class:`RealSpectra`. Resumable and
    shardable like :func:`~sim2real.translate.colour.colour_dataset`.
    """
    if k < 1:
        raise Sim2RealError(f"-k must be >= 1, got {k}")
    beta = check_beta(beta)
    src = open_renders(data, "fourier-transfer")
    spectra = real if isinstance(real, RealSpectra) else RealSpectra(real)
    settings = {"method": "fourier", "beta": beta, "band": "square |k| <= floor(beta * min(H, W))", "k": k,
                "seed": seed, "real": spectra.names, "real_black": REAL_BLACK, "fill": "fov-mean",
                "keep_fov": True}

    def variant(sample, img, inside, pick, j):
        h, w = img.shape[:2]
        band = low_band(h, w, beta)
        y = swap_amplitude(fill_outside(img, inside), spectra.amplitude(pick, band), band)
        y = np.clip(np.rint(y), 0, 255).astype(np.uint8)
        y[~inside] = 0
        return y, {"beta": beta, "band_half_width": band_half_width(h, w, beta)}

    return write_reference_variants(src, out, settings, spectra.names, variant, k, seed, progress, shard)
