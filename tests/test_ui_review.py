"""The review queue and the timeline driven like a user: '.' / ',' walk the doubtful frames, R marks
frames reviewed (saved, exported), the timeline scrolls 50 objects, filters them, shares one frame
axis between slider, score plot and strips, and a click on the plot or a strip goes to that frame."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from trackstudio.app.model import FrameState, Project  # noqa: E402
from trackstudio.app.model import reviewed as rv  # noqa: E402
from test_ui_flows import NOT_A_DOUBLE_CLICK_MS, clip, open_clip, window  # noqa: E402,F401
from test_ui_objects_features import menu_action  # noqa: E402


def tracked_box(store, scores):
    obj = store.add_object("box")
    store.set_state(obj.obj_id, 0, FrameState(box=[30, 40, 54, 64], keyframe=True))
    with store.macro("Track"):
        for f, score in enumerate(scores[1:], 1):
            store.apply_tracked(obj.obj_id, f, FrameState(box=[30 + 2 * f, 40, 54 + 2 * f, 64], score=score))
    return obj.obj_id


def test_walk_doubtful_frames_mark_reviewed_save_and_export(qtbot, window, clip, tmp_path):
    win = window
    open_clip(win, clip)
    store = win.session.store
    scores = [0.9] * 16
    scores[6], scores[11] = 0.2, 0.1
    a = tracked_box(store, scores)
    win.session.select(a)
    win.canvas.setFocus()
    qtbot.keyClick(win.canvas, Qt.Key.Key_Period)
    assert win.session.frame_idx == 6 and "low score 0.20" in win.last_message
    qtbot.keyClick(win.canvas, Qt.Key.Key_R)  # frames 0..6 reviewed
    assert rv.reviewed(store) == {a: ((0, 6),)}
    qtbot.keyClick(win.canvas, Qt.Key.Key_Period)
    assert win.session.frame_idx == 11
    qtbot.keyClick(win.canvas, Qt.Key.Key_Comma)  # frame 6 is reviewed now: nothing before
    assert win.session.frame_idx == 11 and "No unreviewed doubtful frame before" in win.last_message
    qtbot.keyClick(win.canvas, Qt.Key.Key_R)  # 7..11
    assert rv.reviewed(store) == {a: ((0, 11),)}
    doubts = win.timeline.strips.doubt_frames(a)
    assert not doubts.any()  # both doubtful frames are reviewed now
    qtbot.keyClick(win.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert rv.reviewed(store) == {a: ((0, 6),)} and win.timeline.strips.doubt_frames(a)[11]

    assert win.save_project(tmp_path / "r.tsproj")
    assert rv.reviewed(Project.load(tmp_path / "r.tsproj").store) == {a: ((0, 6),)}
    assert win.export_to("json", tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["reviewed"] == {str(a): [[0, 6]]}

    menu_action(win, "Navigate", "Unmark reviewed").trigger()
    assert rv.reviewed(store) == {}

    # Shift+drag along the strip marks just that range
    strips = win.timeline.strips
    qtbot.wait(150)
    y = strips.rows.index(a) * 14 + 7

    def x(frame_idx):  # the strip's x of a frame (the cursor moves with the drag)
        return QPoint(int(strips.cursor_x() + (frame_idx - win.session.frame_idx) * win.timeline.axis.step), y)

    qtbot.mousePress(strips, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, x(9),
                     delay=NOT_A_DOUBLE_CLICK_MS)
    qtbot.mouseMove(strips, x(11))
    qtbot.mouseMove(strips, x(13))
    qtbot.mouseRelease(strips, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, x(13))
    assert rv.reviewed(store) == {a: ((9, 13),)} and "Frames 9-13" in win.last_message


def test_review_all_objects_selects_the_doubtful_one(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    a = tracked_box(store, [0.9] * 16)
    b = tracked_box(store, [0.9] * 9 + [0.05] + [0.9] * 6)
    win.session.select(a)
    menu_action(win, "Navigate", "Next doubtful").trigger()
    assert win.session.frame_idx == 0 and "No unreviewed" in win.last_message  # a alone has none
    menu_action(win, "Navigate", "Review all").trigger()
    menu_action(win, "Navigate", "Next doubtful").trigger()
    assert win.session.frame_idx == 9 and win.session.selected == b


def test_timeline_fifty_objects_scroll_filter_axis_and_clicks(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    ids = [store.add_object("point").obj_id for _ in range(50)]
    for obj_id in ids:
        store.set_state(obj_id, 0, FrameState(point=[10, 10], keyframe=True))
    timeline = win.timeline
    qtbot.wait(50)
    assert len(timeline.strips.rows) == 50
    bar = timeline.scroll.verticalScrollBar()
    assert bar.maximum() > 0  # 50 rows do not fit: the strips scroll
    win.session.select(ids[-1])
    qtbot.wait(10)
    assert bar.value() > 0  # scrolled to the selected object's row

    qtbot.keyClicks(timeline.filter_edit, "point 4")  # point 4, point 40..49
    assert len(timeline.strips.rows) == 11
    timeline.filter_edit.clear()
    qtbot.mouseClick(timeline.selected_only, Qt.MouseButton.LeftButton)
    assert timeline.strips.rows == [ids[-1]]
    qtbot.mouseClick(timeline.selected_only, Qt.MouseButton.LeftButton)
    assert len(timeline.strips.rows) == 50

    # one frame axis: slider handle, plot cursor and strip cursor at the same x
    for frame_idx in (0, 7, 15):
        win.session.set_frame(frame_idx)
        qtbot.wait(10)
        handle = timeline.handle_x(frame_idx)
        strip = timeline.strips.mapTo(timeline, QPoint(0, 0)).x() + timeline.strips.cursor_x()
        viewport = timeline.score_plot.viewport()
        plot = viewport.mapTo(timeline, QPoint(0, 0)).x() + timeline.score_plot.frame_x(frame_idx)
        assert abs(handle - strip) <= 1 and abs(handle - plot) <= 1, (frame_idx, handle, strip, plot)

    # clicks go to the frame under the mouse: the slider's groove, the plot, a strip
    slider_x = int(timeline.handle_x(9) - timeline.slider.mapTo(timeline, QPoint(0, 0)).x())
    qtbot.mouseClick(timeline.slider, Qt.MouseButton.LeftButton, pos=QPoint(slider_x, timeline.slider.height() // 2),
                     delay=NOT_A_DOUBLE_CLICK_MS)
    assert win.session.frame_idx == 9
    plot = timeline.score_plot
    x = int(plot.frame_x(12))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, plot.height() // 3),
                     delay=NOT_A_DOUBLE_CLICK_MS)
    assert win.session.frame_idx == 12
    strips = timeline.strips
    x = int(strips.cursor_x() + (4 - 12) * timeline.axis.step)
    qtbot.mouseClick(strips, Qt.MouseButton.LeftButton, pos=QPoint(x, 3 * 14 + 5), delay=NOT_A_DOUBLE_CLICK_MS)
    assert win.session.frame_idx == 4 and win.session.selected == strips.rows[3]


def test_no_review_or_label_edits_slip_into_a_running_track(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    a = tracked_box(store, [0.9] * 16)
    win.session.select(a)
    win.session.set_editing_enabled(False)  # what a run does while it writes
    qtbot.keyClick(win.canvas, Qt.Key.Key_R)
    assert rv.reviewed(store) == {} and "Tracking is running" in win.last_message
    win.session.set_editing_enabled(True)
    qtbot.keyClick(win.canvas, Qt.Key.Key_R)
    assert rv.reviewed(store) == {a: ((0, 0),)}
