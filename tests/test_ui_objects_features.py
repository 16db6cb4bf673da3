"""Objects panel features driven like a user: Ctrl+click two objects, Objects menu identity fixes,
the right-click menu's per-object tracker (interpolation) used by a real run."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QContextMenuEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from trackstudio.app.model import FrameState, Project  # noqa: E402
from test_ui_flows import NOT_A_DOUBLE_CLICK_MS, RUN_TIMEOUT_MS, clip, open_clip, window  # noqa: E402,F401


def menu_action(win, menu_title: str, text: str):
    """The QAction under menu `menu_title` of the menu bar whose text starts with `text`."""
    for top in win.menuBar().actions():
        if top.text().replace("&", "") == menu_title:
            for action in top.menu().actions():
                if action.text().replace("&", "").startswith(text):
                    return action
    raise AssertionError(f"no {menu_title} > {text}")


def tree_click(qtbot, win, obj_id, modifier=Qt.KeyboardModifier.NoModifier, button=Qt.MouseButton.LeftButton):
    tree = win.objects_panel.tree
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if int(item.data(1, Qt.ItemDataRole.UserRole)) == obj_id:
            pos = tree.visualItemRect(item).center()
            pos.setX(tree.columnViewportPosition(1) + 10)
            qtbot.mouseClick(tree.viewport(), button, modifier, pos, delay=NOT_A_DOUBLE_CLICK_MS)
            return item
    raise AssertionError(f"object {obj_id} not in the panel")


def boxes(store, frames, x0):
    obj = store.add_object("box")
    for f in frames:
        store.set_state(obj.obj_id, f, FrameState(box=[x0 + f, 40, x0 + f + 24, 64], keyframe=True))
    return obj.obj_id


def test_merge_split_swap_from_the_objects_menu_and_undo(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    a, b = boxes(store, range(0, 6), 30), boxes(store, range(6, 12), 30)
    qtbot.wait(10)  # the panel rebuilds on the next event-loop turn
    tree_click(qtbot, win, a)
    tree_click(qtbot, win, b, Qt.KeyboardModifier.ControlModifier)
    assert win.objects_panel.selected_ids() == [a, b] and win.session.selected == b
    menu_action(win, "Objects", "Merge").trigger()
    assert a not in store and store.frames(b) == list(range(12)), win.last_message
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.frames(a) == list(range(6)) and store.frames(b) == list(range(6, 12))

    qtbot.wait(10)
    tree_click(qtbot, win, a)
    win.session.set_frame(3)
    menu_action(win, "Objects", "Split").trigger()
    new = store.objects[-1].obj_id
    assert store.frames(a) == [0, 1, 2] and store.frames(new) == [3, 4, 5]
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert new not in store and store.frames(a) == list(range(6))

    qtbot.wait(10)
    tree_click(qtbot, win, a)
    tree_click(qtbot, win, b, Qt.KeyboardModifier.ControlModifier)
    win.session.set_frame(4)
    menu_action(win, "Objects", "Swap").trigger()
    assert store.frames(a) == [0, 1, 2, 3] + list(range(6, 12)) and store.frames(b) == [4, 5]

    tree_click(qtbot, win, a)  # one object only: merge explains what to do
    menu_action(win, "Objects", "Merge").trigger()
    assert "select exactly two" in win.last_message


def test_object_tracker_from_the_context_menu_interpolates_and_is_saved(qtbot, window, clip, tmp_path):
    win = window
    open_clip(win, clip)
    store = win.session.store
    a = store.add_object("box").obj_id
    store.set_state(a, 2, FrameState(box=[30, 40, 54, 64], keyframe=True))
    store.set_state(a, 10, FrameState(box=[50, 40, 74, 64], keyframe=True))
    other = boxes(store, [0], 30)  # keeps the panel's tracker (csrt)
    qtbot.wait(10)
    item = tree_click(qtbot, win, a)
    tree = win.objects_panel.tree
    pos = tree.visualItemRect(item).center()  # the right click's context-menu event (QTest sends no such event)
    QApplication.sendEvent(tree.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos,
                                                              tree.viewport().mapToGlobal(pos)))
    menu = win.objects_panel.context_menu
    assert menu is not None and menu.isVisible()
    tracker_menu = next(act.menu() for act in menu.actions() if act.menu() is not None)
    next(act for act in tracker_menu.actions() if act.text() == "interpolate-box").trigger()
    qtbot.wait(10)
    item = tree_click(qtbot, win, a)
    assert item.text(4) == "interpolate-box"

    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        menu_action(win, "Track", "Track whole").trigger()
    cancelled, error, _written = blocker.args
    assert not error and not cancelled
    assert store.frames(a) == list(range(2, 11))  # interpolation: only between its keyframes
    np.testing.assert_allclose(store.get_state(a, 6).box, [40, 40, 64, 64], atol=1e-4)
    assert len(store.frames(other)) == 16  # csrt went through the whole clip
    assert win.save_project(tmp_path / "p.tsproj")
    assert Project.load(tmp_path / "p.tsproj").settings["object_trackers"] == {str(a): "interpolate-box"}
    # a deleted object's choice is not saved (a later object could get its id)
    store.remove_object(a)
    assert win.save_project(tmp_path / "p.tsproj")
    assert "object_trackers" not in Project.load(tmp_path / "p.tsproj").settings
