"""Identity fixes: merge two objects, split one at a frame, swap two from a frame on.

Each is one undo step (a store macro). Qt-free. Both objects must be of the same kind: a box
track cannot take over a mask track's frames. Per-frame attributes (app.model.labels) travel with
their frames; object attributes are joined on a merge and copied on a split.
"""
from __future__ import annotations

from . import labels
from .objects import FrameState, TrackObject
from .store import AnnotationStore


def _move_attributes(store: AnnotationStore, moves: dict[tuple[int, int | None], tuple[int, int | None]],
                     join: bool = False) -> None:
    """Attribute values move from key to key (all moves read the old values first); `join`: a target
    keeps what it had and adds what arrives, else it takes what arrives (or nothing)."""
    old = labels.values(store)
    new = {key: names for key, names in old.items() if key not in moves}
    for source, target in moves.items():
        arriving = old.get(source, frozenset())
        names = (new.get(target, frozenset()) | arriving) if join else arriving
        if names:
            new[target] = names
        else:
            new.pop(target, None)
    if new != old:
        store.set_meta(labels.VALUES_KEY, new or None)


def _same_kind(store: AnnotationStore, a: int, b: int, action: str) -> tuple[TrackObject, TrackObject]:
    obj_a, obj_b = store.get_object(a), store.get_object(b)
    if a == b:
        raise ValueError(f"cannot {action} {obj_a.name} with itself")
    if obj_a.kind != obj_b.kind:
        raise ValueError(f"cannot {action} {obj_a.name} ({obj_a.kind}) and {obj_b.name} ({obj_b.kind}): "
                         "the kinds differ")
    return obj_a, obj_b


def _wins(new: FrameState, old: FrameState | None) -> bool:
    """Whether `new` should replace `old` on a frame: user keyframes beat tracker output."""
    return old is None or (new.keyframe and not old.keyframe)


def merge_objects(store: AnnotationStore, keep_id: int, other_id: int) -> None:
    """`other_id`'s frames join `keep_id` (where both have one, a keyframe beats a tracked frame,
    else `keep_id`'s stays); then `other_id` is removed."""
    keep, other = _same_kind(store, keep_id, other_id, "merge")
    kept = store.states(keep_id)
    moved = {f: state for f, state in store.states(other_id).items() if _wins(state, kept.get(f))}
    with store.macro(f"Merge {other.name} into {keep.name}"):
        store.set_states(keep_id, moved)
        _move_attributes(store, {(other_id, f): (keep_id, f) for f in moved})
        _move_attributes(store, {(other_id, None): (keep_id, None)}, join=True)
        store.remove_object(other_id)


def split_object(store: AnnotationStore, obj_id: int, frame_idx: int) -> TrackObject:
    """A new object takes `obj_id`'s frames from `frame_idx` on (a track that jumped to another target)."""
    obj = store.get_object(obj_id)
    later = {f: state for f, state in store.states(obj_id).items() if f >= frame_idx}
    if not later:
        raise ValueError(f"{obj.name} has no frames from frame {frame_idx} on: nothing to split off")
    if len(later) == len(store.frames(obj_id)):
        raise ValueError(f"{obj.name} has no frames before frame {frame_idx}: split at a later frame")
    with store.macro(f"Split {obj.name} at frame {frame_idx}"):
        new = store.add_object(obj.kind, f"{obj.name} (from {frame_idx})", label=obj.label)
        store.set_states(new.obj_id, later)
        store.set_states(obj_id, dict.fromkeys(later))
        _move_attributes(store, {(obj_id, f): (new.obj_id, f) for f in later})
        if labels.attributes_of(store, obj_id):  # the new object is the same kind of thing
            store.set_meta(labels.VALUES_KEY, {**labels.values(store),
                                               (new.obj_id, None): labels.attributes_of(store, obj_id)})
    return new


def swap_objects(store: AnnotationStore, a: int, b: int, frame_idx: int) -> None:
    """From `frame_idx` on, `a` and `b` trade their frames (two tracks that switched targets)."""
    obj_a, obj_b = _same_kind(store, a, b, "swap")
    later_a = {f: s for f, s in store.states(a).items() if f >= frame_idx}
    later_b = {f: s for f, s in store.states(b).items() if f >= frame_idx}
    if not later_a and not later_b:
        raise ValueError(f"neither {obj_a.name} nor {obj_b.name} has frames from frame {frame_idx} on")
    with store.macro(f"Swap {obj_a.name} and {obj_b.name} from frame {frame_idx}"):
        frames = later_a.keys() | later_b.keys()
        store.set_states(a, {f: later_b.get(f) for f in frames})
        store.set_states(b, {f: later_a.get(f) for f in frames})
        _move_attributes(store, {**{(a, f): (b, f) for f in frames}, **{(b, f): (a, f) for f in frames}})
