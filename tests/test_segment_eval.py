"""Evaluation report, consistency scores, the experiment and the CLI's error handling."""

import json

import numpy as np
import pytest

from sim2real.segment.data import load_items
from sim2real.segment.evaluate import evaluate, format_table, write_overlays, write_report
from sim2real.segment.train import TrainConfig, train

TINY = dict(size=(32, 16), batch=2, base=4, depth=2, log_every=1, checkpoint_every=2, warmup=1)
REAL_MAP = {"gallbladder": [5], "tool": [6]}


class OracleSegmenter:
    """Predicts a fixed label map per image: lets evaluation be checked against known answers."""

    classes = ["gallbladder", "tool"]
    num_classes = 3
    source = "oracle"
    step = 0
    config = TrainConfig(size=(32, 16), depth=2)

    def __init__(self, answers):
        self.answers = answers  # list of label maps in predict() call order

    def predict(self, images, batch=16):
        out = [self.answers.pop(0) for _ in images]
        return out


def test_perfect_prediction_scores_one_and_report_has_breakdowns(fake_real_folder, tmp_path):
    items = load_items([fake_real_folder], ["gallbladder", "tool"], real_map=REAL_MAP)
    truth = [it.load()[1] for it in items]
    perfect = [np.where(t == 255, 0, t).astype(np.uint8) for t in truth]
    report = evaluate(OracleSegmenter(list(perfect)), items, batch=4)
    assert report["n_images"] == 6 and report["n_videos"] == 3
    for c in ("gallbladder", "tool"):
        assert report["overall"][c]["dice"] == 1.0 and report["overall"][c]["iou"] == 1.0
        assert report["overall"][c]["dice_mean_video"] == 1.0
    assert set(report["per_video"]) == {"1", "2", "3"}
    assert report["per_image"][0]["dice"]["tool"] == 1.0
    write_report(report, tmp_path / "ev")
    assert json.loads((tmp_path / "ev" / "eval.json").read_text())["overall"]["tool"]["dice"] == 1.0
    assert "gallbladder" in (tmp_path / "ev" / "eval.txt").read_text()
    assert "video" in format_table(report)


def _items(pairs):
    """In-memory items: (video, image, truth) -> Item."""
    from sim2real.segment.data import Item

    return [Item(f"{v}_{i}", v, "hand", lambda img=img, lab=lab: (img, lab)) for i, (v, img, lab) in enumerate(pairs)]


def test_dice_and_iou_match_counts_made_by_hand():
    """Two 4x4 frames whose overlaps are counted on paper (1 = gallbladder, 2 = tool, 255 ignore)."""
    img = np.zeros((4, 4, 3), np.uint8)
    t0 = np.array([[1, 1, 0, 0],
                   [1, 1, 0, 0],
                   [0, 0, 0, 2],
                   [255, 0, 0, 2]], np.uint8)
    p0 = np.array([[1, 1, 1, 0],   # gallbladder: 2 right, 1 extra (the ignored pixel's 1 is not counted), 2 missed
                   [0, 0, 0, 0],
                   [0, 0, 0, 0],   # tool: missed entirely
                   [1, 0, 0, 0]], np.uint8)
    t1 = np.array([[0, 0, 0, 0],
                   [0, 1, 1, 0],
                   [0, 0, 0, 0],
                   [0, 0, 0, 0]], np.uint8)
    p1 = t1.copy()                 # right, and no tool in either
    report = evaluate(OracleSegmenter([p0, p1]), _items([("v1", img, t0), ("v2", img, t1)]))
    g0, g1 = report["per_image"][0], report["per_image"][1]
    assert g0["dice"]["gallbladder"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))  # 2TP / (2TP + FP + FN)
    assert g0["iou"]["gallbladder"] == pytest.approx(2 / (2 + 1 + 2))
    assert g0["dice"]["tool"] == 0.0 and g0["present"] == {"gallbladder": True, "tool": True}
    assert g1["dice"] == {"gallbladder": 1.0, "tool": 1.0}  # tool absent from both: 1 by convention
    assert g1["present"] == {"gallbladder": True, "tool": False}
    overall = report["overall"]
    # pooled: TP 2 + 2, FP 1 + 0, FN 2 + 0
    assert overall["gallbladder"]["dice"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))
    assert overall["gallbladder"]["iou"] == pytest.approx(4 / (4 + 1 + 2))
    assert overall["tool"]["dice"] == 0.0  # 0 TP of 2 tool pixels over both frames
    assert overall["gallbladder"]["dice_mean_video"] == pytest.approx((4 / 7 + 1) / 2)
    assert report["per_video"]["v1"]["gallbladder"]["dice"] == pytest.approx(4 / 7)

    # an inverted predictor (every class where the truth has none, background where it has one) scores 0
    inverted = [np.where(t0 == 0, 1, 0).astype(np.uint8), np.where(t1 == 0, 2, 0).astype(np.uint8)]
    bad = evaluate(OracleSegmenter(inverted), _items([("v1", img, t0), ("v2", img, t1)]))
    assert bad["overall"]["gallbladder"]["dice"] == 0.0 and bad["overall"]["tool"]["dice"] == 0.0
    assert [r["dice"]["gallbladder"] for r in bad["per_image"]] == [0.0, 0.0]


