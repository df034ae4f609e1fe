"""The colour-transfer baseline (translate --method colour): labels, statistics, seeds, errors."""

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from fakes import write_disc_real_folder

from sim2real.dataset.format import LABEL_KEYS, open_dataset
from sim2real.appearance.stats import lab_to_srgb8 as lab_to_rgb
from sim2real.translate.colour import colour_dataset, rgb_to_lab

REPO = Path(__file__).resolve().parent.parent


def test_lab_conversion_matches_reference_values():
    # CIE L*a*b* (D65) of sRGB primaries, from the standard tables.
    rgb = np.array([[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0]], np.uint8)
    ref = np.array([[100, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86], [0, 0, 0]])
    np.testing.assert_allclose(rgb_to_lab(rgb), ref, atol=0.05)
    grid = np.random.default_rng(0).integers(0, 256, (500, 3)).astype(np.uint8)
    assert np.abs(lab_to_rgb(rgb_to_lab(grid)).astype(int) - grid).max() <= 1


def test_colour_variants_carry_labels_take_real_stats_and_are_seeded(fake_render_dataset, tmp_path):
    real = write_disc_real_folder(tmp_path / "real")
    out = tmp_path / "col"
    summary = colour_dataset(fake_render_dataset, [real / "images"], out, k=3, seed=5)
    src, ds = open_dataset(fake_render_dataset), open_dataset(out)
    assert summary["variants_written"] == 3 * len(src) and ds.kind == "translation"
    for s in ds:
        t = s.meta["translation"]
        r = src.sample(t["source_id"])
        for key in LABEL_KEYS:
            if r.path(key).is_file():
                assert s.path(key).read_bytes() == r.path(key).read_bytes()
        img = s.image()
        outside = (r.image().max(axis=2) == 0) & (r.segmentation() == 0)
        assert (img[outside] == 0).all()
        # the variant's CIELAB mean/std inside the field of view is the chosen real frame's
        ref = iio.imread(t["style_origin"].split("reference:", 1)[1])[::2, ::2]
        ref_lab = rgb_to_lab(ref[ref.max(axis=2) > 12])
        lab = rgb_to_lab(img[~outside])
        np.testing.assert_allclose(lab.mean(0), ref_lab.mean(0), atol=2.0)
        np.testing.assert_allclose(lab.std(0), ref_lab.std(0), rtol=0.25, atol=1.5)
    # same seed -> same bytes; another seed -> other picks
    again = colour_dataset(fake_render_dataset, [real / "images"], tmp_path / "col2", k=3, seed=5)
    assert again["variants_written"] == summary["variants_written"]
    for s in ds:
        assert (tmp_path / "col2" / "samples" / s.id / "image.png").read_bytes() == s.path("image").read_bytes()
    other = open_dataset(colour_dataset(fake_render_dataset, [real / "images"], tmp_path / "col3", k=3,
                                        seed=6)["out"])
    assert any(a.meta["translation"]["style_origin"] != b.meta["translation"]["style_origin"]
               for a, b in zip(ds, other))
    # resumable: a rerun writes nothing
    assert colour_dataset(fake_render_dataset, [real / "images"], out, k=3, seed=5)["variants_written"] == 0


def test_colour_shards_write_what_one_process_writes(fake_render_dataset, tmp_path):
    real = [write_disc_real_folder(tmp_path / "real") / "images"]
    one = colour_dataset(fake_render_dataset, real, tmp_path / "one", k=2, seed=3)
    parts = [colour_dataset(fake_render_dataset, real, tmp_path / "sh", k=2, seed=3, shard=(i, 2)) for i in range(2)]
    assert sum(p["variants_written"] for p in parts) == one["variants_written"]
    assert all(0 < p["variants_written"] < one["variants_written"] for p in parts)  # disjoint halves
    for s in open_dataset(tmp_path / "one"):
        assert (tmp_path / "sh" / "samples" / s.id / "image.png").read_bytes() == s.path("image").read_bytes()


@pytest.mark.parametrize("args, words", [
    (["--real", "MISSING"], "real path"),
    ([], "--method colour needs --real"),
])
def test_colour_cli_bad_input_is_one_line_exit_2(fake_render_dataset, tmp_path, args, words):
    args = [a.replace("MISSING", str(tmp_path / "nope")) for a in args]
    r = subprocess.run([sys.executable, "-m", "sim2real.cli", "translate", "--method", "colour", "--data",
                        str(fake_render_dataset), "--out", str(tmp_path / "o"), "-k", "2", *args],
                       capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], r.stderr
