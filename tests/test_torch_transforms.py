"""Joint transforms: labels stay exact and aligned with the image, K and tool tips follow.

The item is built so that every pixel names its source: ``instances`` holds the flat
index of the source pixel, so after any transform each output pixel says where it came
from, and the other labels, the image, K and the tips are checked against that."""

import json
import pickle

import numpy as np
import pytest
import torch

from sim2real.dataset.transforms import Compose, RandomCrop, RandomHorizontalFlip, Resize, crop, hflip, resize

H, W = 12, 16
K = torch.tensor([[20.0, 0.5, 7.5], [0.0, 21.0, 6.0], [0.0, 0.0, 1.0]])
POINTS = torch.tensor([[0.01, 0.02, 0.1], [-0.03, -0.01, 0.12], [0.02, -0.015, 0.09]])  # camera frame


def _project(k, p):
    uvw = p @ k.T
    return uvw[:, :2] / uvw[:, 2:]


def _item():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    n = torch.randn(3, H, W, generator=g)
    tips = torch.cat([_project(K, POINTS), torch.tensor([[2.0], [1.0], [2.0]])], 1)
    return {"id": "000000", "image": torch.rand(3, H, W, generator=g),
            "segmentation": torch.randint(0, 8, (H, W), generator=g),
            "instances": (yy * W + xx).long(), "depth": torch.rand(H, W, generator=g),
            "normals": n / n.norm(dim=0, keepdim=True), "K": K.clone(), "tips": tips}


def _check(src, out, flipped=False, exact=True):
    """Every label of ``out`` is its source pixel's; tips are K's projections (and, when pixels
    are moved not resampled, ``exact``, sit on the pixel that came from theirs)."""
    idx = out["instances"]
    assert set(idx.unique().tolist()) <= set(range(H * W))
    for key in ("segmentation", "depth"):
        assert torch.equal(out[key], src[key].flatten()[idx]), key
    n = src["normals"].flatten(1)[:, idx]
    if flipped:
        n[0] *= -1
    assert torch.equal(out["normals"], n)
    mirror = torch.tensor([-1.0 if flipped else 1.0, 1.0, 1.0])
    assert torch.allclose(out["tips"][:, :2], _project(out["K"], POINTS * mirror), atol=1e-4)
    h, w = idx.shape
    for t, t_src in zip(out["tips"], src["tips"]):
        u, v, vis = t.tolist()
        inside = 0 <= u < w and 0 <= v < h
        assert vis == (t_src[2] if inside else 0)
        if exact and inside:
            r, c = divmod(int(idx[int(v), int(u)]), W)
            assert (r, c) == (int(t_src[1]), int(t_src[0]))
    return idx


def test_flip_mirrors_image_labels_normals_k_and_tips():
    src = _item()
    out = hflip(src)
    idx = _check(src, out, flipped=True)
    xx = torch.arange(W).expand(H, W)
    assert torch.equal(idx % W, W - 1 - xx) and torch.equal(out["image"], src["image"].flatten(1)[:, idx])
    assert torch.equal(hflip(out)["normals"], src["normals"]) and torch.equal(hflip(out)["K"], src["K"])


def test_crop_moves_k_and_drops_tips_outside():
    src = _item()
    out = crop(src, 1, 3, 10, 12)
    idx = _check(src, out)
    assert out["image"].shape == (3, 10, 12) and torch.equal(out["image"], src["image"].flatten(1)[:, idx])
    assert int(idx[0, 0]) == 1 * W + 3
    assert out["tips"][:, 2].tolist() == [2, 0, 2]  # the second tip (u = 2.46) left the window


@pytest.mark.parametrize("size", [(6, 8), (24, 32), (9, 11), (5, 16)])
def test_resize_keeps_labels_exact_and_nearest(size):
    src = _item()
    out = resize(src, *size)
    idx = _check(src, out, exact=False)
    h, w = size
    rows, cols = idx // W, idx % W
    # the source pixel of each output pixel contains the output pixel's centre mapped back
    yc = ((torch.arange(h) + 0.5) * H / h)[:, None]
    xc = ((torch.arange(w) + 0.5) * W / w)[None, :]
    assert bool(((rows <= yc) & (yc < rows + 1)).all() and ((cols <= xc) & (xc < cols + 1)).all())
    assert set(out["segmentation"].unique().tolist()) <= set(src["segmentation"].unique().tolist())
    assert out["image"].shape == (3, h, w) and out["image"].dtype == torch.float32


def test_resize_of_a_ramp_image_lands_on_the_ramp():
    """Bilinear resampling keeps a linear image linear: the image stays aligned with the labels."""
    item = _item()
    xx = torch.arange(W, dtype=torch.float32).expand(H, W)
    item["image"] = torch.stack([(xx + 0.5) / W] * 3)
    out = resize(item, 8, 24)
    want = (torch.arange(24) + 0.5) / 24
    assert torch.allclose(out["image"][0, :, 2:-2], want[2:-2].expand(8, 20), atol=1e-5)


def test_random_transforms_compose_pickle_and_refuse_a_large_crop():
    t = Compose(RandomCrop((10, 12)), RandomHorizontalFlip(0.5), Resize((5, 6)))
    t2 = pickle.loads(pickle.dumps(t))
    src = _item()
    flips = set()
    for seed in range(12):
        torch.manual_seed(seed)
        a = t(src)
        torch.manual_seed(seed)
        b = t2(src)
        assert all(torch.equal(a[k], b[k]) for k in a if k != "id")  # the pickled copy draws the same
        assert a["image"].shape == (3, 5, 6) and a["segmentation"].shape == (5, 6)
        col = a["instances"] % W
        flips.add(bool(col[0, 0] > col[0, -1]))
    assert flips == {True, False}
    with pytest.raises(ValueError, match="larger than the item"):
        RandomCrop((13, 4))(src)


def test_torch_dataset_applies_the_transform_to_the_whole_item(fake_render_dataset):
    from sim2real.dataset import torch_dataset

    keys = ("image", "segmentation", "normals", "K")
    plain = torch_dataset(fake_render_dataset, keys=keys)[2]
    ds = torch_dataset(fake_render_dataset, keys=keys, transform=hflip)
    item = pickle.loads(pickle.dumps(ds))[2]
    assert item["id"] == plain["id"] and item["K"].dtype == torch.float32
    assert torch.equal(item["segmentation"], plain["segmentation"].flip(-1))
    assert torch.equal(item["image"], plain["image"].flip(-1))
    assert torch.equal(item["normals"][0], -plain["normals"][0].flip(-1))
    assert float(item["K"][0, 2]) == pytest.approx(64 - float(plain["K"][0, 2]))
    meta = json.loads((fake_render_dataset / "samples" / plain["id"] / "meta.json").read_text())
    assert np.allclose(plain["K"].numpy(), meta["camera"]["K"])
