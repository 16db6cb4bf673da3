"""The frame canvas: a pyqtgraph ViewBox (wheel zoom, drag pan, crisp pixels) with the overlays.

Image coordinates are scene coordinates: the frame covers [0, W] x [0, H], pixel (col, row) the
unit square at (col, row). Boxes use them directly; points (pixel-index coordinates) sit at the
centre of their pixel, +0.5. Mouse input goes to the ToolController (tools.py).
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import numpy.ma  # noqa: F401  (pyqtgraph imports it lazily on a first plot update: ~100 ms in the middle of a run)
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem, QWidget

from trackstudio.app.model import FrameState

from .overlays import (POINT_ATTENTION_DECADES, OverlayOptions, attention_display, compose_masks, heatmap_lut,
                       main_part_box)
from .session import Session
from .tools import ToolController

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

POINT_SIZE = 11  # screen pixels
HIT_RADIUS = 9  # screen pixels: how close a click must be to grab a point or handle
UNREADABLE_RGBA = (48, 48, 48, 255)  # stands in for a frame that cannot be decoded


class _ToolViewBox(pg.ViewBox):
    """A ViewBox that hands left-button input to the active tool; middle-drag and wheel still pan/zoom."""

    def __init__(self, canvas: Canvas):
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self._canvas = canvas
        self._dragging_tool = False

    def _image_pos(self, ev) -> tuple[float, float]:
        p = self.mapSceneToView(ev.scenePos())
        return p.x(), p.y()

    def mouseClickEvent(self, ev):
        if ev.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            x, y = self._image_pos(ev)
            if self._canvas.tools.click(x, y, ev.button(), ev.modifiers()):
                ev.accept()
                return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == Qt.MouseButton.LeftButton:
            tools = self._canvas.tools
            if ev.isStart():
                p = self.mapSceneToView(ev.buttonDownScenePos())
                self._dragging_tool = tools.drag_start(p.x(), p.y(), ev.modifiers())
            if self._dragging_tool:
                ev.accept()
                x, y = self._image_pos(ev)
                if ev.isFinish():
                    self._dragging_tool = False
                    tools.drag_end(x, y)
                else:
                    tools.drag_move(x, y)
                return
        if ev.button() == Qt.MouseButton.RightButton:
            ev.ignore()  # right button is a negative click, not a zoom drag
            return
        super().mouseDragEvent(ev, axis)

    def hoverEvent(self, ev):
        if not ev.isExit():
            p = self.mapSceneToView(ev.scenePos())
            self._canvas.tools.hover(p.x(), p.y())


class _BoxGraphic:
    """A drawn box with its name/score tag (not editable: the selected box gets a ROI instead)."""

    def __init__(self, viewbox: pg.ViewBox):
        self.rect = QGraphicsRectItem()
        self.rect.setZValue(20)
        self.text = pg.TextItem(anchor=(0, 1))
        self.text.setZValue(30)
        self.corner = (0.0, 0.0)  # image point the tag sits above (the box's top left)
        viewbox.addItem(self.rect, ignoreBounds=True)
        viewbox.addItem(self.text, ignoreBounds=True)
        _transparent_to_mouse(self.rect)
        _transparent_to_mouse(self.text)

    def show(self, box, color: str, label: str, dashed: bool, flagged: bool, draw_rect: bool) -> None:
        pen = QPen(QColor(color), 2)
        pen.setCosmetic(True)
        if dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.rect.setPen(pen)
        self.rect.setRect(QRectF(float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])))
        self.rect.setVisible(draw_rect)
        self.text.setText(label, color="#ffffff")
        self.text.fill = pg.mkBrush(QColor("#d95f02") if flagged else _alpha(color, 170))
        self.corner = (float(box[0]), float(box[1]))
        self.text.setPos(*self.corner)
        self.text.setVisible(bool(label))

    def hide(self) -> None:
        self.rect.setVisible(False)
        self.text.setVisible(False)


def _transparent_to_mouse(item) -> None:
    """Overlays only show things: presses must reach the tools (the ViewBox) under them."""
    item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)


def _alpha(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


@functools.lru_cache(maxsize=256)
def _pen(color: str, alpha: int = 255, width: float = 1.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """One pen object per style. A scatter item keeps a picture of every (symbol, size, pen, brush) it was
    given, keyed by the pen's and brush's identity: new pens on every redraw rendered every point's symbol
    again and grew that atlas until pyqtgraph failed to enlarge it (ValueError in the middle of a click)."""
    return pg.mkPen(_alpha(color, alpha), width=width, style=style)


@functools.lru_cache(maxsize=256)
def _brush(color: str | None) -> QBrush:
    """One brush object per colour (see _pen); None: no fill."""
    return pg.mkBrush(None if color is None else QColor(color))


class _Trails(pg.GraphicsObject):
    """Every point's trail in one item, drawn in one paint call: a curve item per point cost the window's thread
    about 1 ms per point and frame while a run is followed (the bounds, path and paint of each)."""

    def __init__(self):
        super().__init__()
        self.paths: list[tuple[QPainterPath, QPen]] = []
        self._bounds = QRectF()

    def set_trails(self, trails: list[tuple[list[tuple[float, float] | None], QPen]]) -> None:
        """Each trail: its positions oldest first (None where the point was hidden: a gap) and its pen."""
        self.prepareGeometryChange()
        self.paths, self._bounds = [], QRectF()
        for positions, pen in trails:
            path, drawing = QPainterPath(), False
            for xy in positions:
                if xy is None:
                    drawing = False
                elif drawing:
                    path.lineTo(*xy)
                else:
                    path.moveTo(*xy)
                    drawing = True
            if path.elementCount() > 1:
                self.paths.append((path, pen))
                self._bounds = self._bounds.united(path.boundingRect())
        self.update()

    def boundingRect(self) -> QRectF:
        pad = 2.0 * (self.pixelLength(None) or 1.0)  # the pens are 2 screen pixels wide
        return self._bounds.adjusted(-pad, -pad, pad, pad)

    def viewTransformChanged(self):
        self.prepareGeometryChange()  # the padding in image pixels changes with the zoom

    def paint(self, painter: QPainter, *_args) -> None:
        for path, pen in self.paths:
            painter.setPen(pen)
            painter.drawPath(path)


class Canvas(pg.GraphicsView):
    """Shows the session's current frame with every overlay; redraws at most once per event-loop turn."""

    message = Signal(str)  # hints and problems for the status bar

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.options = OverlayOptions()
        self.setBackground("#202124")
        self.setMinimumSize(200, 150)
        self.viewbox = _ToolViewBox(self)
        self.setCentralItem(self.viewbox)
        self.attention_legend = AttentionLegend(self)
        self.attention_legend.hide()
        self.frame_item = pg.ImageItem()
        self.mask_item = pg.ImageItem()
        self.attention_item = pg.ImageItem()
        # attention above the mask fill (under it, a filled mask hid exactly the part worth seeing)
        for z, item in enumerate((self.frame_item, self.mask_item, self.attention_item)):
            item.setZValue(z)
            self.viewbox.addItem(item)
        self._boxes: list[_BoxGraphic] = []
        self.trails = _Trails()
        self.trails.setZValue(35)
        _transparent_to_mouse(self.trails)
        self.viewbox.addItem(self.trails, ignoreBounds=True)
        self.points_item = pg.ScatterPlotItem(pxMode=True)
        self.points_item.setZValue(40)
        self.clicks_item = pg.ScatterPlotItem(pxMode=True)
        self.clicks_item.setZValue(45)
        self.draft_rect = QGraphicsRectItem()
        self.draft_rect.setZValue(50)
        pen = QPen(QColor("#ffffff"), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.draft_rect.setPen(pen)
        self.draft_rect.hide()
        self.brush_cursor = QGraphicsEllipseItem()
        cursor_pen = QPen(QColor("#ffffff"), 1)
        cursor_pen.setCosmetic(True)
        self.brush_cursor.setPen(cursor_pen)
        self.brush_cursor.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.brush_cursor.setZValue(60)
        self.brush_cursor.hide()
        for item in (self.points_item, self.clicks_item, self.draft_rect, self.brush_cursor):
            self.viewbox.addItem(item, ignoreBounds=True)
        for item in (self.frame_item, self.mask_item, self.attention_item, self.points_item, self.clicks_item,
                     self.draft_rect, self.brush_cursor):
            _transparent_to_mouse(item)
        self.frame_problem = ""  # why the current frame cannot be shown ("" when it is)
        self.problem_text = pg.TextItem(color="#ffcc80", anchor=(0.5, 0.5))
        self.problem_text.setZValue(70)
        self.problem_text.hide()
        self.viewbox.addItem(self.problem_text, ignoreBounds=True)
        _transparent_to_mouse(self.problem_text)
        self.roi: pg.ROI | None = None
        self._roi_obj: int | None = None
        self._shown_frame: tuple[int, int] | None = None  # (id(video), frame_idx) on screen
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh_now)
        self.tools = ToolController(self, session)
        self.viewbox.sigRangeChanged.connect(lambda *_: self._stack_tags())

        session.video_changed.connect(self._on_video_changed)
        session.frame_changed.connect(lambda _f: self.refresh())
        session.selection_changed.connect(lambda _o: self.refresh())
        session.objects_changed.connect(self.refresh)
        session.states_changed.connect(self._on_states_changed)
        session.editing_enabled_changed.connect(lambda _e: self.refresh())

    # ---- coordinates ---------------------------------------------------------------------
    def image_to_widget(self, x: float, y: float) -> QPointF:
        """Where image point (x, y) is on this widget's viewport (for tests and tooltips)."""
        return QPointF(self.mapFromScene(self.viewbox.mapViewToScene(QPointF(x, y))))

    def pixel_size(self) -> float:
        """Image pixels per screen pixel at the current zoom."""
        size = self.viewbox.viewPixelSize()
        return float(max(size[0], size[1])) or 1.0

    def fit(self) -> None:
        if self.session.video is not None:
            info = self.session.video.info
            self.viewbox.setRange(QRectF(0, 0, info.width, info.height), padding=0.02)

    # ---- redraw --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw soon (coalesced): many store events in one turn cost one redraw."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _on_video_changed(self) -> None:
        self._shown_frame = None
        self.tools.reset()
        self.refresh_now()
        self.fit()

    def _on_states_changed(self, obj_id: int, frame_idxs) -> None:
        f = self.session.frame_idx
        trail = self.options.trail_length if self.options.points else 0
        if any(f - trail <= i <= f for i in frame_idxs):
            self.refresh()

    def refresh_now(self) -> None:
        self._refresh_timer.stop()
        session = self.session
        if session.video is None:
            return
        key = (id(session.video), session.frame_idx)
        if key != self._shown_frame:
            self._shown_frame = key
            try:
                frame = session.frame()
            except Exception as exc:  # noqa: BLE001  (a frame that fails to decode: say so, keep going)
                self._show_unreadable(f"Frame {session.frame_idx} cannot be shown: {exc}")
            else:
                self.frame_problem = ""
                self.problem_text.hide()
                # RGBA with fixed levels takes pyqtgraph's fast path (no rescale, Qt's native ARGB32): ~3 ms vs ~8
                self.frame_item.setImage(cv2.cvtColor(frame, cv2.COLOR_RGB2RGBA), autoLevels=False, levels=(0, 255))
        self._draw_masks()
        self._draw_boxes()
        self._draw_points()
        self._draw_attention()
        self._draw_roi()
        self._draw_clicks()

    def _show_unreadable(self, problem: str) -> None:
        """A blank frame with the reason, never the previous picture (the user would annotate the wrong one)."""
        info = self.session.video.info
        self.frame_problem = problem
        self.frame_item.setImage(np.full((info.height, info.width, 4), UNREADABLE_RGBA, np.uint8), autoLevels=False,
                                 levels=(0, 255))
        self.problem_text.setText(problem)
        self.problem_text.setTextWidth(420)  # screen pixels: the text item ignores the zoom
        self.problem_text.setPos(info.width / 2, info.height / 2)
        self.problem_text.show()
        self.message.emit(problem)

    def _visible_objects(self, kind: str | None = None):
        store = self.session.store
        return [o for o in store.objects if not o.hidden and (kind is None or o.kind == kind)]

    def _draw_masks(self) -> None:
        info = self.session.video.info
        masks = []
        if self.options.masks:
            for obj in self._visible_objects("mask"):
                mask = self.tools.working_mask(obj.obj_id)
                if mask is None:
                    state = self.session.state(obj.obj_id)
                    if state is None or state.mask is None or not state.visible:
                        continue
                    mask = state.mask.decode()
                masks.append((mask, obj.color, obj.obj_id == self.session.selected))
        if masks:
            rgba = compose_masks((info.height, info.width), masks, self.options.mask_opacity, self.options.outlines)
            self.mask_item.setImage(rgba, autoLevels=False, levels=(0, 255))
            self.mask_item.setVisible(True)
        else:
            self.mask_item.setVisible(False)

    def _draw_boxes(self) -> None:
        used = 0
        opts = self.options
        if opts.boxes or opts.labels:
            for obj in self._visible_objects():
                if obj.kind == "point":
                    continue
                state = self.session.state(obj.obj_id)
                if state is None or not state.visible:
                    continue
                box = state.box
                if box is None and state.mask is not None:
                    box = main_part_box(state.mask.decode())
                if box is None:
                    continue
                if used == len(self._boxes):
                    self._boxes.append(_BoxGraphic(self.viewbox))
                label = _tag(obj, state) if opts.labels else ""
                flagged = state.score is not None and not state.keyframe and state.score < opts.low_confidence
                editing = self.roi is not None and self._roi_obj == obj.obj_id
                draw_rect = opts.boxes and obj.kind == "box" and not editing
                self._boxes[used].show(box, obj.color, label, dashed=not state.keyframe, flagged=flagged,
                                       draw_rect=draw_rect)
                used += 1
        for graphic in self._boxes[used:]:
            graphic.hide()
        self._stack_tags()

    def _stack_tags(self) -> None:
        """Each shown tag sits above its box's corner, raised by whole tag heights until it covers no tag
        placed before it (a mask object and a box object on the same target share a corner); where that
        leaves the view, it goes down into the box instead. In screen pixels, as the tags ignore the zoom:
        redone when the view zooms or pans."""
        placed: list[QRectF] = []
        for graphic in self._boxes:
            if not graphic.text.isVisible():
                continue
            corner = self.image_to_widget(*graphic.corner)
            size = graphic.text.boundingRect()
            left, width, height = corner.x(), size.width(), size.height()
            # anchor y: 1 is just above the corner, 2 one tag higher, 0 just below it, -1 one tag lower. At
            # anchor a the tag's top is corner.y - height * a: the anchors that overlap a placed tag in the same
            # columns are worked out once per tag (not per anchor tried: hundreds of objects stay quick)
            blocked = set()
            for other in placed:
                if other.left() < left + width and left < other.right():
                    low = (corner.y() - other.bottom()) / height
                    high = (corner.y() - other.top()) / height + 1.0
                    blocked.update(range(math.floor(low) + 1, math.ceil(high)))
            candidates = [*range(1, len(placed) + 2), *range(0, -len(placed) - 1, -1)]
            anchor_y = next((a for a in candidates if a not in blocked and (corner.y() - height * a >= 0 or a <= 0)),
                            candidates[-1])
            graphic.text.setAnchor((0, anchor_y))
            placed.append(QRectF(left, corner.y() - height * anchor_y, width, height))

    def _draw_points(self) -> None:
        spots, trails = [], []
        opts = self.options
        f = self.session.frame_idx
        if opts.points:
            for obj in self._visible_objects("point"):
                state = self.session.state(obj.obj_id)
                if opts.trail_length > 0:
                    positions = []
                    for i in range(max(0, f - opts.trail_length), f + 1):
                        s = self.session.state(obj.obj_id, i)
                        ok = s is not None and s.point is not None and s.visible
                        positions.append((float(s.point[0]) + 0.5, float(s.point[1]) + 0.5) if ok else None)
                    trails.append((positions, _pen(obj.color, 200, 2)))
                live = self.tools.live_point(obj.obj_id)
                if live is not None:
                    state = FrameState(point=live, visible=True, keyframe=True)
                if state is None or state.point is None:
                    continue
                spots.append(self._point_spot(obj, state))
        self.trails.set_trails(trails)
        self.points_item.setData(spots)

    def _point_spot(self, obj, state) -> dict:
        selected = obj.obj_id == self.session.selected
        unsure = state.score is not None and not state.keyframe and state.score < self.options.low_confidence
        outline = "#ff8c00" if unsure else "#ffffff" if selected else "#000000"
        if state.visible:
            brush, pen = _brush(obj.color), _pen(outline, width=2.5 if unsure or selected else 1.2)
        else:  # occluded: hollow and dimmed where the tracker thinks it is
            brush = _brush(None)
            pen = _pen(obj.color, 150, 2, Qt.PenStyle.SolidLine if unsure else Qt.PenStyle.DotLine)
        symbol = "star" if state.keyframe else ("t1" if unsure else "o")
        return {"pos": (float(state.point[0]) + 0.5, float(state.point[1]) + 0.5), "brush": brush, "pen": pen,
                "symbol": symbol, "size": POINT_SIZE + (4 if state.keyframe or selected else 0),
                "data": obj.obj_id}

    def _draw_attention(self) -> None:
        obj_id = self.session.selected
        attention = None
        if self.options.attention and obj_id is not None:
            attention = self.session.attention.get(obj_id, self.session.frame_idx)
        if attention is None:
            self.attention_item.setVisible(False)
            self.attention_legend.hide()
            return
        info = self.session.video.info
        obj = self.session.store.get_object(obj_id)
        self.attention_item.setImage(attention_display(attention, obj.kind, (info.height, info.width)),
                                     autoLevels=False, levels=(0, 1), lut=heatmap_lut(self.options.attention_opacity))
        self.attention_item.setRect(QRectF(0, 0, info.width, info.height))
        self.attention_item.setVisible(True)
        self.attention_legend.show_for(obj.name, obj.color, log_scale=obj.kind == "point")

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if hasattr(self, "attention_legend"):  # GraphicsView.__init__ resizes before the legend exists
            self.attention_legend.place()

    def _draw_roi(self) -> None:
        """The selected box object's box on this frame gets handles to move and resize it."""
        obj_id = self.session.selected
        state = self.session.state(obj_id) if obj_id is not None else None
        obj = self.session.store.get_object(obj_id) if state is not None else None
        wanted = (obj is not None and obj.kind == "box" and not obj.hidden and state.box is not None
                  and state.visible and self.tools.tool in ("select", "box") and self.session.editing_enabled)
        if not wanted:
            self._remove_roi()
            return
        box = state.box
        if self.roi is None or self._roi_obj != obj_id:
            self._remove_roi()
            self.roi = pg.ROI((box[0], box[1]), (box[2] - box[0], box[3] - box[1]), rotatable=False,
                              pen=pg.mkPen(obj.color, width=2), hoverPen=pg.mkPen("#ffffff", width=2),
                              handlePen=pg.mkPen("#ffffff"))
            for corner, anchor in (((0, 0), (1, 1)), ((1, 1), (0, 0)), ((1, 0), (0, 1)), ((0, 1), (1, 0))):
                self.roi.addScaleHandle(corner, anchor)
            self.roi.setZValue(55)
            self.roi.sigRegionChangeFinished.connect(self.tools.roi_moved)
            self.viewbox.addItem(self.roi, ignoreBounds=True)
            self._roi_obj = obj_id
        else:
            self.roi.setPen(pg.mkPen(obj.color, width=2))
            self.roi.setPos((float(box[0]), float(box[1])), update=False, finish=False)
            self.roi.setSize((float(box[2] - box[0]), float(box[3] - box[1])), finish=False)
        self.roi.setPen(pg.mkPen(obj.color, width=2, style=Qt.PenStyle.SolidLine if state.keyframe
                                 else Qt.PenStyle.DashLine))

    def _remove_roi(self) -> None:
        if self.roi is not None:
            self.viewbox.removeItem(self.roi)
            self.roi = None
            self._roi_obj = None

    def roi_box(self) -> np.ndarray | None:
        if self.roi is None:
            return None
        pos, size = self.roi.pos(), self.roi.size()
        return np.array([pos.x(), pos.y(), pos.x() + size.x(), pos.y() + size.y()], np.float32)

    def _draw_clicks(self) -> None:
        spots = []
        for x, y, label in self.tools.pending_clicks():
            spots.append({"pos": (x + 0.5, y + 0.5), "symbol": "+" if label else "x", "size": 16,
                          "brush": _brush("#00e676" if label else "#ff1744"), "pen": _pen("#000000")})
        self.clicks_item.setData(spots)
        draft = self.tools.pending_box()
        if draft is None:
            self.draft_rect.hide()
        else:
            self.draft_rect.setRect(QRectF(draft[0], draft[1], draft[2] - draft[0], draft[3] - draft[1]))
            self.draft_rect.show()

    def show_brush_cursor(self, x: float, y: float, radius: float | None) -> None:
        if radius is None:
            self.brush_cursor.hide()
            return
        self.brush_cursor.setRect(QRectF(x - radius, y - radius, 2 * radius, 2 * radius))
        self.brush_cursor.show()

    def point_at(self, x: float, y: float) -> int | None:
        """The visible point object drawn nearest to (x, y) within grabbing distance."""
        best, best_d = None, HIT_RADIUS * self.pixel_size()
        for obj in self._visible_objects("point"):
            state = self.session.state(obj.obj_id)
            if state is None or state.point is None:
                continue
            d = float(np.hypot(state.point[0] + 0.5 - x, state.point[1] + 0.5 - y))
            if d <= best_d:
                best, best_d = obj.obj_id, d
        return best

    def object_at(self, x: float, y: float) -> int | None:
        """What a click at (x, y) selects: a point first, then the smallest mask or box under it."""
        hit = self.point_at(x, y)
        if hit is not None:
            return hit
        candidates = []
        for obj in self._visible_objects():
            state = self.session.state(obj.obj_id)
            if state is None or not state.visible:
                continue
            if state.mask is not None:
                h, w = state.mask.size
                if 0 <= int(y) < h and 0 <= int(x) < w and state.mask.decode()[int(y), int(x)]:
                    candidates.append((state.mask.area(), obj.obj_id))
            elif state.box is not None:
                b = state.box
                if b[0] <= x <= b[2] and b[1] <= y <= b[3]:
                    candidates.append(((b[2] - b[0]) * (b[3] - b[1]), obj.obj_id))
        return min(candidates)[1] if candidates else None


