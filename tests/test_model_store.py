"""AnnotationStore: objects, states, keyframe protection, events and undo/redo."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trackstudio.app.model import AnnotationStore, FrameState, MaskRLE, ObjectsChanged, StatesChanged, TrackObject
from trackstudio.app.model.colors import OBJECT_PALETTE


def box_state(x: float, keyframe: bool = False) -> FrameState:
    return FrameState(box=[x, 10, x + 20, 40], keyframe=keyframe)


@pytest.fixture
def store() -> AnnotationStore:
    return AnnotationStore()


@pytest.fixture
def events(store) -> list:
    received = []
    store.events.connect(received.append)
    return received


def test_add_object_defaults_are_distinct_and_named(store):
    objects = [store.add_object("box") for _ in range(12)]
    assert [o.obj_id for o in objects] == list(range(1, 13))
    assert [o.name for o in objects[:2]] == ["box 1", "box 2"]
    assert len({o.color for o in objects}) == 12  # more than nine objects keep distinct colours
    assert all(o.color in OBJECT_PALETTE for o in objects)
    point = store.add_object("point", name="left eye", color="#00FF00", label="face")
    assert (point.name, point.color, point.label, point.kind) == ("left eye", "#00ff00", "face", "point")
    assert store.get_object(point.obj_id) is point
    assert [o.obj_id for o in store.objects] == list(range(1, 14))


def test_add_object_with_explicit_id_and_bad_input(store):
    obj = store.add_object("mask", obj_id=7)
    assert obj.obj_id == 7 and obj.name == "mask 7"
    assert store.add_object("box").obj_id == 8  # ids continue after the largest
    with pytest.raises(ValueError, match="already used"):
        store.add_object("box", obj_id=7)
    with pytest.raises(ValueError, match="kind"):
        store.add_object("polygon")
    with pytest.raises(ValueError, match="#rrggbb"):
        store.add_object("box", color="red")
    with pytest.raises(KeyError, match="no object with id 99"):
        store.get_state(99, 0)


def test_objects_and_states_are_immutable_values():
    state = FrameState(box=np.array([1, 2, 3, 4], np.float64))
    assert state.box.dtype == np.float32
    with pytest.raises(ValueError):
        state.box[0] = 5  # read-only array
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.visible = False
    source = np.array([1.0, 2.0], np.float32)
    point = FrameState(point=source)
    source[0] = 9  # the state copied it
    assert point.point.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="shape"):
        FrameState(box=[1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        FrameState(point=[np.nan, 1])
    mask = np.zeros((6, 8), bool)
    mask[2:4, 3:6] = True
    assert isinstance(FrameState(mask=mask).mask, MaskRLE)  # arrays are encoded on construction
    assert FrameState(box=[1, 2, 3, 4]) == FrameState(box=[1, 2, 3, 4], score=None)
    assert FrameState(box=[1, 2, 3, 4]) != FrameState(box=[1, 2, 3, 5])


def test_set_get_clear_state_and_frames(store, events):
    obj = store.add_object("box")
    events.clear()
    store.set_state(obj.obj_id, 5, box_state(1, keyframe=True))
    store.set_state(obj.obj_id, 2, box_state(2))
    assert store.frames(obj.obj_id) == [2, 5]
    assert store.keyframes(obj.obj_id) == [5]
    assert store.get_state(obj.obj_id, 2) == box_state(2)
    assert store.get_state(obj.obj_id, 3) is None
    assert list(store.states(obj.obj_id)) == [2, 5]
    store.clear_state(obj.obj_id, 5)
    store.clear_state(obj.obj_id, 40)  # nothing there: no event, no undo step
    assert store.frames(obj.obj_id) == [2]
    assert events == [StatesChanged(obj.obj_id, (5,)), StatesChanged(obj.obj_id, (2,)),
                      StatesChanged(obj.obj_id, (5,))]
    assert len(store.undo_stack) == 4  # add, two sets, one clear; the no-op clear adds nothing


def test_set_state_rejects_states_that_do_not_fit_the_kind(store):
    box = store.add_object("box")
    point = store.add_object("point")
    mask = store.add_object("mask")
    with pytest.raises(ValueError, match="needs a box"):
        store.set_state(box.obj_id, 0, FrameState(point=[1, 2]))
    with pytest.raises(ValueError, match="needs a point"):
        store.set_state(point.obj_id, 0, FrameState(box=[1, 2, 3, 4]))
    with pytest.raises(ValueError, match="x2 >= x1"):
        store.set_state(box.obj_id, 0, FrameState(box=[5, 2, 3, 4]))
    with pytest.raises(ValueError, match="frame_idx"):
        store.set_state(box.obj_id, -1, box_state(0))
    with pytest.raises(TypeError):
        store.set_state(box.obj_id, 0, {"box": [1, 2, 3, 4]})
    # a hidden object needs no geometry; a mask object may be prompted by clicks alone
    store.set_state(box.obj_id, 0, FrameState(visible=False))
    store.set_state(mask.obj_id, 0, FrameState(clicks=[[3, 4, 1], [5, 6, 0]], keyframe=True))
    assert store.get_state(mask.obj_id, 0).clicks.shape == (2, 3)


def test_apply_tracked_never_overwrites_keyframes(store, events):
    obj = store.add_object("box")
    store.set_state(obj.obj_id, 3, box_state(100, keyframe=True))
    events.clear()
    with store.macro("Propagate"):
        written = [store.apply_tracked(obj.obj_id, t, box_state(t, keyframe=True)) for t in range(6)]
    assert written == [True, True, True, False, True, True]
    assert store.get_state(obj.obj_id, 3) == box_state(100, keyframe=True)
    assert store.keyframes(obj.obj_id) == [3]  # tracker output is stored as tracked, whatever it says
    assert store.get_state(obj.obj_id, 4) == box_state(4)
    assert all(isinstance(e, StatesChanged) for e in events) and len(events) == 5
    # a tracked frame is replaced by later tracking
    assert store.apply_tracked(obj.obj_id, 4, box_state(44))
    assert store.get_state(obj.obj_id, 4) == box_state(44)


def test_clear_tracked_keeps_keyframes_and_respects_range(store):
    obj = store.add_object("box")
    with store.macro("Propagate"):
        for t in range(10):
            store.apply_tracked(obj.obj_id, t, box_state(t))
    store.set_state(obj.obj_id, 5, box_state(50, keyframe=True))
    assert store.clear_tracked(obj.obj_id, (2, 5)) == [2, 3, 4]
    assert store.frames(obj.obj_id) == [0, 1, 5, 6, 7, 8, 9]
    assert store.clear_tracked(obj.obj_id, range(8, 100)) == [8, 9]
    assert store.clear_tracked(obj.obj_id) == [0, 1, 6, 7]
    assert store.frames(obj.obj_id) == [5] and store.keyframes(obj.obj_id) == [5]
    store.undo_stack.undo()
    assert store.frames(obj.obj_id) == [0, 1, 5, 6, 7]


def test_remove_and_update_object_with_undo(store, events):
    a = store.add_object("box")
    b = store.add_object("point")
    c = store.add_object("mask")
    store.set_state(b.obj_id, 1, FrameState(point=[3, 4], keyframe=True))
    events.clear()
    store.remove_object(b.obj_id)
    assert [o.obj_id for o in store.objects] == [a.obj_id, c.obj_id]
    assert events == [ObjectsChanged((b.obj_id,))]
    with pytest.raises(KeyError):
        store.frames(b.obj_id)
    events.clear()
    store.undo_stack.undo()  # back in its place, with its states
    assert [o.obj_id for o in store.objects] == [a.obj_id, b.obj_id, c.obj_id]
    assert store.get_state(b.obj_id, 1) == FrameState(point=[3, 4], keyframe=True)
    assert events == [ObjectsChanged((b.obj_id,)), StatesChanged(b.obj_id, (1,))]

    renamed = store.update_object(a.obj_id, name="car", color="#123456", hidden=True)
    assert store.get_object(a.obj_id) == renamed == TrackObject(a.obj_id, "car", "box", "#123456", "", True)
    assert store.undo_stack.undo_text == "Edit box 1"
    store.undo_stack.undo()
    assert store.get_object(a.obj_id) == a
    store.undo_stack.redo()
    assert store.get_object(a.obj_id).name == "car"
    with pytest.raises(ValueError, match="cannot update kind"):
        store.update_object(a.obj_id, kind="mask")
    with pytest.raises(ValueError, match="#rrggbb"):
        store.update_object(a.obj_id, color="blue")


def test_undo_redo_sequence_restores_every_step(store):
    obj = store.add_object("box")
    snapshots = [store.states(obj.obj_id)]
    store.set_state(obj.obj_id, 0, box_state(0, keyframe=True))
    snapshots.append(store.states(obj.obj_id))
    store.set_state(obj.obj_id, 0, box_state(5, keyframe=True))  # replaces
    snapshots.append(store.states(obj.obj_id))
    store.apply_tracked(obj.obj_id, 1, box_state(6))
    snapshots.append(store.states(obj.obj_id))
    store.clear_state(obj.obj_id, 0)
    snapshots.append(store.states(obj.obj_id))
    store.clear_tracked(obj.obj_id)
    snapshots.append(store.states(obj.obj_id))
    for expected in reversed(snapshots[:-1]):
        assert store.undo_stack.undo()
        assert store.states(obj.obj_id) == expected
    for expected in snapshots[1:]:
        assert store.undo_stack.redo()
        assert store.states(obj.obj_id) == expected
    assert not store.undo_stack.can_redo and not store.undo_stack.redo()
    # undoing everything removes the object too
    while store.undo_stack.can_undo:
        store.undo_stack.undo()
    assert store.objects == [] and not store.undo_stack.undo()


def test_new_edit_clears_redo(store):
    obj = store.add_object("box")
    store.set_state(obj.obj_id, 0, box_state(0))
    store.undo_stack.undo()
    assert store.undo_stack.can_redo and store.undo_stack.redo_text == "Edit box 1 on frame 0"
    store.set_state(obj.obj_id, 1, box_state(1))
    assert not store.undo_stack.can_redo


def test_macro_is_one_step_and_merges_edits(store, events):
    a = store.add_object("box")
    b = store.add_object("box")
    store.set_state(a.obj_id, 0, box_state(0, keyframe=True))
    store.apply_tracked(a.obj_id, 2, box_state(-2))
    before = (store.states(a.obj_id), store.states(b.obj_id))
    depth = len(store.undo_stack)
    with store.macro("Propagate"):
        for t in range(1, 50):
            for obj in (a, b):  # interleaved, as a multi-object tracker writes
                store.apply_tracked(obj.obj_id, t, box_state(t))
        with store.macro("inner"):  # nested macros join the outer one
            store.apply_tracked(a.obj_id, 60, box_state(60))
    assert len(store.undo_stack) == depth + 1
    assert store.undo_stack.undo_text == "Propagate"
    macro = store.undo_stack._done[-1]
    assert len(macro.commands) == 2  # one merged edit per object
    events.clear()
    store.undo_stack.undo()
    assert (store.states(a.obj_id), store.states(b.obj_id)) == before
    assert sorted(e.obj_id for e in events) == [a.obj_id, b.obj_id]  # one event per object
    store.undo_stack.redo()
    assert store.frames(a.obj_id) == list(range(50)) + [60]
    assert store.get_state(a.obj_id, 2) == box_state(2)


def test_macro_with_object_changes_undoes_in_order(store):
    with store.macro("Import"):
        obj = store.add_object("box")
        store.set_state(obj.obj_id, 0, box_state(0))
        store.remove_object(obj.obj_id)
        again = store.add_object("box", obj_id=obj.obj_id)
        store.set_state(again.obj_id, 1, box_state(1))
    assert store.frames(obj.obj_id) == [1]
    store.undo_stack.undo()
    assert store.objects == []
    store.undo_stack.redo()
    assert store.frames(obj.obj_id) == [1]


def test_macro_that_raises_keeps_its_edits_as_one_step(store):
    obj = store.add_object("box")
    with pytest.raises(KeyboardInterrupt), store.macro("Propagate"):
        for t in range(5):
            store.apply_tracked(obj.obj_id, t, box_state(t))
        raise KeyboardInterrupt  # the user cancelled
    assert store.frames(obj.obj_id) == list(range(5))
    store.undo_stack.undo()
    assert store.frames(obj.obj_id) == []


def test_empty_macro_adds_no_step_and_undo_inside_macro_is_refused(store):
    obj = store.add_object("box")
    with store.macro("nothing"):
        pass
    assert store.undo_stack.undo_text == "Add box 1"
    with store.macro("busy"):
        store.set_state(obj.obj_id, 0, box_state(0))
        assert not store.undo_stack.can_undo
        with pytest.raises(RuntimeError, match="busy"):
            store.undo_stack.undo()


def test_undo_limit_drops_oldest_steps():
    store = AnnotationStore(undo_limit=3)
    obj = store.add_object("box")
    for t in range(5):
        store.set_state(obj.obj_id, t, box_state(t))
    assert len(store.undo_stack) == 3
    while store.undo_stack.undo():
        pass
    assert store.frames(obj.obj_id) == [0, 1]  # the two oldest edits can no longer be undone
    with pytest.raises(ValueError):
        AnnotationStore(undo_limit=0)


def test_events_disconnect_and_revision(store):
    received = []
    store.events.connect(received.append)
    store.events.connect(received.append)  # connecting twice calls once
    revision = store.revision
    obj = store.add_object("box")
    assert received == [ObjectsChanged((obj.obj_id,))]
    assert store.revision > revision
    store.events.disconnect(received.append)
    store.set_state(obj.obj_id, 0, box_state(0))
    assert len(received) == 1
    with pytest.raises(ValueError, match="not connected"):
        store.events.disconnect(received.append)
    revision = store.revision
    store.undo_stack.undo()
    assert store.revision > revision  # undo is a change too


def test_callback_may_disconnect_itself_while_handling(store):
    calls = []

    def once(event):
        calls.append(event)
        store.events.disconnect(once)

    store.events.connect(once)
    store.add_object("box")
    store.add_object("box")
    assert len(calls) == 1
