"""Can a keyframe prompt a tracker on this video? Checked before a run (CLI) and on drawing (window).

The file formats accept any finite geometry, since tracked results may lie partly or wholly
outside the frame; a *prompt* must show the tracker something: a box with an area that overlaps
the frame, a visible point or click on the image (in either pixel convention), a mask with at least one pixel.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from trackstudio.app.video import VideoInfo

from .errors import FormatError
from .objects import FrameState, TrackObject
from .store import AnnotationStore


def prompt_problem(state: FrameState, width: int, height: int) -> tuple[str, str] | None:
    """(field, why) when the keyframe `state` cannot prompt a tracker on a width x height frame."""
    if not state.visible:
        return None  # "not here": nothing to show the tracker
    frame = f"the {width}x{height} frame"
    if state.box is not None:
        x1, y1, x2, y2 = state.box.tolist()
        if x2 <= x1 or y2 <= y1:
            return "box", f"the box {_show(state.box)} has no area (x2 must exceed x1, y2 exceed y1)"
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            return "box", f"the box {_show(state.box)} lies entirely outside {frame}"
    if state.point is not None and not on_image(state.point, width, height, from_corner=True):
        return "point", f"the point {_show(state.point)} lies outside {frame}"
    if state.clicks is not None:
        for i, click in enumerate(state.clicks):
            if not on_image(click[:2], width, height, from_corner=True):
                return f"clicks[{i}]", f"the click {_show(click[:2])} lies outside {frame}"
    if state.mask is not None and state.mask.area() == 0:
        return "mask", "the mask is empty (no pixel set)"
    return None


def on_image(xy, width: int, height: int, from_corner: bool = False) -> bool:
    """Whether pixel-index coordinates fall on a pixel (pixel 0 spans -0.5..0.5). from_corner: also where
    coordinates measured from the image's corner (pixel 0 spans 0..1, as COCO keypoints and normalised
    coordinates times the frame's size give) fall on the image, up to width and height: a file's points may use
    either convention, and a point on the last pixel must not stop a run."""
    x, y = float(xy[0]), float(xy[1])
    if from_corner:
        return -0.5 <= x <= width and -0.5 <= y <= height
    return -0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5


def keyframe_problems(store: AnnotationStore, width: int, height: int
                      ) -> Iterator[tuple[int, TrackObject, int, str, str]]:
    """(object index, object, frame_idx, field, why) for each keyframe that cannot prompt."""
    for index, obj in enumerate(store.objects):
        for frame_idx in store.keyframes(obj.obj_id):
            problem = prompt_problem(store.get_state(obj.obj_id, frame_idx), width, height)
            if problem is not None:
                yield index, obj, frame_idx, *problem


def check_prompts(store: AnnotationStore, video: VideoInfo) -> None:
    """FormatError with the field path (as in the file) of the first keyframe that cannot prompt."""
    for index, _obj, frame_idx, field, why in keyframe_problems(store, video.width, video.height):
        raise FormatError(why, f"objects[{index}].frames[{json.dumps(str(frame_idx))}].{field}")


def _show(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in np.asarray(values, np.float64).tolist()) + "]"
