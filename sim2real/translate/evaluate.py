"""Score a translated data set: structure kept, realism gained, diversity between variants.

No downloaded weights are needed by default:

- structure: grayscale MS-SSIM and edge agreement (F1 of Sobel edge maps, 1-px tolerance)
  between each render and its translations;
- realism: a classifier two-sample test. A small CNN, trained from scratch, learns to
  tell real frames from translations on one split and is scored on another (split by
  video for real frames, by render for translations). 0.5 means indistinguishable. The
  same test on the untranslated renders is the baseline;
- diversity: mean pairwise L1 distance (pixels in [0, 1]) between the K variants of one
  render;
- FID/KID (torchmetrics) only when the user passes Inception weights.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..dataset.format import open_dataset
from ..errors import DatasetError, Sim2RealError
from ..io.videos import video_of_file
from .data import RealFrames, to_tensor
from .config import DataConfig
from .losses import msssim_gray, to_gray

CLS_SIZE = (64, 112)  # classifier input (h, w): every image is resized and centre-cropped to it
CENTRE_FRAC = 0.5     # the "centre" test sees the central half (width and height) only


def sobel_edges(gray: torch.Tensor, top: float = 0.1) -> torch.Tensor:
    """Boolean edge map (B, 1, H, W): the ``top`` fraction of strongest Sobel gradients per image."""
    kx = gray.new_tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    g = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    mag = torch.sqrt(F.conv2d(g, kx) ** 2 + F.conv2d(g, kx.transpose(2, 3)) ** 2)
    thr = torch.quantile(mag.flatten(1), 1 - top, dim=1).view(-1, 1, 1, 1)
    return (mag > thr) & (mag > 1e-3)


def edge_f1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Edge agreement per pair of images in [0, 1] (B, 3, H, W): F1 with a 1-px tolerance."""
    ea, eb = sobel_edges(to_gray(a)), sobel_edges(to_gray(b))
    da = F.max_pool2d(ea.float(), 3, 1, 1) > 0
    db = F.max_pool2d(eb.float(), 3, 1, 1) > 0
    prec = (eb & da).flatten(1).sum(1) / eb.flatten(1).sum(1).clamp(min=1)
    rec = (ea & db).flatten(1).sum(1) / ea.flatten(1).sum(1).clamp(min=1)
    return 2 * prec * rec / (prec + rec).clamp(min=1e-8)


