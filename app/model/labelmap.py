"""Painting mask objects into one label map per frame (pixel value = obj_id), as NPZ and PNG need."""
from __future__ import annotations

import numpy as np

from .errors import FormatError
from .objects import TrackObject
from .store import AnnotationStore


def mask_objects(store: AnnotationStore, max_id: int, what: str) -> list[TrackObject]:
    """The store's mask objects, checked to fit `what`, which holds ids 1..max_id."""
    objects = [obj for obj in store.objects if obj.kind == "mask"]
    for obj in objects:
        if obj.obj_id > max_id:
            raise FormatError(f"{obj.name!r} has id {obj.obj_id}, but {what} holds ids 1..{max_id}")
    return objects


def label_map(store: AnnotationStore, objects: list[TrackObject], frame_idx: int, shape: tuple[int, int],
              dtype) -> np.ndarray:
    """(H, W) label map; where masks overlap, the object listed later wins. Hidden-by-tracker
    (visible false) states are not painted."""
    labels = np.zeros(shape, dtype)
    for obj in objects:
        state = store.get_state(obj.obj_id, frame_idx)
        if state is not None and state.visible and state.mask is not None:
            labels[state.mask.decode()] = obj.obj_id
    return labels
