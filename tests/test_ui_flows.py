"""The annotation window driven like a user would: real widgets, offscreen, classical trackers.

Flows: open a clip, draw a box with the mouse, propagate in the worker thread, cancel midway,
correct a frame and re-propagate, undo/redo, brush / fill / points / click-to-mask, export,
save and reopen the project, autosave recovery, error dialogs.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, QSettings, Qt  # noqa: E402

from trackstudio.app.model import Autosaver, FrameState, Project  # noqa: E402
from trackstudio.app.model.formats import load_json, save_json  # noqa: E402
from trackstudio.app.ui.main import MainWindow  # noqa: E402
from trackstudio.app.video import write_video  # noqa: E402

NUM_FRAMES, WIDTH, HEIGHT = 16, 160, 120
RUN_TIMEOUT_MS = 60_000
# QTest turns a press soon after the last one (on its own clock, wherever it is) into a double
# click; a delay before each press keeps separate strokes separate
NOT_A_DOUBLE_CLICK_MS = 450  # Qt's default double-click interval is 400 ms
MOVE_INTERVAL_MS = 15  # pyqtgraph drops mouse moves closer than 10 ms apart (its mouseRateLimit)


def square_clip(path, num_frames=NUM_FRAMES):
    """A textured background with a bright 24x24 square moving 2 px right per frame."""
    rng = np.random.default_rng(0)
    background = rng.integers(40, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames = []
    for t in range(num_frames):
        frame = background.copy()
        x = 30 + 2 * t
        frame[40:64, x:x + 24] = (250, 220, 40)
        frame[46:58, x + 6:x + 18] = (200, 40, 40)
        frames.append(frame)
    write_video(frames, path)
    return path


@pytest.fixture
def clip(tmp_path):
    return square_clip(tmp_path / "square.mp4")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # recovery files stay in the test folder
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    win.ask = lambda *_args: True
    win.ask_save = lambda: "discard"
    qtbot.addWidget(win)
    for kind, name in (("box", "csrt"), ("mask", "dis-flow"), ("point", "lk")):
        assert win.tracker_panel.set_tracker(kind, name)
    win.tracker_panel.follow.setChecked(False)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.shutdown()


def widget_pos(win, x, y) -> QPoint:
    return win.canvas.image_to_widget(x, y).toPoint()


def drag(qtbot, win, start, end, button=Qt.MouseButton.LeftButton, steps=6):
    """A real press-move-release on the canvas between two image points."""
    viewport = win.canvas.viewport()
    a, b = widget_pos(win, *start), widget_pos(win, *end)
    qtbot.mousePress(viewport, button, pos=a, delay=NOT_A_DOUBLE_CLICK_MS)
    for i in range(1, steps + 1):
        qtbot.wait(MOVE_INTERVAL_MS)
        qtbot.mouseMove(viewport, a + (b - a) * (i / steps))
    qtbot.mouseRelease(viewport, button, pos=b)


def click(qtbot, win, x, y, button=Qt.MouseButton.LeftButton, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mouseClick(win.canvas.viewport(), button, modifier, widget_pos(win, x, y), delay=NOT_A_DOUBLE_CLICK_MS)


def run_and_wait(qtbot, win, start):
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert start()
    return blocker.args  # cancelled, error, written


def open_clip(win, clip):
    assert win.open_path(clip), win.last_error
    win.canvas.refresh_now()
    win.canvas.fit()


def test_draw_box_propagate_cancel_correct_undo(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    win.set_tool("box")
    drag(qtbot, win, (30, 40), (54, 64))
    store = win.session.store
    assert len(store.objects) == 1 and store.objects[0].kind == "box"
    obj_id = store.objects[0].obj_id
    state = store.get_state(obj_id, 0)
    assert state.keyframe
    np.testing.assert_allclose(state.box, [30, 40, 54, 64], atol=1.5)

    # whole video in the worker thread: a result on every frame, the keyframe untouched
    cancelled, error, written = run_and_wait(qtbot, win, win.propagate_all)
    assert not cancelled and not error and written == NUM_FRAMES - 1
    assert store.frames(obj_id) == list(range(NUM_FRAMES))
    assert store.keyframes(obj_id) == [0]
    last = store.get_state(obj_id, NUM_FRAMES - 1).box
    assert abs(last[0] - (30 + 2 * (NUM_FRAMES - 1))) < 4  # it followed the square

    # the whole run is one undo step
    win.undo()
    assert store.frames(obj_id) == [0]
    win.redo()
    assert store.frames(obj_id) == list(range(NUM_FRAMES))

    # cancel midway: what was done stays, the window keeps working
    win.undo()
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        with qtbot.waitSignal(win.tracking.progress, timeout=RUN_TIMEOUT_MS,
                              check_params_cb=lambda done, total, left: done >= 4):
            assert win.propagate_all()
        win.tracking.cancel()
    cancelled, error, written = blocker.args
    assert cancelled and not error
    kept = store.frames(obj_id)
    assert 3 <= written < NUM_FRAMES - 1 and len(kept) == written + 1
    assert kept == list(range(len(kept)))  # a contiguous run from the keyframe
    assert win.session.editing_enabled

    # correct frame 8 with the mouse: it becomes a keyframe; re-propagate from there, forward
    win.session.set_frame(8)
    win.canvas.refresh_now()
    drag(qtbot, win, (46, 40), (70, 64))
    assert store.keyframes(obj_id) == [0, 8]
    win.tracker_panel.direction.setCurrentText("forward")
    cancelled, error, written = run_and_wait(qtbot, win, win.propagate_here)
    assert not cancelled and not error
    assert store.frames(obj_id)[-1] == NUM_FRAMES - 1
    np.testing.assert_allclose(store.get_state(obj_id, 8).box, [46, 40, 70, 64], atol=1.5)  # never overwritten
    assert store.get_state(obj_id, 8).keyframe and store.get_state(obj_id, 9).keyframe is False
    win.undo()  # the re-propagation
    win.undo()  # the correction
    assert store.keyframes(obj_id) == [0]


def test_mask_tools_points_and_click_to_mask(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store

    win.set_tool("brush")
    win.canvas.tools.brush_radius = 3
    # an outline ring with the brush, then fill its inside
    for a, b in (((66, 60), (114, 60)), ((110, 56), (110, 104)), ((114, 100), (66, 100)), ((70, 104), (70, 56))):
        drag(qtbot, win, a, b)
    mask_obj = win.session.selected
    assert store.get_object(mask_obj).kind == "mask"
    painted = store.get_state(mask_obj, 0).mask.decode()
    assert painted[60, 90] and not painted[80, 90]
    win.set_tool("fill")
    click(qtbot, win, 90, 80)
    filled = store.get_state(mask_obj, 0).mask.decode()
    assert filled[80, 90] and filled.sum() > painted.sum()
    win.set_tool("eraser")
    win.canvas.tools.brush_radius = 6
    click(qtbot, win, 90, 80)
    assert not store.get_state(mask_obj, 0).mask.decode()[80, 90]
    win.undo()
    assert store.get_state(mask_obj, 0).mask.decode()[80, 90]

    # points: a click adds a point object, another click another one, dragging moves
    win.set_tool("point")
    click(qtbot, win, 20.5, 20.5)
    point_obj = win.session.selected
    np.testing.assert_allclose(store.get_state(point_obj, 0).point, [20, 20], atol=1.0)
    click(qtbot, win, 140.5, 20.5)
    assert win.session.selected != point_obj and len(store.objects) == 3
    drag(qtbot, win, (140.5, 20.5), (130.5, 30.5))
    np.testing.assert_allclose(store.get_state(win.session.selected, 0).point, [130, 30], atol=1.0)

    # click-to-mask on the square (prompt model runs in its worker thread)
    win.set_tool("click")
    win.objects_panel.add_object("mask")
    click_obj = win.session.selected
    with qtbot.waitSignal(win.mask_shown, timeout=RUN_TIMEOUT_MS):
        click(qtbot, win, 42, 52)
    state = store.get_state(click_obj, 0)
    assert state.keyframe and state.clicks.shape == (1, 3) and state.mask is not None
    mask = state.mask.decode()
    assert mask[52, 42] and mask.sum() < 0.3 * WIDTH * HEIGHT
    with qtbot.waitSignal(win.mask_shown, timeout=RUN_TIMEOUT_MS):  # refine: a negative click outside
        click(qtbot, win, 10, 100, button=Qt.MouseButton.RightButton)
    assert store.get_state(click_obj, 0).clicks.shape == (2, 3)
    assert store.get_state(click_obj, 0).clicks[1, 2] == 0

    # landing on a frame with the click tool on encodes it in the background, before any click
    prepared = []
    worker_tracker = win.prompts.worker._tracker
    worker_tracker.prepare_frame = prepared.append
    win.session.set_frame(6)
    # (a prepare of frame 0 queued when the tool was chosen may still be served after the clicks went first)
    qtbot.waitUntil(lambda: prepared[-1:] == [6], timeout=5_000)
    assert set(prepared) <= {0, 6}


def test_save_reopen_export_import(qtbot, window, clip, tmp_path):
    win = window
    open_clip(win, clip)
    store = win.session.store
    box = store.add_object("box", name="car", label="vehicle")
    store.set_state(box.obj_id, 0, FrameState(box=(30, 40, 54, 64), keyframe=True))
    pts = win.add_point_grid(2, 2)
    assert len(pts) == 4
    cancelled, error, _ = run_and_wait(qtbot, win, win.propagate_all)
    assert not cancelled and not error

    project_path = tmp_path / "work.tsproj"
    assert win.save_project(project_path)
    assert not win.session.project.dirty
    for fmt, name in (("json", "a.json"), ("npz", "a.npz"), ("png", "pngs")):
        assert win.export_to(fmt, tmp_path / name), win.last_error
    with np.load(tmp_path / "a.npz", allow_pickle=False) as arrays:
        assert arrays["boxes"].shape == (NUM_FRAMES, 1, 4)
        assert arrays["trajs_2d"].shape == (NUM_FRAMES, 4, 2)

    before = {o.obj_id: (o, store.states(o.obj_id)) for o in store.objects}
    other = MainWindow(QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    other.ask = lambda *_args: False
    try:
        assert other.open_path(project_path), other.last_error
        reopened = other.session.store
        assert {o.obj_id for o in reopened.objects} == set(before)
        for obj in reopened.objects:
            obj_before, states_before = before[obj.obj_id]
            assert obj == obj_before
            assert reopened.states(obj.obj_id) == states_before
        # import JSON replaces the annotations with the file's
        reopened.remove_object(box.obj_id)
        assert other.import_from(tmp_path / "a.json"), other.last_error
        assert len(other.session.store.objects) == len(before)
    finally:
        other.shutdown()
    loaded, _info = load_json(tmp_path / "a.json")
    assert loaded.get_object(box.obj_id).label == "vehicle"


def test_autosave_and_recovery(qtbot, window, clip, tmp_path):
    win = window
    open_clip(win, clip)
    project_path = tmp_path / "p.tsproj"
    assert win.save_project(project_path)
    obj = win.session.store.add_object("point")
    win.session.store.set_state(obj.obj_id, 3, FrameState(point=(5, 6), keyframe=True))
    autosave = win.autosave()
    assert autosave is not None and autosave == Autosaver.autosave_path(project_path)
    win.ask = lambda *_args: True  # "Recover autosave?" -> yes
    assert win.open_path(project_path)
    assert win.session.store.get_state(obj.obj_id, 3) is not None
    assert win.session.project.dirty  # recovered work is not saved yet
    assert Project.load(project_path).store.objects == []


def test_objects_panel_keys_and_navigation(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    ids = [win.objects_panel.add_object("point") for _ in range(11)]  # more than nine
    store.set_state(ids[2], 5, FrameState(point=(1, 1), keyframe=True))
    store.set_state(ids[2], 9, FrameState(point=(2, 2), keyframe=True))
    win.canvas.setFocus()
    qtbot.keyClick(win, Qt.Key.Key_3)
    assert win.session.selected == ids[2]
    qtbot.keyClick(win, Qt.Key.Key_PageDown)
    assert win.session.frame_idx == 5
    qtbot.keyClick(win, Qt.Key.Key_PageDown)
    assert win.session.frame_idx == 9
    qtbot.keyClick(win, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert win.session.frame_idx == NUM_FRAMES - 1
    qtbot.keyClick(win, Qt.Key.Key_Left)
    assert win.session.frame_idx == NUM_FRAMES - 2
    qtbot.keyClick(win, Qt.Key.Key_N)  # next frame without an annotation (wraps to 0)
    assert win.session.frame_idx == NUM_FRAMES - 1
    qtbot.keyClick(win, Qt.Key.Key_N)
    assert win.session.frame_idx == 0
    store.update_object(ids[2], name="left wrist", color="#123456", hidden=True)
    tree = win.objects_panel.tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() == 11 and tree.topLevelItem(2).text(1) == "left wrist")
    item = tree.topLevelItem(2)
    assert item.checkState(0) == Qt.CheckState.Unchecked
    item.setCheckState(0, Qt.CheckState.Checked)  # the checkbox shows it again
    assert not store.get_object(ids[2]).hidden
    qtbot.keyClick(win, Qt.Key.Key_Space)
    assert win.timeline.playing
    qtbot.keyClick(win, Qt.Key.Key_Space)
    assert not win.timeline.playing


def test_errors_become_dialogs(qtbot, window, tmp_path):
    win = window
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"not a video at all")
    assert not win.open_path(bad_video)
    assert "broken.mp4" in win.last_error
    bad_project = tmp_path / "bad.tsproj"
    bad_project.write_text('{"format": "trackstudio-project", "version": 1, "video": 3}')
    assert not win.open_path(bad_project)
    assert "bad.tsproj" in win.last_error and "video" in win.last_error
    assert not win.open_path(tmp_path / "missing.mkv")
    assert "missing.mkv" in win.last_error
    assert not win.propagate_all()  # nothing open: no crash, nothing happens


def test_missing_official_weights_are_offered_not_crashed(qtbot, window, clip, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKSTUDIO_CACHE", str(tmp_path / "empty-cache"))
    win = window
    open_clip(win, clip)
    pts = win.add_point_grid(1, 1)
    assert win.tracker_panel.set_tracker("point", "cotracker3-online")
    asked = []
    win.ensure_weights = lambda tracker: asked.append(tracker) or False  # the user declines the download
    assert not win.propagate_all()
    assert asked == ["cotracker3-online"] and "Models" in win.last_message
    assert not win.tracking.running
    assert all(win.session.store.get_state(pts[0], f) is None for f in range(1, NUM_FRAMES))
    win.actions["models"].trigger()  # Track > Models and weights… lists the tracker as missing
    from trackstudio.app.ui.models_dialog import ModelsDialog

    dialog = win.findChild(ModelsDialog)
    assert dialog is not None and dialog.isVisible()
    row = next(i for i, r in enumerate(dialog._rows) if r.tracker == "cotracker3-online")
    assert dialog.table.item(row, 6).text() == "missing"
    dialog.close()


def test_attention_cache_keeps_a_whole_run_within_its_byte_budget():
    from trackstudio.app.ui.session import AttentionCache

    attention_map = np.zeros((144, 256), np.float32)  # a shrunk map: 144 KB
    cache = AttentionCache(max_bytes=100 * attention_map.nbytes)
    for frame_idx in range(16):  # 5 objects x 16 frames = 80 maps: all kept
        for obj_id in range(5):
            cache.put(obj_id, frame_idx, attention_map)
    assert cache.get(0, 0) is not None and cache.nbytes == 80 * attention_map.nbytes
    cache.put(0, 0, attention_map)  # replacing a map does not count it twice
    assert cache.nbytes == 80 * attention_map.nbytes
    for frame_idx in range(16, 24):
        for obj_id in range(5):
            cache.put(obj_id, frame_idx, attention_map)
    assert cache.nbytes <= cache.max_bytes
    assert cache.get(1, 0) is None and cache.get(4, 23) is not None  # the oldest went first
    cache.clear()
    assert cache.nbytes == 0 and cache.get(4, 23) is None


def test_mask_name_tag_sits_on_the_largest_part_not_on_a_stray_speck():
    from trackstudio.app.ui.overlays import main_part_box

    mask = np.zeros((120, 160), bool)
    mask[60:100, 80:120] = True  # the object
    mask[4:8, 4:8] = True  # a speck far away
    x1, y1, x2, y2 = main_part_box(mask)
    assert 76 <= x1 <= 80 and 56 <= y1 <= 60 and 118 <= x2 <= 124 and 98 <= y2 <= 104
    assert main_part_box(np.zeros((10, 10), bool)) is None


def test_name_tags_of_objects_on_one_target_do_not_cover_each_other(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    win.set_tool("box")
    drag(qtbot, win, (30, 40), (54, 64))
    win.set_tool("brush")  # the selected object is a box: the brush starts a mask object on the same square
    win.canvas.tools.brush_radius = 3
    drag(qtbot, win, (41, 43), (50, 60))  # its corner 8 pixels right of the box's
    store = win.session.store
    assert sorted(o.kind for o in store.objects) == ["box", "mask"]

    def tags():
        return [g.text.sceneBoundingRect() for g in win.canvas._boxes if g.text.isVisible()]

    win.canvas.refresh_now()
    box_tag, mask_tag = tags()
    assert abs(box_tag.left() - mask_tag.left()) < box_tag.width()  # their corners nearly meet ...
    assert not box_tag.intersects(mask_tag), (box_tag, mask_tag)  # ... yet one tag sits above the other
    # zoomed in, the corners lie far apart on screen: the mask's tag sits just above its corner again
    win.canvas.viewbox.scaleBy((0.2, 0.2), center=QPointF(40, 50))
    box_tag, mask_tag = tags()
    assert not box_tag.intersects(mask_tag), (box_tag, mask_tag)
    assert [g.text.anchor[1] for g in win.canvas._boxes if g.text.isVisible()][1] == 1
    # zoomed out again, the tags are placed again for that zoom (kept as they were, they would overlap)
    win.canvas.viewbox.scaleBy((5, 5), center=QPointF(40, 50))
    box_tag, mask_tag = tags()
    assert not box_tag.intersects(mask_tag), (box_tag, mask_tag)


def test_prompts_off_the_frame_are_refused_with_a_message(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    win.canvas.viewbox.setRange(xRange=(-400, 400), yRange=(-300, 300), padding=0)  # room around the image
    win.canvas.refresh_now()
    store = win.session.store
    win.set_tool("box")
    drag(qtbot, win, (-300, -250), (-100, -50))  # entirely above-left of the 160x120 frame
    assert list(store.objects) == []  # no object was made for it
    assert "Box not added" in win.last_message and "outside the 160x120 frame" in win.last_message
    drag(qtbot, win, (150, 20), (300, 80))  # overlaps the right edge: kept, clipped to the frame
    (obj,) = store.objects
    np.testing.assert_allclose(store.get_state(obj.obj_id, 0).box, [150, 20, 160, 80], atol=1.5)
    win.set_tool("point")
    click(qtbot, win, 250, 60)
    assert [o.kind for o in store.objects] == ["box"]  # no point object was made for it
    assert "Point not added" in win.last_message
    click(qtbot, win, 80, 60)
    assert [o.kind for o in store.objects] == ["box", "point"]


def test_imported_keyframes_off_the_frame_stop_a_run_with_a_message(qtbot, window, clip, tmp_path):
    win = window
    open_clip(win, clip)
    store = win.session.store
    box = store.add_object("box", name="lost").obj_id
    store.set_state(box, 2, FrameState(box=[-500, -400, -100, -50], keyframe=True))  # as an imported file may hold
    save_json(store, win.session.video.info, tmp_path / "bad.json")
    assert win.import_from(tmp_path / "bad.json"), win.last_error
    win.actions["track_all"].trigger()  # Track > Track whole video
    assert "Cannot track lost" in win.last_message and "frame 2" in win.last_message
    assert "entirely outside the 160x120 frame" in win.last_message
    assert not win.tracking.running and win.session.store.frames(box) == [2]


def test_imported_click_keyframes_show_their_mask_after_tracking(qtbot, window, clip, tmp_path):
    """A prompt file that gives a mask keyframe as clicks alone: after Track > Track whole video the keyframe
    holds the mask made from its clicks (as a click in the window stores it), and keeps its clicks."""
    win = window
    assert win.tracker_panel.set_tracker("mask", "sam2-lite")
    open_clip(win, clip)
    store = win.session.store
    blob = store.add_object("mask", name="square").obj_id
    clicks = np.array([[42.0 + 2 * 3, 52.0, 1]], np.float32)  # the square's middle on frame 3
    store.set_state(blob, 3, FrameState(clicks=clicks, keyframe=True))
    save_json(store, win.session.video.info, tmp_path / "clicks.json")
    store.remove_object(blob)
    assert win.import_from(tmp_path / "clicks.json"), win.last_error
    blob = next(o.obj_id for o in win.session.store.objects if o.name == "square")
    assert win.session.store.get_state(blob, 3).mask is None
    with qtbot.waitSignal(win.tracking.finished, timeout=RUN_TIMEOUT_MS):
        win.actions["track_all"].trigger()
    state = win.session.store.get_state(blob, 3)
    assert state.keyframe and np.array_equal(state.clicks, clicks)
    mask = state.mask.decode()
    assert mask[52, 48] and mask.sum() > 200  # the 24x24 square, not a speck
