"""The two-sample test of `sim2real evaluate`, on untranslated renders vs real frames.

    python benchmarks/two_sample.py --renders out/r256 --real ../shared/data/real/endoscapes-dev/images

Same classifier, input sizes, splits (real by video, renders by sample), seeds and number
of classifiers as the "untranslated" baseline of `sim2real evaluate`, without needing a
translated data set.
0.5 = the classifier cannot tell renders from real frames; lower is better.
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--renders", required=True)
    ap.add_argument("--real", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--classifier-seeds", type=int, default=5)
    args = ap.parse_args()

    from pathlib import Path

    from sim2real.dataset.format import open_dataset
    from sim2real.translate.config import DataConfig
    from sim2real.io.videos import video_of_file
    from sim2real.translate.data import RealFrames
    from sim2real.translate.evaluate import CLS_SIZE, _cls_pair, _split, two_sample_repeated

    ds = open_dataset(args.renders)
    base_cls = [_cls_pair(s.image()) for s in ds]
    base_keys = list(ds.ids())
    frames = RealFrames([Path(args.real)], DataConfig(load_size=CLS_SIZE[0] * 2))
    real_cls, real_keys = [], []
    for i in range(len(frames)):
        real_cls.append(_cls_pair(frames.get(i)))
        name = frames.name(i)
        real_keys.append(video_of_file(name))
    rk, bk = _split(real_keys, args.seed), _split(base_keys, args.seed + 1)

    def pick(t, keys, train_keys, train):
        return torch.stack([x for x, k in zip(t, keys) if (k in train_keys) == train])

    for view, name in ((0, "whole frame"), (1, "centre")):
        acc = two_sample_repeated(pick(real_cls, real_keys, rk, True)[:, view], pick(real_cls, real_keys, rk, False)[:, view],
                                  pick(base_cls, base_keys, bk, True)[:, view], pick(base_cls, base_keys, bk, False)[:, view],
                                  args.seed, args.classifier_seeds, args.epochs, "cpu")
        print(f"two-sample accuracy, untranslated renders vs real ({name}): {acc['accuracy']:.3f} "
              f"(sd {acc['sd']:.3f} over {len(acc['per_seed'])} classifier seeds: "
              f"{' '.join(f'{a:.3f}' for a in acc['per_seed'])}; train {acc['n_train']}, test {acc['n_test']})")


if __name__ == "__main__":
    main()
