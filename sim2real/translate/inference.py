"""Translate a rendered data set into K realistic variants per render, labels carried over.

Each source image is encoded once; its K style codes are decoded in one batched call
(``RealGenerator.decode_multi``). The output is a data set of kind ``"translation"``
whose samples ``<source_id>_style_<kk>`` hold the translated ``image.png`` and hard links
(copies where links fail) to every other file of the source sample, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..dataset import FILES, DatasetWriter, open_dataset
from ..errors import DatasetError, Sim2RealError
from ..io import link_or_copy, write_json_atomic, write_png
from .checkpoint import load_checkpoint, load_state, save_checkpoint, sha256_file
from .config import TranslatorConfig, work_short
from .data import find_real_files, resize_short, to_tensor, trim_black_borders, _read
from .generators import SimToReal, inference_state
from .losses import msssim_gray
from .trainer import pick_device


def load_translator(checkpoint: str | os.PathLike, device="cpu") -> tuple[SimToReal, TranslatorConfig, dict]:
    """The EMA sim -> real model of a training or exported checkpoint, in eval mode."""
    ck = load_checkpoint(checkpoint)
    cfg = TranslatorConfig.from_dict(ck["config"], source=f"checkpoint {ck['path']}")
    model = SimToReal(cfg.model)
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
                          "model": model.state_dict(), "source_sha256": sha256_file(src)})
    return out


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
    """(N, 3, H, W) in [-1, 1] -> uint8 (N, H_out, W_out, 3) on the CPU."""
    y = y[..., :hw_work[0], :hw_work[1]].float()
    if tuple(y.shape[-2:]) != tuple(hw_out):
        y = F.interpolate(y, size=hw_out, mode="bilinear", align_corners=False, antialias=True)
    return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def structure_scores(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Grayscale MS-SSIM per pair of uint8 (N, H, W, 3) images."""
    a = src.permute(0, 3, 1, 2).float() / 255
    b = out.permute(0, 3, 1, 2).float() / 255
    return msssim_gray(a, b, reduce=False).reshape(-1)


def _outside_fov(sample, img: np.ndarray) -> torch.Tensor | None:
    """Bool (H, W): pixels the render shows pure black and labels background, or None."""
    seg_path = sample.path("segmentation")
    if not seg_path.is_file():
        return None
    m = (img.max(axis=2) == 0) & (sample.segmentation() == 0)
    return torch.from_numpy(m) if m.any() else None


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


