"""What the canvas draws over a frame: mask fills and outlines, point symbols."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from test_ui_fixes import key, point_grid_in_a_box  # noqa: E402
from test_ui_flows import clip, open_clip, window  # noqa: E402,F401

from trackstudio.app.model import FrameState  # noqa: E402
from trackstudio.app.ui.overlays import compose_masks, hex_to_rgb  # noqa: E402

SHAPE = (90, 120)


def painted_one_by_one(masks, opacity: float, outlines: bool) -> np.ndarray:
    """The definition: every mask painted over the whole frame in turn, its outline the mask minus its erosion."""
    rgba = np.zeros((*SHAPE, 4), np.uint8)
    for mask, color, emphasised in masks:
        if mask.shape != SHAPE:
            continue
        rgba[mask] = (*hex_to_rgb(color), round(255 * opacity))
        if outlines:
            width = 2 if emphasised else 1
            kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
            eroded = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            rgba[mask & (eroded == 0)] = (*hex_to_rgb(color), 255)
    return rgba


def test_masks_compose_as_if_each_were_painted_over_the_whole_frame_in_turn():
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    disc = (xx - 40) ** 2 + (yy - 45) ** 2 < 30 ** 2
    overlapping = (xx > 50) & (yy > 30)  # runs to the frame's right and bottom edges
    speckled = np.random.default_rng(0).random(SHAPE) < 0.02
    column_major = np.asfortranarray(disc[::-1])  # decoded RLE masks come column-major
    masks = [(disc, "#ff0000", False), (overlapping, "#00ff00", True), (np.zeros(SHAPE, bool), "#0000ff", False),
             (speckled, "#123456", True), (column_major, "#abcdef", False),
             (np.ones((10, 10), bool), "#ffffff", False)]  # another video's size: skipped
    for opacity, outlines in ((0.45, True), (0.3, False), (1.0, True)):
        composed = compose_masks(SHAPE, masks, opacity, outlines)
        assert composed.shape == (*SHAPE, 4) and composed.dtype == np.uint8
        np.testing.assert_array_equal(composed, painted_one_by_one(masks, opacity, outlines))
    assert not compose_masks(SHAPE, [], 0.45, True).any()


def test_stepping_through_tracked_points_draws_from_a_few_symbol_pictures(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    points = point_grid_in_a_box(win)
    for frame_idx in range(1, 6):  # tracked points: some sure, some doubtful, some hidden
        for n, obj_id in enumerate(points):
            state = store.get_state(obj_id, 0)
            store.set_state(obj_id, frame_idx, FrameState(point=state.point + frame_idx, visible=n % 5 != 0,
                                                          score=0.3 if n % 3 == 0 else 0.9))
    for _ in range(5):
        key(qtbot, win, Qt.Key.Key_Right)
        win.canvas.refresh_now()
    assert win.session.frame_idx == 5
    assert len(win.canvas.points_item.data) == len(points)
    # a picture per distinct look (symbol, size, pen, brush): 16 colours and a few looks, not one per point per
    # frame drawn (pyqtgraph failed to enlarge that atlas after a few hundred)
    assert len(win.canvas.points_item.fragmentAtlas) <= 2 * len(points)
    # the trails, all in one item: a line through frames 0-5 for each point seen there, none for the hidden ones
    trails = win.canvas.trails.paths
    assert len(trails) == sum(n % 5 != 0 for n in range(len(points)))
    for path, _pen in trails:
        start, end = path.elementAt(0), path.elementAt(path.elementCount() - 1)
        assert path.elementCount() == 6 and (end.x - start.x, end.y - start.y) == (5.0, 5.0)
    assert win.canvas.trails.boundingRect().contains(win.canvas.trails.paths[0][0].boundingRect())
