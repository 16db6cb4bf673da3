"""What a new user hit in the window (issue 16), each driven through menus, keys or the mouse.

Helpers and fixtures come from test_ui_flows (a real MainWindow, offscreen, classical trackers).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from test_ui_flows import NUM_FRAMES, RUN_TIMEOUT_MS, click, clip, drag, open_clip, window  # noqa: E402,F401

from trackstudio.app.model import FrameState  # noqa: E402
from trackstudio.app.ui.main import MainWindow, recovery_dir  # noqa: E402

CTRL = Qt.KeyboardModifier.ControlModifier


def menu_action(win, menu: str, text: str):
    """The action whose text starts with `text` in menu `menu` of the window's menu bar."""
    for top in win.menuBar().actions():
        if top.text().replace("&", "") == menu:
            for action in top.menu().actions():
                if action.text().replace("&", "").startswith(text):
                    return action
    raise AssertionError(f"no {menu} > {text}… in the menu bar")


class SlowTracker:
    """A real tracker whose walk takes `seconds` per frame (room to act during a run); records the frames."""

    def __init__(self, tracker, seconds: float, walked: list):
        self._tracker, self._seconds, self.walked = tracker, seconds, walked

    def __getattr__(self, name):
        return getattr(self._tracker, name)

    def propagate(self, *args, **kwargs):
        for result in self._tracker.propagate(*args, **kwargs):
            time.sleep(self._seconds)
            self.walked.append((self._tracker.kind, result.frame_idx))
            yield result


def slow_down(win, monkeypatch, seconds=0.08) -> list:
    walked: list = []
    get = win.tracking.pool.get
    monkeypatch.setattr(win.tracking.pool, "get", lambda choice: SlowTracker(get(choice), seconds, walked))
    return walked


def key(qtbot, win, k, modifier=Qt.KeyboardModifier.NoModifier):
    win.canvas.setFocus()
    qtbot.keyClick(win, k, modifier)


def box_and_point(win):
    store = win.session.store
    box = store.add_object("box").obj_id
    store.set_state(box, 0, FrameState(box=(30, 40, 54, 64), keyframe=True))
    point = store.add_object("point").obj_id
    store.set_state(point, 0, FrameState(point=(41, 51), keyframe=True))
    return box, point


def point_grid_in_a_box(win) -> list[int]:
    """A box keyframed on frame 0 and selected, then Objects > Add point grid: the grid's object ids."""
    store = win.session.store
    box = store.add_object("box").obj_id
    store.set_state(box, 0, FrameState(box=(30, 40, 54, 64), keyframe=True))
    win.session.select(box)
    menu_action(win, "Objects", "Add point grid").trigger()
    return [o.obj_id for o in store.objects if o.kind == "point"]


