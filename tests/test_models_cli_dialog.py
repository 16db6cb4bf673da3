"""The Models dialog (app/ui/models_dialog.py): download from a local server, import, remove, cancel."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from trackstudio.app.ui import models_dialog  # noqa: E402
from trackstudio.app.ui.models_dialog import ModelsDialog, ensure_weights  # noqa: E402
from test_models_cli import PAYLOAD, _register_test_tracker, _weights, cache, served  # noqa: E402,F401


@pytest.fixture
def test_net(served, monkeypatch):
    folder, base = served
    (folder / "test_net.pt").write_bytes(PAYLOAD)
    weights = _weights(f"{base}/test_net.pt")
    _register_test_tracker(monkeypatch, weights)
    return weights


def _status_of(dialog: ModelsDialog, tracker: str) -> str:
    row = next(i for i, r in enumerate(dialog._rows) if r.tracker == tracker)
    return dialog.table.item(row, 6).text()


def test_dialog_downloads_with_progress_then_removes(qtbot, cache, test_net):
    dialog = ModelsDialog(select_tracker="test-net")
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(dialog._rows) > 3
    assert _status_of(dialog, "test-net") == "missing" and dialog.download_button.isEnabled()
    progress = []
    dialog.progress.valueChanged.connect(progress.append)
    assert dialog.download_selected()
    qtbot.waitUntil(lambda: dialog._thread is None, timeout=20_000)
    assert dialog.last_error == "" and progress and progress[-1] == len(PAYLOAD) // 1024
    assert (cache / "test_net.pt").read_bytes() == PAYLOAD
    assert _status_of(dialog, "test-net") == "cached" and dialog.remove_button.isEnabled()
    assert not dialog.download_button.isEnabled()
    assert dialog.remove_selected() and not (cache / "test_net.pt").exists()
    assert _status_of(dialog, "test-net") == "missing"


def test_dialog_reports_offline_and_imports_a_local_file(qtbot, cache, tmp_path, monkeypatch):
    from test_models_cli import _closed_port_url

    _register_test_tracker(monkeypatch, _weights(_closed_port_url()))
    dialog = ModelsDialog(select_tracker="test-net")
    qtbot.addWidget(dialog)
    dialog.download_selected()
    qtbot.waitUntil(lambda: dialog._thread is None, timeout=20_000)
    assert "could not download test_net.pt" in dialog.last_error and "Import file" in dialog.last_error
    assert "models import" not in dialog.last_error and "--checkpoint" not in dialog.last_error  # the window's words

    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"x" * 10)
    assert not dialog.import_selected(wrong) and "expected" in dialog.last_error
    right = tmp_path / "right.pt"
    right.write_bytes(PAYLOAD)
    assert dialog.import_selected(right)
    assert _status_of(dialog, "test-net") == "cached"


def test_cancel_stops_a_download(qtbot, cache, test_net, monkeypatch):
    monkeypatch.setattr("trackstudio.trackers.checkpoints._CHUNK", 1024)  # many progress calls: cancel lands mid-way
    dialog = ModelsDialog(select_tracker="test-net")
    qtbot.addWidget(dialog)
    assert dialog.download_selected()
    dialog.cancel_download()
    qtbot.waitUntil(lambda: dialog._thread is None, timeout=20_000)
    assert not (cache / "test_net.pt").exists()
    assert "cancelled" in dialog.status.text()


def test_ensure_weights(qtbot, cache, test_net, monkeypatch):
    assert ensure_weights(None, "csrt")  # built in: no question asked
    monkeypatch.setattr(models_dialog.QMessageBox, "question", lambda *args: QMessageBox.StandardButton.No)
    assert not ensure_weights(None, "test-net")
    (cache / "test_net.pt").parent.mkdir(parents=True, exist_ok=True)
    (cache / "test_net.pt").write_bytes(PAYLOAD)
    assert ensure_weights(None, "test-net")