class AttentionLegend(QWidget):
    """The attention overlay's key, in the canvas's lower-left corner: whose map, and the colour scale."""

    BAR_WIDTH, HEIGHT = 150, 38

    def __init__(self, canvas: Canvas):
        super().__init__(canvas)
        self._canvas = canvas
        self._title = ""
        self._color = "#ffffff"
        self._log_scale = False
        lut = heatmap_lut(1.0)
        bar = np.ascontiguousarray(np.repeat(lut[None, :, :3], 10, axis=0))  # (10, 256, 3) low -> high
        self._bar = QImage(bar.data, bar.shape[1], bar.shape[0], 3 * bar.shape[1], QImage.Format.Format_RGB888).copy()
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.resize(self.BAR_WIDTH + 16, self.HEIGHT)

    def show_for(self, name: str, color: str, log_scale: bool) -> None:
        self._title, self._color, self._log_scale = f"Attention · {name}", color, log_scale
        self.resize(max(self.BAR_WIDTH, self.fontMetrics().horizontalAdvance(self._title)) + 16, self.HEIGHT)
        self.place()
        self.show()
        self.update()

    def place(self) -> None:
        self.move(8, self._canvas.height() - self.height() - 8)

    def paintEvent(self, _event):
        painter = QPainter(self)
        painter.fillRect(self.rect(), _alpha("#202124", 200))
        painter.setPen(QColor(self._color))
        painter.drawText(QRect(8, 2, self.width() - 16, 14), Qt.AlignmentFlag.AlignLeft, self._title)
        painter.drawImage(QRect(8, 17, self.BAR_WIDTH, 8), self._bar)
        painter.setPen(QColor("#dddddd"))
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        low = f"1/{10 ** POINT_ATTENTION_DECADES:.0f}" if self._log_scale else "low"
        painter.drawText(QRect(8, 25, self.BAR_WIDTH, 12), Qt.AlignmentFlag.AlignLeft, low)
        painter.drawText(QRect(8, 25, self.BAR_WIDTH, 12), Qt.AlignmentFlag.AlignRight, "high")
        if self._log_scale:
            painter.drawText(QRect(8, 25, self.BAR_WIDTH, 12), Qt.AlignmentFlag.AlignHCenter, "log scale")


def _tag(obj, state) -> str:
    text = obj.name if not obj.label or obj.label == obj.name else f"{obj.name} [{obj.label}]"
    if state.keyframe:
        return f"{text} ◆"
    if state.score is not None:
        return f"{text} {state.score:.2f}"
    return text
