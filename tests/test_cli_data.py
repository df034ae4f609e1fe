"""verify / preview commands and the --blender path (no bpy needed)."""

import os
import stat
import sys

import numpy as np
import pytest

from sim2real.cli import main


def _run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_verify_cli_names_bad_samples(fake_render_dataset, capsys):
    try:
        main(["verify", str(fake_render_dataset), "--quiet"])
    except SystemExit as e:
        assert e.code in (0, None)
    (fake_render_dataset / "samples" / "000003" / "segmentation.png").unlink()
    code, out, err = _run(capsys, "verify", str(fake_render_dataset), "--quiet")
    assert code == 1 and "000003: missing segmentation.png" in out


def test_verify_cli_on_a_non_dataset(tmp_path, capsys):
    for path in (tmp_path, tmp_path / "nonexistent"):
        code, out, err = _run(capsys, "verify", str(path))
        assert code == 2 and out == "" and err.count("\n") == 1  # one line, no progress bar
        assert err.startswith(f"error: {path} is not a sim2real data set")
    (tmp_path / "dataset.json").write_text("{not json")  # a damaged data set is verify's finding
    code, out, _ = _run(capsys, "verify", str(tmp_path), "--quiet")
    assert code == 1 and "dataset.json is not valid JSON" in out


def test_preview_writes_a_contact_sheet(fake_render_dataset, tmp_path):
    from sim2real.io import read_png

    out = tmp_path / "sheet.png"
    try:
        main(["preview", str(fake_render_dataset), "--out", str(out), "--rows", "3"])
    except SystemExit as e:
        assert e.code in (0, None)
    sheet = read_png(out)
    assert sheet.shape[0] == 3 * 48 + 2 * 2 and sheet.shape[1] == 4 * 64 + 3 * 2
    assert sheet.dtype == np.uint8 and sheet.std() > 0


def test_blender_binary_path_runs_the_headless_script(tmp_path, capsys):
    """A stand-in 'blender' that records its arguments proves the command line we build."""
    log = tmp_path / "args.txt"
    fake = tmp_path / "blender"
    fake.write_text(f"#!{sys.executable}\nimport os, sys\nopen({str(log)!r}, 'w').write('\\n'.join(sys.argv[1:]))\n"
                    f"open({str(log) + '.pid'!r}, 'w').write(os.environ.get('SIM2REAL_PARENT_PID', ''))\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    try:
        main(["render", "--out", str(tmp_path / "o"), "--count", "3", "--seed", "4", "--blender", str(fake),
              "--no-preview", "--set", "render.samples=2", "--set", "render.denoise=false",
              "--set", "render.resolution=[64, 40]"])
    except SystemExit as e:
        assert e.code in (0, None)
    args = log.read_text().split("\n")
    assert (tmp_path / "args.txt.pid").read_text() == str(os.getpid())  # so Blender ends with us
    assert args[:2] == ["-b", "--factory-startup"]
    script = args[args.index("-P") + 1]
    assert script.endswith(os.path.join("sim2real", "render.py")) and os.path.isfile(script)
    rest = args[args.index("--") + 1:]
    assert rest[rest.index("--count") + 1] == "3" and rest[rest.index("--seed") + 1] == "4"
    assert "render.samples=2" in rest
    from sim2real.rendering.job import parse_set

    sets = parse_set([rest[i + 1] for i, a in enumerate(rest) if a == "--set"])
    assert sets == {"render.samples": 2, "render.denoise": False, "render.resolution": [64, 40]}
    # two workers = two Blender processes on interleaved sub-shards covering the job
    main_args = ["render", "--out", str(tmp_path / "o3"), "--count", "6", "--blender", str(fake), "--no-preview",
                 "--workers", "2", "--shard", "1/3"]
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n")
    log.unlink()
    try:
        main(main_args)
    except SystemExit as e:
        assert e.code in (0, None)
    shards = sorted(line.split("--shard ")[1].split()[0] for line in log.read_text().splitlines())
    assert shards == ["1/6", "4/6"]
    code, _, err = _run(capsys, "render", "--out", str(tmp_path / "o2"), "--count", "1",
                        "--blender", str(tmp_path / "no-blender"))
    assert code == 2 and "no such program" in err