# 1 ------------------------------------------------------------------------------------------------
def test_add_point_grid_from_the_menu_and_ctrl_g(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    points = point_grid_in_a_box(win)
    assert len(points) == 16, win.last_error
    xy = np.array([store.get_state(p, 0).point for p in points])
    assert (xy[:, 0] >= 30).all() and (xy[:, 0] < 54).all() and (xy[:, 1] >= 40).all() and (xy[:, 1] < 64).all()
    key(qtbot, win, Qt.Key.Key_G, CTRL)
    assert len(store.objects) == 1 + 32
    win.undo()
    assert len(store.objects) == 1 + 16  # one grid, one undo step


# 2 ------------------------------------------------------------------------------------------------
def test_propagate_from_here_starts_only_objects_keyframed_here(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    box, point = box_and_point(win)
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS):
        key(qtbot, win, Qt.Key.Key_T, CTRL)
    lost = FrameState(point=(60, 50), visible=False, score=0.2)
    with store.macro("the tracker lost the point at frame 8"):
        store.apply_tracked(point, 8, lost)
    point_states = store.states(point)
    win.session.set_frame(8)
    win.canvas.refresh_now()
    win.session.select(box)
    win.set_tool("box")
    x1, y1, x2, y2 = store.get_state(box, 8).box
    drag(qtbot, win, ((x1 + x2) / 2, (y1 + y2) / 2), ((x1 + x2) / 2 + 3, (y1 + y2) / 2))  # the user nudges the box
    assert store.keyframes(box) == [0, 8]
    win.tracker_panel.direction.setCurrentText("forward")
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        key(qtbot, win, Qt.Key.Key_R, CTRL)
    assert not blocker.args[1]
    assert store.states(point) == point_states  # the lost point stays lost: its tracked state anchors nothing
    assert store.get_state(point, 8).score == pytest.approx(0.2) and not store.get_state(point, 8).visible
    assert store.get_state(box, 9).box[0] > 46  # the corrected box was propagated


def test_propagate_from_here_without_a_keyframe_says_so(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    box, _point = box_and_point(win)
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS):
        key(qtbot, win, Qt.Key.Key_T, CTRL)
    before = {o.obj_id: win.session.store.states(o.obj_id) for o in win.session.store.objects}
    win.session.set_frame(5)
    key(qtbot, win, Qt.Key.Key_R, CTRL)
    assert not win.tracking.running and "keyframe" in win.last_message
    assert {o.obj_id: win.session.store.states(o.obj_id) for o in win.session.store.objects} == before


# 3 ------------------------------------------------------------------------------------------------
def test_moving_during_a_followed_run_is_not_undone_by_following(qtbot, window, clip, monkeypatch):
    win = window
    open_clip(win, clip)
    box_and_point(win)
    slow_down(win, monkeypatch)
    win.tracker_panel.follow.click()  # the user ticks Follow (the test window starts without it)
    assert win.tracking.follow
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS):
        key(qtbot, win, Qt.Key.Key_T, CTRL)
        qtbot.waitUntil(lambda: win.session.frame_idx >= 4, timeout=RUN_TIMEOUT_MS)  # it follows
        key(qtbot, win, Qt.Key.Key_Left)
        stopped_at = win.session.frame_idx
        assert win.tracking.running and "Following paused" in win.last_message
    assert win.session.frame_idx == stopped_at < NUM_FRAMES - 1


# 4 ------------------------------------------------------------------------------------------------
def test_kinds_stream_together_and_ctrl_t_resumes_after_a_cancel(qtbot, window, clip, monkeypatch):
    win = window
    open_clip(win, clip)
    store = win.session.store
    box, point = box_and_point(win)
    walked = slow_down(win, monkeypatch)
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        key(qtbot, win, Qt.Key.Key_T, CTRL)
        qtbot.waitUntil(lambda: len(store.frames(box)) >= 5 or len(store.frames(point)) >= 5, timeout=RUN_TIMEOUT_MS)
        assert len(store.frames(box)) >= 3 and len(store.frames(point)) >= 3  # both kinds arrive side by side
        assert win.progress.maximum() == NUM_FRAMES  # frames, not frames x trackers
        key(qtbot, win, Qt.Key.Key_Escape)
    assert blocker.args[0]  # cancelled
    kept = {box: store.frames(box), point: store.frames(point)}
    assert all(len(frames) < NUM_FRAMES for frames in kept.values())
    walked.clear()
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        key(qtbot, win, Qt.Key.Key_T, CTRL)
    assert not blocker.args[0] and not blocker.args[1]
    for obj_id, kind in ((box, "box"), (point, "point")):
        assert store.frames(obj_id) == list(range(NUM_FRAMES))
        again = {f for k, f in walked if k == kind}
        assert again == set(range(kept[obj_id][-1], NUM_FRAMES))  # from where it stopped, nothing before
    key(qtbot, win, Qt.Key.Key_T, CTRL)  # everything tracked: nothing to do, and it says so
    assert not win.tracking.running and "Nothing to track" in win.last_message


# 5 ------------------------------------------------------------------------------------------------
def test_an_object_added_during_a_run_survives_undoing_the_run_and_delete_says_why(qtbot, window, clip,
                                                                                    monkeypatch):
    win = window
    open_clip(win, clip)
    store = win.session.store
    box, _point = box_and_point(win)
    slow_down(win, monkeypatch)
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS):
        key(qtbot, win, Qt.Key.Key_T, CTRL)
        qtbot.waitUntil(lambda: len(store.frames(box)) >= 2, timeout=RUN_TIMEOUT_MS)
        key(qtbot, win, Qt.Key.Key_M, CTRL)  # Objects > Add mask object, during the run
        added = win.session.selected
        assert store.get_object(added).kind == "mask"
        assert not win.objects_panel.delete_button.isEnabled()  # greyed while the run writes
        key(qtbot, win, Qt.Key.Key_Delete)
        assert added in store and "Tracking is running" in win.last_message
    assert win.objects_panel.delete_button.isEnabled()
    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # undoes the run ...
    assert store.frames(box) == [0] and added in store  # ... and only the run
    key(qtbot, win, Qt.Key.Key_Z, CTRL)
    assert added not in store
    win.session.select(box)
    key(qtbot, win, Qt.Key.Key_Delete)
    assert box not in store


