"""The annotation store: objects, their per-frame states, change events and undo."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .colors import next_color
from .events import EventEmitter, MetaChanged, ObjectsChanged, StatesChanged
from .objects import FrameState, TrackObject, state_problem
from .rle import MaskRLE
from .undo import MacroCommand, UndoStack

_EDITABLE_FIELDS = ("name", "color", "label", "hidden")


class AnnotationStore:
    """Every edit goes through the undo stack and ends in an event on `events`.

    `revision` grows with every change (undo and redo included), so savers can tell whether
    anything changed since they last wrote. `extra` keeps unknown top-level keys of the file the
    store was loaded from, to write them back unchanged.

    Not thread-safe: edit from one thread (the GUI thread); tracker threads hand their results
    over to it. Callbacks run synchronously, after the change.
    """

    def __init__(self, undo_limit: int | None = None):
        self.events = EventEmitter()
        self.undo_stack = UndoStack(undo_limit)
        self.revision = 0
        self.extra: dict = {}
        self._objects: dict[int, TrackObject] = {}  # in display order
        self._states: dict[int, dict[int, FrameState]] = {}  # obj_id -> frame_idx -> state
        self._next_id = 1
        self._meta: dict[str, object] = {}  # key -> an immutable value (see `set_meta`)

    # ---- objects -------------------------------------------------------------------------
    @property
    def objects(self) -> list[TrackObject]:
        return list(self._objects.values())

    def get_object(self, obj_id: int) -> TrackObject:
        try:
            return self._objects[obj_id]
        except KeyError:
            raise KeyError(f"no object with id {obj_id}") from None

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self._objects

    def add_object(self, kind: str, name: str | None = None, color: str | None = None, label: str = "",
                   *, obj_id: int | None = None, hidden: bool = False) -> TrackObject:
        """A new object (undoable). Defaults: the next free id, name "<kind> <id>", a palette colour."""
        if obj_id is None:
            obj_id = self._next_id
        elif obj_id in self._objects:
            raise ValueError(f"object id {obj_id} is already used by {self._objects[obj_id].name!r}")
        if color is None:
            color = next_color(o.color for o in self._objects.values())
        obj = TrackObject(obj_id, f"{kind} {obj_id}" if name is None else name, kind, color, label, hidden)
        self.undo_stack.push(_AddObject(self, obj, len(self._objects), {}))
        return obj

    def remove_object(self, obj_id: int) -> None:
        obj = self.get_object(obj_id)
        index = list(self._objects).index(obj_id)
        self.undo_stack.push(_AddObject(self, obj, index, dict(self._states[obj_id]), remove=True))

    def update_object(self, obj_id: int, **fields) -> TrackObject:
        """Change name, color, label or hidden (undoable); id and kind are fixed."""
        unknown = set(fields) - set(_EDITABLE_FIELDS)
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}; editable: {', '.join(_EDITABLE_FIELDS)}")
        before = self.get_object(obj_id)
        after = dataclasses.replace(before, **fields)
        if after != before:
            self.undo_stack.push(_UpdateObject(self, before, after))
        return after

    # ---- states --------------------------------------------------------------------------
    def get_state(self, obj_id: int, frame_idx: int) -> FrameState | None:
        return self._states_of(obj_id).get(frame_idx)

    def states(self, obj_id: int) -> dict[int, FrameState]:
        """All states of an object, by frame index in increasing order (a copy)."""
        states = self._states_of(obj_id)
        return {frame_idx: states[frame_idx] for frame_idx in sorted(states)}

    def frames(self, obj_id: int) -> list[int]:
        return sorted(self._states_of(obj_id))

    def keyframes(self, obj_id: int) -> list[int]:
        return sorted(f for f, state in self._states_of(obj_id).items() if state.keyframe)

    def set_state(self, obj_id: int, frame_idx: int, state: FrameState) -> None:
        """A user edit (undoable): replaces whatever the frame held, keyframe or not."""
        frame_idx = self._check_state(obj_id, frame_idx, state)
        self._push_states(f"Edit {self._objects[obj_id].name} on frame {frame_idx}", obj_id, {frame_idx: state})

    def set_states(self, obj_id: int, states: dict[int, FrameState | None], text: str = "") -> None:
        """Many user edits of one object as one change (None clears a frame); keyframe flags are kept."""
        checked = {self._check_state(obj_id, f, state) if state is not None else int(f): state
                   for f, state in states.items()}
        if checked:
            self._push_states(text or f"Edit {self._objects[obj_id].name}", obj_id, checked)

    def clear_state(self, obj_id: int, frame_idx: int) -> None:
        if self.get_state(obj_id, frame_idx) is not None:
            self._push_states(f"Clear {self._objects[obj_id].name} on frame {frame_idx}", obj_id, {frame_idx: None})

    def apply_tracked(self, obj_id: int, frame_idx: int, state: FrameState, step: MacroCommand | None = None) -> bool:
        """Tracker output for one frame, stored with keyframe=False; never replaces a keyframe.

        Returns whether it was written. Call it inside `macro(...)`, or pass an undo step from
        `undo_stack.open_step(...)`, to make a run one undo step.
        """
        frame_idx = self._check_state(obj_id, frame_idx, state)
        current = self._states[obj_id].get(frame_idx)
        if current is not None and current.keyframe:
            return False
        if state.keyframe:
            state = dataclasses.replace(state, keyframe=False)
        self._push_states(f"Track {self._objects[obj_id].name}", obj_id, {frame_idx: state}, step)
        return True

    def complete_keyframe(self, obj_id: int, frame_idx: int, mask: MaskRLE,
                          step: MacroCommand | None = None) -> bool:
        """The mask a tracker made from a mask keyframe given as clicks or a box alone (a prompt file's, as the
        window stores a click's answer beside its clicks); the keyframe keeps its clicks and box. Only a mask
        object's keyframe without a mask takes one. Returns whether it was written."""
        current = self._states_of(obj_id).get(frame_idx)
        if (current is None or not current.keyframe or current.mask is not None or not current.visible
                or self._objects[obj_id].kind != "mask"):
            return False
        state = dataclasses.replace(current, mask=mask)
        frame_idx = self._check_state(obj_id, frame_idx, state)
        self._push_states(f"Track {self._objects[obj_id].name}", obj_id, {frame_idx: state}, step)
        return True

    def clear_tracked(self, obj_id: int, frame_range: range | tuple[int, int] | None = None) -> list[int]:
        """Drop the tracked (non-keyframe) states, all or those in `frame_range` (start, stop).

        `stop` is exclusive, as in `range`. Returns the cleared frame indices.
        """
        if frame_range is not None and not isinstance(frame_range, range):
            start, stop = frame_range
            frame_range = range(start, stop)
        cleared = sorted(f for f, state in self._states_of(obj_id).items()
                         if not state.keyframe and (frame_range is None or f in frame_range))
        if cleared:
            self._push_states(f"Clear tracked {self._objects[obj_id].name}", obj_id, dict.fromkeys(cleared))
        return cleared

    @contextmanager
    def macro(self, text: str) -> Iterator[MacroCommand]:
        """`with store.macro("Propagate"): ...` makes all edits inside one undo step."""
        with self.undo_stack.macro(text) as macro:
            yield macro

    # ---- document-level values -----------------------------------------------------------
    def meta(self, key: str, default=None):
        """A document-level value: "labels" (the label schema), "attributes", "reviewed" (see their modules)."""
        return self._meta.get(key, default)

    def set_meta(self, key: str, value, text: str = "") -> None:
        """Replace a document-level value (undoable; None removes it). Values are never changed in
        place: the undo stack keeps the old one."""
        before = self._meta.get(key)
        if value is not before and value != before:
            self.undo_stack.push(_SetMeta(self, key, before, value, text or f"Edit {key}"))

    # ---- internals -----------------------------------------------------------------------
    def _states_of(self, obj_id: int) -> dict[int, FrameState]:
        try:
            return self._states[obj_id]
        except KeyError:
            raise KeyError(f"no object with id {obj_id}") from None

    def _check_state(self, obj_id: int, frame_idx: int, state: FrameState) -> int:
        obj = self.get_object(obj_id)
        if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)) or frame_idx < 0:
            raise ValueError(f"frame_idx must be an integer >= 0, got {frame_idx!r}")
        if not isinstance(state, FrameState):
            raise TypeError(f"state must be a FrameState, got {type(state).__name__}")
        problem = state_problem(obj.kind, state)
        if problem:
            raise ValueError(f"{obj.name} (a {obj.kind} object), frame {frame_idx}: {problem}")
        return int(frame_idx)

    def _push_states(self, text: str, obj_id: int, after: dict[int, FrameState | None],
                     step: MacroCommand | None = None) -> None:
        states = self._states[obj_id]
        before = {frame_idx: states.get(frame_idx) for frame_idx in after}
        self.undo_stack.push(_StateEdit(self, text, obj_id, before, after), step)

    def _put_states(self, obj_id: int, new_states: dict[int, FrameState | None]) -> None:
        states = self._states[obj_id]
        for frame_idx, state in new_states.items():
            if state is None:
                states.pop(frame_idx, None)
            else:
                states[frame_idx] = state
        self._changed(StatesChanged(obj_id, tuple(sorted(new_states))))

    def _insert_object(self, obj: TrackObject, index: int, states: dict[int, FrameState]) -> None:
        items = list(self._objects.items())
        items.insert(index, (obj.obj_id, obj))
        self._objects = dict(items)
        self._states[obj.obj_id] = dict(states)
        self._next_id = max(self._next_id, obj.obj_id + 1)
        self._changed(ObjectsChanged((obj.obj_id,)))
        if states:
            self._changed(StatesChanged(obj.obj_id, tuple(sorted(states))))

    def _delete_object(self, obj_id: int) -> None:
        del self._objects[obj_id]
        del self._states[obj_id]
        self._changed(ObjectsChanged((obj_id,)))

    def _replace_object(self, obj: TrackObject) -> None:
        self._objects[obj.obj_id] = obj
        self._changed(ObjectsChanged((obj.obj_id,)))

    def _put_meta(self, key: str, value) -> None:
        if value is None:
            self._meta.pop(key, None)
        else:
            self._meta[key] = value
        self._changed(MetaChanged(key))

    def _changed(self, event: object) -> None:
        self.revision += 1
        self.events.emit(event)


