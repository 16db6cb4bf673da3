"""What a review video frame shows: masks, boxes, point trails, hidden points, name tags with scores."""
from __future__ import annotations

import numpy as np

from trackstudio.app.model import AnnotationStore, FrameState
from trackstudio.app.render import RenderOptions, draw_overlay, snapshot, tag_text

H, W = 240, 320


def scene():
    store = AnnotationStore()
    ball = store.add_object("mask", "ball", color="#00ff00")
    car = store.add_object("box", "car", color="#ff0000", label="vehicle")
    nose = store.add_object("point", "nose", color="#0000ff")
    ghost = store.add_object("point", "ghost", color="#ffff00")
    yy, xx = np.mgrid[:H, :W]
    store.set_state(ball.obj_id, 5, FrameState(mask=(xx - 250) ** 2 + (yy - 180) ** 2 < 30 ** 2, keyframe=True))
    store.set_state(car.obj_id, 5, FrameState(box=[40, 60, 140, 120], score=0.42))
    for f in range(6):
        store.set_state(nose.obj_id, f, FrameState(point=[100 + 20 * f, 200], score=0.9))
    store.set_state(ghost.obj_id, 5, FrameState(point=[60, 30], visible=False))
    return store


def test_everything_is_drawn_where_it_belongs():
    frame = np.full((H, W, 3), 128, np.uint8)
    out = draw_overlay(frame, snapshot(scene()), 5)
    assert out.shape == frame.shape and np.array_equal(frame, np.full((H, W, 3), 128, np.uint8))  # a copy
    inside = out[175:185, 245:255].reshape(-1, 3).mean(axis=0)  # the mask: tinted green, half see-through
    assert inside[1] > 170 and inside[0] < 100
    assert out[90, 40].tolist() == [255, 0, 0] or out[90, 41].tolist() == [255, 0, 0]  # the box's left side
    assert (out[90, 60:120] == 128).all()  # a box is an outline, not a fill
    assert out[200, 200].tolist()[2] > 200  # the nose on frame 5 (blue)
    assert out[200, 150].tolist()[2] > 200  # its trail through frames 2..4
    assert out[30, 60].tolist() == [128, 128, 128]  # a hidden point is a ring: its centre stays clear
    ring = out[24:37, 54:67].reshape(-1, 3)
    assert ((ring[:, 0] > 200) & (ring[:, 1] > 200) & (ring[:, 2] < 100)).any()
    above_box = out[40:59, 40:140]  # the tag: drawn above the box in its colour
    assert ((above_box[..., 0] > 200) & (above_box[..., 1] < 60)).sum() > 200


def test_options_and_tags():
    store = scene()
    frame = np.full((H, W, 3), 128, np.uint8)
    bare = draw_overlay(frame, snapshot(store), 5, RenderOptions(masks=False, boxes=False, labels=False,
                                                                 points=False))
    assert np.array_equal(bare, frame)
    no_trail = draw_overlay(frame, snapshot(store), 5, RenderOptions(trail_length=0, labels=False))
    assert no_trail[200, 150].tolist() == [128, 128, 128]
    car = store.objects[1]
    assert tag_text(car, store.get_state(car.obj_id, 5)) == "car [vehicle] 0.42"
    assert tag_text(store.objects[0], store.get_state(store.objects[0].obj_id, 5)) == "ball"  # keyframe: no score
    store.update_object(car.obj_id, hidden=True)
    assert car.obj_id not in [obj.obj_id for obj, _ in snapshot(store)]  # hidden objects are not rendered
