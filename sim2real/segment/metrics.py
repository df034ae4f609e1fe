"""Dice and IoU per class, with the ignore value and empty masks handled explicitly.

For class ``c`` over the *valid* pixels (truth != ignore; prediction there is ignored too):
``TP = pred==c & truth==c``, ``FP = pred==c & truth!=c``, ``FN = pred!=c & truth==c``;
``Dice = 2TP / (2TP + FP + FN)``, ``IoU = TP / (TP + FP + FN)``.

Empty masks: when a class is absent from both prediction and truth (``TP + FP + FN = 0``)
the model was right to predict nothing, so Dice = IoU = ``empty`` (default **1.0**).
Pass ``empty=None`` to get NaN there instead, which the ``mean_*`` helpers skip.
A class present in exactly one of the two scores 0.

Aggregates: *pooled* sums TP/FP/FN over all pixels of a set of images before dividing
(large objects weigh more); *mean per image* averages per-image scores.
"""

from __future__ import annotations

import numpy as np

IGNORE = 255


def confusion_counts(pred: np.ndarray, truth: np.ndarray, num_classes: int, ignore: int | None = IGNORE) -> np.ndarray:
    """int64 (num_classes, 3) array of TP, FP, FN per class id 0..num_classes-1."""
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction is {pred.shape}, truth is {truth.shape}")
    if ignore is not None:
        valid = truth != ignore
        pred, truth = pred[valid], truth[valid]
    else:
        pred, truth = pred.ravel(), truth.ravel()
    pred = pred.astype(np.int64)
    truth = truth.astype(np.int64)
    if truth.size and (truth.max() >= num_classes or truth.min() < 0):
        raise ValueError(f"truth has ids outside 0..{num_classes - 1} (other than ignore {ignore})")
    # pred ids outside the range only count as FN for the true class
    cm = np.bincount(truth * (num_classes + 1) + np.clip(pred, 0, num_classes),
                     minlength=num_classes * (num_classes + 1)).reshape(num_classes, num_classes + 1)
    tp = np.diag(cm[:, :num_classes])
    fn = cm.sum(1) - tp
    fp = cm[:, :num_classes].sum(0) - tp
    return np.stack([tp, fp, fn], axis=1)


def dice_iou(counts: np.ndarray, empty: float | None = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU per class from :func:`confusion_counts` (rows TP, FP, FN)."""
    counts = np.asarray(counts, dtype=np.float64)
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = tp + fp + fn
    fill = np.nan if empty is None else float(empty)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denom > 0, 2 * tp / (2 * tp + fp + fn), fill)
        iou = np.where(denom > 0, tp / denom, fill)
    return dice, iou


def dice(pred, truth, num_classes: int, ignore: int | None = IGNORE, empty: float | None = 1.0) -> np.ndarray:
    """Per-class Dice of one prediction (shortcut)."""
    return dice_iou(confusion_counts(pred, truth, num_classes, ignore), empty)[0]


def nanmean(values) -> float | None:
    """Mean ignoring NaN; None when nothing is left (JSON-friendly)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None


def summarise(per_image_counts: np.ndarray, class_names: list[str], empty: float | None = 1.0) -> dict:
    """``{class: {dice, iou, dice_mean_image, iou_mean_image, images_present}}`` for a set of images.

    ``per_image_counts`` is (N, num_classes, 3); class names start at id 1 (0 = background
    is not reported).
    """
    counts = np.asarray(per_image_counts, dtype=np.int64)
    pooled_d, pooled_i = dice_iou(counts.sum(0), empty)
    img_d, img_i = dice_iou(counts, empty)
    out = {}
    for k, name in enumerate(class_names, start=1):
        out[name] = {
            "dice": _num(pooled_d[k]), "iou": _num(pooled_i[k]),
            "dice_mean_image": nanmean(img_d[:, k]), "iou_mean_image": nanmean(img_i[:, k]),
            "images_present": int(np.sum(counts[:, k, 0] + counts[:, k, 2] > 0)),
        }
    return out


def _num(x) -> float | None:
    return None if np.isnan(x) else float(x)
