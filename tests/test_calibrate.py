"""sim2real calibrate: bad input fails in one line; a tiny run writes a valid preset whose
gallbladder colour moves toward synthetic 'real' frames."""

import json

import numpy as np
import pytest

from sim2real.appearance.stats import delta_e76, srgb8_to_lab
from sim2real.cli import main
from sim2real.io import write_png

REAL_GALLBLADDER = (150, 70, 120)  # a saturated mauve no default render has
REAL_TOOL = (40, 40, 45)


def _real_folder(root, n=4, w=96, h=54):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (0.48 * w) ** 2
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[inside] = (120, 50, 45)  # unlabelled tissue
        gb = inside & ((xx - w / 2) ** 2 / 20 ** 2 + (yy - h / 2) ** 2 / 12 ** 2 < 1)
        tool = inside & (np.abs(xx - yy - 10 * i) < 4)
        img[gb] = REAL_GALLBLADDER
        img[tool] = REAL_TOOL
        img = np.clip(img + rng.integers(-3, 4, img.shape) * inside[..., None], 0, 255).astype(np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[gb] = 5
        mask[tool] = 6
        write_png(root / "images" / f"1_{i}.png", img)
        write_png(root / "masks" / f"1_{i}.png", mask)
    return root


def _fails_with(capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err


def test_bad_inputs_fail_in_one_line(tmp_path, capsys):
    real = _real_folder(tmp_path / "real")
    base = ["calibrate", "--real", str(real / "images"), "--masks", str(real / "masks")]
    _fails_with(capsys, [*base, "--map", "gallbladder5", "--out", str(tmp_path / "a.toml")], ["--map", "gallbladder=5"])
    _fails_with(capsys, [*base, "--map", "spleen=5", "--out", str(tmp_path / "a.toml")], ["spleen", "gallbladder"])
    _fails_with(capsys, [*base, "--map", "gallbladder=5", "--out", str(tmp_path / "a.txt")], [".toml"])
    _fails_with(capsys, [*base, "--map", "gallbladder=5", "--out", str(tmp_path / "a.toml"), "--preset", "nope"],
                ["preset nope"])
    _fails_with(capsys, ["calibrate", "--real", str(tmp_path / "missing"), "--masks", str(real / "masks"),
                         "--map", "gallbladder=5", "--out", str(tmp_path / "a.toml")], ["--real", "missing"])
    assert not (tmp_path / "a.toml").exists()


@pytest.mark.bpy
def test_tiny_calibration_moves_colour_toward_real_and_writes_a_valid_preset(tmp_path, capsys):
    from sim2real.config import load_config

    real = _real_folder(tmp_path / "real")
    preset = tmp_path / "start.toml"
    preset.write_text('[scene]\ntarget = ["gallbladder"]\n[render]\nsamples = 1\ndenoise = false\n'
                      '[instruments]\ncount = [1, 1]\n')
    out = tmp_path / "mine.toml"
    main_argv = ["calibrate", "--real", str(real / "images"), "--masks", str(real / "masks"),
                 "--map", "gallbladder=5,tool=6", "--preset", str(preset), "--out", str(out),
                 "--samples", "2", "--rounds", "1", "--size", "64x36"]
    main(main_argv)
    cfg = load_config(out)  # an ordinary, valid preset
    assert cfg["scene"]["name"] == "mine"
    rep = json.loads((tmp_path / "mine.report.json").read_text())
    target = srgb8_to_lab(np.array(REAL_GALLBLADDER, np.uint8))
    means = [r["render"]["classes"]["gallbladder"]["lab_mean"] for r in rep["rounds"]]
    assert all(m is not None for m in means)
    assert delta_e76(means[1], target) < delta_e76(means[0], target) - 1.0
    assert (tmp_path / "mine.report.md").read_text().startswith("# Calibration")
    # the preset's gallbladder colour changed, and nothing about the geometry did
    start = load_config(preset)
    assert cfg["gallbladder"]["color"] != start["gallbladder"]["color"]
    assert cfg["gallbladder"]["length_m"] == start["gallbladder"]["length_m"]



def test_adjust_moves_colours_toward_real_and_dims_a_clipping_light():
    from sim2real.appearance.stats import ColourStats
    from sim2real.appearance.calibrate import adjust
    from sim2real.config import load_config

    def stats(rgb, clipped):
        s = ColourStats(["gallbladder", "tool"])
        img = np.zeros((10, 10, 3), np.uint8)
        img[:5] = rgb
        img[5:] = (60, 60, 60)
        img[9, :int(clipped * 10)] = 255  # a few clipped pixels in the background row
        labels = np.zeros((10, 10), np.uint8)
        labels[:5] = 1
        labels[5:9] = 2
        s.add(img, labels, np.ones((10, 10), bool))
        return s

    cfg = load_config("default")
    render, real = stats((60, 40, 40), 1.0), stats((120, 80, 90), 0.0)
    new, notes = adjust(cfg, render, real, damping=1.0)
    old_mid = np.mean(cfg["gallbladder"]["color"], 0)
    new_mid = np.mean(new["gallbladder"]["color"], 0)
    assert (new_mid > old_mid * 1.5).all()  # the renders were far too dark: every channel brightened
    assert new["light"]["energy_w"][1] < cfg["light"]["energy_w"][1]  # 10 % clipped vs none: dimmer light
    assert new["liver"] == cfg["liver"] and new["camera"] == cfg["camera"]  # nothing else touched
    assert any("gallbladder" in n for n in notes)


def test_background_moves_every_unnamed_tissue_by_one_factor_and_counts_only_the_field_of_view():
    from sim2real.appearance.calibrate import CalibrateOptions, adjust
    from sim2real.appearance.stats import ColourStats
    from sim2real.config import load_config
    from sim2real.defaults import TISSUES
    from sim2real.errors import Sim2RealError

    def stats(gb, bg, outside=(0, 0, 0)):
        s = ColourStats(["gallbladder", "background"])
        img = np.zeros((10, 10, 3), np.uint8)
        img[:4], img[4:8], img[8:] = gb, bg, outside
        labels = np.zeros((10, 10), np.uint8)
        labels[:4], labels[4:] = 1, 2  # the last rows are "background" too, but outside the field of view
        fov = np.ones((10, 10), bool)
        fov[8:] = False
        s.add(img, labels, fov)
        return s

    # pixels outside the field of view (the real frames' black border) do not darken the class
    assert delta_e76(stats((90, 60, 70), (80, 40, 40), outside=(0, 0, 0)).mean("background"),
                     stats((90, 60, 70), (80, 40, 40), outside=(255, 255, 255)).mean("background")) < 1e-9
    cfg = load_config("default")
    render, real = stats((90, 60, 70), (60, 40, 30)), stats((90, 60, 70), (64, 40, 36))  # real: redder, less yellow
    new, _ = adjust(cfg, render, real, damping=1.0)
    ratios = []
    for t in ("liver", "fat", "abdominal_wall", "ligament"):
        old, now = np.mean(cfg[t]["color"], 0), np.mean(new[t]["color"], 0)
        ratios.append(now / old)
        assert now[0] / now[1] > old[0] / old[1] and now[2] / now[1] > old[2] / old[1], t  # redder, bluer vs green
    # one factor for all: fat stays paler than liver (the wall, near the clip at 1.0, excepted)
    for r in (ratios[1], ratios[3]):
        np.testing.assert_allclose(r, ratios[0], rtol=0.02)
    np.testing.assert_allclose(np.mean(new["gallbladder"]["color"], 0), np.mean(cfg["gallbladder"]["color"], 0),
                               rtol=0.02)  # already matched: the gallbladder barely moves
    assert not cfg["cystic_duct"]["enabled"] and new["cystic_duct"] == cfg["cystic_duct"]  # not in the scene: kept
    with pytest.raises(Sim2RealError, match="background"):
        CalibrateOptions(real="r", masks="m", out="o.toml",
                         mapping={"background": [0], **{t: [i + 1] for i, t in enumerate(TISSUES)}}).check()
