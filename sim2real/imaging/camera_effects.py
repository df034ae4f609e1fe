"""Image-only effects of a laparoscope's camera, applied after rendering (numpy only).

Order follows the light path: motion blur (during the exposure) and cautery smoke in the
scene, then white balance and vignetting on scene-linear light, a
slight defocus blur, auto-exposure (a gain metered on the image), the tone response
(gamma, saturation) and 8-bit quantisation, edge enhancement, sensor noise, then video
(JPEG) compression. Every draw comes from the sample's
:class:`~sim2real.scene.description.CameraEffects` (its ``seed`` included), so the same
sample always gives the same image; labels never pass through here. The plain sRGB
transfer (:func:`linear_to_srgb8`) lives here too; :mod:`.postprocess` uses it when the
effects are off.
"""

from __future__ import annotations

import numpy as np

from ..scene.description import CameraEffects


LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance of linear RGB


def linear_to_srgb8(rgb: np.ndarray, exposure: float = 0.0) -> np.ndarray:
    """Scene-linear RGB -> 8-bit sRGB (the 'Standard' view transform), rounded, clipped."""
    x = np.clip(rgb * (2.0 ** exposure), 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


def vignette(width: int, height: int, strength: float, circle=None) -> np.ndarray:
    """(H, W) gain: 1 at the centre of the field of view, 1 - strength at its edge (cos^4-like)."""
    if circle is None:
        cx, cy, r = width / 2, height / 2, float(np.hypot(width, height)) / 2
    else:
        cx, cy, r = circle
    yy, xx = np.mgrid[0:height, 0:width]
    rr = np.minimum(np.hypot(xx + 0.5 - cx, yy + 0.5 - cy) / max(r, 1e-6), 1.0)
    return 1.0 - strength * rr ** 2.5


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W, C) float image (edges replicated)."""
    if sigma < 0.05:
        return img
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (radius, radius)
        p = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for i, w in enumerate(k):
            acc += w * np.take(p, np.arange(i, i + n), axis=axis)
        out = acc
    return out


# the JPEG standard's luminance and chrominance quantisation tables (quality 50)
_Q_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], float).reshape(8, 8)
_Q_CHROMA = np.full((8, 8), 99.0)
_Q_CHROMA[:4, :4] = np.array([17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 99, 47, 66, 99, 99], float).reshape(4, 4)


def _dct_matrix(n: int = 8) -> np.ndarray:
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


def _sandwich(blocks: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``m @ b @ m.T`` for every 8x8 block ``b`` of ``blocks`` (..., 8, 8), as two large
    matrix products (numpy's batched 8x8 products are several times slower)."""
    shape = blocks.shape
    u = (blocks.reshape(-1, 8) @ m.T).reshape(shape)                          # b @ m.T
    v = (np.swapaxes(u, -1, -2).reshape(-1, 8) @ m.T).reshape(shape)          # (m @ b @ m.T).T
    return np.swapaxes(v, -1, -2)


def _quantise_plane(plane: np.ndarray, q: np.ndarray) -> np.ndarray:
    h, w = plane.shape
    ph, pw = -h % 8, -w % 8
    p = np.pad(plane, ((0, ph), (0, pw)), mode="edge") - 128.0
    blocks = p.reshape(p.shape[0] // 8, 8, p.shape[1] // 8, 8).transpose(0, 2, 1, 3)
    d = _dct_matrix().astype(plane.dtype)
    coef = _sandwich(blocks, d)
    coef = np.round(coef / q) * q
    back = _sandwich(coef, d.T).transpose(0, 2, 1, 3).reshape(p.shape) + 128.0
    return back[:h, :w]


def jpeg_artifacts(img8: np.ndarray, quality: int) -> np.ndarray:
    """The lossy part of baseline JPEG (YCbCr, 4:2:0 chroma, 8x8 DCT quantisation), in numpy.

    Entropy coding is lossless, so this gives a JPEG codec's blocking and ringing at
    ``quality`` (1..100) without an image library (Blender's own Python has none).
    """
    quality = int(np.clip(quality, 1, 100))
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    ql = np.clip(np.floor((_Q_LUMA * scale + 50) / 100), 1, 255)
    qc = np.clip(np.floor((_Q_CHROMA * scale + 50) / 100), 1, 255)
    x = img8.astype(np.float32)  # float32: the rounding of 8-bit values dominates its error
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    cb = 128 - 0.168736 * x[..., 0] - 0.331264 * x[..., 1] + 0.5 * x[..., 2]
    cr = 128 + 0.5 * x[..., 0] - 0.418688 * x[..., 1] - 0.081312 * x[..., 2]
    h, w = y.shape
    y = _quantise_plane(y, ql.astype(np.float32))
    chroma = []
    for c in (cb, cr):
        c2 = np.pad(c, ((0, h % 2), (0, w % 2)), mode="edge")
        small = c2.reshape(c2.shape[0] // 2, 2, c2.shape[1] // 2, 2).mean((1, 3))
        small = _quantise_plane(small, qc.astype(np.float32))
        chroma.append(np.repeat(np.repeat(small, 2, 0), 2, 1)[:h, :w])
    cb, cr = chroma
    rgb = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                    y + 1.772 * (cb - 128)], -1)
    return np.round(np.clip(rgb, 0, 255)).astype(np.uint8)


