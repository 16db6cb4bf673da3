"""Reviewed frame ranges per object: a store value under the key "reviewed" (undoable, saved).

The value is `{obj_id: ((first, last), ...)}` with inclusive, sorted, non-overlapping ranges; it is
replaced, never changed in place. In files: `"reviewed": {"<obj_id>": [[first, last], ...]}`.
"""
from __future__ import annotations

import json

import numpy as np

from .errors import FormatError
from .store import AnnotationStore

KEY = "reviewed"
Ranges = tuple[tuple[int, int], ...]


def reviewed(store: AnnotationStore) -> dict[int, Ranges]:
    return store.meta(KEY) or {}


def merge_ranges(ranges) -> Ranges:
    """Sorted, with overlapping or touching ranges joined."""
    out: list[list[int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return tuple((a, b) for a, b in out)


def mark_reviewed(store: AnnotationStore, obj_ids, first: int, last: int, done: bool = True) -> None:
    """Mark frames first..last (inclusive) of these objects reviewed (or, done=False, not reviewed); one undo step."""
    first, last = min(first, last), max(first, last)
    value = dict(reviewed(store))
    for obj_id in obj_ids:
        store.get_object(obj_id)  # a clear KeyError for an unknown id
        keep = [r for r in value.get(obj_id, ()) if done or r[1] < first or r[0] > last]
        if not done:  # cut first..last out of the ranges it overlaps
            for a, b in value.get(obj_id, ()):
                if a <= last and b >= first:
                    keep += [(a, first - 1)] * (a < first) + [(last + 1, b)] * (b > last)
        ranges = merge_ranges(keep + [(first, last)] * done)
        if ranges:
            value[obj_id] = ranges
        else:
            value.pop(obj_id, None)
    what = "reviewed" if done else "not reviewed"
    store.set_meta(KEY, value or None, f"Mark frames {first}-{last} {what}")


def reviewed_mask(store: AnnotationStore, obj_id: int, num_frames: int) -> np.ndarray:
    """(T,) bool: frames of the object marked reviewed."""
    mask = np.zeros(num_frames, bool)
    for first, last in reviewed(store).get(obj_id, ()):
        mask[first:last + 1] = True
    return mask


def is_reviewed(store: AnnotationStore, obj_id: int, frame_idx: int) -> bool:
    return any(a <= frame_idx <= b for a, b in reviewed(store).get(obj_id, ()))


def to_json(store: AnnotationStore) -> dict | None:
    """The file value, for the store's objects only (None when nothing is reviewed)."""
    value = {str(obj_id): [list(r) for r in ranges] for obj_id, ranges in reviewed(store).items() if obj_id in store}
    return value or None


def from_json(value, store: AnnotationStore, num_frames: int) -> dict[int, Ranges]:
    """Validate a file's "reviewed" value against the loaded objects and the video length."""
    if not isinstance(value, dict):
        raise FormatError(f"expected an object, got {type(value).__name__}", KEY)
    out = {}
    for key, ranges in value.items():
        where = f"{KEY}[{json.dumps(key)}]"
        if not (isinstance(key, str) and key.isdigit() and int(key) in store):
            raise FormatError("expected the id of an object in this file", where)
        if not isinstance(ranges, list):
            raise FormatError(f"expected a list of [first, last] frame ranges, got {type(ranges).__name__}", where)
        for n, pair in enumerate(ranges):
            ok = (isinstance(pair, list) and len(pair) == 2 and all(type(f) is int for f in pair)
                  and 0 <= pair[0] <= pair[1] < num_frames)
            if not ok:
                raise FormatError(f"expected [first, last] with 0 <= first <= last < {num_frames}, got {pair!r}",
                                  f"{where}[{n}]")
        out[int(key)] = merge_ranges(tuple(pair) for pair in ranges)
    return out
