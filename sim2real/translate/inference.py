"""Translate a rendered data set into K realistic variants per render, labels carried over.

Each source image is encoded once; its K style codes are decoded in one batched call
(``RealGenerator.decode_multi``). The output is a data set of kind ``"translation"``
whose samples ``<source_id>_style_<kk>`` hold the translated ``image.png`` and hard links
(copies where links fail) to every other file of the source sample, byte for byte.

The route of a job, in the order of this file: ``sim2real translate`` (``cli.py``) builds
:class:`TranslateOptions` and calls :func:`run_translation`, which opens the output data
set (:func:`open_output`), loads the model (:class:`MunitTranslator`), and for each batch
of renders reads them (:func:`load_render`), translates them (:func:`translate_batch`) and
writes each variant through the data set's writer (:func:`_write_render`,
``dataset.format.DatasetWriter.write_variant``), reads and writes in threads (:class:`_IO`).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..dataset.format import DatasetWriter, missing_variants, open_renders, open_translation, variant_id
from ..errors import DatasetError, Sim2RealError
from .checkpoint import load_checkpoint, load_state, save_checkpoint, sha256_file
from .config import TranslatorConfig, work_short
from .device import autocast, autocast_dtype, check_precision, pick_device, precision_name
from .data import find_real_files, resize_short, to_tensor, trim_black_borders, _read
from .bilateral import make_sim_to_real
from .generators import SimToReal, inference_state
from .losses import msssim_gray


# -------- the job: options, the loop over renders, the output data set


@dataclass
class TranslateOptions:
    """One translation job, as the CLI and the add-on build it; :meth:`check` validates it.

    ``segmenter`` is only the path recorded with the output; the scorer that uses it is
    passed to :func:`run_translation` by the caller (``translate/`` does not import
    ``segment/``). ``shard = (i, n)`` translates the renders whose position in the
    source data set is ``i`` modulo ``n``; ``io_threads`` PNG readers/writers overlap the
    decoding (0 = read and write in the calling thread).
    """

    checkpoint: str | os.PathLike
    data: str | os.PathLike
    out: str | os.PathLike
    k: int = 5
    seed: int = 0
    synchronized: bool = False
    style_from: list | None = None
    batch: int = 8
    device: str | None = None
    precision: str = "auto"
    min_structure: float | None = None
    max_redraws: int = 5
    keep_fov: bool = True
    segmenter: str | os.PathLike | None = None
    min_consistency: float | None = None
    shard: tuple[int, int] = (0, 1)
    io_threads: int = 2
    method: str = "munit"

    def check(self, has_scorer: bool) -> None:
        """Raise a one-line :class:`Sim2RealError` for the first bad option."""
        if self.method not in METHODS:
            raise Sim2RealError(f"--method {self.method!r}: unknown; choose one of {', '.join(METHODS)}")
        check_precision(self.precision, "--precision")
        if self.k < 1:
            raise Sim2RealError(f"-k must be >= 1, got {self.k}")
        if self.batch < 1:
            raise Sim2RealError(f"--batch must be >= 1, got {self.batch}")
        if self.io_threads < 0:
            raise Sim2RealError(f"--io-threads must be >= 0, got {self.io_threads}")
        i, n = self.shard
        if n < 1 or not 0 <= i < n:
            raise Sim2RealError(f"--shard {i}/{n}: need 0 <= i < n")
        if self.min_structure is not None and not 0 <= self.min_structure <= 1:
            raise Sim2RealError(f"--min-structure must be within 0..1 (an MS-SSIM), got {self.min_structure}")
        if self.min_consistency is not None and not 0 <= self.min_consistency <= 1:
            raise Sim2RealError(f"--min-consistency must be within 0..1 (a mean Dice), got {self.min_consistency}")
        if self.segmenter is not None and not has_scorer:
            raise Sim2RealError(f"segmenter {self.segmenter}: pass its scorer too (run_translation(opts, scorer=...); "
                                f"the CLI builds one with --segmenter)")
        if self.min_consistency is not None and not has_scorer:
            raise Sim2RealError("--min-consistency needs --segmenter CKPT (a 'sim2real segment train' checkpoint "
                                "trained on real labelled frames)")

    def redraw_policy(self) -> "RedrawPolicy":
        return RedrawPolicy(self.min_structure, self.min_consistency, self.max_redraws)


METHODS = ("munit",)


@dataclass
class RedrawPolicy:
    """Which variants are redrawn (new style code) and which attempt is kept."""

    min_structure: float | None = None
    min_consistency: float | None = None
    max_redraws: int = 5

    @property
    def active(self) -> bool:
        return self.min_structure is not None or self.min_consistency is not None

    def margin(self, structure, consistency) -> np.ndarray:
        """How far variants clear their thresholds (negative: they fail one)."""
        m = np.full(np.shape(structure), np.inf)
        if self.min_structure is not None:
            m = np.minimum(m, structure - self.min_structure)
        if self.min_consistency is not None:
            m = np.minimum(m, consistency - self.min_consistency)
        return m

    def passed(self, structure: float, consistency: float) -> tuple[bool, bool]:
        """(structure passed, consistency passed); a missing threshold always passes."""
        return (self.min_structure is None or structure >= self.min_structure,
                self.min_consistency is None or consistency >= self.min_consistency)


def run_translation(opts: TranslateOptions, scorer=None, progress=None) -> dict:
    """Translate this shard's renders of ``opts.data`` into ``opts.k`` variants each; returns a summary.

    Resumable: variants already written are skipped; a rerun with other options into the
    same folder is refused; shards write disjoint variants of one folder. With
    ``keep_fov`` the render's black outside-the-field-of-view pixels (pure black and
    labelled background) stay black in every variant, so image and labels agree there.

    ``scorer`` (``.score(images, segmentations) -> [{class: dice}]``, e.g. a
    ``segment.consistency.ConsistencyScorer`` of a segmenter trained on real frames)
    records every variant's semantic consistency; with ``min_consistency`` variants below
    it are redrawn like ``min_structure``.

    Reading renders and writing variants run in ``opts.io_threads`` threads, so the
    model works on batch t+1 while batch t is written and batch t+2 is read.
    """
    opts.check(scorer is not None)
    src = open_renders(opts.data)
    tr = MunitTranslator(opts.checkpoint, opts.device, opts.precision)
    bank = StyleBank(tr.cfg.model.style_dim, opts.seed, opts.synchronized)
    if opts.style_from:
        codes, refs = encode_reference_styles(tr.model, tr.cfg, opts.style_from, tr.device)
        bank = StyleBank(tr.cfg.model.style_dim, opts.seed, opts.synchronized, refs, codes)
    writer = open_output(opts, src, tr, bank)
    policy = opts.redraw_policy()
    todo, done = missing_variants(src, writer, opts.k, opts.shard)
    summary = {"sources": len(src), "variants_written": 0, "variants_skipped": done, "redraws": 0,
               "below_min_structure": 0, "below_min_consistency": 0, "links": 0, "copies": 0,
               "shard": list(opts.shard), "sources_in_shard": len(todo) + done // opts.k}
    if progress is not None and done:
        progress.update(done)
    chunks = [todo[s:s + opts.batch] for s in range(0, len(todo), opts.batch)]

    def load(chunk):
        return [load_render(src, index, sid, opts.keep_fov, scorer is not None) for index, sid in chunk]

    def written(counts: dict) -> None:
        for key, v in counts.items():
            summary[key] += v
        if progress is not None:
            progress.update(opts.k)

    with _IO(opts.io_threads) as io:
        pending_read = io.submit(load, chunks[0]) if chunks else None
        for c in range(len(chunks)):
            items = io.result(pending_read)
            if c + 1 < len(chunks):
                pending_read = io.submit(load, chunks[c + 1])
            by_size: dict[tuple, list[Loaded]] = {}  # one batch per image size (renders normally share one)
            for it in items:
                by_size.setdefault(it.image.shape[:2], []).append(it)
            for group in by_size.values():
                for t in translate_batch(tr, group, opts.k, bank, policy, scorer):
                    summary["redraws"] += int(t.attempts.sum())  # a variant redrawn n times has attempts n
                    io.write(_write_render, written, writer, t, opts, tr.sha256, scorer is not None)
        io.drain(written)
    summary["out"] = str(opts.out)
    return summary


def translate_dataset(checkpoint, data, out, *, scorer=None, progress=None, **options) -> dict:
    """:func:`run_translation` with the options as keyword arguments (see :class:`TranslateOptions`)."""
    return run_translation(TranslateOptions(checkpoint, data, out, **options), scorer, progress)


def open_output(opts: TranslateOptions, src, tr: MunitTranslator, bank: StyleBank) -> DatasetWriter:
    """The output data set, with the options recorded; refuses a folder made with other options.

    The shard and the I/O threads are not recorded: every shard opens the same folder.
    """
    settings = {"checkpoint": str(tr.ck["path"]), "checkpoint_sha256": tr.sha256,
                "checkpoint_step": tr.ck.get("step"), "k": opts.k, "seed": opts.seed,
                "synchronized": opts.synchronized, "style_from": bank.refs,
                "min_structure": opts.min_structure, "max_redraws": opts.max_redraws,
                "work_short_side": tr.cfg.data.load_size or "native", "keep_fov": opts.keep_fov,
                "segmenter": None if opts.segmenter is None else str(opts.segmenter),
                "min_consistency": opts.min_consistency,
                "real_videos": tr.ck.get("real_videos")}  # the real videos the translator saw (None: not recorded)
    # the checkpoint's hash identifies it (and what it saw): its path and real_videos stay out of the fingerprint
    fingerprint = {k: v for k, v in settings.items() if k != "real_videos"}
    return open_translation(opts.out, src, settings, {**fingerprint, "checkpoint": None})


# -------- the model: the EMA generator of a checkpoint, and where style codes come from


class MunitTranslator:
    """The loaded EMA generator: encode renders once, decode K styles per render."""

    def __init__(self, checkpoint, device: str | None, precision: str = "auto"):
        self.device = pick_device(device)
        self.model, self.cfg, self.ck = load_translator(checkpoint, self.device)
        self.sha256 = sha256_file(self.ck["path"])
        self.amp_dtype = autocast_dtype(precision, self.device)  # the trainer's rule (device.py)
        self.precision = precision_name(self.amp_dtype)
        # the bilateral family takes any size (its low-resolution path squashes the image)
        self.bilateral = self.cfg.model.family == "bilateral"
        self.multiple = 1 if self.bilateral else 2 ** self.cfg.model.n_downsample

    def autocast(self):
        return autocast(self.device, self.amp_dtype)

    @torch.no_grad()
    def content(self, imgs: list[np.ndarray]):
        """Content codes of uint8 renders of one size, and the working size (h, w).

        The bilateral family predicts its grid from the render at the training scale (what it
        saw in training) and applies it to the render at its own resolution: nothing is resized
        down and back up, so the working size is the render's."""
        short = work_short(self.cfg.data, "sim")
        x, hw_work = _work_tensor(imgs, short, self.multiple)
        guide = None
        if self.bilateral and short:
            guide, hw_work = _work_tensor(imgs, None, 1)
            guide = guide.to(self.device)
        with self.autocast():
            if self.bilateral:
                return self.model.content(x.to(self.device), guide), hw_work
            return self.model.content(x.to(self.device)), hw_work

    @torch.no_grad()
    def decode(self, content, styles: np.ndarray, hw_work, hw_out) -> torch.Tensor:
        """(B, K, style_dim) codes -> uint8 (B, K, H_out, W_out, 3) on the model's device."""
        st = torch.from_numpy(styles).to(self.device)
        with self.autocast():
            y = self.model.decode_multi(content, st)
        n, kk = y.shape[:2]
        return _to_uint8(y.reshape(n * kk, *y.shape[2:]), hw_work, hw_out).reshape(n, kk, *hw_out, 3)