def translate_dataset(checkpoint, data, out, k: int = 5, seed: int = 0, synchronized: bool = False,
                      style_from=None, batch: int = 8, device: str | None = None,
                      min_structure: float | None = None, max_redraws: int = 5, precision: str = "bf16",
                      keep_fov: bool = True, segmenter=None, min_consistency: float | None = None,
                      progress=None) -> dict:
    """Translate every sample of ``data`` into ``k`` variants under ``out``; returns a summary.

    Resumable: variants already written are skipped; a rerun with other options into the
    same folder is refused. With ``keep_fov`` the render's black outside-the-field-of-view
    pixels (pure black and labelled background) stay black in every variant, so image and
    labels agree there (the generator learns from real frames that often fill the frame).

    ``segmenter`` (a ``sim2real segment`` checkpoint trained on real frames) scores every
    variant's semantic consistency (mean Dice of its prediction against the render's own
    labels); with ``min_consistency`` variants below it are redrawn like ``min_structure``.
    """
    if k < 1:
        raise Sim2RealError(f"-k must be >= 1, got {k}")
    if batch < 1:
        raise Sim2RealError(f"--batch must be >= 1, got {batch}")
    if min_structure is not None and not 0 <= min_structure <= 1:
        raise Sim2RealError(f"--min-structure must be within 0..1 (an MS-SSIM), got {min_structure}")
    if min_consistency is not None and not 0 <= min_consistency <= 1:
        raise Sim2RealError(f"--min-consistency must be within 0..1 (a mean Dice), got {min_consistency}")
    if min_consistency is not None and segmenter is None:
        raise Sim2RealError("--min-consistency needs --segmenter CKPT (a 'sim2real segment train' checkpoint "
                            "trained on real labelled frames)")
    dev = pick_device(device)
    src = open_dataset(data)
    if src.kind == "translation":
        raise DatasetError(f"{data} is already a translation data set; translate the renders it came from")
    if len(src) == 0:
        raise DatasetError(f"{data} holds no samples; render some with 'sim2real render' first")
    model, cfg, ck = load_translator(checkpoint, dev)
    ck_sha = sha256_file(ck["path"])
    scorer = None
    if segmenter is not None:
        from ..segment.consistency import ConsistencyScorer

        scorer = ConsistencyScorer(segmenter, src.classes, device=str(dev))
    bank = StyleBank(cfg.model.style_dim, seed, synchronized)
    if style_from:
        codes, refs = encode_reference_styles(model, cfg, style_from, dev)
        bank = StyleBank(cfg.model.style_dim, seed, synchronized, refs, codes)
    settings = {"checkpoint": str(ck["path"]), "checkpoint_sha256": ck_sha, "checkpoint_step": ck.get("step"),
                "k": k, "seed": seed, "synchronized": synchronized,
                "style_from": bank.refs, "min_structure": min_structure, "max_redraws": max_redraws,
                "work_short_side": cfg.data.load_size or "native", "keep_fov": keep_fov,
                "segmenter": None if segmenter is None else str(segmenter), "min_consistency": min_consistency}
    fp_src = {"root": str(Path(data).resolve()), "fingerprint": src.info.get("fingerprint")}
    fingerprint = hashlib.sha256(json.dumps({**settings, "checkpoint": None, "source": fp_src},
                                            sort_keys=True).encode()).hexdigest()[:16]
    info = {"kind": "translation", "classes": src.info["classes"],
            "source": {"path": str(Path(data).resolve()), "kind": src.kind,
                       "fingerprint": src.info.get("fingerprint")},
            "translation": settings, "config": src.info.get("config")}
    writer = DatasetWriter(out, info, fingerprint=fingerprint)
    use_bf16 = dev.type == "cuda" and precision == "bf16"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext
    mult = 2 ** cfg.model.n_downsample
    summary = {"sources": len(src), "variants_written": 0, "variants_skipped": 0, "redraws": 0,
               "below_min_structure": 0, "below_min_consistency": 0, "links": 0, "copies": 0}
    todo = []
    for index, sid in enumerate(src.ids()):
        names = [f"{sid}_style_{j:02d}" for j in range(k)]
        if all(writer.has(n) for n in names):
            summary["variants_skipped"] += k
            if progress is not None:
                progress.update(k)
        else:
            todo.append((index, sid))

    def decode(content_rows, styles_np, hw_work, hw_out):
        st = torch.from_numpy(styles_np).to(dev)
        with autocast():
            y = model.decode_multi(content_rows, st)
        n, kk = y.shape[:2]
        return _to_uint8(y.reshape(n * kk, *y.shape[2:]), hw_work, hw_out).reshape(n, kk, *hw_out, 3)

    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        samples = [src.sample(sid) for _, sid in chunk]
        imgs = [s.image() for s in samples]
        outside = [_outside_fov(s, img) if keep_fov else None for s, img in zip(samples, imgs)]
        # One batch per image size (renders normally share one).
        by_size: dict[tuple, list[int]] = {}
        for i, img in enumerate(imgs):
            by_size.setdefault(img.shape[:2], []).append(i)
        for hw_out, members in by_size.items():
            x, hw_work = _work_tensor([imgs[i] for i in members], work_short(cfg.data, "sim"), mult)
            with autocast():
                content = model.content(x.to(dev))
            styles, origins = zip(*(bank.initial(chunk[i][0], k) for i in members))
            styles = np.stack(styles)                                   # (B, K, D)
            origins = [list(o) for o in origins]
            y = decode(content, styles, hw_work, hw_out)                # (B, K, H, W, 3) uint8
            masks = [outside[i] for i in members]
            for b, m in enumerate(masks):
                if m is not None:
                    y[b][:, m] = 0
            src_u8 = torch.from_numpy(np.stack([imgs[i] for i in members]))
            segs = [samples[i].segmentation() for i in members] if scorer is not None else None
            score = structure_scores(src_u8.repeat_interleave(k, 0), y.reshape(-1, *y.shape[2:]))
            score = score.reshape(len(members), k).numpy().astype(np.float64)
            cons = np.full((len(members), k), np.nan)
            cons_cls: list[list[dict | None]] = [[None] * k for _ in members]
            if scorer is not None:
                res = scorer.score(list(y.reshape(-1, *y.shape[2:]).numpy()), [g for g in segs for _ in range(k)])
                for n_, r in enumerate(res):
                    cons[n_ // k, n_ % k] = float(np.mean(list(r.values())))
                    cons_cls[n_ // k][n_ % k] = r

            def margin(st, co):
                """How far a variant clears its thresholds (negative: it fails one)."""
                m = np.full(np.shape(st), np.inf)
                if min_structure is not None:
                    m = np.minimum(m, st - min_structure)
                if min_consistency is not None:
                    m = np.minimum(m, co - min_consistency)
                return m

            attempts = np.zeros((len(members), k), int)
            if min_structure is not None or min_consistency is not None:
                for attempt in range(1, max_redraws + 1):
                    fail = np.argwhere(margin(score, cons) < 0)
                    if fail.size == 0:
                        break
                    new = [bank.redraw(chunk[members[b]][0], j, attempt) for b, j in fail]
                    codes = np.stack([c for c, _ in new])[:, None]      # (F, 1, D)
                    y_new = decode(content[torch.as_tensor(fail[:, 0])], codes, hw_work, hw_out)[:, 0]
                    for n_, b in enumerate(fail[:, 0]):
                        if masks[b] is not None:
                            y_new[n_][masks[b]] = 0
                    s_new = structure_scores(src_u8[fail[:, 0]], y_new).numpy()
                    c_new = np.full(len(fail), np.nan)
                    r_new: list = [None] * len(fail)
                    if scorer is not None:
                        r_new = scorer.score(list(y_new.numpy()), [segs[b] for b in fail[:, 0]])
                        c_new = np.array([float(np.mean(list(r.values()))) for r in r_new])
                    better = margin(s_new, c_new) > margin(score[fail[:, 0], fail[:, 1]], cons[fail[:, 0], fail[:, 1]])
                    for n_, ((b, j), (code, origin)) in enumerate(zip(fail, new)):
                        attempts[b, j] = attempt
                        summary["redraws"] += 1
                        if better[n_]:  # keep the best attempt seen
                            score[b, j], cons[b, j], cons_cls[b][j] = s_new[n_], c_new[n_], r_new[n_]
                            y[b, j] = y_new[n_]
                            styles[b, j] = code
                            origins[b][j] = origin
            for b, i in enumerate(members):
                sample = samples[i]
                meta = dict(sample.meta)
                for j in range(k):
                    vid = f"{sample.id}_style_{j:02d}"
                    if writer.has(vid):
                        summary["variants_skipped"] += 1
                        continue
                    passed = min_structure is None or score[b, j] >= min_structure
                    summary["below_min_structure"] += int(not passed)
                    passed_c = min_consistency is None or cons[b, j] >= min_consistency
                    summary["below_min_consistency"] += int(not passed_c)
                    with writer.write_sample(vid) as d:
                        write_png(d / FILES["image"], y[b, j].numpy())
                        for f in sorted(sample.dir.iterdir()):
                            if f.name in (FILES["image"], FILES["meta"]) or not f.is_file():
                                continue
                            how = link_or_copy(f, d / f.name)
                            summary["links" if how == "link" else "copies"] += 1
                        record = {"source_id": sample.id, "style_index": j,
                                  "style_code": [round(float(v), 6) for v in styles[b, j]],
                                  "style_origin": origins[b][j], "checkpoint_sha256": ck_sha,
                                  "msssim_gray": round(float(score[b, j]), 6),
                                  "redraws": int(attempts[b, j]), "min_structure": min_structure,
                                  "passed_min_structure": bool(passed), "seed": seed}
                        if scorer is not None:
                            record.update({"consistency_dice": {c: round(v, 6) for c, v in cons_cls[b][j].items()},
                                           "consistency_mean": round(float(cons[b, j]), 6),
                                           "min_consistency": min_consistency,
                                           "passed_min_consistency": bool(passed_c)})
                        write_json_atomic(d / FILES["meta"], {**meta, "id": vid, "translation": record})
                    summary["variants_written"] += 1
                if progress is not None:
                    progress.update(k)
    summary["out"] = str(out)
    return summary
