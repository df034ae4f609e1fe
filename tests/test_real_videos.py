"""Real frames chosen by video (--videos / --exclude-videos / @split.json), recorded by the
translator and the colour transfer, and checked by the experiment: held-out videos stay unseen."""

import json

import pytest

from sim2real.dataset.format import open_dataset
from sim2real.errors import DatasetError, Sim2RealError
from sim2real.io.videos import parse_videos, video_of_file
from sim2real.translate.data import RealFrames, SimImages, find_real_files

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 32, "crop": [32, 40]},
        "train": {"log_every": 1, "sample_every": 100, "checkpoint_every": 100}}


@pytest.fixture
def real(tmp_path):
    from fakes import write_fake_real_folder

    return write_fake_real_folder(tmp_path / "real", n=9, videos=3)  # videos 1, 2, 3; images/ + masks/


def test_labelled_folder_gives_frames_not_masks_and_filters_by_video(real, fake_render_dataset):
    images, videos = find_real_files([real])
    assert len(images) == 9 and not videos and all(p.parent.name == "images" for p in images)
    only = find_real_files([real], videos=["1", "3"])[0]
    assert sorted({video_of_file(p) for p in only}) == ["1", "3"] and len(only) == 6
    assert {video_of_file(p) for p in find_real_files([real], exclude_videos=["1"])[0]} == {"2", "3"}
    with pytest.raises(Sim2RealError, match="video.s. 7 not found"):
        find_real_files([real], videos=["1", "7"])
    with pytest.raises(Sim2RealError, match="no real frames left"):
        find_real_files([real], exclude_videos=["1", "2", "3"])
    # a render set is not a folder of real frames (its PNGs would pass for them)
    with pytest.raises(DatasetError, match="is a sim2real data set"):
        find_real_files([fake_render_dataset])


def test_videos_option_reads_an_experiment_split(tmp_path):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train_videos": ["10", "56"], "test_videos": ["4"]}))
    assert parse_videos(f"@{split}") == ["10", "56"]
    assert parse_videos(" 10, 56 ,") == ["10", "56"] and parse_videos(None) is None
    with pytest.raises(Sim2RealError, match="not found"):
        parse_videos(f"@{tmp_path / 'nope.json'}")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(Sim2RealError, match="train_videos"):
        parse_videos(f"@{tmp_path / 'bad.json'}")


def test_translator_and_colour_record_their_real_videos_and_the_experiment_flags_held_out_ones(
        real, fake_render_dataset, tmp_path):
    from sim2real.segment.experiment import ExperimentConfig, held_out_seen
    from sim2real.translate.checkpoint import load_checkpoint
    from sim2real.translate.colour import RealColours, colour_dataset
    from sim2real.translate.config import load_config
    from sim2real.translate.inference import translate_dataset
    from sim2real.translate.trainer import Trainer

    cfg = load_config(None, TINY)
    frames = RealFrames([real], cfg.data, videos=["1", "2"])
    assert len(frames) == 6 and frames.videos() == ["1", "2"]
    tr = Trainer(cfg, SimImages(fake_render_dataset), frames, tmp_path / "run", "cpu")
    tr.fit(1)
    assert load_checkpoint(tmp_path / "run")["real_videos"] == ["1", "2"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["real_videos"] == ["1", "2"]
    # a resumed run with other frames has seen both
    tr2 = Trainer(cfg, SimImages(fake_render_dataset), RealFrames([real], cfg.data, videos=["3"]), tmp_path / "run",
                  "cpu")
    tr2.load_state(load_checkpoint(tmp_path / "run"))
    assert tr2.real_videos == ["1", "2", "3"]

    translate_dataset(tmp_path / "run", fake_render_dataset, tmp_path / "tr", k=1, batch=4)
    assert open_dataset(tmp_path / "tr").info["translation"]["real_videos"] == ["1", "2"]
    colour_dataset(fake_render_dataset, RealColours([real], exclude_videos=["2"]), tmp_path / "col", k=1)
    assert open_dataset(tmp_path / "col").info["translation"]["real_videos"] == ["1", "3"]

    ex = ExperimentConfig(real=str(real), translated=str(tmp_path / "tr"), colour=str(tmp_path / "col"))
    seen = held_out_seen(ex, test_videos=["2"])
    assert seen["b"]["videos"] == ["2"] and seen["e"]["videos"] == []
    seen = held_out_seen(ExperimentConfig(real=str(real), translated=str(fake_render_dataset)), ["2"])
    assert seen["b"]["recorded"] is False and seen["b"]["videos"] is None


@pytest.mark.parametrize("args,words", [
    (["train", "--videos", "8"], "video(s) 8 not found"),
    (["train", "--videos", "@nope/split.json"], "nope/split.json not found"),
    (["translate", "--checkpoint", "x", "--videos", "1"], "--method colour"),
    (["translate", "--method", "colour", "-k", "1", "--exclude-videos", "1,2,3"], "no real frames left"),
])
def test_video_options_bad_input_is_one_line_exit_2(real, fake_render_dataset, tmp_path, capsys, args, words):
    from sim2real.cli import main

    common = (["--sim", str(fake_render_dataset), "--real", str(real), "--out", str(tmp_path / "run")]
              if args[0] == "train" else ["--data", str(fake_render_dataset), "--real", str(real),
                                          "--out", str(tmp_path / "t")])
    with pytest.raises(SystemExit) as e:
        main(args + common)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and words in err and len(err.splitlines()) == 1, err
