"""The Fourier baseline (translate --method fourier): phase kept, low band swapped, labels, seeds, shards."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import write_disc_real_folder

from sim2real.dataset.format import LABEL_KEYS, open_dataset
from sim2real.translate.colour import colour_dataset
from sim2real.translate.fourier import fourier_dataset, fourier_transfer

REPO = Path(__file__).resolve().parent.parent


def _band(h, w, beta):
    """The swapped frequencies, written out from the definition: |k_y|, |k_x| <= floor(beta * min(h, w))."""
    b = int(np.floor(beta * min(h, w)))
    band = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            ky, kx = min(y, h - y), min(x, w - x)  # |signed frequency| of fft2 index (y, x)
            band[y, x] = beta > 0 and ky <= b and kx <= b
    return band


@pytest.mark.parametrize("h, w, beta", [(40, 64, 0.05), (33, 50, 0.09), (48, 48, 0.01)])
def test_fourier_keeps_phase_and_takes_the_low_band_amplitude(h, w, beta):
    rng = np.random.default_rng(0)
    render = rng.uniform(0, 255, (h, w, 3))
    real = rng.uniform(0, 255, (h, w, 3)) * np.linspace(0.2, 1.0, w)[None, :, None]
    out = fourier_transfer(render, real, beta)
    assert out.dtype.kind == "f" and out.shape == render.shape
    fo, fr, fq = (np.fft.fft2(a, axes=(0, 1)) for a in (out, render, real))
    band = _band(h, w, beta)
    assert band.sum() == (2 * int(beta * min(h, w)) + 1) ** 2
    # phase: the render's, at every frequency (inside the band too)
    unit = lambda f: f / np.abs(f)  # noqa: E731
    np.testing.assert_allclose(unit(fo), unit(fr), atol=1e-6)
    # amplitude: the real frame's in the band, the render's outside it
    np.testing.assert_allclose(np.abs(fo[band]), np.abs(fq[band]), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(np.abs(fo[~band]), np.abs(fr[~band]), rtol=1e-7, atol=1e-6)
    # the mean colour (DC) is the real frame's; the output is not the render
    np.testing.assert_allclose(out.mean((0, 1)), real.mean((0, 1)), atol=1e-6)
    assert np.abs(out - render).max() > 1


def test_fourier_beta_zero_returns_the_render():
    rng = np.random.default_rng(3)
    render, real = rng.uniform(0, 255, (2, 20, 30, 3))
    np.testing.assert_array_equal(fourier_transfer(render, real, 0.0), render)


def test_fourier_variants_carry_labels_are_seeded_and_pick_colours_frames(fake_render_dataset, tmp_path):
    real = [write_disc_real_folder(tmp_path / "real") / "images"]
    out = tmp_path / "fda"
    summary = fourier_dataset(fake_render_dataset, real, out, k=3, seed=5, beta=0.09)
    src, ds = open_dataset(fake_render_dataset), open_dataset(out)
    assert summary["variants_written"] == 3 * len(src) and ds.kind == "translation"
    assert ds.info["translation"]["method"] == "fourier" and ds.info["translation"]["real_videos"] == ["v0", "v1", "v2"]
    changed = 0
    for s in ds:
        t = s.meta["translation"]
        r = src.sample(t["source_id"])
        for key in LABEL_KEYS:
            if r.path(key).is_file():
                assert s.path(key).read_bytes() == r.path(key).read_bytes()
                assert s.path(key).stat().st_ino == r.path(key).stat().st_ino  # a hard link
        img, rimg = s.image(), r.image()
        outside = (rimg.max(axis=2) == 0) & (r.segmentation() == 0)
        assert (img[outside] == 0).all()
        changed += np.abs(img.astype(int) - rimg).mean() > 2
    assert changed == len(ds)
    # same seed -> same bytes; the same real frames as colour transfer draws with that seed
    again = fourier_dataset(fake_render_dataset, real, tmp_path / "fda2", k=3, seed=5, beta=0.09)
    assert again["variants_written"] == summary["variants_written"]
    col = open_dataset(colour_dataset(fake_render_dataset, real, tmp_path / "col", k=3, seed=5)["out"])
    for s in ds:
        assert (tmp_path / "fda2" / "samples" / s.id / "image.png").read_bytes() == s.path("image").read_bytes()
        assert col.sample(s.id).meta["translation"]["style_origin"] == s.meta["translation"]["style_origin"]
    # resumable: a rerun writes nothing; another beta into the same folder is refused
    assert fourier_dataset(fake_render_dataset, real, out, k=3, seed=5, beta=0.09)["variants_written"] == 0
    from sim2real.errors import DatasetError

    with pytest.raises(DatasetError, match="different settings"):
        fourier_dataset(fake_render_dataset, real, out, k=3, seed=5, beta=0.02)


def test_fourier_beta_zero_writes_the_renders(fake_render_dataset, tmp_path):
    real = [write_disc_real_folder(tmp_path / "real") / "images"]
    ds = open_dataset(fourier_dataset(fake_render_dataset, real, tmp_path / "z", k=1, beta=0.0)["out"])
    src = open_dataset(fake_render_dataset)
    for s in ds:
        np.testing.assert_array_equal(s.image(), src.sample(s.meta["translation"]["source_id"]).image())


def test_fourier_shards_write_what_one_process_writes(fake_render_dataset, tmp_path):
    real = [write_disc_real_folder(tmp_path / "real") / "images"]
    one = fourier_dataset(fake_render_dataset, real, tmp_path / "one", k=2, seed=3)
    parts = [fourier_dataset(fake_render_dataset, real, tmp_path / "sh", k=2, seed=3, shard=(i, 2)) for i in range(2)]
    assert sum(p["variants_written"] for p in parts) == one["variants_written"]
    assert all(0 < p["variants_written"] < one["variants_written"] for p in parts)  # disjoint halves
    for s in open_dataset(tmp_path / "one"):
        assert (tmp_path / "sh" / "samples" / s.id / "image.png").read_bytes() == s.path("image").read_bytes()


def _cli(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "sim2real.cli", "translate", *args], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})


def test_fourier_cli_selects_videos_and_shards(fake_render_dataset, tmp_path):
    real = write_disc_real_folder(tmp_path / "real", n=4, videos=("a", "b"))
    out = tmp_path / "o"
    for i in range(2):
        r = _cli(["--method", "fourier", "--data", str(fake_render_dataset), "--out", str(out), "-k", "2",
                  "--real", str(real / "images"), "--videos", "b", "--beta", "0.05", "--shard", f"{i}/2"], tmp_path)
        assert r.returncode == 0, r.stderr
    ds = open_dataset(out)
    assert len(ds) == 2 * len(open_dataset(fake_render_dataset))
    assert ds.info["translation"]["real_videos"] == ["b"]
    assert all(Path(s.meta["translation"]["style_origin"].split(":", 1)[1]).name.startswith("b_") for s in ds)


@pytest.mark.parametrize("args, words", [
    (["--method", "fourier", "--real", "MISSING"], "real path"),
    (["--method", "fourier"], "--method fourier needs --real"),
    (["--method", "fourier", "--real", "REAL", "--beta", "0.7"], "--beta 0.7"),
    (["--method", "colour", "--real", "REAL", "--beta", "0.05"], "--beta is the band of --method fourier"),
])
def test_fourier_cli_bad_input_is_one_line_exit_2(fake_render_dataset, tmp_path, args, words):
    real = write_disc_real_folder(tmp_path / "real")
    args = [a.replace("MISSING", str(tmp_path / "nope")).replace("REAL", str(real)) for a in args]
    r = _cli(["--data", str(fake_render_dataset), "--out", str(tmp_path / "o"), "-k", "2", *args], tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], r.stderr
