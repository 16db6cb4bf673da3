"""Overlays drawn into video frames with OpenCV (no Qt): masks, boxes, point trails, names and scores.

The look follows the window's canvas: the same mask fill and outlines (`compose_masks`, from
the Qt-free `app.ui.overlays`), object colours, name tags with the tracker's score, hollow
points where a point is hidden, a fading trail behind each point.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trackstudio.app.model import AnnotationStore, FrameState, TrackObject
from trackstudio.app.ui.overlays import compose_masks, hex_to_rgb, main_part_box

Snapshot = list[tuple[TrackObject, dict[int, FrameState]]]


@dataclass(frozen=True)
class RenderOptions:
    masks: bool = True
    mask_opacity: float = 0.45
    boxes: bool = True
    labels: bool = True
    points: bool = True
    trail_length: int = 15  # frames of past positions drawn behind each point; 0 = none


def snapshot(store: AnnotationStore) -> Snapshot:
    """The store's visible objects and their states, safe to read from another thread (states are immutable)."""
    return [(obj, store.states(obj.obj_id)) for obj in store.objects if not obj.hidden]


def draw_overlay(frame: np.ndarray, objects: Snapshot, frame_idx: int, options: RenderOptions = RenderOptions()
                 ) -> np.ndarray:
    """A copy of `frame` ((H, W, 3) uint8 RGB) with the objects' annotations on `frame_idx` drawn on it."""
    out = np.array(frame, copy=True)
    height, width = out.shape[:2]
    scale = max(height, 240) / 480  # line widths and text grow with the picture
    thickness = max(2, round(2 * scale))  # 1-pixel lines blur away in H.264's half-size colour planes
    present = [(obj, states, states.get(frame_idx)) for obj, states in objects]
    if options.masks:
        masks = [(state.mask.decode(), obj.color, False) for obj, _, state in present
                 if state is not None and state.visible and state.mask is not None]
        if masks:
            rgba = compose_masks((height, width), masks, options.mask_opacity, outlines=True)
            alpha = rgba[..., 3:4].astype(np.float32) / 255
            out[:] = (out * (1 - alpha) + rgba[..., :3] * alpha).round().astype(np.uint8)
    for obj, states, state in present:
        color = hex_to_rgb(obj.color)
        if obj.kind == "point":
            if options.points:
                _draw_point(out, states, frame_idx, state, color, options.trail_length, scale)
            anchor = None if state is None or state.point is None else (state.point[0] + 6 * scale, state.point[1])
        else:
            if state is None or not state.visible:
                continue
            box = state.box if state.box is not None else (main_part_box(state.mask.decode())
                                                           if state.mask is not None else None)
            if box is None:
                continue
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            if options.boxes and obj.kind == "box":
                cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, thickness, cv2.LINE_AA)
            anchor = (x1, y1)
        if options.labels and anchor is not None and state is not None:
            _draw_tag(out, tag_text(obj, state), anchor, color, scale)
    return out


def tag_text(obj: TrackObject, state: FrameState) -> str:
    """The name tag: name, [label] when it differs, and the tracker's score on tracked frames."""
    text = obj.name if not obj.label or obj.label == obj.name else f"{obj.name} [{obj.label}]"
    if not state.keyframe and state.score is not None:
        text += f" {state.score:.2f}"
    return text


def _draw_point(out: np.ndarray, states: dict[int, FrameState], frame_idx: int, state: FrameState | None,
                color: tuple[int, int, int], trail_length: int, scale: float) -> None:
    radius = max(2, round(4 * scale))
    trail = []
    for f in range(max(0, frame_idx - trail_length), frame_idx + 1):
        s = states.get(f)
        trail.append(None if s is None or s.point is None or not s.visible else s.point)
    for age, (a, b) in enumerate(zip(trail, trail[1:])):
        if a is not None and b is not None:  # older segments thinner: the trail fades into the past
            width = max(1, round(radius * (age + 1) / len(trail)))
            cv2.line(out, _px(a), _px(b), color, width, cv2.LINE_AA)
    if state is None or state.point is None:
        return
    if state.visible:
        cv2.circle(out, _px(state.point), radius, color, -1, cv2.LINE_AA)
        cv2.circle(out, _px(state.point), radius, (0, 0, 0), 1, cv2.LINE_AA)
    else:  # hidden: a hollow ring where the tracker believes it is
        cv2.circle(out, _px(state.point), radius, color, 1, cv2.LINE_AA)


def _draw_tag(out: np.ndarray, text: str, anchor, color: tuple[int, int, int], scale: float) -> None:
    font_scale = 0.45 * scale
    (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    x = int(np.clip(anchor[0], 0, max(0, out.shape[1] - w - 4)))
    y = int(np.clip(anchor[1] - 3, h + baseline + 2, out.shape[0] - 1))
    cv2.rectangle(out, (x, y - h - baseline - 2), (x + w + 4, y), color, -1)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)  # dark text on light colours
    cv2.putText(out, text, (x + 2, y - baseline), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1, cv2.LINE_AA)


def _px(point) -> tuple[int, int]:
    return int(round(float(point[0]))), int(round(float(point[1])))