def apply(rgb_linear: np.ndarray, fx: CameraEffects, circle=None, exposure: float = 0.0,
          tool_mask: np.ndarray | None = None, depth: np.ndarray | None = None) -> np.ndarray:
    """Scene-linear (H, W, 3) render -> 8-bit sRGB camera image with the effects of ``fx``.

    ``tool_mask`` (H, W bool, the instruments' label pixels) lets motion blur smear the tools
    only; ``depth`` (H, W metres, inf where nothing) lets smoke thicken with distance.
    """
    h, w = rgb_linear.shape[:2]
    rng = np.random.default_rng(fx.seed)
    # float32 throughout: image-only arithmetic, half the memory traffic of float64
    x = rgb_linear.astype(np.float32) * np.float32(2.0 ** exposure)
    # in the scene, before the lens: motion during the exposure, then smoke in front of everything
    if fx.motion_blur_px > 0:
        if fx.motion_blur_mode == "frame":
            x = motion_blur(x, fx.motion_blur_px, fx.motion_blur_angle_deg)
        elif tool_mask is not None:  # no label pass, no tools to smear
            x = motion_blur(x, fx.motion_blur_px, fx.motion_blur_angle_deg, tool_mask)
    if fx.smoke > 0:
        x = smoke(x, fx.smoke, fx.smoke_color, np.random.default_rng([fx.seed, 1]), depth, fx.smoke_depth_m)
    x = x * np.asarray(fx.gains, np.float32)
    x = x * vignette(w, h, fx.vignetting, circle).astype(np.float32)[..., None]
    x = gaussian_blur(x, fx.defocus_px)
    if fx.exposure_target > 0:
        x = x * np.float32(auto_exposure_gain(x, fx, circle))
    x = np.clip(x, 0.0, 1.0) ** np.float32(fx.gamma)
    if fx.saturation != 1.0:
        grey = x @ LUMA
        x = np.clip(grey[..., None] + np.float32(fx.saturation) * (x - grey[..., None]), 0.0, 1.0)
    srgb = linear_to_srgb8(x).astype(np.float32) / np.float32(255.0)
    if fx.sharpen > 0:
        srgb = unsharp(srgb, fx.sharpen, fx.sharpen_px)
    if fx.noise > 0:  # shot-like noise: stronger in brighter pixels, plus a read-noise floor
        std = np.float32(fx.noise) * np.sqrt(np.float32(0.25) + srgb)
        srgb = srgb + rng.standard_normal(srgb.shape, dtype=np.float32) * std
    img = np.round(np.clip(srgb, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    if fx.jpeg_quality > 0:
        img = jpeg_artifacts(img, fx.jpeg_quality)
    return img


def metering_mask(width: int, height: int, region: str, circle=None) -> np.ndarray:
    """(H, W) bool: the pixels auto-exposure meters ("centre": the central half of width and
    height; "frame": everything), inside the field-of-view circle when there is one."""
    yy, xx = np.mgrid[0:height, 0:width]
    m = np.ones((height, width), bool)
    if circle is not None:  # as postprocess.fov_mask, which imports this module
        cx, cy, r = circle
        m &= (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r
    if region == "centre":
        m &= (xx >= width // 4) & (xx < width - width // 4) & (yy >= height // 4) & (yy < height - height // 4)
    if not m.any():  # a field of view off the central half: meter all of it
        m = metering_mask(width, height, "frame", circle)
    return m


def auto_exposure_gain(x: np.ndarray, fx: CameraEffects, circle=None) -> float:
    """Gain g on linear ``x`` for which the metered mean of luminance(clip(g x) ** gamma) is
    ``fx.exposure_target``, within [1 / max_gain, max_gain] (bisection in log gain; the metered
    mean only grows with g). Metered on every second pixel: a mean, not an edge."""
    m = metering_mask(x.shape[1], x.shape[0], fx.metering, circle)[::2, ::2]
    y = x[::2, ::2][m]
    if not len(y):
        return 1.0
    gamma = np.float32(fx.gamma)

    def level(g):
        return float((np.clip(y * np.float32(g), 0.0, 1.0) ** gamma @ LUMA).mean())

    lo, hi = -np.log2(fx.max_gain), np.log2(fx.max_gain)
    if level(2.0 ** hi) <= fx.exposure_target:
        return float(2.0 ** hi)
    if level(2.0 ** lo) >= fx.exposure_target:
        return float(2.0 ** lo)
    for _ in range(24):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if level(2.0 ** mid) < fx.exposure_target else (lo, mid)
    return float(2.0 ** ((lo + hi) / 2))


def unsharp(img: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Edge enhancement of an (H, W, 3) 0..1 image: its luminance detail (the image minus its
    Gaussian blur) x ``amount`` added to every channel (no colour fringes), clipped to 0..1."""
    luma = img @ LUMA
    detail = luma - gaussian_blur(luma[..., None], sigma)[..., 0]
    return np.clip(img + np.float32(amount) * detail[..., None], 0.0, 1.0)


def _line_taps(length: float, angle_deg: float) -> dict[tuple[int, int], float]:
    """A box kernel along a line of ``length`` pixels centred on 0: {(dy, dx): weight}.

    Taps at most 1/2 pixel apart, each rounded to the nearest pixel (taps landing on the
    same pixel add up), so one shifted slice per pixel the line crosses."""
    n = max(2, int(np.ceil(2 * length)) + 1)
    t = np.linspace(-length / 2, length / 2, n)
    a = np.deg2rad(angle_deg)
    dx, dy = np.rint(t * np.cos(a)).astype(int), np.rint(t * np.sin(a)).astype(int)
    taps: dict[tuple[int, int], float] = {}
    for y, x in zip(dy, dx):
        taps[(int(y), int(x))] = taps.get((int(y), int(x)), 0.0) + 1.0 / n
    return taps


def line_blur(img: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Blur an (H, W) or (H, W, C) float image along a line (edges replicated); centred on
    each pixel, so the blurred image shows the scene at mid-exposure."""
    taps = _line_taps(length, angle_deg)
    r = max(max(abs(y), abs(x)) for y, x in taps)
    h, w = img.shape[:2]
    pad = [(r, r), (r, r)] + [(0, 0)] * (img.ndim - 2)
    p = np.pad(img, pad, mode="edge")
    out = np.zeros_like(img)
    for (y, x), wgt in taps.items():
        out += np.asarray(wgt, img.dtype) * p[r + y:r + y + h, r + x:r + x + w]
    return out


def motion_blur(x: np.ndarray, length: float, angle_deg: float, tool_mask: np.ndarray | None = None) -> np.ndarray:
    """Linear motion blur of ``length`` pixels at ``angle_deg``: of the whole frame (camera
    shake) when ``tool_mask`` is None, else of the instruments only. The tools are blurred as a
    layer over the tissue (premultiplied by their mask, the mask blurred alike), so they smear
    over the tissue behind them; pixels the smear does not reach keep their exact values."""
    if length <= 0:
        return x
    if tool_mask is None:
        return line_blur(x, length, angle_deg)
    rows, cols = np.flatnonzero(tool_mask.any(1)), np.flatnonzero(tool_mask.any(0))
    if not len(rows):
        return x
    # only the tools' bounding box, grown by the smear's reach, can change
    r = int(np.ceil(length / 2)) + 1
    win = (slice(max(rows[0] - r, 0), rows[-1] + r + 1), slice(max(cols[0] - r, 0), cols[-1] + r + 1))
    xs, m = x[win], tool_mask[win].astype(x.dtype)
    tools = line_blur(xs * m[..., None], length, angle_deg)
    cover = line_blur(m, length, angle_deg)
    out = x.copy()
    tools += (1 - cover)[..., None] * xs
    out[win] = tools
    return out


def smoke_field(h: int, w: int, rng: np.random.Generator, blobs: int = 4) -> np.ndarray:
    """(H, W) float32 veil density in 0..1: a thin floor plus a few large soft blobs."""
    yy = (np.arange(h, dtype=np.float32) + 0.5) / w
    xx = (np.arange(w, dtype=np.float32) + 0.5) / w
    f = np.zeros((h, w), np.float32)
    for _ in range(blobs):
        cx, cy = rng.uniform(-0.1, 1.1), rng.uniform(-0.1, 1.1) * h / w
        s = rng.uniform(0.12, 0.35)
        g = rng.uniform(0.4, 1.0)
        f += np.float32(g) * np.outer(np.exp(-0.5 * ((yy - cy) / s) ** 2), np.exp(-0.5 * ((xx - cx) / s) ** 2))
    f /= max(float(f.max()), 1e-6)
    return np.float32(0.15) + np.float32(0.85) * f


def smoke(x: np.ndarray, strength: float, color, rng: np.random.Generator, depth: np.ndarray | None = None,
          depth_m: float = 0.0) -> np.ndarray:
    """Blend a whitish cautery-smoke veil over scene-linear ``x``: alpha = strength x field
    (x (1 - exp(-depth / depth_m)) when a depth map is given: thicker far away)."""
    h, w = x.shape[:2]
    alpha = np.float32(strength) * smoke_field(h, w, rng)
    if depth is not None and depth_m > 0:
        d = np.where(np.isfinite(depth), depth, np.float32(1e3)).astype(np.float32)
        alpha = alpha * (1 - np.exp(-d / np.float32(depth_m)))
    a = alpha[..., None]
    return x * (1 - a) + a * np.asarray(color, np.float32)
