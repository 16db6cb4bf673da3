"""Merge, split and swap objects: the frames move as promised and one undo restores everything."""
from __future__ import annotations

import pytest

from trackstudio.app.model import AnnotationStore, FrameState
from trackstudio.app.model import labels as lb
from trackstudio.app.model.identities import merge_objects, split_object, swap_objects


def box(x, keyframe=False):
    return FrameState(box=[x, 0, x + 10, 10], keyframe=keyframe)


def track(store, frames, x0, kind="box"):
    obj = store.add_object(kind)
    for f in frames:
        store.set_state(obj.obj_id, f, box(x0 + f, keyframe=f == frames[0]))
    return obj.obj_id


def snapshot(store):
    return [(o, store.states(o.obj_id)) for o in store.objects]


def test_merge_keeps_keyframes_and_removes_the_other_in_one_undo_step():
    store = AnnotationStore()
    a = track(store, range(0, 5), 0)
    b = track(store, range(3, 9), 100)  # overlaps a on 3, 4; its keyframe is 3
    before = snapshot(store)
    merge_objects(store, a, b)
    assert b not in store
    assert store.frames(a) == list(range(9))
    assert store.get_state(a, 3).box[0] == 103 and store.get_state(a, 3).keyframe  # b's keyframe beat a's tracked
    assert store.get_state(a, 4).box[0] == 4  # both tracked: a's stays
    assert store.get_state(a, 7).box[0] == 107
    store.undo_stack.undo()
    assert snapshot(store) == before


def test_split_moves_later_frames_to_a_new_object():
    store = AnnotationStore()
    a = track(store, range(10), 0)
    before = snapshot(store)
    new = split_object(store, a, 6)
    assert store.frames(a) == list(range(6))
    assert store.frames(new.obj_id) == list(range(6, 10)) and new.kind == "box"
    assert store.get_state(new.obj_id, 6).box[0] == 6
    store.undo_stack.undo()
    assert snapshot(store) == before
    with pytest.raises(ValueError, match="no frames before"):
        split_object(store, a, 0)


def test_swap_trades_frames_from_a_frame_on():
    store = AnnotationStore()
    a = track(store, range(10), 0)
    b = track(store, range(2, 12), 100)
    before = snapshot(store)
    swap_objects(store, a, b, 5)
    assert store.get_state(a, 4).box[0] == 4 and store.get_state(a, 5).box[0] == 105
    assert store.frames(a) == list(range(12)) and store.frames(b) == list(range(2, 10))
    assert store.get_state(b, 9).box[0] == 9
    store.undo_stack.undo()
    assert snapshot(store) == before


def test_kinds_must_match():
    store = AnnotationStore()
    a = track(store, range(3), 0)
    m = store.add_object("mask").obj_id
    with pytest.raises(ValueError, match="kinds differ"):
        merge_objects(store, a, m)


def test_attributes_travel_with_their_frames():
    store = AnnotationStore()
    lb.set_schema(store, lb.LabelSchema(attributes=(lb.Attribute("occluded", "frame"),
                                                    lb.Attribute("truncated", "object"))))
    a = track(store, range(10), 0)
    b = track(store, range(10, 14), 0)
    lb.set_attribute(store, a, "occluded", True, frame_idx=2)
    lb.set_attribute(store, a, "occluded", True, frame_idx=7)
    lb.set_attribute(store, a, "truncated", True)
    lb.set_attribute(store, b, "occluded", True, frame_idx=11)
    new = split_object(store, a, 5).obj_id
    assert lb.attributes_of(store, a, 2) == {"occluded"} and not lb.attributes_of(store, a, 7)
    assert lb.attributes_of(store, new, 7) == {"occluded"} and lb.attributes_of(store, new) == {"truncated"}
    swap_objects(store, new, b, 0)
    assert lb.attributes_of(store, b, 7) == {"occluded"} and lb.attributes_of(store, new, 11) == {"occluded"}
    merge_objects(store, a, b)
    assert lb.attributes_of(store, a, 7) == {"occluded"} and lb.attributes_of(store, a) == {"truncated"}
    for _ in range(3):
        store.undo_stack.undo()
    assert lb.attributes_of(store, a, 7) == {"occluded"} and new not in store
