"""Tracker panel > Options…: a tracker's options set in a dialog, used by the next run and saved with the project."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDialogButtonBox  # noqa: E402
from test_ui_exchange import accept_with  # noqa: E402
from test_ui_flows import click, clip, open_clip, run_and_wait, window  # noqa: E402,F401

from trackstudio.app.ui import tracker_options  # noqa: E402


def _tracked_points(win, obj_id) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) points and (T,) visibility of a point object after a run."""
    store = win.session.store
    states = [store.get_state(obj_id, t) for t in range(len(win.session.video))]
    return np.array([s.point for s in states]), np.array([s.visible for s in states])


def test_an_option_set_in_the_dialog_changes_the_next_run(qtbot, window, clip, monkeypatch):  # noqa: F811
    # lk's forward-backward check: a point whose backward track misses its start by more than fb_threshold px is
    # unsure (hidden, left where it was). At 0.0001 px the steps of the moving square fail it
    win = window
    open_clip(win, clip)
    win.set_tool("point")
    click(qtbot, win, 42.5, 52.5)  # on the square, which moves 2 px right per frame
    point = win.session.selected
    run_and_wait(qtbot, win, win.propagate_all)
    moved, shown = _tracked_points(win, point)
    assert shown[1:].all() and moved[-1, 0] - moved[0, 0] > 20

    button = win.tracker_panel.option_buttons["point"]
    assert button.text() == "Options…"
    accept_with(monkeypatch, tracker_options.TrackerOptionsDialog,
                lambda dialog: dialog.fields["fb_threshold"].setValue(0.0001))
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert button.text() == "Options (1)…" and "fb_threshold=0.0001" in button.toolTip()
    assert win.tracker_panel.settings()["options"] == {"lk": {"fb_threshold": 0.0001}}

    run_and_wait(qtbot, win, win.propagate_here)  # from the keyframe (frame 0) again: the tracked frames redone
    held, shown = _tracked_points(win, point)
    # (a step of a clean synthetic translation may come back within 0.0001 px once; the next ones do not)
    assert shown[1:].sum() <= 1 and held[-1, 0] < moved[-1, 0] - 20


def test_the_dialog_refuses_a_value_the_tracker_does_not_take_and_resets(qtbot):
    dialog = tracker_options.TrackerOptionsDialog("sam2-lite", {"min_side": 640})
    qtbot.addWidget(dialog)
    assert dialog.fields["min_side"].value() == 640 and dialog.values() == {"min_side": 640}
    dialog.fields["min_side"].setValue(-5)  # the config's own check: min_side >= 0
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.result() != dialog.DialogCode.Accepted and "min_side" in dialog.problem.text()
    qtbot.mouseClick(dialog.reset_button, Qt.MouseButton.LeftButton)
    assert dialog.values() == {}


def test_options_come_back_with_the_settings_and_foreign_ones_are_dropped(qtbot, window):  # noqa: F811
    panel = window.tracker_panel
    panel.apply_settings({"options": {"sam2-lite": {"min_side": 640}, "lk": {"window": "wide"},
                                      "no-such-tracker": {"x": 1}, "dis-flow": {"nosuch": 2}}})
    assert panel.options == {"sam2-lite": {"min_side": 640}}
    assert panel.set_tracker("mask", "sam2-lite")
    assert panel.option_buttons["mask"].text() == "Options (1)…"
    assert panel.choices()["mask"].config() == {"min_side": 640}


def test_the_pool_lets_go_of_a_tracker_whose_options_changed():
    from trackstudio.app.ui.workers import TrackerChoice, TrackerPool

    pool = TrackerPool()
    default = pool.get(TrackerChoice("lk", "cpu"))
    tight = pool.get(TrackerChoice("lk", "cpu", options=(("window", 9),)))
    assert tight is not default and tight.config.window == 9 and default.config.window == 21
    assert pool.get(TrackerChoice("lk", "cpu", options=(("window", 9),))) is tight  # kept while asked for
    assert pool.get(TrackerChoice("lk", "cpu")) is not default  # built again: the first was let go
