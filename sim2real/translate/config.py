"""Every translator setting in one dataclass; defaults are the paper's (Pfeiffer et al. 2019).

A TOML file (or a preset in ``presets/``) overrides any subset::

    [model]
    gen_dim = 32
    [train]
    max_iter = 20000

Unknown keys and out-of-range values are errors that name the key and the fix.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, one_line

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@dataclass
class ModelConfig:
    """MUNIT-style networks: styleless sim generator, real generator with an 8-D style."""

    gen_dim: int = 64              # channels of the first generator conv
    mlp_dim: int = 256             # hidden width of the style -> AdaIN parameter MLP
    style_dim: int = 8             # real-domain style code length
    n_downsample: int = 2          # content encoder down-samplings (decoder up-samplings)
    n_res: int = 4                 # residual blocks in encoder and decoder
    style_n_downsample: int = 4    # style encoder down-samplings (MUNIT)
    n_mlp: int = 3                 # MLP layers
    pad_type: str = "reflect"
    content_channels: int = 0      # >0: narrow the content code to this many channels (method's code: 8)
    real_input_noise: float = 0.0  # std of N(0, s) noise added to the real content encoder's input (code: 0.1)
    dis_dim: int = 64
    dis_n_layer: int = 4
    dis_num_scales: int = 3
    gan_type: str = "lsgan"
    # Generator family: "munit" (encoder-decoder, the paper's) or "bilateral": a network at low
    # resolution predicts a grid of local affine colour transforms that the full-resolution image
    # slices with its own guide, so every output pixel is a function of its own input colour.
    family: str = "munit"
    bil_dim: int = 16              # bilateral: channels of the first low-resolution conv
    bil_low: int = 64              # bilateral: side of the square low-resolution input the grid is predicted from
    bil_grid: int = 16             # bilateral: grid cells along each side (bil_low / bil_grid a power of 2)
    bil_bins: int = 8              # bilateral: guide (intensity) bins of the grid
    bil_guide: str = "learned"     # bilateral: "learned" (per-pixel colour -> guide MLP) or "luma"
    bil_detail: float = 0.0        # bilateral: bound of the per-pixel detail branch in [-1, 1] units (0 = off)


@dataclass
class LossConfig:
    """Loss weights; structure = 1 - MS-SSIM on grayscale, input vs its translation."""

    gan: float = 1.0
    recon_x: float = 10.0
    recon_c: float = 1.0
    recon_s: float = 1.0
    cycle: float = 10.0
    struct_s2r: float = 5.0
    struct_r2s: float = 3.0
    chroma: float = 0.0            # colour edges: L1 of the chroma (R-G, B-G) gradients, render vs translation
    diversity: float = 0.0         # mode seeking (MSGAN): 1 / (image distance / style distance) of two
                                   # translations of the same render with two random style codes
    style_from_real_prob: float = 0.5  # share of iterations whose style is the current real image's
    # Semantic consistency (CyCADA): a small U-Net trained jointly on the renders' crops and
    # labels judges each sim -> real translation; cross-entropy against the render's labels.
    semantic: float = 0.0
    semantic_warmup: int = 500     # steps the segmenter trains alone before the term applies
    semantic_base: int = 8         # its U-Net width (depth 3)
    semantic_tool: float = 1.0     # weight of the instruments' pixels (tool_shaft, tool_tip) in the term
    # PatchNCE (CUT): contrastive patch loss between input and translation, encoder features.
    nce: float = 0.0
    nce_patches: int = 64          # sampled locations per feature layer (negatives: the others)
    nce_tau: float = 0.07


@dataclass
class OptimConfig:
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    lr_step: int = 100_000         # step decay: lr *= lr_gamma every lr_step iterations
    lr_gamma: float = 0.5


@dataclass
class DataConfig:
    """Loading and augmentation; sizes are pixels, (height, width) for crops."""

    load_size: int = 256           # short side after resizing, before augmentation; 0 = native scale:
                                   # renders keep their own resolution, real frames go to native_short
    native_short: int = 0          # native scale: real frames' short side; 0 = the renders' median short
                                   # side, recorded in the run's config when training starts
    crop: list = field(default_factory=lambda: [0, 0])  # training crop (h, w); [0, 0] = the largest that
                                   # fits the renders at the training scale (multiples of 2**model.n_downsample;
                                   # 256x452 on 452x256 renders), recorded in the run's config at the start
    scale_range: list = field(default_factory=lambda: [1.0, 1.2])  # random resize factor
    rotate_deg: float = 10.0
    brightness: float = 0.1        # additive jitter, fraction of full range
    contrast: float = 0.1          # multiplicative jitter around the mean
    hflip_prob: float = 0.0
    fov_prob_sim: float = 0.5      # random circular field-of-view mask on sim images
    fov_prob_real: float = 0.0     # real frames already show it
    fov_radius: list = field(default_factory=lambda: [0.4, 0.5])  # x longer side .. x diagonal
    fov_offset: float = 0.1        # centre offset, fraction of width/height
    trim_black: int = 12           # real frames: drop border rows/cols darker than this (0 = off)
    video_fps: float = 1.0         # frames per second sampled from real videos


@dataclass
class TrainConfig:
    seed: int = 0
    max_iter: int = 1_000_000
    batch_size: int = 1
    ema_decay: float = 0.999
    # Mixed precision (see sim2real.translate.device): "auto" = bf16 autocast on a CUDA GPU with
    # bf16, fp32 on the CPU (bf16 is slower there); "bf16" = bf16 autocast on any device, the CPU
    # included; "fp32" = none. Losses, weights and optimiser state are fp32 in every case.
    precision: str = "auto"
    compile: bool = False          # torch.compile the networks
    workers: int = 2               # DataLoader processes preparing batches ahead (0 = in the training loop);
                                   # any value trains the same weights (batches are seeded per step)
    prefetch: int = 2              # batches each worker prepares ahead
    checkpoint_every: int = 5000
    sample_every: int = 2000
    log_every: int = 100
    sample_k: int = 4              # translations per row in sample grids
    sample_rows: int = 4


@dataclass
class TranslatorConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TranslatorConfig":
        """Defaults overridden by ``d`` (nested like the TOML); validated."""
        cfg = cls()
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a table of sections, got {type(d).__name__}")
        sections = {f.name for f in dataclasses.fields(cls)}
        for sec, values in d.items():
            if sec not in sections:
                raise ConfigError(f"{source}: unknown section [{sec}]; known: {', '.join(sorted(sections))}")
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{sec}] must be a table")
            target = getattr(cfg, sec)
            known = {f.name: f for f in dataclasses.fields(target)}
            for key, value in values.items():
                if key not in known:
                    raise ConfigError(f"{source}: unknown key {sec}.{key}; known: {', '.join(sorted(known))}")
                default = getattr(target, key)
                setattr(target, key, _coerce(value, default, f"{source}: {sec}.{key}"))
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        m, lo, o, da, t = self.model, self.loss, self.optim, self.data, self.train

        def need(ok: bool, key: str, what: str, value) -> None:
            if not ok:
                raise ConfigError(f"{source}: {key} must be {what}, got {value!r}")

        for k in ("gen_dim", "mlp_dim", "style_dim", "n_res", "n_mlp", "dis_dim", "dis_n_layer", "dis_num_scales"):
            need(getattr(m, k) >= 1, f"model.{k}", ">= 1", getattr(m, k))
        need(1 <= m.n_downsample <= 5, "model.n_downsample", "within 1..5", m.n_downsample)
        need(m.style_n_downsample >= m.n_downsample, "model.style_n_downsample", ">= model.n_downsample",
             m.style_n_downsample)
        need(m.pad_type in ("reflect", "replicate", "zero"), "model.pad_type", "reflect, replicate or zero",
             m.pad_type)
        need(m.content_channels >= 0, "model.content_channels", ">= 0 (0 = no narrowing)", m.content_channels)
        need(m.real_input_noise >= 0, "model.real_input_noise", ">= 0", m.real_input_noise)
        need(m.gan_type in ("lsgan", "nsgan"), "model.gan_type", "lsgan or nsgan", m.gan_type)
        need(m.family in ("munit", "bilateral"), "model.family", "munit or bilateral", m.family)
        for k in ("bil_dim", "bil_low", "bil_bins"):
            need(getattr(m, k) >= 1, f"model.{k}", ">= 1", getattr(m, k))
        need(m.bil_grid >= 2, "model.bil_grid", ">= 2 (grid cells per side)", m.bil_grid)
        need(m.bil_grid <= m.bil_low, "model.bil_grid", f"<= model.bil_low ({m.bil_low}): a grid cannot be finer "
             f"than the image it is predicted from; lower bil_grid or raise bil_low", m.bil_grid)
        ratio = m.bil_low // m.bil_grid
        need(m.bil_low % m.bil_grid == 0 and ratio & (ratio - 1) == 0, "model.bil_low",
             f"model.bil_grid ({m.bil_grid}) times a power of 2, e.g. {m.bil_grid * 4}", m.bil_low)
        need(m.bil_guide in ("learned", "luma"), "model.bil_guide", "learned or luma", m.bil_guide)
        need(0 <= m.bil_detail <= 0.25, "model.bil_detail", "within 0..0.25 (the detail branch's bound in "
             "[-1, 1] units; 0 = off): a larger one could paint over what the render shows", m.bil_detail)
        for k in ("gan", "recon_x", "recon_c", "recon_s", "cycle", "struct_s2r", "struct_r2s", "chroma", "diversity",
                  "semantic", "nce"):
            need(getattr(lo, k) >= 0, f"loss.{k}", ">= 0", getattr(lo, k))
        need(lo.semantic_warmup >= 0, "loss.semantic_warmup", ">= 0", lo.semantic_warmup)
        need(lo.semantic_base >= 1, "loss.semantic_base", ">= 1", lo.semantic_base)
        need(lo.semantic_tool > 0, "loss.semantic_tool", "> 0 (1 = every pixel alike)", lo.semantic_tool)
        need(lo.nce_patches >= 2, "loss.nce_patches", ">= 2", lo.nce_patches)
        need(lo.nce_tau > 0, "loss.nce_tau", "> 0", lo.nce_tau)
        need(0 <= lo.style_from_real_prob <= 1, "loss.style_from_real_prob", "within 0..1", lo.style_from_real_prob)
        need(o.lr > 0, "optim.lr", "> 0", o.lr)
        need(0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, "optim.beta1/beta2", "within [0, 1)", (o.beta1, o.beta2))
        need(o.lr_step >= 1, "optim.lr_step", ">= 1", o.lr_step)
        mult = 2 ** m.n_downsample
        need(da.load_size == 0 or da.load_size >= 16, "data.load_size", ">= 16, or 0 for native scale",
             da.load_size)
        need(da.native_short == 0 or da.native_short >= 16, "data.native_short", ">= 16, or 0 (the renders')",
             da.native_short)
        need(len(da.crop) == 2 and (list(da.crop) == [0, 0]
                                    or all(int(c) >= 16 and int(c) % mult == 0 for c in da.crop)), "data.crop",
             f"[height, width], each >= 16 and a multiple of {mult} (2**model.n_downsample), or [0, 0] (the "
             f"largest that fits the renders)", da.crop)
        if m.family == "bilateral" and list(da.crop) != [0, 0]:
            need(m.bil_low <= min(int(c) for c in da.crop), "model.bil_low",
                 f"<= the training crop's short side ({min(int(c) for c in da.crop)}, data.crop); lower "
                 f"bil_low or enlarge data.crop", m.bil_low)
        need(len(da.scale_range) == 2 and 0 < da.scale_range[0] <= da.scale_range[1], "data.scale_range",
             "[min, max] with 0 < min <= max", da.scale_range)
        need(len(da.fov_radius) == 2 and 0 < da.fov_radius[0] and da.fov_radius[0] <= da.fov_radius[1] * 2,
             "data.fov_radius", "[x longer side, x diagonal], both > 0", da.fov_radius)
        for k in ("hflip_prob", "fov_prob_sim", "fov_prob_real"):
            need(0 <= getattr(da, k) <= 1, f"data.{k}", "within 0..1", getattr(da, k))
        need(0 <= da.rotate_deg <= 90, "data.rotate_deg", "within 0..90", da.rotate_deg)
        need(da.video_fps > 0, "data.video_fps", "> 0", da.video_fps)
        need(t.max_iter >= 1, "train.max_iter", ">= 1", t.max_iter)
        need(t.batch_size >= 1, "train.batch_size", ">= 1", t.batch_size)
        need(t.workers >= 0, "train.workers", ">= 0 (0 = batches drawn in the training loop)", t.workers)
        need(t.prefetch >= 1, "train.prefetch", ">= 1", t.prefetch)
        need(0 <= t.ema_decay < 1, "train.ema_decay", "within [0, 1)", t.ema_decay)
        if precision_problem(t.precision):
            raise ConfigError(f"{source}: train.precision {precision_problem(t.precision)}")
        for k in ("checkpoint_every", "sample_every", "log_every", "sample_k", "sample_rows"):
            need(getattr(t, k) >= 1, f"train.{k}", ">= 1", getattr(t, k))


def min_crop_side(m: ModelConfig) -> int:
    """The smallest crop side the networks take: the coarsest discriminator scale
    (``2**(dis_num_scales - 1)`` smaller) must leave one patch after ``dis_n_layer``
    halvings, and the style encoder halves ``style_n_downsample`` times; at least 16; the
    bilateral family's low-resolution path (``bil_low``) must fit too."""
    bil = m.bil_low if m.family == "bilateral" else 0
    return max(16, 2 ** (m.dis_num_scales - 1 + m.dis_n_layer), 2 ** m.style_n_downsample, bil)