class _StateEdit:
    """States of one object on some frames: what they were and what they become (None: absent)."""

    def __init__(self, store: AnnotationStore, text: str, obj_id: int,
                 before: dict[int, FrameState | None], after: dict[int, FrameState | None]):
        self.text = text
        self.merge_key = obj_id  # consecutive edits of one object in a macro become one
        self._store, self._obj_id, self._before, self._after = store, obj_id, before, after

    def redo(self) -> None:
        self._store._put_states(self._obj_id, self._after)

    def undo(self) -> None:
        self._store._put_states(self._obj_id, self._before)

    def merge(self, later: _StateEdit) -> None:
        for frame_idx, state in later._before.items():
            self._before.setdefault(frame_idx, state)
        self._after.update(later._after)


class _AddObject:
    """Adding an object (or, with remove=True, removing it along with its states)."""

    merge_key = None

    def __init__(self, store: AnnotationStore, obj: TrackObject, index: int,
                 states: dict[int, FrameState], remove: bool = False):
        self.text = f"{'Remove' if remove else 'Add'} {obj.name}"
        self._store, self._obj, self._index, self._states, self._remove = store, obj, index, states, remove

    def redo(self) -> None:
        if self._remove:
            self._store._delete_object(self._obj.obj_id)
        else:
            self._store._insert_object(self._obj, self._index, self._states)

    def undo(self) -> None:
        if self._remove:
            self._store._insert_object(self._obj, self._index, self._states)
        else:
            self._store._delete_object(self._obj.obj_id)


class _UpdateObject:
    merge_key = None

    def __init__(self, store: AnnotationStore, before: TrackObject, after: TrackObject):
        self.text = f"Edit {before.name}"
        self._store, self._before, self._after = store, before, after

    def redo(self) -> None:
        self._store._replace_object(self._after)

    def undo(self) -> None:
        self._store._replace_object(self._before)


class _SetMeta:
    merge_key = None

    def __init__(self, store: AnnotationStore, key: str, before, after, text: str):
        self.text = text
        self._store, self._key, self._before, self._after = store, key, before, after

    def redo(self) -> None:
        self._store._put_meta(self._key, self._after)

    def undo(self) -> None:
        self._store._put_meta(self._key, self._before)
