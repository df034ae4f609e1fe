"""Readers map classes by name / by user mapping; the video split never leaks a video."""

import numpy as np
import pytest

from sim2real.errors import DatasetError, Sim2RealError
from sim2real.io import write_png
from sim2real.segment.data import (load_items, parse_mapping, preload, real_items, sim_items, split_items,
                                   split_videos, video_of)


def test_sim_dataset_maps_tool_to_shaft_and_tip(fake_render_dataset):
    from sim2real.dataset.format import open_dataset

    items = sim_items(fake_render_dataset, ["gallbladder", "tool"])
    raw = open_dataset(fake_render_dataset)[0].segmentation()
    _, lab = items[0].load()
    assert np.array_equal(lab == 1, raw == 2)
    assert np.array_equal(lab == 2, (raw == 6) | (raw == 7))
    assert set(np.unique(lab)) <= {0, 1, 2}


def test_sim_map_overrides_and_unknown_class_is_a_clear_error(fake_render_dataset):
    items = sim_items(fake_render_dataset, ["tool"], {"tool": ["tool_tip"]})
    from sim2real.dataset.format import open_dataset

    raw = open_dataset(fake_render_dataset)[0].segmentation()
    assert np.array_equal(items[0].load()[1] == 1, raw == 7)
    with pytest.raises(Sim2RealError, match="not in the data set.*--sim-map"):
        sim_items(fake_render_dataset, ["spleen"])


def test_real_folder_mapping_and_ignore(fake_real_folder):
    from sim2real.io import read_png

    items = real_items(fake_real_folder, ["gallbladder", "tool"], {"gallbladder": [5], "tool": [6]})
    assert len(items) == 6
    _, lab = items[0].load()
    raw = read_png(fake_real_folder / "masks" / f"{items[0].id}.png")
    assert np.array_equal(lab == 1, raw == 5)
    assert np.array_equal(lab == 2, raw == 6)
    assert np.array_equal(lab == 255, raw == 255)
    assert items[0].video == video_of(items[0].id) == items[0].id.split("_")[0]


def test_real_folder_bad_inputs_get_clear_errors(tmp_path, fake_real_folder):
    with pytest.raises(Sim2RealError, match="--real-map"):
        real_items(fake_real_folder, ["gallbladder"], None)
    with pytest.raises(Sim2RealError, match="no value for tool"):
        real_items(fake_real_folder, ["gallbladder", "tool"], {"gallbladder": [5]})
    with pytest.raises(DatasetError, match="neither a sim2real data set"):
        load_items([tmp_path], ["gallbladder"], real_map={"gallbladder": [5]})
    with pytest.raises(DatasetError, match="does not exist"):
        load_items([tmp_path / "nope"], ["gallbladder"], real_map={"gallbladder": [5]})
    # a mask missing, then a mask of the wrong size
    (fake_real_folder / "masks" / "1_1000.png").unlink()
    with pytest.raises(DatasetError, match="no mask for 1 image"):
        real_items(fake_real_folder, ["gallbladder"], {"gallbladder": [5]})
    write_png(fake_real_folder / "masks" / "1_1000.png", np.zeros((3, 3), np.uint8))
    items = real_items(fake_real_folder, ["gallbladder"], {"gallbladder": [5]})
    with pytest.raises(DatasetError, match="mask is 3x3"):
        next(it for it in items if it.id == "1_1000").load()


def test_parse_mapping_errors():
    assert parse_mapping("gallbladder=5,tool=6+7", "--real-map", True) == {"gallbladder": [5], "tool": [6, 7]}
    for bad in ("gallbladder", "gallbladder=x", "gallbladder=300", ""):
        with pytest.raises(Sim2RealError, match="--real-map"):
            parse_mapping(bad, "--real-map", True)


def test_video_filter(fake_real_folder):
    items = load_items([fake_real_folder], ["tool"], real_map={"tool": [6]}, videos=["2"])
    assert {it.video for it in items} == {"2"}
    with pytest.raises(Sim2RealError, match="video.*9.*not found"):
        load_items([fake_real_folder], ["tool"], real_map={"tool": [6]}, videos=["9"])


@pytest.mark.parametrize("seed", range(20))
def test_split_never_leaks_a_video(seed):
    rng = np.random.default_rng(seed)
    stems = [f"{v}_{f}" for v in rng.choice(200, 12, replace=False) for f in rng.integers(0, 10 ** 5, 5)]
    vids = [video_of(s) for s in stems]
    train, held = split_videos(vids, 4, seed)
    assert set(train).isdisjoint(held)
    assert set(train) | set(held) == set(vids)
    assert len(train) == 4
    assert split_videos(vids, 4, seed) == (train, held)  # deterministic
    frac_train, frac_held = split_videos(vids, 0.25, seed)
    assert len(frac_train) == 3 and set(frac_train).isdisjoint(frac_held)


def test_split_items_by_video(fake_real_folder):
    items = load_items([fake_real_folder], ["tool"], real_map={"tool": [6]})
    tr, te = split_items(items, 1, seed=3)
    assert {i.video for i in tr}.isdisjoint({i.video for i in te})
    assert len(tr) + len(te) == len(items)
    with pytest.raises(Sim2RealError, match="cannot put 3 of 3"):
        split_videos([i.video for i in items], 3)


def test_preload_resizes_images_and_labels(fake_real_folder):
    items = load_items([fake_real_folder], ["gallbladder", "tool"], real_map={"gallbladder": [5], "tool": [6]})
    images, labels = preload(items, (32, 16))
    assert images.shape == (6, 3, 16, 32) and labels.shape == (6, 16, 32)
    assert set(labels.unique().tolist()) <= {0, 1, 2, 255}