# 6 ------------------------------------------------------------------------------------------------
def test_recovery_files_go_with_discard_and_no(qtbot, window, clip, tmp_path):
    win = window
    assert "TrackStudio/TrackStudio" not in recovery_dir().as_posix()
    open_clip(win, clip)
    win.set_tool("point")
    click(qtbot, win, 20.5, 20.5)
    recovery = win.autosave()  # the autosave timer's tick
    assert recovery is not None and recovery.exists() and recovery.parent == recovery_dir()

    # a second window finds it; "No" deletes it, so the next open does not ask again
    other = MainWindow(QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    asked = []
    other.ask = lambda title, _text: asked.append(title) or False
    try:
        assert other.open_path(clip)
        assert asked == ["Recover unsaved work"] and not recovery.exists()
        assert other.open_path(clip) and asked == ["Recover unsaved work"]
    finally:
        other.shutdown()

    # closing with Discard (File > Quit) deletes it too
    click(qtbot, win, 60.5, 60.5)
    assert win.autosave() == recovery and recovery.exists()
    win.ask_save = lambda: "discard"
    menu_action(win, "File", "Quit").trigger()
    assert not win.isVisible() and not recovery.exists()


def test_discarding_a_saved_projects_changes_drops_its_autosave(qtbot, window, clip, tmp_path):
    win = window
    open_clip(win, clip)
    project_path = tmp_path / "p.tsproj"
    assert win.save_project(project_path)
    win.set_tool("point")
    click(qtbot, win, 20.5, 20.5)
    autosave = win.autosave()
    assert autosave is not None and autosave.exists()
    win.ask_save = lambda: "discard"
    menu_action(win, "File", "Quit").trigger()
    assert not autosave.exists()


# 9 ------------------------------------------------------------------------------------------------
def test_point_tool_click_adds_drag_moves_ctrl_click_places_the_selected(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    key(qtbot, win, Qt.Key.Key_P)  # Point tool
    assert win.canvas.tools.tool == "point" and "click adds a point" in win.last_message
    click(qtbot, win, 20.5, 20.5)
    click(qtbot, win, 100.5, 30.5)
    first, second = [o.obj_id for o in store.objects]
    np.testing.assert_allclose(store.get_state(first, 0).point, [20, 20], atol=1.0)
    np.testing.assert_allclose(store.get_state(second, 0).point, [100, 30], atol=1.0)
    click(qtbot, win, 20.5, 20.5)  # on a point: selects it, adds nothing
    assert win.session.selected == first and len(store.objects) == 2
    drag(qtbot, win, (20.5, 20.5), (30.5, 25.5))
    np.testing.assert_allclose(store.get_state(first, 0).point, [30, 25], atol=1.0)
    win.session.set_frame(5)
    click(qtbot, win, 60.5, 70.5, modifier=CTRL)  # the selected point, here on frame 5
    assert len(store.objects) == 2 and store.get_state(first, 5).keyframe
    np.testing.assert_allclose(store.get_state(first, 5).point, [60, 70], atol=1.0)
    key(qtbot, win, Qt.Key.Key_Z, CTRL)
    assert store.get_state(first, 5) is None
    key(qtbot, win, Qt.Key.Key_Z, CTRL)
    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # adding a point (object + its position) is one undo step
    assert [o.obj_id for o in store.objects] == [first]


# 10 -----------------------------------------------------------------------------------------------
def test_missing_weights_are_marked_and_offered_before_anything_tries_the_network(qtbot, window, clip, tmp_path,
                                                                                   monkeypatch):
    from trackstudio.app.ui.errors import describe
    from trackstudio.app.ui.models_dialog import ModelsDialog
    from trackstudio.trackers.checkpoints import CheckpointError

    monkeypatch.setenv("TRACKSTUDIO_CACHE", str(tmp_path / "empty-cache"))
    win = window
    open_clip(win, clip)
    panel = win.tracker_panel
    combo = panel.tracker_boxes["mask"]
    assert not panel.weights_notice.isVisible()  # dis-flow needs no weights
    combo.setCurrentIndex(combo.findData("sam2.1-hiera-tiny"))  # the user picks it in the Tracker panel
    assert "no weights" in combo.currentText()
    assert "no weights" not in combo.itemText(combo.findData("dis-flow"))
    assert panel.weights_notice.isVisible() and "sam2.1_hiera_tiny.pt" in panel.weights_label.text()

    asked, sent = [], []
    win.ensure_weights = lambda tracker: asked.append(tracker) or False  # the user says "not now"
    monkeypatch.setattr(win.prompts.worker, "submit", sent.append)
    monkeypatch.setattr(win.prompts.worker, "prepare", sent.append)
    key(qtbot, win, Qt.Key.Key_C)  # click-to-mask tool: no background encoding without weights
    qtbot.wait(400)
    click(qtbot, win, 42, 52)
    assert asked == ["sam2.1-hiera-tiny"] and sent == []
    assert "Track > Models" in win.last_message and "--checkpoint" not in win.last_message

    qtbot.mouseClick(panel.weights_button, Qt.MouseButton.LeftButton)  # the notice's button opens Models
    dialog = win.findChild(ModelsDialog)
    assert dialog is not None and dialog.isVisible() and dialog.selected_row().tracker == "sam2.1-hiera-tiny"
    dialog.close()

    text = describe(CheckpointError("checkpoint x.pt not found. Download it on a machine with internet access and "
                                    "put it at /c/x.pt, or pass --checkpoint /path/to/file"))
    assert "--checkpoint" not in text and "Track > Models" in text


# 8 ------------------------------------------------------------------------------------------------
def test_attention_is_computed_for_the_shown_frame_drawn_over_the_mask_and_cleared_on_undo(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    mask = np.zeros((120, 160), bool)
    mask[40:64, 30:54] = True
    obj = store.add_object("mask").obj_id
    store.set_state(obj, 0, FrameState(mask=mask, keyframe=True))
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS):
        key(qtbot, win, Qt.Key.Key_T, CTRL)  # tracked with the overlay off: no maps kept
    assert win.session.attention.get(obj, 5) is None
    menu_action(win, "View", "Attention heatmap").trigger()
    key(qtbot, win, Qt.Key.Key_1)  # select the object
    for _ in range(5):
        key(qtbot, win, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: win.canvas.attention_item.isVisible(), timeout=RUN_TIMEOUT_MS)  # computed on demand
    assert win.session.frame_idx == 5 and win.session.attention.get(obj, 5) is not None
    assert win.canvas.attention_item.zValue() > win.canvas.mask_item.zValue()  # above the fill, not under it
    assert win.canvas.attention_legend.isVisible()
    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # undo the run: its frames and their maps go
    win.canvas.refresh_now()
    assert store.get_state(obj, 5) is None and win.session.attention.get(obj, 5) is None
    assert not win.canvas.attention_item.isVisible() and not win.canvas.attention_legend.isVisible()


def test_point_attention_is_a_heat_map_not_one_hot_cell():
    from trackstudio.app.ui.overlays import attention_display

    cells = np.full((60, 100), 1e-4, np.float32)  # a softmax over the frame: one peak, runner-ups far below
    cells[30, 50] = 1.0
    cells[28:33, 47:54] = np.maximum(cells[28:33, 47:54], 0.1)
    cells[10, 80] = 0.2  # a second, weaker match elsewhere
    shown = attention_display(cells, "point", (480, 800))
    assert shown.shape == (307, 512)  # smooth, at most 512 px on the long side
    assert (shown > 0.3).mean() > 10 * (cells > 0.3).mean()  # the spread around the peak is visible
    runner_up = (slice(45, 62), slice(400, 425))  # cell (10, 80) at 5.12 px per cell
    assert shown[runner_up].max() > 0.4  # and so is the weaker match elsewhere
    as_is = attention_display(cells, "mask", (480, 800))
    assert as_is[runner_up].max() < 0.25  # other kinds are drawn as they are (no log scale)


# 11 -----------------------------------------------------------------------------------------------
@pytest.fixture
def frames_folder(tmp_path):
    """A DAVIS-style `<clip>/frames` folder of 4 images whose third has another size."""
    import cv2

    folder = tmp_path / "walk" / "frames"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        size = (90, 100) if i == 2 else (120, 160)
        cv2.imwrite(str(folder / f"{i:05d}.png"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return folder


def test_a_frame_that_cannot_be_shown_is_blank_and_not_annotated(qtbot, window, frames_folder):
    from trackstudio.app.ui.canvas import UNREADABLE_RGBA

    win = window
    open_clip(win, frames_folder)
    key(qtbot, win, Qt.Key.Key_Right)
    key(qtbot, win, Qt.Key.Key_Right)
    win.canvas.refresh_now()
    assert win.session.frame_idx == 2 and win.timeline.spin.value() == 2
    shown = win.canvas.frame_item.image
    assert shown.shape[:2] == (120, 160) and (shown == UNREADABLE_RGBA).all()  # not frame 1's picture
    assert "Frame 2 cannot be shown" in win.last_message and win.canvas.problem_text.isVisible()
    key(qtbot, win, Qt.Key.Key_P)
    click(qtbot, win, 50.5, 50.5)
    assert win.session.store.objects == [] and "not annotating" in win.last_message
    key(qtbot, win, Qt.Key.Key_Right)
    win.canvas.refresh_now()
    assert not win.canvas.frame_problem and not win.canvas.problem_text.isVisible()
    click(qtbot, win, 50.5, 50.5)
    assert len(win.session.store.objects) == 1


def test_title_names_the_clip_and_marks_only_real_changes(qtbot, window, frames_folder):
    win = window
    open_clip(win, frames_folder)
    assert win.windowTitle() == "walk/frames — TrackStudio"  # not "frames *"
    key(qtbot, win, Qt.Key.Key_Right)
    key(qtbot, win, Qt.Key.Key_Right)
    key(qtbot, win, Qt.Key.Key_Right)  # frame 3 (readable)
    key(qtbot, win, Qt.Key.Key_P)
    click(qtbot, win, 50.5, 50.5)
    assert win.windowTitle() == "walk/frames * — TrackStudio"


def test_the_window_shrinks_and_its_panels_recover_when_it_grows(qtbot, window, clip):
    from PySide6.QtWidgets import QDockWidget

    win = window
    open_clip(win, clip)
    minimum = win.minimumSizeHint()
    assert minimum.width() <= 520 and minimum.height() <= 480, minimum
    win.resize(400, 300)
    qtbot.wait(50)
    win.resize(1200, 800)
    docks = {d.objectName(): d for d in win.findChildren(QDockWidget)}
    tracker = docks["dock_tracker"]
    qtbot.waitUntil(lambda: tracker.width() >= win.tracker_panel.sizeHint().width())
    bottom = [d for d in docks.values() if win.dockWidgetArea(d) == Qt.DockWidgetArea.BottomDockWidgetArea]
    assert all(d.height() >= 0.2 * 800 for d in bottom)
    assert tracker.height() >= win.tracker_panel.sizeHint().height()  # its buttons are not scrolled away


def test_export_and_models_dialogs_show_their_contents(qtbot, window, clip):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from trackstudio.app.ui.dialogs import ExportDialog
    from trackstudio.app.ui.models_dialog import ModelsDialog

    win = window
    open_clip(win, clip)
    seen = {}

    def inspect_export():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ExportDialog)
        path = dialog.path
        seen["path_fits"] = path.fontMetrics().horizontalAdvance(path.text()) < path.width()
        note = next(w for w in dialog.findChildren(type(win.status_label)) if w.wordWrap())
        seen["note_fits"] = note.height() >= note.heightForWidth(note.width())
        dialog.reject()

    QTimer.singleShot(200, inspect_export)
    key(qtbot, win, Qt.Key.Key_E, CTRL)  # File > Export (modal)
    assert seen == {"path_fits": True, "note_fits": True}

    menu_action(win, "Track", "Models").trigger()
    dialog = win.findChild(ModelsDialog)
    qtbot.waitExposed(dialog)
    table, header = dialog.table, dialog.table.horizontalHeader()
    screen = dialog.screen().availableGeometry()
    columns = sum(header.sectionSize(c) for c in range(table.columnCount() - 1))  # all but Source (elided)
    rows = table.verticalHeader().length() + header.height()
    if columns + 320 <= 0.95 * screen.width():  # the screen has room: every column in view
        assert table.horizontalScrollBar().maximum() == 0
    if rows + 130 <= 0.85 * screen.height():  # and every row
        assert table.verticalScrollBar().maximum() == 0
    assert dialog.width() >= min(columns + 300, 0.95 * screen.width() - 1)
    assert dialog.height() >= min(rows + 100, 0.85 * screen.height() - 1)
    dialog.close()
