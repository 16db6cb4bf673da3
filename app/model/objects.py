"""What the store holds: objects (`TrackObject`) and their per-frame states (`FrameState`).

Both are immutable values, so the undo stack can keep references to old states without copying
them; edit through the store (`update_object`, `set_state`) or make new ones with
`dataclasses.replace`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .colors import is_hex_color
from .rle import MaskRLE

KINDS = ("box", "mask", "point")


@dataclass(frozen=True)
class TrackObject:
    obj_id: int  # >= 1; 0 is the background label in mask label maps
    name: str
    kind: str  # "box" | "mask" | "point"
    color: str  # "#rrggbb"
    label: str = ""  # class / category, free text
    hidden: bool = False  # hidden in the views; still tracked and saved

    def __post_init__(self):
        if isinstance(self.obj_id, bool) or not isinstance(self.obj_id, (int, np.integer)) or self.obj_id < 1:
            raise ValueError(f"obj_id must be an integer >= 1, got {self.obj_id!r}")
        object.__setattr__(self, "obj_id", int(self.obj_id))
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        if not isinstance(self.label, str):
            raise ValueError(f"label must be a string, got {self.label!r}")
        if not is_hex_color(self.color):
            raise ValueError(f"color must be '#rrggbb', got {self.color!r}")
        object.__setattr__(self, "color", self.color.lower())
        object.__setattr__(self, "hidden", bool(self.hidden))


@dataclass(frozen=True, eq=False, slots=True)
class FrameState:
    """One object on one frame. Arrays are copied on construction and made read-only."""

    box: np.ndarray | None = None  # (4,) float32 [x1, y1, x2, y2], x2/y2 the far edges
    mask: MaskRLE | None = None  # a bool (H, W) array is encoded on construction
    point: np.ndarray | None = None  # (2,) float32 [x, y], pixel-index coordinates
    visible: bool = True
    keyframe: bool = False  # True: user input; False: tracker output
    score: float | None = None
    clicks: np.ndarray | None = None  # (K, 3) float32 [x, y, label], label 1 positive / 0 negative

    def __post_init__(self):
        object.__setattr__(self, "box", _frozen_array(self.box, (4,), "box"))
        object.__setattr__(self, "point", _frozen_array(self.point, (2,), "point"))
        object.__setattr__(self, "clicks", _frozen_array(self.clicks, (-1, 3), "clicks"))
        if self.mask is not None and not isinstance(self.mask, MaskRLE):
            object.__setattr__(self, "mask", MaskRLE.encode(self.mask))
        if self.score is not None:
            score = float(self.score)
            if not math.isfinite(score):
                raise ValueError(f"score must be finite, got {self.score!r}")
            object.__setattr__(self, "score", score)
        object.__setattr__(self, "visible", bool(self.visible))
        object.__setattr__(self, "keyframe", bool(self.keyframe))

    def __eq__(self, other) -> bool:
        if not isinstance(other, FrameState):
            return NotImplemented
        return (_same_array(self.box, other.box) and self.mask == other.mask
                and _same_array(self.point, other.point) and _same_array(self.clicks, other.clicks)
                and (self.visible, self.keyframe, self.score) == (other.visible, other.keyframe, other.score))

    __hash__ = None


def _frozen_array(value, shape: tuple[int, ...], field: str) -> np.ndarray | None:
    if value is None:
        return None
    array = np.array(value, np.float32)
    try:
        array = array.reshape(shape)
    except ValueError:
        raise ValueError(f"{field} must have shape {shape}, got {array.shape}") from None
    if not np.isfinite(array).all():
        raise ValueError(f"{field} must be finite, got {array.tolist()}")
    array.flags.writeable = False
    return array


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))


def state_problem(kind: str, state: FrameState) -> str | None:
    """Why `state` cannot belong to an object of `kind`, or None when it can.

    A visible state needs its kind's geometry (a mask object may instead hold the box or clicks
    that prompt it); an invisible one may hold nothing, or a last known / predicted position.
    """
    if state.clicks is not None and not np.isin(state.clicks[:, 2], (0, 1)).all():
        return "click labels must be 1 (positive) or 0 (negative)"
    if state.box is not None and (state.box[2] < state.box[0] or state.box[3] < state.box[1]):
        return f"box must have x2 >= x1 and y2 >= y1, got {state.box.tolist()}"
    if not state.visible:
        return None
    if kind == "box" and state.box is None:
        return "a visible box entry needs a box"
    if kind == "point" and state.point is None:
        return "a visible point entry needs a point"
    if kind == "mask" and state.mask is None and state.clicks is None and state.box is None:
        return "a visible mask entry needs a mask (or the clicks or box that prompt it)"
    return None
