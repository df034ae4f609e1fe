"""Semantic consistency of translated variants: does a segmenter trained on *real* frames
find the render's own labels in its translation? (Issue 5 section 2.)

High Dice means the translation looks real to the segmenter and kept its content.
"""

from __future__ import annotations

import numpy as np

from ..classes import group_lut
from .data import sim_groups
from .metrics import confusion_counts, dice_iou


class ConsistencyScorer:
    """Scores (image, sim2real segmentation) pairs with one loaded segmenter.

    ``scorer = ConsistencyScorer(ckpt, class_table)``; ``scorer.score(images, segs)`` ->
    ``[{class: dice}, ...]``. ``class_table`` is the data set's :class:`ClassTable`;
    segmenter classes are mapped by name (``tool`` = ``tool_shaft`` + ``tool_tip``).
    Use it inside ``translate --min-consistency`` to score variants before writing them.
    """

    def __init__(self, checkpoint, class_table, device: str = "auto", sim_map=None, batch: int = 16):
        from .predict import Segmenter

        self.segmenter = checkpoint if isinstance(checkpoint, Segmenter) else Segmenter.load(checkpoint, device)
        self.classes = self.segmenter.classes
        self.lut = group_lut(sim_groups(class_table, self.classes, sim_map))
        self.batch = batch

    def score(self, images: list[np.ndarray], segmentations: list[np.ndarray]) -> list[dict[str, float]]:
        """Per-image ``{class: dice}`` (class absent from both prediction and labels -> 1.0)."""
        preds = self.segmenter.predict(list(images), self.batch)
        out = []
        for pred, seg in zip(preds, segmentations):
            d, _ = dice_iou(confusion_counts(pred, self.lut[seg], self.segmenter.num_classes, ignore=None))
            out.append({name: float(d[k]) for k, name in enumerate(self.classes, start=1)})
        return out


    def score_mean(self, images: list[np.ndarray], segmentations: list[np.ndarray]) -> np.ndarray:
        """float64 (N,) mean Dice over the classes per image: the scalar a ``--min-consistency`` filter compares."""
        return np.array([float(np.mean(list(d.values()))) for d in self.score(images, segmentations)])


def consistency_scores(checkpoint, dataset, device: str = "auto", sim_map=None, batch: int = 16,
                       progress=None) -> dict[str, dict[str, float]]:
    """``{sample_id: {class: dice}}`` for every sample of a sim2real data set.

    ``dataset`` is a path or an opened :class:`~sim2real.dataset.format.Dataset` (translated or
    rendered: running it on the renders gives the untranslated baseline). ``progress``
    is an optional :class:`~sim2real.progress.Progress`.
    """
    from ..dataset.format import Dataset, open_dataset

    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    scorer = ConsistencyScorer(checkpoint, ds.classes, device, sim_map, batch)
    scores: dict[str, dict[str, float]] = {}
    ids = ds.ids()
    for i in range(0, len(ids), batch):
        samples = [ds.sample(sid) for sid in ids[i:i + batch]]
        res = scorer.score([s.image() for s in samples], [s.segmentation() for s in samples])
        for s, r in zip(samples, res):
            scores[s.id] = r
        if progress is not None:
            progress.update(len(samples))
    return scores


def summarise_consistency(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean Dice per class and over classes (``mean``) across samples."""
    if not scores:
        return {}
    classes = list(next(iter(scores.values())))
    out = {c: float(np.mean([s[c] for s in scores.values()])) for c in classes}
    out["mean"] = float(np.mean([out[c] for c in classes]))
    return out