def _cls_pair(img: np.ndarray) -> torch.Tensor:
    """(2, 3, h, w): the whole frame and its central part, as classifier inputs."""
    h, w = img.shape[:2]
    ch, cw = round(h * CENTRE_FRAC), round(w * CENTRE_FRAC)
    centre = img[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
    return torch.stack([_cls_tensor(img), _cls_tensor(centre)])


def _cls_tensor(img: np.ndarray) -> torch.Tensor:
    x = to_tensor(img)[None]
    h, w = x.shape[-2:]
    s = max(CLS_SIZE[0] / h, CLS_SIZE[1] / w)
    x = F.interpolate(x, size=(max(CLS_SIZE[0], round(h * s)), max(CLS_SIZE[1], round(w * s))),
                      mode="bilinear", align_corners=False, antialias=True)[0]
    h, w = x.shape[-2:]
    top, left = (h - CLS_SIZE[0]) // 2, (w - CLS_SIZE[1]) // 2
    return x[:, top:top + CLS_SIZE[0], left:left + CLS_SIZE[1]] * 2 - 1


class SmallCNN(nn.Module):
    """Four strided convs, global average, one logit (about 60k parameters)."""

    def __init__(self):
        super().__init__()
        chans = [3, 16, 32, 64, 64]
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.BatchNorm2d(b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def two_sample_accuracy(real_train, real_test, fake_train, fake_test, seed: int = 0, epochs: int = 15,
                        device="cpu") -> dict:
    """Train a classifier real vs fake on the train tensors; accuracy on the balanced test split."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    def balance(a, b):
        n = min(len(a), len(b))
        return a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]

    rtr, ftr = balance(real_train, fake_train)
    rte, fte = balance(real_test, fake_test)
    if len(rtr) < 2 or len(rte) < 1:
        raise DatasetError(f"too few images for the two-sample test (train {len(rtr)}, test {len(rte)} per class); "
                           f"pass more real frames (from several videos) and translate more renders")
    x = torch.cat([rtr, ftr])
    y = torch.cat([torch.ones(len(rtr)), torch.zeros(len(ftr))])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # module init has no generator argument; keep it local
        model = SmallCNN().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bs = 32
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            idx = perm[i:i + bs]
            if len(idx) < 2:
                continue
            xb = x[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb).to(device)
            loss = F.binary_cross_entropy_with_logits(model(xb), y[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        xt = torch.cat([rte, fte]).to(device)
        yt = torch.cat([torch.ones(len(rte)), torch.zeros(len(fte))])
        pred = torch.cat([model(xt[i:i + 128]) for i in range(0, len(xt), 128)]).cpu() > 0
        acc = float((pred.float() == yt).float().mean())
    n = len(yt)
    return {"accuracy": acc, "stderr": math.sqrt(max(acc * (1 - acc), 1e-12) / n), "n_train": len(x), "n_test": n}


CLASSIFIER_SEEDS = 5  # classifiers per two-sample test: one from-scratch CNN varies by ~0.05 with its seed


def two_sample_repeated(real_train, real_test, fake_train, fake_test, seed: int = 0, repeats: int = CLASSIFIER_SEEDS,
                        epochs: int = 15, device="cpu") -> dict:
    """:func:`two_sample_accuracy` with classifier seeds ``seed .. seed+repeats-1`` on the same split.

    ``accuracy`` is their mean, ``sd`` their spread, ``per_seed`` each; ``stderr`` combines the
    test-set binomial error (one classifier) with the seed-to-seed spread of the mean."""
    if repeats < 1:
        raise DatasetError(f"two-sample classifier seeds must be >= 1 (got {repeats})")
    runs = [two_sample_accuracy(real_train, real_test, fake_train, fake_test, seed + i, epochs, device)
            for i in range(repeats)]
    accs = np.array([r["accuracy"] for r in runs])
    sd = float(accs.std(ddof=1)) if repeats > 1 else 0.0
    binom = float(np.mean([r["stderr"] for r in runs]))
    return {"accuracy": float(accs.mean()), "sd": sd, "per_seed": [float(a) for a in accs],
            "stderr": math.sqrt(binom ** 2 / repeats + sd ** 2 / repeats) if repeats > 1 else binom,
            "seeds": list(range(seed, seed + repeats)), "n_train": runs[0]["n_train"], "n_test": runs[0]["n_test"]}


def _split(keys: list[str], seed: int) -> set[str]:
    """Half of the distinct keys (videos or renders), chosen with a seeded shuffle, for training."""
    uniq = sorted(set(keys))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    return {uniq[i] for i in order[: max(1, len(uniq) // 2)]}


def _fid_kid(real_imgs, fake_imgs, weights: Path, device) -> dict:
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError:
        raise Sim2RealError("--inception-weights needs torchmetrics with its image extras: "
                            "pip install torchmetrics torch-fidelity") from None
    if not weights.is_file():
        raise Sim2RealError(f"--inception-weights {weights} not found; pass the torch-fidelity "
                            f"Inception v3 weights file (pt_inception-2015-12-05)")
    fid = FrechetInceptionDistance(feature=2048, normalize=True, feature_extractor_weights_path=str(weights))
    kid = KernelInceptionDistance(feature=2048, normalize=True, subset_size=min(50, len(real_imgs), len(fake_imgs)),
                                  feature_extractor_weights_path=str(weights))
    fid, kid = fid.to(device), kid.to(device)
    for imgs, is_real in ((real_imgs, True), (fake_imgs, False)):
        for img in imgs:
            x = to_tensor(img)[None].to(device)
            fid.update(x, real=is_real)
            kid.update(x, real=is_real)
    kmean, kstd = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kmean), "kid_std": float(kstd)}


def evaluate(translated, real, source=None, seed: int = 0, device="cpu", epochs: int = 15,
             inception_weights=None, progress=None, videos=None, exclude_videos=None,
             classifier_seeds: int = CLASSIFIER_SEEDS) -> dict:
    """The evaluation report (a JSON-able dict) of a translation data set against real frames."""
    ds = open_dataset(translated)
    if ds.kind != "translation":
        raise DatasetError(f"{translated} is a {ds.kind!r} data set; evaluate needs the output of 'sim2real translate'")
    if len(ds) == 0:
        raise DatasetError(f"{translated} holds no samples; run 'sim2real translate' first")
    src_root = Path(source) if source is not None else Path(ds.info.get("source", {}).get("path", ""))
    try:
        src = open_dataset(src_root)
    except DatasetError:
        raise DatasetError(f"the renders {translated} was translated from are not at {src_root}; "
                           f"pass --source with their folder") from None
    groups: dict[str, list] = defaultdict(list)
    for s in ds:
        groups[s.meta.get("translation", {}).get("source_id", s.id.split("_style_")[0])].append(s)
    missing = [sid for sid in groups if sid not in set(src.ids())]
    if missing:
        raise DatasetError(f"{src_root} lacks source samples {missing[:3]} of {translated}; pass --source "
                           f"with the data set it was translated from")

    ms, ef, div = [], [], []
    fake_cls, fake_keys, base_cls, base_keys = [], [], [], []
    fake_raw, base_raw = [], []
    for sid, variants in sorted(groups.items()):
        s_img = src.sample(sid).image()
        v_imgs = [v.image() for v in variants]
        a = to_tensor(s_img)[None].expand(len(v_imgs), -1, -1, -1)
        b = torch.stack([to_tensor(v) for v in v_imgs])
        ms += msssim_gray(a, b, reduce=False).reshape(-1).tolist()
        ef += edge_f1(a, b).tolist()
        if len(v_imgs) > 1:
            div.append(float(np.mean([(b[i] - b[j]).abs().mean() for i, j in itertools.combinations(range(len(b)), 2)])))
        base_cls.append(_cls_pair(s_img))
        base_keys.append(sid)
        for v in v_imgs:
            fake_cls.append(_cls_pair(v))
            fake_keys.append(sid)
        if inception_weights is not None:
            base_raw.append(s_img)
            fake_raw += v_imgs
        if progress is not None:
            progress.update(1)

    frames = RealFrames(real, DataConfig(load_size=CLS_SIZE[0] * 2), videos=videos, exclude_videos=exclude_videos)
    real_cls, real_keys, real_raw = [], [], []
    for i in range(len(frames)):
        img = frames.get(i)
        real_cls.append(_cls_pair(img))
        name = frames.name(i)  # image path, or "<video path>#<frame>"
        real_keys.append(video_of_file(name))
        if inception_weights is not None:
            real_raw.append(img)
    real_train_keys = _split(real_keys, seed)
    src_train_keys = _split(list(groups), seed + 1)

    def pick(tensors, keys, train_keys, train):
        sel = [t for t, k in zip(tensors, keys) if (k in train_keys) == train]
        return torch.stack(sel) if sel else torch.zeros(0, 2, 3, *CLS_SIZE)

    rtr, rte = pick(real_cls, real_keys, real_train_keys, True), pick(real_cls, real_keys, real_train_keys, False)
    ftr, fte = pick(fake_cls, fake_keys, src_train_keys, True), pick(fake_cls, fake_keys, src_train_keys, False)
    btr, bte = pick(base_cls, base_keys, src_train_keys, True), pick(base_cls, base_keys, src_train_keys, False)
    c2st = {}
    # view 0: the whole frame (field-of-view shape included); view 1: the central part,
    # inside the field of view, where only colour and texture can tell the domains apart.
    for view, suffix in ((0, ""), (1, "_centre")):
        c2st["two_sample_accuracy_translated" + suffix] = two_sample_repeated(
            rtr[:, view], rte[:, view], ftr[:, view], fte[:, view], seed, classifier_seeds, epochs, device)
        c2st["two_sample_accuracy_untranslated" + suffix] = two_sample_repeated(
            rtr[:, view], rte[:, view], btr[:, view], bte[:, view], seed, classifier_seeds, epochs, device)
    report = {
        "translated": str(translated), "source": str(src_root), "real": [str(r) for r in real],
        "n_renders": len(groups), "n_variants": len(ds), "n_real_frames": len(frames),
        "n_real_videos": len(set(real_keys)),
        "structure": {"msssim_gray_mean": float(np.mean(ms)), "msssim_gray_min": float(np.min(ms)),
                      "edge_f1_mean": float(np.mean(ef))},
        "realism": {**c2st,
                    "classifier": f"SmallCNN from scratch, {epochs} epochs, input {CLS_SIZE[1]}x{CLS_SIZE[0]} "
                                  f"(whole frame, and the central {CENTRE_FRAC:.0%} of width and height), "
                                  f"split by video (real) and by render (synthetic), split seed {seed}, "
                                  f"mean of {classifier_seeds} classifier seeds"},
        "diversity": {"mean_pairwise_l1": float(np.mean(div)) if div else None},
    }
    if inception_weights is not None:
        report["fid_kid"] = {"translated": _fid_kid(real_raw, fake_raw, Path(inception_weights), device),
                             "untranslated": _fid_kid(real_raw, base_raw, Path(inception_weights), device)}
    return report


def _acc(r: dict) -> str:
    """A two-sample accuracy with its seed-to-seed spread where it has one."""
    return f"{r['accuracy']:.3f}" + (f"±{r['sd']:.3f}" if r.get("sd") else "")


def format_report(r: dict) -> str:
    """A short human-readable table of :func:`evaluate`'s report."""
    t, u = r["realism"]["two_sample_accuracy_translated"], r["realism"]["two_sample_accuracy_untranslated"]
    tc = r["realism"]["two_sample_accuracy_translated_centre"]
    uc = r["realism"]["two_sample_accuracy_untranslated_centre"]
    s, d = r["structure"], r["diversity"]["mean_pairwise_l1"]
    lines = [
        f"{r['n_variants']} variants of {r['n_renders']} renders vs {r['n_real_frames']} real frames "
        f"({r['n_real_videos']} videos)",
        f"{'metric':<38}{'translated':>12}{'untranslated':>14}",
        f"{'structure: grayscale MS-SSIM (mean)':<38}{s['msssim_gray_mean']:>12.3f}{'1.000':>14}",
        f"{'structure: edge F1 (mean)':<38}{s['edge_f1_mean']:>12.3f}{'1.000':>14}",
        f"{'realism: two-sample accuracy (0.5 best)':<38}{_acc(t):>12}{_acc(u):>14}",
        f"{'  same, central part only':<38}{_acc(tc):>12}{_acc(uc):>14}",
        f"{'diversity: mean pairwise L1':<38}{(f'{d:.4f}' if d is not None else 'n/a'):>12}{'-':>14}",
    ]
    if "consistency" in r:
        ct, cu = r["consistency"]["translated"], r["consistency"]["untranslated"]
        for c in ct:
            label = "consistency: Dice, mean" if c == "mean" else f"consistency: Dice, {c}"
            lines.append(f"{label:<38}{ct[c]:>12.3f}{cu.get(c, float('nan')):>14.3f}")
    if "fid_kid" in r:
        ft, fu = r["fid_kid"]["translated"], r["fid_kid"]["untranslated"]
        lines.append(f"{'FID':<38}{ft['fid']:>12.2f}{fu['fid']:>14.2f}")
        lines.append(f"{'KID (mean)':<38}{ft['kid_mean']:>12.4f}{fu['kid_mean']:>14.4f}")
    return "\n".join(lines)
