import numpy as np
import pytest

from sim2real.dataset.format import open_dataset, verify
from sim2real.errors import DatasetError


def test_fake_dataset_reads_and_verifies(fake_render_dataset):
    ds = open_dataset(fake_render_dataset)
    assert len(ds) == 4
    s = ds[0]
    assert s.image().shape == (48, 64, 3)
    assert s.segmentation().dtype == np.uint8
    assert s.instances().dtype == np.uint16
    assert s.normals().shape == (48, 64, 3)
    assert verify(fake_render_dataset) == {}


def test_verify_names_bad_samples(fake_render_dataset):
    (fake_render_dataset / "samples" / "000001" / "depth.exr").unlink()
    (fake_render_dataset / "samples" / "000002" / "depth.exr").write_bytes(b"garbage")
    bad = verify(fake_render_dataset)
    assert set(bad) == {"000001", "000002"}
    assert "missing depth.exr" in bad["000001"]
    assert "unreadable" in bad["000002"][0]


def test_verify_catches_wrong_class_counts(fake_render_dataset):
    import json

    p = fake_render_dataset / "samples" / "000000" / "meta.json"
    meta = json.loads(p.read_text())
    meta["class_pixel_counts"]["liver"] += 1
    p.write_text(json.dumps(meta))
    assert "class_pixel_counts" in verify(fake_render_dataset)["000000"][0]


def test_open_non_dataset_is_clear(tmp_path):
    with pytest.raises(DatasetError, match="not a sim2real data set"):
        open_dataset(tmp_path)


def test_torch_dataset(fake_render_dataset):
    from sim2real.dataset.format import torch_dataset

    item = torch_dataset(fake_render_dataset)[1]
    assert item["image"].shape == (3, 48, 64) and float(item["image"].max()) <= 1.0
    assert item["segmentation"].shape == (48, 64)


def test_verify_reports_malformed_meta_and_checks_every_sample(fake_render_dataset):
    samples = fake_render_dataset / "samples"
    (samples / "000001" / "meta.json").write_text("[1, 2]")
    (samples / "000002" / "meta.json").write_text("{}")
    bad = verify(fake_render_dataset)
    assert set(bad) == {"000001", "000002"}  # the sound samples 0 and 3 were checked and pass
    assert bad["000001"] == ["meta.json must hold a JSON object, holds a list"]
    assert "lacks" in bad["000002"][0] and "camera" in bad["000002"][0] and "resolution" in bad["000002"][0]


def test_verify_checks_the_camera_record(fake_render_dataset):
    import json

    p = fake_render_dataset / "samples" / "000000" / "meta.json"
    meta = json.loads(p.read_text())
    meta["camera"]["K"] = [[1, 0], [0, 1]]
    p.write_text(json.dumps(meta))
    assert verify(fake_render_dataset)["000000"] == ["meta.json camera must hold K (3x3) and camera_to_world (4x4)"]


def test_torch_dataset_loads_in_spawned_workers(fake_render_dataset):
    """spawn (macOS, Windows, Python 3.14's default) pickles the Dataset into each worker."""
    import pickle

    import torch
    from torch.utils.data import DataLoader, Dataset

    from sim2real.dataset.format import torch_dataset

    ds = torch_dataset(fake_render_dataset, keys=("image", "segmentation", "depth"))
    assert isinstance(ds, Dataset) and type(pickle.loads(pickle.dumps(ds))) is type(ds)
    loader = DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="spawn")
    batches = list(loader)
    assert [i for b in batches for i in b["id"]] == ["000000", "000001", "000002", "000003"]
    direct = torch_dataset(fake_render_dataset, keys=("image", "segmentation", "depth"))[3]
    assert torch.equal(batches[1]["image"][1], direct["image"])
    assert torch.equal(batches[1]["segmentation"][1], direct["segmentation"])


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    import os

    from sim2real.io import write_bytes_atomic, write_json_atomic

    (tmp_path / "plain").write_bytes(b"x")
    write_bytes_atomic(tmp_path / "a.bin", b"x")
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    want = os.stat(tmp_path / "plain").st_mode & 0o777
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == want
    assert os.stat(tmp_path / "m.json").st_mode & 0o777 == want


def test_writers_opening_one_folder_at_once_do_not_trip_over_each_other(tmp_path):
    """Render workers and shards open the same folder together; the writability probe of one
    must not be deleted by another (it was: "not writable (No such file or directory)")."""
    import threading

    from sim2real.dataset.format import DatasetWriter

    errors = []

    def open_many():
        try:
            for _ in range(100):
                DatasetWriter(tmp_path / "shared", {"kind": "renders"})
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_many) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert not [p for p in (tmp_path / "shared").iterdir() if p.name.startswith(".write-test")]
