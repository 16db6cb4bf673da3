"""Planning and running propagation: keyframes are prompts, never overwritten; cancel keeps work."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic import moving_square_clip

from trackstudio.app.model import AnnotationStore, FrameState, MaskRLE
from trackstudio.app.propagation import apply_update, plan_from_frame, plan_whole_video, run_passes
from trackstudio.trackers import Prompt, registry


def _iou(a, b):
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture()
def clip():
    return moving_square_clip(num_frames=20)


def _box_store(boxes, keyframes):
    store = AnnotationStore()
    obj = store.add_object("box", name="square")
    for t in keyframes:
        store.set_state(obj.obj_id, t, FrameState(box=boxes[t], keyframe=True))
    return store, obj.obj_id


def test_whole_video_plan_walks_forward_and_back_from_first_keyframe(clip):
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=[5, 12])
    passes = plan_whole_video(store, len(frames))
    forward, backward = passes
    assert (forward.start_frame_idx, forward.end_frame_idx, forward.reverse) == (5, 19, False)
    assert sorted(forward.prompts) == [5, 12]  # the later keyframe re-anchors the forward walk
    assert (backward.start_frame_idx, backward.end_frame_idx, backward.reverse) == (5, 0, True)
    assert sorted(backward.prompts) == [5]
    assert backward.write_ranges[obj_id] == (0, 4)  # the frames before the keyframe


def test_tracking_fills_every_frame_follows_the_object_and_keeps_keyframes(clip):
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=[5, 12])
    kf_before = {t: store.get_state(obj_id, t) for t in (5, 12)}
    trackers = {"box": registry.build("csrt", device="cpu")}
    for update in run_passes(plan_whole_video(store, len(frames)), trackers, frames):
        apply_update(store, update)
    assert store.frames(obj_id) == list(range(20))
    assert store.keyframes(obj_id) == [5, 12]
    for t in (5, 12):
        assert store.get_state(obj_id, t) == kf_before[t]
    ious = [_iou(store.get_state(obj_id, t).box, boxes[t]) for t in range(20)]
    assert min(ious) > 0.7, ious


def test_cancel_between_frames_keeps_what_was_done(clip):
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=[0])
    gen = run_passes(plan_whole_video(store, len(frames)), {"box": registry.build("csrt")}, frames)
    for update in gen:
        apply_update(store, update)
        if update.frame_idx == 7:
            gen.close()  # what a Cancel button does
    assert store.frames(obj_id) == list(range(8))


def test_repropagate_from_a_correction_stops_at_the_next_keyframe(clip):
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=[0, 15])
    wrong = FrameState(box=boxes[8] + 40, keyframe=False)
    for t in range(1, 15):
        store.apply_tracked(obj_id, t, wrong)
    store.set_state(obj_id, 8, FrameState(box=boxes[8], keyframe=True))  # the user's correction
    passes = plan_from_frame(store, len(frames), [obj_id], 8, until_keyframe=True)
    assert [(p.start_frame_idx, p.end_frame_idx) for p in passes] == [(8, 15)]
    for update in run_passes(passes, {"box": registry.build("csrt")}, frames):
        apply_update(store, update)
    assert all(_iou(store.get_state(obj_id, t).box, boxes[t]) > 0.7 for t in range(9, 15))
    assert store.get_state(obj_id, 7) == wrong  # frames behind the correction are untouched
    assert store.keyframes(obj_id) == [0, 8, 15]


def test_plan_from_frame_limits_frames_and_skips_objects_without_state(clip):
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=[10])
    empty = store.add_object("box").obj_id
    passes = plan_from_frame(store, len(frames), [obj_id, empty], 10, reverse=True, max_frames=4)
    assert [(p.start_frame_idx, p.end_frame_idx, p.reverse) for p in passes] == [(10, 7, True)]
    assert list(passes[0].write_ranges) == [obj_id]
    with pytest.raises(IndexError, match="out of range"):
        plan_from_frame(store, len(frames), [obj_id], 20)


def test_whole_video_after_a_cancel_walks_only_the_frames_still_missing(clip):
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=[4])
    gen = run_passes(plan_whole_video(store, len(frames)), {"box": registry.build("csrt")}, frames)
    for update in gen:
        apply_update(store, update)
        if update.frame_idx == 9:
            gen.close()
    assert store.frames(obj_id) == list(range(4, 10))
    tracked_9 = store.get_state(obj_id, 9)
    passes = plan_whole_video(store, len(frames))
    # forward from where the run stopped (frame 9 is not written again), then the frames before the keyframe
    assert [(p.start_frame_idx, p.end_frame_idx, p.reverse) for p in passes] == [(9, 19, False), (4, 0, True)]
    assert [p.write_ranges[obj_id] for p in passes] == [(10, 19), (0, 3)]
    walked = []
    for update in run_passes(passes, {"box": registry.build("csrt")}, frames):
        walked.append(update.frame_idx)
        apply_update(store, update)
    assert sorted(walked) == [0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    assert store.frames(obj_id) == list(range(20)) and store.get_state(obj_id, 9) == tracked_9
    assert min(_iou(store.get_state(obj_id, t).box, boxes[t]) for t in range(20)) > 0.7
    assert plan_whole_video(store, len(frames)) == []  # nothing left to track


def test_kinds_advance_together_and_progress_counts_frames(clip):
    frames, boxes = clip
    store, box_id = _box_store(boxes, keyframes=[0])
    point = store.add_object("point").obj_id
    store.set_state(point, 0, FrameState(point=(boxes[0][:2] + boxes[0][2:]) / 2, keyframe=True))
    trackers = {"box": registry.build("csrt"), "point": registry.build("lk")}
    updates = list(run_passes(plan_whole_video(store, len(frames)), trackers, frames))
    assert [u.kind for u in updates[:6]] == ["box", "point"] * 3  # interleaved, not one kind after the other
    assert updates[-1].done == updates[-1].total == 20  # frames, not frames x trackers


def test_spans_where_every_frame_is_a_keyframe_are_not_walked(clip):
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=range(20))
    assert plan_whole_video(store, len(frames)) == []  # a keyframe on every frame: nothing to track

    store, obj_id = _box_store(boxes, keyframes=[*range(0, 8), 12, 13])  # tracked: 8..11 and 14..19
    passes = plan_whole_video(store, len(frames))
    assert [(p.start_frame_idx, p.end_frame_idx) for p in passes] == [(7, 11), (13, 19)]
    assert sum(p.num_frames for p in passes) == 12  # not the 20 of one walk over the clip
    trackers = {"box": registry.build("csrt", device="cpu")}
    written = {}
    for update in run_passes(passes, trackers, frames):
        if apply_update(store, update):
            written[update.frame_idx] = store.get_state(obj_id, update.frame_idx).box
    assert sorted(written) == [8, 9, 10, 11, 14, 15, 16, 17, 18, 19]
    for frame_idx, box in written.items():
        assert _iou(box, boxes[frame_idx]) > 0.7, frame_idx


def test_a_second_object_keeps_the_walk_going_where_the_first_is_all_keyframes(clip):
    frames, boxes = clip
    store, first = _box_store(boxes, keyframes=range(20))
    second = store.add_object("box", name="other").obj_id
    store.set_state(second, 5, FrameState(box=boxes[5], keyframe=True))
    passes = plan_whole_video(store, len(frames))
    forward, backward = passes
    assert (forward.start_frame_idx, forward.end_frame_idx) == (5, 19)  # frames 0..4 need nothing
    assert (backward.start_frame_idx, backward.end_frame_idx) == (5, 0)
    # a single fully prompted frame inside a span is walked through, not restarted from
    store.set_state(second, 9, FrameState(box=boxes[9], keyframe=True))
    assert [(p.start_frame_idx, p.end_frame_idx) for p in plan_whole_video(store, len(frames))] == [(5, 19), (5, 0)]
    store.set_state(second, 10, FrameState(box=boxes[10], keyframe=True))
    assert [(p.start_frame_idx, p.end_frame_idx) for p in plan_whole_video(store, len(frames))] == [
        (5, 8), (10, 19), (5, 0)]


def test_an_accepted_box_with_a_mask_prompts_box_trackers_with_the_box(clip):
    """Box trackers that also yield masks (siamfc-mask) store both; when the user accepts such a
    frame as a keyframe, the box they saw is what a box tracker is prompted with."""
    frames, boxes = clip
    store, obj_id = _box_store(boxes, keyframes=[])
    stray = np.zeros(frames[0].shape[:2], bool)
    stray[:10, :10] = True  # a mask elsewhere than the box
    store.set_state(obj_id, 0, FrameState(box=boxes[0], mask=stray, keyframe=True))
    prompts = plan_whole_video(store, len(frames))[0].prompts[0]
    assert np.array_equal(prompts[obj_id].box, boxes[0]) and prompts[obj_id].mask[:10, :10].all()
    trackers = {"box": registry.build("csrt", device="cpu")}
    for update in run_passes(plan_whole_video(store, len(frames)), trackers, frames):
        apply_update(store, update)
    assert _iou(store.get_state(obj_id, 10).box, boxes[10]) > 0.7  # followed the square, not the corner


def test_a_mask_keyframe_given_as_clicks_gets_the_mask_made_from_them_and_keeps_its_clicks(clip):
    """A prompt file may give a mask keyframe as clicks alone (as `trackstudio track` reads it); the window stores a
    click's answer beside its clicks, and so does a propagation: the keyframe gets the tracker's mask, keeps its
    clicks and stays a keyframe. A keyframe with a mask of its own is left as it is."""
    frames, boxes = clip
    store = AnnotationStore()
    clicked, drawn = store.add_object("mask").obj_id, store.add_object("mask").obj_id
    x1, y1, x2, y2 = boxes[3]
    clicks = np.array([[(x1 + x2) / 2, (y1 + y2) / 2, 1]], np.float32)
    store.set_state(clicked, 3, FrameState(clicks=clicks, keyframe=True))
    own = np.zeros(frames[0].shape[:2], bool)
    own[:12, :12] = True  # not the square: a mask the tracker would not make
    store.set_state(drawn, 3, FrameState(mask=MaskRLE.encode(own), keyframe=True))
    assert store.get_state(clicked, 3).mask is None
    with store.macro("Propagate") as step:
        for update in run_passes(plan_whole_video(store, len(frames)), {"mask": registry.build("sam2-lite")}, frames):
            apply_update(store, update, step)
    state = store.get_state(clicked, 3)
    assert state.keyframe and np.array_equal(state.clicks, clicks)
    alone = registry.build("sam2-lite")
    alone.set_video(frames)
    answer = alone.add_prompt(3, 1, Prompt(clicks=clicks)).mask  # what the window would store for the click
    assert answer.sum() > 100 and np.array_equal(state.mask.decode(), answer)
    assert np.array_equal(store.get_state(drawn, 3).mask.decode(), own)
    store.undo_stack.undo()  # one undo step takes the propagation back, the keyframe's mask with it
    assert store.get_state(clicked, 3).mask is None and store.frames(clicked) == [3]


def test_a_clicked_keyframe_with_nothing_to_track_around_it_gets_its_mask_too(clip):
    """No walk prompts a keyframe whose neighbours are all keyframed, or on a one-frame video: a pass of its own
    frame makes its mask, and writes nothing else."""
    frames, boxes = clip
    alone = registry.build("sam2-lite")
    alone.set_video(frames[:1])
    answer = alone.add_prompt(0, 1, Prompt(box=boxes[0])).mask  # what the window would store for the box
    for video in (frames[:1], frames[:2]):
        store = AnnotationStore()
        obj_id = store.add_object("mask").obj_id
        store.set_state(obj_id, 0, FrameState(box=boxes[0], keyframe=True))
        if len(video) == 2:  # its other frame is keyframed already
            store.set_state(obj_id, 1, FrameState(mask=MaskRLE.encode(np.ones(video[0].shape[:2], bool)),
                                                  keyframe=True))
        passes = plan_whole_video(store, len(video))
        assert [(p.start_frame_idx, p.end_frame_idx) for p in passes] == [(0, 0)]
        for update in run_passes(passes, {"mask": registry.build("sam2-lite")}, video):
            apply_update(store, update)
        assert answer.any() and np.array_equal(store.get_state(obj_id, 0).mask.decode(), answer)
        assert store.keyframes(obj_id) == list(range(len(video))) and store.frames(obj_id) == list(range(len(video)))


def test_a_walk_hands_free_heap_pages_back_at_a_fixed_step_interval(clip, monkeypatch):
    # the results kept while walking fragment the heap that trackers/alloc.py never trims: one box on 854x480 video
    # held 1,021 MB at 3,000 frames against 727 at 300 before the walk released the free pages now and then
    from trackstudio.app import propagation

    released = []
    monkeypatch.setattr(propagation, "RELEASE_EVERY", 4)
    monkeypatch.setattr(propagation, "release_free_memory", lambda: released.append(True))
    frames, boxes = clip
    store, _ = _box_store(boxes, keyframes=[5])
    steps = 0
    for update in run_passes(plan_whole_video(store, len(frames)), {"box": registry.build("csrt")}, frames):
        apply_update(store, update)
        steps += 1
    assert steps == 21 and len(released) == 5