def test_overlays_show_best_and_worst(fake_real_folder, tmp_path):
    items = load_items([fake_real_folder], ["gallbladder", "tool"], real_map=REAL_MAP)
    truth = [np.where(it.load()[1] == 255, 0, it.load()[1]).astype(np.uint8) for it in items]
    answers = [truth[0]] + [np.zeros_like(t) for t in truth[1:]]  # only image 0 is right
    seg = OracleSegmenter(list(answers))
    report = evaluate(seg, items)
    seg.answers = [np.zeros_like(truth[0])] * 4
    written = write_overlays(seg, items, report, tmp_path / "ov", k=2)
    assert written["best"][0]["id"] == items[0].id
    assert len(list((tmp_path / "ov").glob("*.png"))) == 4


class _RenderOracle:
    """Stands in for a trained segmenter: predicts what ``answer(image index)`` says."""

    def __new__(cls, answers):
        from sim2real.segment.predict import Segmenter

        class Oracle(Segmenter):
            def __init__(self):  # nothing to load
                self.classes, self.answers = ["gallbladder", "tool"], list(answers)

            num_classes = 3

            def predict(self, images, batch=16):
                return [self.answers.pop(0) for _ in images]

        return Oracle()


def test_consistency_maps_the_render_classes_by_name(fake_render_dataset):
    """tool = tool_shaft + tool_tip (ids 6, 7 of the class table), gallbladder = id 2: a
    segmenter finding exactly those scores 1, one finding the gallbladder only scores 0 on
    the tool, an inverted one 0 on both."""
    from sim2real.dataset.format import open_dataset
    from sim2real.segment.consistency import ConsistencyScorer

    ds = open_dataset(fake_render_dataset)
    imgs, segs = [s.image() for s in ds], [s.segmentation() for s in ds]
    want = [np.select([seg == 2, (seg == 6) | (seg == 7)], [1, 2], 0).astype(np.uint8) for seg in segs]
    assert all((w == 1).any() and (w == 2).any() for w in want)  # both classes in every fake render

    def scores(answers):
        return ConsistencyScorer(_RenderOracle(answers), ds.classes).score(imgs, segs)

    assert scores(want) == [{"gallbladder": 1.0, "tool": 1.0}] * len(segs)
    no_tool = scores([np.where(w == 2, 0, w) for w in want])
    assert [d["tool"] for d in no_tool] == [0.0] * len(segs) and all(d["gallbladder"] == 1.0 for d in no_tool)
    inverted = scores([np.where(w == 0, 1, 0).astype(np.uint8) for w in want])
    assert all(d == {"gallbladder": 0.0, "tool": 0.0} for d in inverted)
    # half the tool: Dice = 2 * (n/2) / (n/2 + n)
    half = []
    for w in want:
        h = w.copy()
        ys, xs = np.nonzero(w == 2)
        h[ys[: len(ys) // 2], xs[: len(xs) // 2]] = 0
        half.append(h)
    got = scores(half)
    for w, d in zip(want, got):
        n = int((w == 2).sum())
        assert d["tool"] == pytest.approx(2 * (n - n // 2) / ((n - n // 2) + n))


def test_consistency_scores_of_a_checkpoint_per_variant(fake_render_dataset, fake_real_folder, tmp_path):
    from sim2real.dataset.format import open_dataset
    from sim2real.segment.consistency import consistency_scores, summarise_consistency
    from sim2real.segment.predict import Segmenter

    items = load_items([fake_real_folder], ["gallbladder", "tool"], real_map=REAL_MAP)
    train(items, tmp_path / "real_run", TrainConfig(steps=2, **TINY), device="cpu", progress=False)
    ckpt = tmp_path / "real_run" / "checkpoint.pt"
    scores = consistency_scores(ckpt, fake_render_dataset, device="cpu")
    ds = open_dataset(fake_render_dataset)
    assert set(scores) == set(ds.ids()) == {"000000", "000001", "000002", "000003"}
    # the same Dice, counted by hand from the checkpoint's own predictions
    preds = Segmenter.load(ckpt, "cpu").predict([s.image() for s in ds], 16)
    for s, pred in zip(ds, preds):
        seg = s.segmentation()
        for k, (name, mask) in enumerate((("gallbladder", seg == 2), ("tool", (seg == 6) | (seg == 7))), 1):
            tp, fp, fn = (int(((pred == k) & mask).sum()), int(((pred == k) & ~mask).sum()),
                          int(((pred != k) & mask).sum()))
            assert scores[s.id][name] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    summary = summarise_consistency(scores)
    assert summary["tool"] == pytest.approx(np.mean([d["tool"] for d in scores.values()]))
    assert summary["mean"] == pytest.approx((summary["tool"] + summary["gallbladder"]) / 2)


def test_experiment_runs_available_arms_and_reports(fake_render_dataset, tmp_path):
    from fakes import write_fake_real_folder

    from sim2real.segment.experiment import ExperimentConfig, run_experiment

    real = write_fake_real_folder(tmp_path / "real", n=8, size=(64, 32), videos=4)
    cfg = ExperimentConfig(real=str(real), render=str(fake_render_dataset), render2=str(fake_render_dataset),
                           train_videos=2, size=(32, 16), steps=2, finetune_steps=1, batch=2, base=4)
    res = run_experiment(cfg, tmp_path / "exp", ["a", "r", "b", "c", "d"], device="cpu", progress=False)
    assert res["arms"]["a"]["runs"] and res["arms"]["r"]["runs"] and res["arms"]["c"]["runs"]
    assert not res["arms"]["b"]["runs"] and not res["arms"]["d"]["runs"]  # no translated data given
    assert set(res["split"]["train_videos"]).isdisjoint(res["split"]["test_videos"])
    rows = [ln for ln in (tmp_path / "exp" / "report.md").read_text().splitlines() if ln.startswith("| (")]
    assert len(rows) == 7 and all("not run" in r for r in rows[2:5])  # (e), (f), (b): no data given
    assert set(res["realism"]) == {"a", "r", "c"}
    assert set(res["domain_stats"]) == {"real", "render", "render2"}
    for r in res["realism"].values():
        assert 0 <= r["whole"]["accuracy"] <= 1 and 0 <= r["centre"]["accuracy"] <= 1
    # a second call reuses finished arms and a changed split is refused
    res2 = run_experiment(cfg, tmp_path / "exp", ["c"], device="cpu", progress=False)
    # data sets may be added or left out later (each run records its sources)
    run_experiment(ExperimentConfig(**{**cfg.__dict__, "render": None}), tmp_path / "exp", ["c"],
                   device="cpu", progress=False)
    assert res2["arms"]["a"]["mean"] == res["arms"]["a"]["mean"]
    from sim2real.errors import Sim2RealError

    with pytest.raises(Sim2RealError, match="different video split"):
        run_experiment(ExperimentConfig(**{**cfg.__dict__, "train_videos": 3}), tmp_path / "exp", ["c"],
                       device="cpu", progress=False)


def _run_cli(args):
    from sim2real.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code


def test_cli_train_eval_and_user_errors(fake_render_dataset, fake_real_folder, tmp_path, capsys):
    from sim2real.cli import main

    run = tmp_path / "run"
    main(["segment", "train", "--data", str(fake_render_dataset), "--out", str(run), "--size", "32x16",
          "--steps", "2", "--batch", "2", "--base", "4", "--device", "cpu"])
    assert (run / "checkpoint.pt").is_file()
    main(["segment", "eval", "--checkpoint", str(run), "--data", str(fake_real_folder),
          "--real-map", "gallbladder=5,tool=6", "--out", str(tmp_path / "ev"), "--overlays", "1", "--device", "cpu"])
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    masks = {p.stem: p for p in (fake_real_folder / "masks").glob("*.png")}
    assert sorted(r["id"] for r in ev["per_image"]) == sorted(masks)
    from sim2real.io import read_png

    for r in ev["per_image"]:  # a class is present where its mask value is (5 gallbladder, 6 tool)
        m = read_png(masks[r["id"]])
        assert r["present"] == {"gallbladder": bool((m == 5).any()), "tool": bool((m == 6).any())}
    assert len(list((tmp_path / "ev").glob("**/*.png"))) >= 2  # best and worst overlays
    capsys.readouterr()
    # errors: one line, exit 2
    assert _run_cli(["segment", "eval", "--checkpoint", str(tmp_path / "nope.pt"), "--data",
                     str(fake_real_folder)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _run_cli(["segment", "eval", "--checkpoint", str(run), "--data", str(fake_real_folder)]) == 2
    assert "--real-map" in capsys.readouterr().err
    assert _run_cli(["segment", "train", "--data", str(fake_render_dataset), "--out", str(run),
                     "--size", "32x16", "--steps", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert _run_cli(["segment", "train", "--data", str(fake_render_dataset), "--out", str(tmp_path / "r2"),
                     "--size", "30x16"]) == 2
    assert "multiples of 16" in capsys.readouterr().err
    assert _run_cli(["segment", "train", "--data", str(fake_render_dataset), "--out", str(tmp_path / "r3"),
                     "--classes", "spleen"]) == 2
    assert "--sim-map" in capsys.readouterr().err


def test_consistency_scorer_scores_in_memory_variants(fake_render_dataset, fake_real_folder, tmp_path):
    import torch

    from sim2real.dataset.format import open_dataset
    from sim2real.segment.consistency import ConsistencyScorer

    items = load_items([fake_real_folder], ["gallbladder", "tool"], real_map=REAL_MAP)
    train(items, tmp_path / "real_run", TrainConfig(steps=1, **TINY), device="cpu", progress=False)
    ds = open_dataset(fake_render_dataset)
    scorer = ConsistencyScorer(tmp_path / "real_run", ds.classes, device=torch.device("cpu"))
    imgs = [s.image() for s in ds]
    segs = [s.segmentation() for s in ds]
    per_class = scorer.score(imgs, segs)
    means = scorer.score_mean(imgs, segs)
    assert means.shape == (4,)
    assert means[0] == pytest.approx((per_class[0]["gallbladder"] + per_class[0]["tool"]) / 2)


def test_ranking_skips_frames_empty_in_truth_and_prediction():
    from sim2real.segment.evaluate import rank_images

    report = {"per_image": [
        {"dice": {"g": 1.0, "t": 1.0}, "present": {"g": False, "t": False}},  # black frame: not ranked
        {"dice": {"g": 0.9, "t": 1.0}, "present": {"g": True, "t": False}},
        {"dice": {"g": 0.2, "t": 0.0}, "present": {"g": True, "t": False}},  # tool predicted, absent: 0
    ]}
    best, worst = rank_images(report, 1)
    assert best == [1] and worst == [2]


def test_domain_stats_counts_class_content(fake_real_folder):
    from sim2real.segment.diagnostics import domain_stats

    items = load_items([fake_real_folder], ["gallbladder", "tool"], real_map=REAL_MAP)
    s = domain_stats(items, ["gallbladder", "tool"], size=(32, 16))
    assert s["n_images"] == 6
    assert s["classes"]["tool"]["images_with"] == 1.0
    assert 0 < s["classes"]["gallbladder"]["pixel_fraction_of_lit"] < 1


def test_experiment_all_four_arms(fake_render_dataset, tmp_path):
    from fakes import write_fake_real_folder

    from sim2real.segment.checkpoint import load_checkpoint
    from sim2real.segment.experiment import ExperimentConfig, run_experiment

    real = write_fake_real_folder(tmp_path / "real", n=8, size=(64, 32), videos=4)
    # the fake render set stands in for a translated one (same format, same labels)
    cfg = ExperimentConfig(real=str(real), render=str(fake_render_dataset), translated=str(fake_render_dataset),
                           colour=str(fake_render_dataset), train_videos=2, size=(32, 16), steps=2, finetune_steps=1,
                           batch=2, base=4)
    res = run_experiment(cfg, tmp_path / "exp", ["a", "b", "c", "d", "e"], device="cpu", progress=False)
    assert all(res["arms"][a]["runs"] for a in "abcde")
    assert set(res["realism"]) == {"a", "b", "c", "e"}
    table = (tmp_path / "exp" / "report.md").read_text()
    assert "colour-transferred" in table and "two-sample" in table
    d = load_checkpoint(tmp_path / "exp" / "d" / "seed0")
    assert d["init_from"].endswith("b/seed0/checkpoint.pt") and d["step"] == 1
    assert set(res["domain_stats"]) == {"real", "render", "colour", "translated"}
