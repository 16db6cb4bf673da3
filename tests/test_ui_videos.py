"""Multi-video projects in the window: add videos, switch in the Videos panel (each video keeps its
own annotations), statuses, review flag, save and reopen."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402
from test_ui_flows import clip, open_clip, run_and_wait, square_clip, window  # noqa: E402,F401

from trackstudio.app.model import FrameState  # noqa: E402
from trackstudio.app.ui.main import MainWindow  # noqa: E402


def menu_action(win, text):
    for menu_action_ in win.menuBar().actions():
        for action in menu_action_.menu().actions():
            if action.text().replace("&", "") == text:
                return action
    raise AssertionError(f"no menu item {text!r}")


def click_row(qtbot, win, row):
    view = win.video_list.list
    rect = view.visualItemRect(view.item(row))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_add_switch_review_save_reopen(qtbot, window, clip, tmp_path, monkeypatch):  # noqa: F811
    win = window
    open_clip(win, clip)
    second = square_clip(tmp_path / "second.mp4", num_frames=10)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 40)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(second), str(broken)], ""))
    menu_action(win, "Add videos to project…").trigger()
    project = win.session.project
    assert [e.name for e in project.videos] == ["square.mp4", "second.mp4"]
    assert "broken.mp4" in win.last_error  # reported, the good one still added
    assert win.video_list.statuses() == ["not started", "not started"]

    first_box = win.session.store.add_object("box", name="car").obj_id
    win.session.store.set_state(first_box, 2, FrameState(box=(30, 40, 54, 64), keyframe=True))
    assert win.video_list.statuses() == ["prompted", "not started"]

    click_row(qtbot, win, 1)  # the second video opens only now
    assert win.session.video.info.path == str(second) and win.session.num_frames == 10
    assert win.session.store.objects == [] and project.current == 1
    obj = win.session.store.add_object("box").obj_id
    win.session.store.set_state(obj, 0, FrameState(box=(30, 40, 54, 64), keyframe=True))
    cancelled, error, written = run_and_wait(qtbot, win, win.propagate_all)
    assert not cancelled and not error and written == 9
    assert win.video_list.statuses() == ["prompted", "tracked"]
    qtbot.mouseClick(win.video_list.reviewed, Qt.MouseButton.LeftButton)
    assert win.video_list.statuses() == ["prompted", "reviewed"] and project.dirty

    click_row(qtbot, win, 0)
    assert win.session.video.info.path == str(clip)
    assert win.session.store.keyframes(first_box) == [2]  # each video kept its own annotations
    assert not win.video_list.reviewed.isChecked()

    path = tmp_path / "two.tsproj"
    assert win.save_project(path), win.last_error
    other = MainWindow(QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    other.ask = lambda *_args: False
    try:
        assert other.open_path(path), other.last_error
        assert other.video_list.statuses() == ["prompted", "reviewed"]
        assert other.video_list.list.currentRow() == 0
        click_row(qtbot, other, 1)
        assert other.session.video.info.path == str(second)
        assert other.session.store.frames(1) == list(range(10))
        asked = []
        other.ask = lambda title, text: asked.append(text) or True
        qtbot.mouseClick(other.video_list.remove_button, Qt.MouseButton.LeftButton)
        assert "second.mp4" in asked[0]
        assert [e.name for e in other.session.project.videos] == ["square.mp4"]
        assert other.session.video.info.path == str(clip) and other.session.project.dirty
        assert not other.video_list.remove_button.isEnabled()  # the last video stays
    finally:
        other.shutdown()
