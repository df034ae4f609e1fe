import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

HAS_BPY = importlib.util.find_spec("bpy") is not None


def pytest_configure(config):
    """One torch thread count for any selection and order of tests: a module setting it at
    import changed it for every module collected after it (and numerical tolerances with it);
    and 2 threads on a shared 2-core machine are slower than 1."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    skip_bpy = pytest.mark.skip(reason="needs the bpy module: pip install -e '.[blender]'")
    skip_data = pytest.mark.skip(reason=f"needs {SHARED_DATA} (shared data set not present)")
    for item in items:
        if "bpy" in item.keywords and not HAS_BPY:
            item.add_marker(skip_bpy)
        if "shared_data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_data)


@pytest.fixture
def fake_render_dataset(tmp_path):
    from fakes import write_fake_render_dataset

    return write_fake_render_dataset(tmp_path / "render")


@pytest.fixture
def fake_real_folder(tmp_path):
    from fakes import write_fake_real_folder

    return write_fake_real_folder(tmp_path / "real")


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs {SHARED_DATA}")
    return SHARED_DATA
