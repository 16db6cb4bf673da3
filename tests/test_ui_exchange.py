"""File > Import, File > Export and File > Export video, driven through the menu bar like a user."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDialog, QProgressDialog, QPushButton  # noqa: E402
from test_cli_interop import ffmpeg_probe  # noqa: E402
from test_ui_flows import NUM_FRAMES, clip, open_clip, square_clip, window  # noqa: E402,F401

from trackstudio.app.model import FrameState  # noqa: E402
from trackstudio.app.ui import dialogs, exchange  # noqa: E402


def menu_action(win, menu_title: str, text: str):
    """The QAction a user clicks: found from the menu bar by its (ampersand-free) text."""
    for menu_action_ in win.menuBar().actions():
        if menu_action_.text().replace("&", "") == menu_title:
            for action in menu_action_.menu().actions():
                if action.text().replace("&", "") == text:
                    return action
    raise AssertionError(f"no {menu_title} > {text}")


def accept_with(monkeypatch, dialog_class, fill):
    """The modal dialog opens, `fill(dialog)` does what the user types and clicks, then Save/Open."""
    def exec_(self):
        fill(self)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(dialog_class, "exec", exec_)


def test_import_menu_adds_keyframe_objects_in_one_undo_step(qtbot, window, clip, tmp_path, monkeypatch):  # noqa: F811 (fixtures from test_ui_flows)
    win = window
    open_clip(win, clip)
    gt = tmp_path / "gt.txt"
    gt.write_text("1,4,31,41,24,24,1,1,1\n9,4,47,41,24,24,1,1,1\n")  # MOT: frames 0 and 8, 1-based pixels
    accept_with(monkeypatch, exchange.ImportDialog, lambda d: d.path.setText(str(gt)))  # the format is guessed
    menu_action(win, "File", "Import annotations…").trigger()
    store = win.session.store
    (obj,) = store.objects
    assert obj.name == "track 4" and store.keyframes(obj.obj_id) == [0, 8]
    assert store.get_state(obj.obj_id, 8).box.tolist() == [46, 40, 70, 64]
    assert "Imported 1 objects" in win.last_message
    menu_action(win, "Edit", "Undo").trigger()
    assert store.objects == []

    accept_with(monkeypatch, exchange.ImportDialog, lambda d: (d.path.setText(str(gt)), d.tracked.setChecked(True)))
    menu_action(win, "File", "Import annotations…").trigger()
    assert store.keyframes(store.objects[0].obj_id) == []  # tracked frames: the next run may refine them

    bad = tmp_path / "bad.txt"
    bad.write_text("1,4,31\n")
    accept_with(monkeypatch, exchange.ImportDialog, lambda d: d.path.setText(str(bad)))
    monkeypatch.setattr(win, "show_error", lambda title, error: setattr(win, "last_error", f"{title}: {error}"))
    menu_action(win, "File", "Import annotations…").trigger()
    assert "bad.txt: line 1: expected 6 to 10 values" in win.last_error and len(store.objects) == 1


def test_export_menu_writes_the_chosen_format(qtbot, window, clip, tmp_path, monkeypatch):  # noqa: F811 (fixtures from test_ui_flows)
    win = window
    open_clip(win, clip)
    store = win.session.store
    car = store.add_object("box", "car", label="vehicle")
    store.set_state(car.obj_id, 2, FrameState(box=[30, 40, 54, 64], keyframe=True))
    out = tmp_path / "export.xml"

    def choose_cvat(dialog):
        dialog.format.setCurrentText("CVAT for video 1.1 (.xml)")
        dialog.path.setText(str(out))

    accept_with(monkeypatch, dialogs.ExportDialog, choose_cvat)
    menu_action(win, "File", "Export annotations…").trigger()
    track = ET.parse(out).getroot().find("track")
    assert track.get("label") == "vehicle" and track.find("box").get("frame") == "2"


def test_export_video_in_a_worker_with_progress(qtbot, window, clip, tmp_path, monkeypatch):  # noqa: F811 (fixtures from test_ui_flows)
    win = window
    open_clip(win, clip)
    store = win.session.store
    car = store.add_object("box", "car")
    for f in range(NUM_FRAMES):
        store.set_state(car.obj_id, f, FrameState(box=[30 + 2 * f, 40, 54 + 2 * f, 64], score=0.9))
    out = tmp_path / "review.mp4"

    def fill(dialog):
        dialog.path.setText(str(out))
        dialog.side_by_side.setChecked(True)

    accept_with(monkeypatch, exchange.VideoExportDialog, fill)
    with qtbot.waitSignal(win.video_exporter.finished, timeout=60_000) as blocker:
        menu_action(win, "File", "Export video…").trigger()
        assert isinstance(win.video_exporter.progress_dialog, QProgressDialog)
    assert blocker.args == [True, str(out), ""]
    assert ffmpeg_probe(out) == ("h264", NUM_FRAMES)
    assert "Exported the review video" in win.last_message and not win.video_exporter.running


def test_export_video_cancel_writes_nothing(qtbot, window, tmp_path, monkeypatch):  # noqa: F811 (fixtures from test_ui_flows)
    win = window
    open_clip(win, square_clip(tmp_path / "long.mp4", num_frames=300))
    out = tmp_path / "cancelled.mp4"
    accept_with(monkeypatch, exchange.VideoExportDialog, lambda d: d.path.setText(str(out)))
    with qtbot.waitSignal(win.video_exporter.finished, timeout=60_000) as blocker:
        menu_action(win, "File", "Export video…").trigger()
        cancel = win.video_exporter.progress_dialog.findChild(QPushButton)
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    completed, _path, error = blocker.args
    assert completed is False and error == ""
    assert not out.exists() and not list(tmp_path.glob(".cancelled*"))
    assert "cancelled" in win.last_message
