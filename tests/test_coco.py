"""sim2real coco: COCO instance annotations, loaded back with pycocotools and checked
against the label files, the class table and tips placed by construction."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("pycocotools")
from pycocotools import mask as mask_api  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from sim2real.classes import DEFAULT_TABLE  # noqa: E402
from sim2real.cli import main  # noqa: E402
from sim2real.dataset.format import DatasetWriter, class_pixel_counts, open_dataset, open_translation  # noqa: E402
from sim2real.io import read_png, write_json_atomic, write_png  # noqa: E402
from sim2real.io.exr import write_exr  # noqa: E402

W, H = 40, 30
K = np.array([[30.0, 0, 20.5], [0, 31.0, 14.0], [0, 0, 1]])


def _camera_to_world(i):
    a = 0.3 + 0.2 * i
    r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, [0.1 * i, -0.02, 0.3]
    return m


def _world(c2w, u, v, z):
    """The world point seen at continuous pixel (u, v) at depth z (built backwards through K)."""
    pc = z * np.linalg.inv(K) @ np.array([u, v, 1.0])
    return (c2w[:3, :3] @ pc + c2w[:3, 3]).tolist()


def _write_render_set(root, n=6):
    """Renders with two liver pieces, a gallbladder and three instruments (shaft + tip each).

    Instrument 0's tip lies on its own tip pixels (seen; over the far wall in sample 1, outside
    the field of view in sample 2), 1's behind the liver (hidden), 2's outside the image."""
    writer = DatasetWriter(root, {"kind": "render", "classes": DEFAULT_TABLE.to_json(), "config": {}})
    classes = {1: 1, 2: 1, 3: 2, 4: 4, 10: 6, 11: 7, 12: 6, 13: 7, 14: 6, 15: 7}
    expected_tips = {}
    for i in range(n):
        inst = np.full((H, W), 4, np.uint16)  # abdominal wall
        inst[2:12, 2:15] = 1
        inst[20:28, 3:9] = 2  # a second liver instance
        inst[3:10, 25:35] = 3
        inst[14:16, 10 + i:30] = 10
        inst[13:18, 30:34] = 11
        inst[22:24, 15:36] = 12
        inst[21:25, 36:39] = 13
        inst[0:2, 18:40] = 14
        inst[:, 0] = 0  # a column where nothing is seen
        seg = np.zeros((H, W), np.uint8)
        for iid, cid in classes.items():
            seg[inst == iid] = cid
        depth = np.where(inst > 0, 0.2, np.inf).astype(np.float32)
        depth[inst == 1] = 0.05
        depth[inst == 11] = 0.07  # in front of its own tip: its own surface never hides it
        c2w = _camera_to_world(i)
        tip0 = (31.7, 15.2) if i != 1 else (37.5, 5.5)  # on its tip / over the wall at 0.2 m
        tips = [(0, tip0, 0.08), (1, (5.5, 6.5), 0.08), (2, (-3.0, 1.0), 0.1)]
        instruments = [{"index": j, "kind": "grasper", "shaft_instance_id": 10 + 2 * j,
                        "tip_instance_id": 11 + 2 * j, "tip_world": _world(c2w, u, v, z)}
                       for j, (u, v), z in tips]
        fov = {"cx": 15.0, "cy": 15.0, "radius": 14.0} if i == 2 else None  # tip 0 outside the circle
        expected_tips[f"{i:06d}"] = {0: (*tip0, 0 if fov else 2), 1: (5.5, 6.5, 1), 2: (0, 0, 0)}
        img = (DEFAULT_TABLE.palette()[seg] // 2 + i).astype(np.uint8)
        with writer.write_sample(f"{i:06d}") as d:
            write_png(d / "image.png", img)
            write_png(d / "segmentation.png", seg)
            write_png(d / "instances.png", inst)
            write_exr(d / "depth.exr", {"Z": depth})
            z = np.zeros((H, W), np.float32)
            write_exr(d / "normals.exr", {"X": z, "Y": z, "Z": -(inst > 0).astype(np.float32)})
            write_json_atomic(d / "meta.json", {
                "index": i, "seed": 0, "resolution": [W, H],
                "camera": {"K": K.tolist(), "camera_to_world": c2w.tolist()},
                "instances": [{"id": k, "class_id": c, "name": f"obj{k}"} for k, c in classes.items()],
                "class_pixel_counts": class_pixel_counts(seg, DEFAULT_TABLE), "instruments": instruments,
                "fov_mask": fov})
    return root, expected_tips


def _write_translation(src_root, out, k=3):
    src = open_dataset(src_root)
    writer = open_translation(out, src, {"k": k}, {"k": k})
    for s in src:
        for j in range(k):
            img = np.full((H, W, 3), 50 * j + int(s.id), np.uint8)
            writer.write_variant(s, f"{s.id}_style_{j:02d}", img, {"source_id": s.id, "style_index": j})
    return out


def _export(capsys, *args):
    try:
        main(["coco", *map(str, args)])
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _load(out, split):
    return COCO(str(out / "annotations" / f"instances_{split}.json"))


def _check_masks(coco, data_root):
    """Every annotation's mask equals its (instance, class) pixels; per image they cover
    every labelled instance pixel exactly once."""
    for img in coco.dataset["images"]:
        sample = data_root / "samples" / img["sample_id"]
        inst, seg = read_png(sample / "instances.png"), read_png(sample / "segmentation.png")
        cover = np.zeros(inst.shape, int)
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
            m = coco.annToMask(a).astype(bool)
            want = (inst == a["instance_id"]) & (seg == a["category_id"])
            assert np.array_equal(m, want), (img["sample_id"], a["instance_id"])
            assert a["area"] == want.sum() and a["iscrowd"] == 0
            ys, xs = np.nonzero(want)
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            cover += m
        assert np.array_equal(cover, ((inst > 0) & (seg > 0)).astype(int))


def test_render_set_exports_exact_masks_categories_tips_and_cameras(tmp_path, capsys):
    data, tips = _write_render_set(tmp_path / "sim")
    out = tmp_path / "coco"
    code, err = _export(capsys, data, "--out", out, "--val-fraction", "0.34")
    assert code in (0, None) and "6 images (train 4, val 2)" in err
    train, val = _load(out, "train"), _load(out, "val")
    want_cats = {c.id: c.name for c in DEFAULT_TABLE if c.id != 0}
    for coco in (train, val):
        assert {c["id"]: c["name"] for c in coco.dataset["categories"]} == want_cats
        assert coco.loadCats([6, 7])[0]["keypoints"] == ["tip"]
        _check_masks(coco, data)
        for img in coco.dataset["images"]:
            assert img["K"] == K.tolist()
            assert np.allclose(img["camera_to_world"], _camera_to_world(int(img["sample_id"])))
            assert (out / "images" / img["file_name"]).read_bytes() == \
                (data / "samples" / img["sample_id"] / "image.png").read_bytes()
            for a in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
                if a["instance_id"] in (10, 11, 12, 13, 14, 15):
                    u, v, vis = tips[img["sample_id"]][(a["instance_id"] - 10) // 2]
                    want = [u - 0.5, v - 0.5, vis] if vis else [0, 0, 0]
                    assert np.allclose(a["keypoints"], want, atol=1e-6) and a["num_keypoints"] == int(vis > 0)
                else:
                    assert a["keypoints"] == [0, 0, 0] and a["num_keypoints"] == 0
    assert len(train.getImgIds()) == 4 and len(val.getImgIds()) == 2
    assert not {i["sample_id"] for i in train.dataset["images"]} & {i["sample_id"] for i in val.dataset["images"]}
    # a rerun keeps the images and writes the same annotations
    before = (out / "annotations" / "instances_val.json").read_bytes()
    code, err = _export(capsys, data, "--out", out, "--val-fraction", "0.34")
    assert code in (0, None) and "kept 6" in err
    assert (out / "annotations" / "instances_val.json").read_bytes() == before


def test_translated_set_exports_variant_images_with_the_renders_masks(tmp_path, capsys):
    data, _ = _write_render_set(tmp_path / "sim", n=5)
    trans = _write_translation(data, tmp_path / "trans", k=3)
    code, _ = _export(capsys, data, "--out", tmp_path / "c_sim", "--val-fraction", "0")
    code2, err = _export(capsys, trans, "--out", tmp_path / "c_tr", "--val-fraction", "0.4", "--seed", "3")
    assert code in (0, None) and code2 in (0, None) and "15 images (train 9, val 6)" in err
    renders = _load(tmp_path / "c_sim", "train")
    by_sample = {i["sample_id"]: i["id"] for i in renders.dataset["images"]}
    splits = {}
    for split in ("train", "val"):
        coco = _load(tmp_path / "c_tr", split)
        _check_masks(coco, trans)
        for img in coco.dataset["images"]:
            rid = img["render_id"]
            assert img["sample_id"].startswith(rid + "_style_")
            splits.setdefault(rid, set()).add(split)
            got = (tmp_path / "c_tr" / "images" / img["file_name"]).read_bytes()
            assert got == (trans / "samples" / img["sample_id"] / "image.png").read_bytes()
            assert got != (data / "samples" / rid / "image.png").read_bytes()
            mine = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
            theirs = renders.loadAnns(renders.getAnnIds(imgIds=[by_sample[rid]]))
            strip = lambda anns: [{k: v for k, v in a.items() if k not in ("id", "image_id")} for a in anns]  # noqa
            assert strip(mine) == strip(theirs)
    assert len(splits) == 5 and all(len(s) == 1 for s in splits.values())  # no render straddles the splits
    assert sum(s == {"val"} for s in splits.values()) == 2


def test_split_is_seeded_by_render_and_stable():
    from sim2real.dataset.coco import split_renders

    ids = [f"{i:06d}" for i in range(20)]
    val = split_renders(ids, 0.25, seed=1)
    assert len(val) == 5 and val == split_renders(list(reversed(ids)), 0.25, seed=1)
    assert val != split_renders(ids, 0.25, seed=2)
    assert len(split_renders(ids[:3], 0.01)) == 1 and len(split_renders(ids[:3], 0.99)) == 2
    assert split_renders(ids, 0.0) == set() and split_renders(ids, 1.0) == set(ids)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    data, _ = _write_render_set(tmp_path / "sim", n=1)
    empty = tmp_path / "empty"
    DatasetWriter(empty, {"kind": "render", "classes": DEFAULT_TABLE.to_json()})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    cases = [((tmp_path, "--out", tmp_path / "o"), "is not a sim2real data set"),
             ((empty, "--out", tmp_path / "o"), "holds no samples"),
             ((data, "--out", tmp_path / "o", "--val-fraction", "1.5"), "--val-fraction must be between 0 and 1"),
             ((data, "--out", tmp_path / "other"), "holds other files"),
             ((data, "--out", data / "coco"), "inside the data set")]
    for args, text in cases:
        code, err = _export(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and text in err, (args, err)
    meta = data / "samples" / "000000" / "meta.json"
    meta.write_text(meta.read_text().replace('"camera"', '"kamera"'))
    code, err = _export(capsys, data, "--out", tmp_path / "o")
    last = err.splitlines()[-1]  # after the progress lines: one line, no traceback
    assert code == 2 and "Traceback" not in err and last.startswith("error: sample 000000 cannot be exported (KeyError")
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    code, err = _export(capsys, data, "--out", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1 and "pip install 'sim2real[coco]'" in err


def test_coco_json_has_no_nan_and_rle_decodes(tmp_path, capsys):
    data, _ = _write_render_set(tmp_path / "sim", n=2)
    _export(capsys, data, "--out", tmp_path / "c", "--val-fraction", "0")
    text = (tmp_path / "c" / "annotations" / "instances_train.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    a = doc["annotations"][0]
    assert isinstance(a["segmentation"]["counts"], str)
    assert mask_api.decode(a["segmentation"]).shape == (H, W)


def test_torch_dataset_tips_match_the_constructed_tips(tmp_path):
    import torch

    from sim2real.dataset import torch_dataset

    data, tips = _write_render_set(tmp_path / "sim", n=3)
    ds = torch_dataset(data, keys=("image", "K", "tips"))
    for item in ds:
        want = tips[item["id"]]
        got = item["tips"]
        assert got.shape == (3, 3) and torch.equal(item["K"], torch.tensor(K, dtype=torch.float32))
        for j, (u, v, vis) in want.items():
            assert int(got[j, 2]) == vis
            if vis:
                assert np.allclose(got[j, :2].numpy(), [u, v], atol=1e-4)


def test_cocoeval_scores_the_ground_truth_as_perfect(tmp_path, capsys):
    """The files work with COCO's own evaluation: the annotations as detections give AP 1."""
    from pycocotools.cocoeval import COCOeval

    data, _ = _write_render_set(tmp_path / "sim", n=3)
    _export(capsys, data, "--out", tmp_path / "c", "--val-fraction", "0")
    gt = _load(tmp_path / "c", "train")
    dets = gt.loadRes([{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                        "segmentation": a["segmentation"]} for a in gt.dataset["annotations"]])
    for iou in ("segm", "bbox"):
        ev = COCOeval(gt, dets, iou)
        ev.evaluate(), ev.accumulate(), ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0)
