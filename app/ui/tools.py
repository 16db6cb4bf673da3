"""Annotation tools: what a click or drag on the canvas does (select, point, box, brush, eraser,
fill, click-to-mask). Every finished edit is one keyframe written through the session (undoable).

Coordinates arrive as image (scene) coordinates; points and clicks are stored in pixel-index
coordinates, i.e. half a pixel less than where they are drawn.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

from trackstudio.app.model import FrameState
from trackstudio.app.model.prompts import on_image, prompt_problem

from .overlays import fill_region, paint_disc

TOOLS = ("select", "point", "box", "brush", "eraser", "fill", "click")
TOOL_KIND = {"point": "point", "box": "box", "brush": "mask", "eraser": "mask", "fill": "mask", "click": "mask"}
TOOL_HINTS = {
    "select": "Select: click an object to select it, drag a point to move it, drag elsewhere to pan, wheel to zoom.",
    "point": "Point: click adds a point, drag a point to move it, Ctrl+click puts the selected point here.",
    "box": "Box: drag to draw the selected box object's box; drag its handles to resize it.",
    "brush": "Brush: paint the selected mask ([ and ] change the size).",
    "eraser": "Eraser: erase from the selected mask ([ and ] change the size).",
    "fill": "Fill: click inside a closed outline of the selected mask to fill it.",
    "click": "Click-to-mask: left click = object, right or Shift+click = background, drag = box.",
}
MIN_BOX_SIDE = 2.0  # image pixels: a smaller drag is a slip, not a box


@dataclass
class _ClickPrompt:
    """The clicks and box given so far for one object on one frame (click-to-mask)."""

    obj_id: int
    frame_idx: int
    clicks: list[tuple[float, float, int]] = field(default_factory=list)
    box: np.ndarray | None = None


@dataclass
class _Drag:
    kind: str  # "move_point" | "box" | "stroke"
    obj_id: int | None
    start: tuple[float, float]
    last: tuple[float, float]


class ToolController(QObject):
    tool_changed = Signal(str)
    brush_changed = Signal(float)
    mask_requested = Signal(int, int, object, object)  # obj_id, frame_idx, clicks (K, 3) | None, box | None

    def __init__(self, canvas, session):
        super().__init__(canvas)
        self.canvas, self.session = canvas, session
        self.tool = "select"
        self.brush_radius = 10.0  # image pixels
        self._drag: _Drag | None = None
        self._working: tuple[int, int, np.ndarray] | None = None  # obj_id, frame_idx, (H, W) bool
        self._prompt: _ClickPrompt | None = None
        self._live_point: tuple[int, np.ndarray] | None = None
        session.frame_changed.connect(lambda _f: self._forget_prompt())
        session.selection_changed.connect(lambda _o: self._forget_prompt())

    # ---- state shown by the canvas -------------------------------------------------------
    def reset(self) -> None:
        self._drag = None
        self._live_point = None
        self._working = None
        self._prompt = None

    def working_mask(self, obj_id: int) -> np.ndarray | None:
        if self._working is not None and self._working[0] == obj_id and self._working[1] == self.session.frame_idx:
            return self._working[2]
        return None

    def pending_clicks(self) -> list[tuple[float, float, int]]:
        if self.tool != "click" or self.session.selected is None:
            return []
        prompt = self._prompt_for(self.session.selected, create=False)
        return list(prompt.clicks) if prompt is not None else []

    def pending_box(self) -> np.ndarray | None:
        if self._drag is not None and self._drag.kind == "box":
            return _box_from(self._drag.start, self._drag.last)
        return None

    # ---- settings ------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; tools: {', '.join(TOOLS)}")
        self.tool = tool
        self._drag = None
        self.canvas.show_brush_cursor(0, 0, None)
        self.tool_changed.emit(tool)
        self.canvas.message.emit(TOOL_HINTS[tool])
        self.canvas.refresh()

    def scale_brush(self, factor: float) -> None:
        self.brush_radius = float(min(max(self.brush_radius * factor, 1.0), 400.0))
        self.brush_changed.emit(self.brush_radius)
        self.canvas.message.emit(f"Brush radius {self.brush_radius:.0f} px")

    # ---- mouse ---------------------------------------------------------------------------
    def click(self, x: float, y: float, button, modifiers) -> bool:
        if self.session.video is None:
            return False
        right = button == Qt.MouseButton.RightButton
        if self.tool == "click":
            negative = right or bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
            self._add_click(x, y, 0 if negative else 1)
            return True
        if right:
            return False
        if self.tool == "select":
            hit = self.canvas.object_at(x, y)
            if hit is not None:
                self.session.select(hit)
            return True
        if self.tool == "point":  # as in CVAT and napari: a click adds, a drag moves
            if modifiers & Qt.KeyboardModifier.ControlModifier:
                self._place_point(x, y, new=False)  # the selected point, e.g. where it reappears
                return True
            hit = self.canvas.point_at(x, y)
            if hit is not None:
                self.session.select(hit)
            else:
                self._place_point(x, y, new=True)
            return True
        if self.tool in ("brush", "eraser"):
            if self._begin_stroke(x, y):
                self._finish_stroke()
            return True
        if self.tool == "fill":
            self._fill(x, y)
            return True
        return False

    def drag_start(self, x: float, y: float, modifiers) -> bool:
        if self.session.video is None:
            return False
        if self.tool in ("select", "point"):
            hit = self.canvas.point_at(x, y)
            if hit is None or not self._can_edit():
                return False  # the view pans instead
            self.session.select(hit)
            self._drag = _Drag("move_point", hit, (x, y), (x, y))
            return True
        if self.tool in ("box", "click"):
            if not self._can_edit():
                return True
            self._drag = _Drag("box", None, (x, y), (x, y))
            return True
        if self.tool in ("brush", "eraser"):
            if self._begin_stroke(x, y):
                self._drag = _Drag("stroke", self._working[0], (x, y), (x, y))
            return True
        return False

    def drag_move(self, x: float, y: float) -> None:
        drag = self._drag
        if drag is None:
            return
        if drag.kind == "stroke" and self._working is not None:
            paint_disc(self._working[2], drag.last, (x, y), self.brush_radius, self.tool == "brush")
            self.canvas.show_brush_cursor(x, y, self.brush_radius)
        elif drag.kind == "move_point":
            self._write_point(drag.obj_id, x, y, live=True)
        drag.last = (x, y)
        self.canvas.refresh()

    def drag_end(self, x: float, y: float) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return
        if drag.kind == "stroke":
            if self._working is not None:
                paint_disc(self._working[2], drag.last, (x, y), self.brush_radius, self.tool == "brush")
            self._finish_stroke()
        elif drag.kind == "move_point":
            self._write_point(drag.obj_id, x, y, live=False)
        elif drag.kind == "box":
            drag.last = (x, y)
            box = self._drawn_box(_box_from(drag.start, drag.last))
            if box is not None:
                if self.tool == "box":
                    obj_id = self._target("box")
                    self.session.edit_state(obj_id, FrameState(box=box, keyframe=True))
                else:
                    self._set_prompt_box(box)
        self.canvas.refresh()

    def hover(self, x: float, y: float) -> None:
        if self.tool in ("brush", "eraser"):
            self.canvas.show_brush_cursor(x, y, self.brush_radius)

    def roi_moved(self, roi) -> None:
        """The selected box's handles were dragged: the new box is a keyframe on this frame."""
        obj_id = self.session.selected
        box = self.canvas.roi_box()
        if obj_id is None or box is None or not self._can_edit():
            self.canvas.refresh()
            return
        box = self._clip_box(box)
        if box[2] - box[0] < MIN_BOX_SIDE or box[3] - box[1] < MIN_BOX_SIDE:
            self.canvas.message.emit("Box: too small to track; it was left as it was.")
            self.canvas.refresh()
            return
        state = self.session.state(obj_id)
        if state is None or state.box is None or not np.allclose(state.box, box, atol=1e-3):
            self.session.edit_state(obj_id, FrameState(box=box, keyframe=True))

    # ---- edits ---------------------------------------------------------------------------
    def _can_edit(self) -> bool:
        if not self.session.editing_enabled:
            self.canvas.message.emit("Tracking is running: wait for it or press Esc to cancel, then edit.")
            return False
        if self.canvas.frame_problem:
            self.canvas.message.emit(f"{self.canvas.frame_problem} — not annotating a frame you cannot see.")
            return False
        return True

    def _target(self, kind: str, new: bool = False) -> int:
        """The selected object when it has `kind` (and `new` is off); otherwise a new object of that kind, selected."""
        store = self.session.store
        selected = self.session.selected
        if not new and selected is not None and store.get_object(selected).kind == kind:
            return selected
        obj = store.add_object(kind)
        self.session.select(obj.obj_id)
        if new:
            self.canvas.message.emit(f"Added {obj.name}. Drag it to move it; a click elsewhere adds another.")
        else:
            self.canvas.message.emit(f"Added {obj.name}. Edits now go to it; select another object to edit that one.")
        return obj.obj_id

    def _to_point(self, x: float, y: float) -> np.ndarray:
        info = self.session.video.info
        return np.array([min(max(x - 0.5, 0.0), info.width - 1.0), min(max(y - 0.5, 0.0), info.height - 1.0)],
                        np.float32)

    def _drawn_box(self, drawn: np.ndarray) -> np.ndarray | None:
        """The part of a drawn box inside the frame; None, with a message, for one that misses it
        (the same check as a prompts file gets before a run); None for a slip of the mouse."""
        if drawn[2] - drawn[0] < MIN_BOX_SIDE or drawn[3] - drawn[1] < MIN_BOX_SIDE:
            return None
        info = self.session.video.info
        problem = prompt_problem(FrameState(box=drawn), info.width, info.height)
        box = self._clip_box(drawn)
        if problem is None and (box[2] - box[0] < MIN_BOX_SIDE or box[3] - box[1] < MIN_BOX_SIDE):
            problem = "box", "only a sliver of the box lies inside the frame"
        if problem is not None:
            self.canvas.message.emit(f"Box not added: {problem[1]}. Draw it over the image.")
            return None
        return box

    def _on_image(self, x: float, y: float, what: str) -> bool:
        """Whether a click at scene (x, y) hits the image; a message when it does not."""
        info = self.session.video.info
        if on_image((x - 0.5, y - 0.5), info.width, info.height):
            return True
        self.canvas.message.emit(f"{what} not added: ({x:.0f}, {y:.0f}) is outside the {info.width}x{info.height} "
                                 "frame. Click on the image.")
        return False

    def _clip_box(self, box: np.ndarray) -> np.ndarray:
        info = self.session.video.info
        return np.clip(box, 0, [info.width, info.height, info.width, info.height]).astype(np.float32)

    def _place_point(self, x: float, y: float, new: bool) -> None:
        if not self._can_edit() or not self._on_image(x, y, "Point"):
            return
        with self.session.store.macro("Add point" if new else "Place point"):  # one undo step
            obj_id = self._target("point", new=new)
            self.session.edit_state(obj_id, FrameState(point=self._to_point(x, y), visible=True, keyframe=True))

    def _write_point(self, obj_id: int, x: float, y: float, live: bool) -> None:
        """Moving a point: the canvas follows the mouse; the store gets one edit at the end."""
        point = self._to_point(x, y)
        if live:
            self._live_point = (obj_id, point)
            return
        self._live_point = None
        self.session.edit_state(obj_id, FrameState(point=point, visible=True, keyframe=True))

    def live_point(self, obj_id: int) -> np.ndarray | None:
        """Where a point being dragged is right now (not yet in the store)."""
        if self._live_point is not None and self._live_point[0] == obj_id:
            return self._live_point[1]
        return None

    def _begin_stroke(self, x: float, y: float) -> bool:
        if not self._can_edit():
            return False
        obj_id = self._target("mask")
        state = self.session.state(obj_id)
        info = self.session.video.info
        if state is not None and state.mask is not None and state.mask.size == (info.height, info.width):
            mask = state.mask.decode().copy()
        else:
            mask = np.zeros((info.height, info.width), bool)
        paint_disc(mask, (x, y), (x, y), self.brush_radius, self.tool == "brush")
        self._working = (obj_id, self.session.frame_idx, mask)
        self.canvas.refresh()
        return True

    def _finish_stroke(self) -> None:
        if self._working is None:
            return
        obj_id, frame_idx, mask = self._working
        self._working = None
        if frame_idx == self.session.frame_idx and obj_id in self.session.store:
            self.session.edit_state(obj_id, FrameState(mask=mask, visible=bool(mask.any()), keyframe=True))

    def _fill(self, x: float, y: float) -> None:
        if not self._can_edit():
            return
        obj_id = self._target("mask")
        state = self.session.state(obj_id)
        if state is None or state.mask is None:
            self.canvas.message.emit("Fill: paint an outline with the brush first, then click inside it.")
            return
        filled = fill_region(state.mask.decode(), int(x), int(y))
        if filled is None:
            self.canvas.message.emit("Fill: click inside a closed outline of the mask (the area under the "
                                     "click reaches the frame edge or is already filled).")
            return
        self.session.edit_state(obj_id, FrameState(mask=filled, visible=True, keyframe=True))

    # ---- click-to-mask -------------------------------------------------------------------
    def _forget_prompt(self) -> None:
        self._prompt = None

    def _prompt_for(self, obj_id: int, create: bool) -> _ClickPrompt | None:
        frame_idx = self.session.frame_idx
        if self._prompt is not None and (self._prompt.obj_id, self._prompt.frame_idx) == (obj_id, frame_idx):
            return self._prompt
        state = self.session.state(obj_id, frame_idx)
        stored = state is not None and state.keyframe and (state.clicks is not None or state.box is not None)
        if not stored and not create:
            return None
        prompt = _ClickPrompt(obj_id, frame_idx)
        if stored:  # refine what was clicked before on this frame
            if state.clicks is not None:
                prompt.clicks = [tuple(c) for c in state.clicks.tolist()]
            prompt.box = state.box
        self._prompt = prompt
        return prompt

    def _add_click(self, x: float, y: float, label: int) -> None:
        if not self._can_edit() or not self._on_image(x, y, "Click"):
            return
        prompt = self._prompt_for(self._target("mask"), create=True)
        px, py = self._to_point(x, y)
        prompt.clicks.append((float(px), float(py), label))
        self._submit(prompt)

    def _set_prompt_box(self, box: np.ndarray) -> None:
        prompt = self._prompt_for(self._target("mask"), create=True)
        prompt.box = box
        self._submit(prompt)

    def _submit(self, prompt: _ClickPrompt) -> None:
        if not any(label == 1 for _x, _y, label in prompt.clicks) and prompt.box is None:
            self.canvas.message.emit("Click-to-mask: add a positive (left) click or a box first.")
            self.canvas.refresh()
            return
        clicks = np.array(prompt.clicks, np.float32).reshape(-1, 3) if prompt.clicks else None
        self.mask_requested.emit(prompt.obj_id, prompt.frame_idx, clicks, prompt.box)
        self.canvas.refresh()


def _box_from(a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])], np.float32)