def load_translator(checkpoint: str | os.PathLike, device="cpu") -> tuple[SimToReal, TranslatorConfig, dict]:
    """The EMA sim -> real model of a training or exported checkpoint, in eval mode."""
    ck = load_checkpoint(checkpoint)
    cfg = TranslatorConfig.from_dict(ck["config"], source=f"checkpoint {ck['path']}")
    model = make_sim_to_real(cfg.model)
    if ck["kind"] == "train":
        state = inference_state(ck["ema"]["gen_sim"], ck["ema"]["gen_real"])
    else:
        state = ck["model"]
    load_state(model, state, "translator", ck["path"])
    return model.to(device).eval().requires_grad_(False), cfg, ck


def export(run_or_checkpoint: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write a small inference-only checkpoint (EMA sim -> real model + config)."""
    ck = load_checkpoint(run_or_checkpoint, kinds=("train",))
    src = Path(ck["path"])
    out = Path(out) if out is not None else src.parent / "translator.pt"
    model, cfg, _ = load_translator(src)
    save_checkpoint(out, {"kind": "inference", "config": ck["config"], "step": int(ck["step"]),
                          "model": model.state_dict(), "source_sha256": sha256_file(src),
                          "real_videos": list(ck.get("real_videos", []))})
    return out


class StyleBank:
    """Where style codes come from: N(0, I) per (seed, image) or encoded real references."""

    def __init__(self, style_dim: int, seed: int, synchronized: bool, refs: list[str] | None = None,
                 codes: np.ndarray | None = None):
        self.style_dim, self.seed, self.synchronized = style_dim, int(seed), synchronized
        self.refs, self.codes = refs, codes

    def _rng(self, *key):
        # Per-image codes are keyed by the image's index; synchronized codes ignore it.
        if self.synchronized:
            return np.random.default_rng([self.seed, 2, *key[1:]])
        return np.random.default_rng([self.seed, 1, *key])

    def initial(self, index: int, k: int) -> tuple[np.ndarray, list[str]]:
        """K codes (K, style_dim) for source ``index`` and where each came from."""
        rng = self._rng(index)
        if self.codes is None:
            kind = "synchronized" if self.synchronized else "random"
            return rng.standard_normal((k, self.style_dim)).astype(np.float32), [kind] * k
        m = len(self.codes)
        pick = rng.choice(m, size=k, replace=m < k)
        return self.codes[pick], [f"reference:{self.refs[i]}" for i in pick]

    def redraw(self, index: int, variant: int, attempt: int) -> tuple[np.ndarray, str]:
        rng = self._rng(index, variant, attempt)
        if self.codes is None:
            return rng.standard_normal(self.style_dim).astype(np.float32), "redraw"
        i = int(rng.integers(len(self.codes)))
        return self.codes[i], f"reference:{self.refs[i]}"


@torch.no_grad()
def encode_reference_styles(model: SimToReal, cfg: TranslatorConfig, paths, device, batch: int = 8):
    """Style codes (M, style_dim) of real reference images (folders or files) and their names."""
    images, videos = find_real_files(paths)
    if videos:
        raise DatasetError(f"--style-from takes images, not videos ({videos[0]}); extract frames first")
    codes = []
    mult = 2 ** cfg.model.n_downsample
    for p in images:
        img = trim_black_borders(_read(p, "style reference"), cfg.data.trim_black)
        x, _ = _work_tensor([img], work_short(cfg.data, "real"), mult)
        codes.append(model.style(x.to(device)).float().cpu().numpy()[0])
    return np.stack(codes).astype(np.float32), [str(p) for p in images]


# -------- one batch: read renders, decode K variants each, score, redraw


@dataclass
class Loaded:
    """One render read from disk: what a batch needs of it."""

    index: int
    sample: object
    image: np.ndarray
    outside: torch.Tensor | None      # black outside-the-field-of-view pixels (keep_fov)
    segmentation: np.ndarray | None   # only with a consistency scorer


@dataclass
class Translated:
    """The K variants of one render and what is recorded about each."""

    loaded: Loaded
    images: torch.Tensor              # uint8 (K, H, W, 3)
    styles: np.ndarray                # (K, style_dim)
    origins: list
    structure: np.ndarray             # (K,) grayscale MS-SSIM to the render
    consistency: np.ndarray           # (K,) mean Dice, NaN without a scorer
    consistency_classes: list         # K x {class: dice} or None
    attempts: np.ndarray              # (K,) redraws made


def load_render(src, index: int, sid: str, keep_fov: bool, with_segmentation: bool) -> Loaded:
    sample = src.sample(sid)
    img = sample.image()
    return Loaded(index, sample, img, _outside_fov(sample, img) if keep_fov else None,
                  sample.segmentation() if with_segmentation else None)


def _outside_fov(sample, img: np.ndarray) -> torch.Tensor | None:
    """Bool (H, W): pixels the render shows pure black and labels background, or None."""
    seg_path = sample.path("segmentation")
    if not seg_path.is_file():
        return None
    m = (img.max(axis=2) == 0) & (sample.segmentation() == 0)
    return torch.from_numpy(m) if m.any() else None


def translate_batch(tr: MunitTranslator, items: list[Loaded], k: int, bank: StyleBank, policy: RedrawPolicy,
                    scorer=None) -> list[Translated]:
    """K variants of renders of one size: decode, score, redraw what fails the policy."""
    content, hw_work = tr.content([it.image for it in items])
    hw_out = items[0].image.shape[:2]
    styles, origins = zip(*(bank.initial(it.index, k) for it in items))
    styles = np.stack(styles)                                           # (B, K, D)
    origins = [list(o) for o in origins]
    # Images stay on the model's device until they are scored (MS-SSIM at the render's
    # size is too slow for the CPU to keep up with a GPU).
    dev = tr.device
    y = tr.decode(content, styles, hw_work, hw_out)                     # (B, K, H, W, 3) uint8
    masks = [None if it.outside is None else it.outside.to(dev) for it in items]
    _blank_outside(y, masks)
    src_u8 = torch.from_numpy(np.stack([it.image for it in items])).to(dev)
    score = structure_scores(src_u8.repeat_interleave(k, 0), y.reshape(-1, *y.shape[2:]))
    score = score.reshape(len(items), k).cpu().numpy().astype(np.float64)
    cons = np.full((len(items), k), np.nan)
    cons_cls: list[list[dict | None]] = [[None] * k for _ in items]
    if scorer is not None:
        res = scorer.score(list(y.reshape(-1, *y.shape[2:]).cpu().numpy()),
                           [it.segmentation for it in items for _ in range(k)])
        for n_, r in enumerate(res):
            cons[n_ // k, n_ % k] = float(np.mean(list(r.values())))
            cons_cls[n_ // k][n_ % k] = r
    attempts = np.zeros((len(items), k), int)
    for attempt in range(1, policy.max_redraws + 1 if policy.active else 1):
        fail = np.argwhere(policy.margin(score, cons) < 0)
        if fail.size == 0:
            break
        new = [bank.redraw(items[b].index, j, attempt) for b, j in fail]
        codes = np.stack([c for c, _ in new])[:, None]                  # (F, 1, D)
        y_new = tr.decode(content[torch.as_tensor(fail[:, 0])], codes, hw_work, hw_out)[:, 0]
        _blank_outside(y_new[:, None], [masks[b] for b in fail[:, 0]])
        s_new = structure_scores(src_u8[torch.as_tensor(fail[:, 0], device=dev)], y_new).cpu().numpy()
        c_new = np.full(len(fail), np.nan)
        r_new: list = [None] * len(fail)
        if scorer is not None:
            r_new = scorer.score(list(y_new.cpu().numpy()), [items[b].segmentation for b in fail[:, 0]])
            c_new = np.array([float(np.mean(list(r.values()))) for r in r_new])
        better = policy.margin(s_new, c_new) > policy.margin(score[fail[:, 0], fail[:, 1]], cons[fail[:, 0], fail[:, 1]])
        for n_, ((b, j), (code, origin)) in enumerate(zip(fail, new)):
            attempts[b, j] = attempt
            if better[n_]:  # keep the best attempt seen
                score[b, j], cons[b, j], cons_cls[b][j] = s_new[n_], c_new[n_], r_new[n_]
                y[b, j] = y_new[n_]
                styles[b, j] = code
                origins[b][j] = origin
    y = y.cpu()
    return [Translated(it, y[b], styles[b], origins[b], score[b], cons[b], cons_cls[b], attempts[b])
            for b, it in enumerate(items)]


def _blank_outside(y: torch.Tensor, masks) -> None:
    for b, m in enumerate(masks):
        if m is not None:
            y[b][..., m, :] = 0


def _work_tensor(imgs: list[np.ndarray], short: int | None, multiple: int) -> torch.Tensor:
    """uint8 images of one size -> (B, 3, h, w) in [-1, 1] at the training scale (``short``;
    None = native, no resizing), padded to ``multiple`` (cropped back after decoding)."""
    x = torch.stack([to_tensor(i) for i in imgs])
    if short:
        x = resize_short(x, short)
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x * 2 - 1, (h, w)


def _to_uint8(y: torch.Tensor, hw_work, hw_out) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> uint8 (N, H_out, W_out, 3), on y's device."""
    y = y[..., :hw_work[0], :hw_work[1]].float()
    if tuple(y.shape[-2:]) != tuple(hw_out):
        y = F.interpolate(y, size=hw_out, mode="bilinear", align_corners=False, antialias=True)
    return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


def structure_scores(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Grayscale MS-SSIM per pair of uint8 (N, H, W, 3) images."""
    a = src.permute(0, 3, 1, 2).float() / 255
    b = out.permute(0, 3, 1, 2).float() / 255
    return msssim_gray(a, b, reduce=False).reshape(-1)


# -------- writing: each variant's files and record (through the data set's writer)


def _write_render(writer, t: Translated, opts: TranslateOptions, sha: str, scored: bool) -> dict[str, int]:
    """Write the missing variants of one render; returns counts for the summary."""
    policy = opts.redraw_policy()
    out = {"variants_written": 0, "variants_skipped": 0, "below_min_structure": 0,
           "below_min_consistency": 0, "links": 0, "copies": 0}
    for j in range(opts.k):
        vid = variant_id(t.loaded.sample.id, j)
        if writer.has(vid):
            out["variants_skipped"] += 1
            continue
        passed, passed_c = policy.passed(t.structure[j], t.consistency[j])
        out["below_min_structure"] += int(not passed)
        out["below_min_consistency"] += int(not passed_c)
        counts = writer.write_variant(t.loaded.sample, vid, t.images[j].numpy(),
                               variant_record(t, j, opts, sha, scored))
        out["links"] += counts["links"]
        out["copies"] += counts["copies"]
        out["variants_written"] += 1
    return out


def variant_record(t: Translated, j: int, opts: TranslateOptions, checkpoint_sha256: str, scored: bool) -> dict:
    """The ``translation`` record of variant ``j`` in its meta.json."""
    passed, passed_c = opts.redraw_policy().passed(t.structure[j], t.consistency[j])
    record = {"source_id": t.loaded.sample.id, "style_index": j,
              "style_code": [round(float(v), 6) for v in t.styles[j]],
              "style_origin": t.origins[j], "checkpoint_sha256": checkpoint_sha256,
              "msssim_gray": round(float(t.structure[j]), 6),
              "redraws": int(t.attempts[j]), "min_structure": opts.min_structure,
              "passed_min_structure": bool(passed), "seed": opts.seed}
    if scored:
        record.update({"consistency_dice": {c: round(v, 6) for c, v in t.consistency_classes[j].items()},
                       "consistency_mean": round(float(t.consistency[j]), 6),
                       "min_consistency": opts.min_consistency,
                       "passed_min_consistency": bool(passed_c)})
    return record


# -------- reads and writes in threads


class _IO:
    """Reads and writes in ``threads`` worker threads (none: in the calling thread).

    Writes are bounded (at most ``4 x threads`` renders queued) so memory stays flat when
    the disk is slower than the model; a failed read or write raises in the caller.
    """

    def __init__(self, threads: int):
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="translate-io") if threads else None
        self.writes: deque = deque()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
        return False

    def submit(self, fn, *args):
        if self.pool is None:
            return _Done(fn(*args))
        return self.pool.submit(fn, *args)

    @staticmethod
    def result(future):
        return future.result()

    def write(self, fn, on_done, *args) -> None:
        self.writes.append(self.submit(fn, *args))
        while self.writes and (self.writes[0].done() or len(self.writes) > 4 * max(1, self.threads)):
            on_done(self.writes.popleft().result())

    def drain(self, on_done) -> None:
        while self.writes:
            on_done(self.writes.popleft().result())


class _Done:
    """A finished 'future' for the synchronous path."""

    def __init__(self, value):
        self.value = value

    def done(self) -> bool:
        return True

    def result(self):
        return self.value