def working_size(d: DataConfig, render_hw) -> tuple[int, int]:
    """(h, w) of a render of size ``render_hw`` once resized to the training scale."""
    h, w = (int(v) for v in render_hw)
    short = work_short(d, "sim")
    if not short:
        return h, w
    s = short / min(h, w)
    return round(h * s), round(w * s)


def fit_crop(cfg: "TranslatorConfig", render_hw, source: str = "renders") -> list[int]:
    """The training crop for renders of size ``render_hw`` (h, w): ``data.crop``, or with
    ``[0, 0]`` the largest crop (multiples of ``2**model.n_downsample``) inside them.
    A crop larger than the renders is an error naming the setting and the fix."""
    mult = 2 ** cfg.model.n_downsample
    wh, ww = working_size(cfg.data, render_hw)
    fits = [wh // mult * mult, ww // mult * mult]
    scale = "native scale" if not cfg.data.load_size else f"data.load_size {cfg.data.load_size}"
    if min(fits) < min_crop_side(cfg.model):
        raise ConfigError(f"the {source} are {wh}x{ww} (h x w) at the training scale ({scale}); the networks need "
                          f"crops of at least {min_crop_side(cfg.model)} px a side: render larger images or set "
                          f"data.load_size")
    if list(cfg.data.crop) == [0, 0]:
        return fits
    ch, cw = (int(c) for c in cfg.data.crop)
    if cfg.model.family == "bilateral" and [ch, cw] != fits and ch <= wh and cw <= ww:
        raise ConfigError(f"data.crop {[ch, cw]} is part of the {wh}x{ww} (h x w) {source} at the training scale "
                          f"({scale}); the bilateral family predicts its grid from the whole frame, so it trains on "
                          f"whole frames: use --config bilateral, or set data.crop = [0, 0] and a data.load_size "
                          f"(e.g. --set data.load_size=72 --set 'data.crop=[0,0]')")
    if min(ch, cw) < min_crop_side(cfg.model):
        raise ConfigError(f"data.crop {[ch, cw]}: the networks need at least {min_crop_side(cfg.model)} px a side "
                          f"(2**(model.dis_num_scales - 1 + model.dis_n_layer), 2**model.style_n_downsample and, for the "
                          f"bilateral family, model.bil_low); "
                          f"set a larger data.crop, or fewer model.dis_num_scales / model.dis_n_layer")
    if ch > wh or cw > ww:
        pad = 1 - min(ch, wh) * min(cw, ww) / (ch * cw)
        raise ConfigError(f"data.crop {[ch, cw]} (h, w) is larger than the {source} at the training scale "
                          f"({wh}x{ww} h x w, {scale}): {pad:.0%} of every crop would be black padding; set "
                          f"data.crop to at most {fits} (e.g. --set 'data.crop=[{min(ch, fits[0])}, "
                          f"{min(cw, fits[1])}]') or to [0, 0] (the largest that fits)")
    return [ch, cw]


PRECISIONS = ("auto", "bf16", "fp32")


def precision_problem(value) -> str | None:
    """Why ``value`` is not a precision this package offers (None: it is one)."""
    if value == "fp16":
        return ("fp16 is not offered (it needs loss scaling); use bf16 (as fast on GPUs with bf16, no "
                "scaling needed), auto or fp32")
    if value not in PRECISIONS:
        return f"must be auto, bf16 or fp32, got {value!r}"
    return None


def work_short(d: DataConfig, domain: str) -> int | None:
    """Short side images of ``domain`` ("sim" or "real") are resized to; None = kept as they are."""
    if d.load_size:
        return d.load_size
    if domain == "sim":
        return None
    if not d.native_short:
        raise ConfigError("data.native_short is not set; native-scale runs record it when training starts")
    return d.native_short


def _coerce(value, default, where: str):
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or len(value) != len(default):
            raise ConfigError(f"{where} must be a list of {len(default)} numbers, got {value!r}")
        return [_coerce(v, d, where) for v, d in zip(value, default)]
    return value


# What `sim2real train` trains without --config: the generator family that measures best
# (docs/results.md, "Colour edges for the bilateral translator").
DEFAULT_PRESET = "bilateral"


def load_config(spec: str | Path | None = None, overrides: dict | None = None) -> TranslatorConfig:
    """A config from a preset name (``small``, ``paper``), a TOML path, or the defaults."""
    data: dict = {}
    source = "defaults"
    if spec is not None:
        path = Path(spec)
        if not path.suffix and (PRESETS_DIR / f"{spec}.toml").is_file():
            path = PRESETS_DIR / f"{spec}.toml"
        if not path.is_file():
            names = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.toml")))
            raise ConfigError(f"config {spec}: no such file or preset; pass a TOML path or one of: {names}")
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config {path}: not valid TOML ({one_line(exc)})") from None
        source = str(path)
    if overrides:
        data = _merge(data, overrides)
    return TranslatorConfig.from_dict(data, source)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))
