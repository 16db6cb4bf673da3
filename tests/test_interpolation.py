"""Interpolation trackers: boxes and points linear between keyframes, masks by signed-distance blending."""
from __future__ import annotations

import numpy as np
import pytest

from trackstudio.app.model import AnnotationStore, FrameState
from trackstudio.app.propagation import apply_update, plan_from_frame, plan_whole_video, run_passes, split_by_tracker
from trackstudio.trackers import Prompt, registry
from trackstudio.trackers.interpolation import signed_distance

H, W = 60, 80


def frames(n):
    return [np.zeros((H, W, 3), np.uint8)] * n


def disc(cy, cx, r):
    ys, xs = np.mgrid[:H, :W]
    return (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r


def run(tracker, n, start=0, reverse=False):
    return {r.frame_idx: r.objects for r in tracker.propagate(start, reverse=reverse)}


def test_registered_for_every_kind_and_never_the_default():
    for kind in ("box", "point", "mask"):
        name = f"interpolate-{kind}"
        assert registry.spec(name).kind == kind
        assert registry.default_name(kind) != name


def test_boxes_and_points_move_linearly_and_stop_at_the_last_keyframe():
    box = registry.build("interpolate-box", device="cpu")
    box.set_video(frames(12))
    box.add_prompt(2, 1, Prompt(box=[0, 0, 10, 10]))
    box.add_prompt(6, 1, Prompt(box=[8, 4, 28, 14]))
    out = run(box, 12)
    assert 1 not in out[0] and 1 not in out[1] and 1 not in out[7]  # never extrapolated
    np.testing.assert_allclose(out[4][1].box, [4, 2, 19, 12])
    np.testing.assert_allclose(out[6][1].box, [8, 4, 28, 14])
    point = registry.build("interpolate-point", device="cpu")
    point.set_video(frames(12))
    point.add_prompt(0, 7, Prompt(point=[0, 0]))
    point.add_prompt(10, 7, Prompt(point=[20, -10]))
    point.add_prompt(11, 7, Prompt(point=[20, -10], visible=False))
    out = run(point, 12, start=11, reverse=True)  # the walk's direction does not matter
    np.testing.assert_allclose(out[3][7].point, [6, -3])
    assert out[3][7].visible and not out[11][7].visible


def test_absent_keyframe_holds_then_hides_like_cvat():
    point = registry.build("interpolate-point", device="cpu")
    point.set_video(frames(10))
    point.add_prompt(0, 1, Prompt(point=[5, 5]))
    point.add_prompt(4, 1, Prompt(point=[9, 9], visible=False))
    point.add_prompt(8, 1, Prompt(point=[1, 1]))
    out = run(point, 10)
    np.testing.assert_allclose(out[2][1].point, [5, 5])  # held: the next keyframe says "out of view"
    assert out[2][1].visible
    assert not out[6][1].visible  # after the absent keyframe, absent until the next one


def test_mask_blend_travels_and_keeps_its_size():
    mask = registry.build("interpolate-mask", device="cpu")
    mask.set_video(frames(11))
    mask.add_prompt(0, 1, Prompt(mask=disc(20, 15, 8)))
    mask.add_prompt(10, 1, Prompt(mask=disc(30, 55, 12)))
    out = run(mask, 11)
    middle = out[5][1].mask
    ys, xs = np.nonzero(middle)
    assert abs(ys.mean() - 25) < 1 and abs(xs.mean() - 35) < 1  # halfway, not two half-faded blobs
    assert abs(middle.sum() - np.pi * 10 ** 2) < 0.1 * np.pi * 10 ** 2  # radius halfway too
    areas = [out[f][1].mask.sum() for f in range(11)]
    assert all(a <= b for a, b in zip(areas, areas[1:]))  # grows steadily
    with pytest.raises(ValueError, match="needs mask keyframes"):
        mask.add_prompt(3, 2, Prompt(box=[0, 0, 5, 5]))


def test_signed_distance_sign_and_edges():
    field = signed_distance(disc(30, 40, 10))
    assert field[30, 40] > 9 and field[0, 0] < -20
    assert (signed_distance(np.zeros((H, W), bool)) < 0).all()


def test_interpolation_through_the_planner_writes_tracked_frames_only():
    store = AnnotationStore()
    obj = store.add_object("box")
    store.set_state(obj.obj_id, 1, FrameState(box=[0, 0, 10, 10], keyframe=True))
    store.set_state(obj.obj_id, 5, FrameState(box=[4, 4, 14, 14], keyframe=True))
    tracker = registry.build("interpolate-box", device="cpu")
    passes = plan_whole_video(store, 8, None)
    for update in run_passes(passes, {"box": tracker}, frames(8)):
        apply_update(store, update)
    assert store.frames(obj.obj_id) == [1, 2, 3, 4, 5]  # nothing before 1 or after 5
    assert store.keyframes(obj.obj_id) == [1, 5]
    np.testing.assert_allclose(store.get_state(obj.obj_id, 3).box, [2, 2, 12, 12])


def test_objects_with_their_own_tracker_get_their_own_narrowed_pass():
    store = AnnotationStore()
    a, b = store.add_object("box").obj_id, store.add_object("box").obj_id
    store.set_state(a, 0, FrameState(box=[0, 0, 10, 10], keyframe=True))
    store.set_state(b, 4, FrameState(box=[0, 0, 10, 10], keyframe=True))
    store.set_state(b, 6, FrameState(box=[6, 0, 16, 10], keyframe=True))
    passes = split_by_tracker(plan_whole_video(store, 10, None), {b: "interpolate-box"})
    forward = {p.tracker: p for p in passes if not p.reverse}
    assert set(forward) == {None, "interpolate-box"}
    assert forward[None].write_ranges == {a: (1, 9)} and forward[None].tracker_key == "box"
    own = forward["interpolate-box"]
    assert own.write_ranges == {b: (5, 9)} and own.start_frame_idx == 4 and own.tracker_key == "interpolate-box"
    assert set(own.prompts) == {4, 6}
    trackers = {"box": registry.build("csrt", device="cpu"), "interpolate-box": registry.build("interpolate-box")}
    for update in run_passes(passes, trackers, frames(10)):
        apply_update(store, update)
    assert store.frames(b) == [4, 5, 6]  # interpolated between its keyframes, nothing around them
    assert len(store.frames(a)) == 10


def test_propagating_to_the_next_keyframe_interpolates_up_to_it():
    store = AnnotationStore()
    p = store.add_object("point").obj_id
    store.set_state(p, 2, FrameState(point=[0, 0], keyframe=True))
    store.set_state(p, 6, FrameState(point=[8, 4], keyframe=True))
    passes = plan_from_frame(store, 10, [p], 2, until_keyframe=True)
    for update in run_passes(passes, {"point": registry.build("interpolate-point")}, frames(10)):
        apply_update(store, update)
    assert store.frames(p) == [2, 3, 4, 5, 6]
    np.testing.assert_allclose(store.get_state(p, 4).point, [4, 2])
