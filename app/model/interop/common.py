"""What every exchange format shares: imported tracks, adding them to a store, field checks, geometry.

Readers parse a whole file into `ImportedTrack`s first (raising `FormatError` with the file and
the field on the first problem); only then does `add_tracks` change the store, in one undo step.
So a bad file imports nothing.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from trackstudio.app.video import VideoInfo

from ..errors import FormatError
from ..objects import FrameState, TrackObject, state_problem
from ..rle import MaskRLE
from ..store import AnnotationStore


@dataclass
class ImportedTrack:
    """One object as a file describes it, before it joins a store."""

    kind: str  # "box" | "mask" | "point"
    name: str | None = None  # None: the store's default ("box 3")
    label: str = ""
    color: str | None = None
    states: dict[int, FrameState] = field(default_factory=dict)  # frame_idx -> state
    prompts: set[int] | None = None  # frames the file itself marks as keyframes; None: no such flag
    obj_id: int | None = None  # the id the file gives it, kept when it is free in the store


def add_tracks(store: AnnotationStore, tracks: list[ImportedTrack], *, tracked: bool = False,
               text: str = "Import") -> list[TrackObject]:
    """New objects for `tracks`, in one undo step.

    tracked=False: every imported state is a keyframe (ground truth the trackers carry on from).
    tracked=True: they are tracker output, except frames the file marks as keyframes itself
    (CVAT's keyframe flag, TAP-Vid query points), which stay keyframes.
    """
    for track in tracks:  # checked before the store changes, so a bad track imports nothing
        for frame_idx, state in track.states.items():
            problem = state_problem(track.kind, state)
            if problem:
                raise FormatError(f"{track.name or track.kind}, frame {frame_idx}: {problem}")
    created = []
    with store.macro(text):
        for track in tracks:
            obj_id = track.obj_id if track.obj_id is not None and track.obj_id not in store else None
            obj = store.add_object(track.kind, track.name, track.color, track.label, obj_id=obj_id)
            for frame_idx, state in sorted(track.states.items()):
                is_prompt = track.prompts is not None and frame_idx in track.prompts
                keyframe = is_prompt or not tracked
                store.set_state(obj.obj_id, frame_idx, dataclasses.replace(state, keyframe=keyframe))
            created.append(obj)
    return created


# ---- checks that name the field ---------------------------------------------------------------
def number(value, where: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise FormatError(f"expected a finite number, got {_show(value)}", where)
    if minimum is not None and value < minimum:
        raise FormatError(f"expected a number >= {minimum:g}, got {_show(value)}", where)
    return float(value)


def integer(value, where: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"expected an integer, got {_show(value)}", where)
    if minimum is not None and value < minimum:
        raise FormatError(f"expected an integer >= {minimum}, got {value}", where)
    return value


def parse_float(text: str, where: str) -> float:
    """A number written as text (CSV cells, XML attributes)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise FormatError(f"expected a number, got {_show(text)}", where) from None
    if not np.isfinite(value):
        raise FormatError(f"expected a finite number, got {_show(text)}", where)
    return value


def parse_int(text: str, where: str, *, minimum: int | None = None) -> int:
    value = parse_float(text, where)
    if value != int(value):
        raise FormatError(f"expected an integer, got {_show(text)}", where)
    if minimum is not None and value < minimum:
        raise FormatError(f"expected an integer >= {minimum}, got {_show(text)}", where)
    return int(value)


def check_frame(frame_idx: int, video: VideoInfo, where: str) -> int:
    if not 0 <= frame_idx < video.num_frames:
        raise FormatError(f"frame {frame_idx} is outside the video's {video.num_frames} frames "
                          f"(0..{video.num_frames - 1})", where)
    return frame_idx


def read_json(path: Path):
    from ..schema import parse_document

    try:
        return parse_document(path.read_bytes())
    except FormatError as exc:
        raise exc.in_file(path) from None


def _show(value) -> str:
    text = json.dumps(value) if not isinstance(value, np.generic) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def frame_number_in_name(name: str) -> int | None:
    """The last run of digits in a file name: `frame_000012.txt` -> 12, `img0042.png` -> 42."""
    digits = re.findall(r"\d+", Path(name).stem)
    return int(digits[-1]) if digits else None


def category_name(obj: TrackObject) -> str:
    """A class name for formats that need one: the object's label, else its kind."""
    return obj.label or obj.kind


# ---- geometry --------------------------------------------------------------------------------
def state_box(state: FrameState) -> np.ndarray | None:
    """[x1, y1, x2, y2] of a visible state: its box, else its mask's tight box."""
    if not state.visible:
        return None
    if state.box is not None:
        return state.box
    if state.mask is not None:
        return state.mask.bbox()
    return None


def mask_polygons(mask: np.ndarray, min_points: int = 3) -> list[np.ndarray]:
    """Outer contours of a bool (H, W) mask as (K, 2) float x, y arrays through its border pixels,
    largest first; parts of fewer than `min_points` corners are dropped (holes are not kept)."""
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = [c.reshape(-1, 2).astype(np.float64) for c in contours if len(c) >= min_points]
    polygons.sort(key=lambda p: -cv2.contourArea(p.astype(np.float32)))
    return polygons


def polygons_to_mask(polygons: list[np.ndarray], shape: tuple[int, int]) -> MaskRLE:
    """Fill (K, 2) x, y polygons into a (H, W) mask, the way pycocotools rasterises COCO polygons."""
    from pycocotools import mask as coco_mask

    height, width = shape
    rles = coco_mask.frPyObjects([np.asarray(p, np.float64).ravel().tolist() for p in polygons], height, width)
    merged = coco_mask.merge(rles) if len(rles) > 1 else rles[0]
    return MaskRLE(shape, merged["counts"].decode("ascii"))


def ensure_parent(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
