"""Shared test set-up: headless Qt, the allocator fix, and the ../shared data when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # without a display Qt aborts the run

import trackstudio.trackers  # noqa: E402,F401  (applies the allocator fix before torch allocates)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRACKSTUDIO_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: tests that judge on real clips need it, CI machines may lack it."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip("../shared/data is not present")
    return data


@pytest.fixture(scope="session")
def shared_train() -> Path:
    """../shared/train (real training clips), or skip."""
    train = SHARED / "train"
    if not train.is_dir():
        pytest.skip("../shared/train is not present")
    return train


@pytest.fixture(scope="module")
def few_torch_threads():
    """At most two torch threads for a module's tests (more only oversubscribe the 2-core CI machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_modal_dialogs(monkeypatch):
    """A modal dialog in a headless test would wait for a click forever: fail at once instead."""
    try:
        from PySide6.QtWidgets import QFileDialog, QMessageBox
    except ImportError:
        return

    def refuse(*_args, **_kwargs):
        raise AssertionError("a test opened a modal dialog; replace the window's ask/ask_save first")

    for name in ("question", "warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, refuse)
    for name in ("getOpenFileName", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, refuse)


@pytest.fixture(autouse=True, scope="session")
def frame_index_cache(tmp_path_factory):
    """Video timestamp indexes go to a temporary folder, not the user's cache."""
    from trackstudio.app.video.frame_index import INDEX_CACHE_ENV

    folder = tmp_path_factory.mktemp("frame-index")
    previous = os.environ.get(INDEX_CACHE_ENV)
    os.environ[INDEX_CACHE_ENV] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(INDEX_CACHE_ENV, None)
    else:
        os.environ[INDEX_CACHE_ENV] = previous
