"""The two-sample realism test: a classifier per seed, averaged over seeds on one split."""

import numpy as np
import pytest
import torch

from sim2real.errors import DatasetError
from sim2real.translate.evaluate import two_sample_accuracy, two_sample_repeated


def _images(n, mean, seed):
    g = torch.Generator().manual_seed(seed)
    return (mean + 0.1 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)


def test_repeated_two_sample_is_the_mean_of_its_seeds_and_tells_domains_apart():
    real_tr, real_te = _images(40, 0.5, 1), _images(40, 0.5, 2)
    dark_tr, dark_te = _images(40, 0.3, 3), _images(40, 0.3, 4)
    r = two_sample_repeated(real_tr, real_te, dark_tr, dark_te, seed=2, repeats=3, epochs=15)
    singles = [two_sample_accuracy(real_tr, real_te, dark_tr, dark_te, seed=s, epochs=15)["accuracy"] for s in (2, 3, 4)]
    assert r["seeds"] == [2, 3, 4] and r["per_seed"] == pytest.approx(singles)
    assert r["accuracy"] == pytest.approx(np.mean(singles)) and r["sd"] == pytest.approx(np.std(singles, ddof=1))
    assert r["accuracy"] > 0.9  # a plain brightness shift is found by every seed
    assert r["n_test"] == 80 and r["stderr"] > 0


def test_repeated_two_sample_reads_chance_on_one_distribution():
    same_tr, same_te = _images(48, 0.5, 5), _images(48, 0.5, 6)
    other_tr, other_te = _images(48, 0.5, 7), _images(48, 0.5, 8)
    r = two_sample_repeated(same_tr, same_te, other_tr, other_te, repeats=3, epochs=15)
    assert abs(r["accuracy"] - 0.5) < 0.15


def test_repeated_two_sample_needs_one_seed():
    x = _images(4, 0.5, 0)
    with pytest.raises(DatasetError, match="seeds must be >= 1"):
        two_sample_repeated(x, x, x, x, repeats=0)
