"""Moving through the video: slider and play controls, the score plot and per-object track strips.

All three share one frame axis (`FrameAxis`, taken from the slider's handle positions), so the
slider handle, the score plot's cursor and the strips' cursor sit at the same x for a frame, and
a click anywhere on them goes to the frame under the mouse. The strips scroll (many objects) and
can be filtered by name or to the selected object.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QScrollArea, QSizePolicy, QSlider, QSpinBox, QStyle,
                               QStyleOptionSlider, QToolButton, QVBoxLayout, QWidget)

from trackstudio.app.model import reviewed as rv

from .session import Session

# Per-frame status of an object, drawn in its strip (higher wins when frames share a pixel column).
NONE, ABSENT, TRACKED, KEYFRAME = 0, 1, 2, 3
STRIP_ROW = 14  # pixels per object row
NAME_WIDTH = 110  # pixels left of the frame axis: object names, the play button, the plot's score axis
VISIBLE_ROWS = 8  # rows shown before the strips scroll (the dock can be made taller)
PLOT_HEIGHT = 100  # the score plot: 0..1 with its frame-number axis
REVIEWED_COLOR = QColor("#66bb6a")  # a line under the strip
DOUBT_COLOR = QColor("#ef5350")  # a line over the strip: frames in the review queue


def frame_status(session: Session, obj_id: int) -> np.ndarray:
    """(T,) uint8 NONE / ABSENT / TRACKED / KEYFRAME for one object over the whole video."""
    status = np.zeros(session.num_frames, np.uint8)
    for frame_idx, state in session.store.states(obj_id).items():
        if frame_idx < len(status):
            status[frame_idx] = KEYFRAME if state.keyframe else (TRACKED if state.visible else ABSENT)
    return status


@dataclass(frozen=True)
class FrameAxis:
    """Frame f is centred at x = x0 + f * step (pixels, in the Timeline's coordinates)."""

    x0: float = 0.0
    step: float = 1.0
    num_frames: int = 0

    def x(self, frame_idx: float) -> float:
        return self.x0 + frame_idx * self.step

    def frame_at(self, x: float) -> int:
        return int(min(max(round((x - self.x0) / self.step), 0), max(0, self.num_frames - 1)))


class TrackStrips(QWidget):
    """One row per shown object: keyframes (solid, tall), tracked frames (colour), absent frames (grey),
    doubtful frames (a red line over the row) and reviewed frames (a green line under it). A click goes
    to a frame (and selects the row's object), a drag scrubs, a Shift+drag marks frames reviewed."""

    seek = Signal(int, object)  # frame_idx, obj_id
    range_marked = Signal(int, int, int)  # obj_id, first, last: a Shift+drag along a strip

    def __init__(self, session: Session, timeline: Timeline):
        super().__init__()
        self.session, self.timeline = session, timeline
        self.rows: list[int] = []  # obj_ids shown, top to bottom
        self.doubt_frames = None  # set by the window: obj_id -> (T,) bool of doubtful frames, or None
        self._status: dict[int, np.ndarray] = {}
        self._dirty: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)  # coalesce a propagation's many events into a few repaints
        self._timer.timeout.connect(self._recompute)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        session.video_changed.connect(self._reset)
        session.objects_changed.connect(self._reset)
        session.states_changed.connect(self._on_states)
        session.meta_changed.connect(lambda _key: self.update())
        session.editing_enabled_changed.connect(lambda _on: self.update())  # doubts show again after a run
        session.frame_changed.connect(self._move_cursor)
        self._images: dict[int, tuple[tuple, QImage]] = {}  # obj_id -> (what it shows, its row image)
        self._cursor_x: int | None = None
        self._marking: tuple[int, int, int] | None = None  # a Shift+drag: obj_id, row, first frame

    def sizeHint(self) -> QSize:
        return QSize(400, max(1, len(self.rows)) * STRIP_ROW + 2)

    def set_rows(self, obj_ids: list[int]) -> None:
        self.rows = obj_ids
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def _move_cursor(self, _frame_idx: int) -> None:
        """Repaint only the old and the new cursor columns (a run moves it every frame)."""
        x = int(round(self.cursor_x()))
        for column in {self._cursor_x, x} - {None}:
            self.update(QRect(column - 2, 0, 5, self.height()))

    def _reset(self) -> None:
        self._images.clear()
        self._status.clear()
        self._dirty = {o.obj_id for o in self.session.store.objects} if self.session.store else set()
        self._recompute()

    def _on_states(self, obj_id: int, _frames) -> None:
        self._dirty.add(obj_id)
        if not self._timer.isActive():
            self._timer.start()

    def _recompute(self) -> None:
        store = self.session.store
        for obj_id in self._dirty:
            if store is not None and obj_id in store:
                self._status[obj_id] = frame_status(self.session, obj_id)
                self._images.pop(obj_id, None)
        self._dirty.clear()
        self.update()

    def _axis(self) -> tuple[FrameAxis, float]:
        """The shared axis and this widget's x offset from the Timeline."""
        return self.timeline.axis, self.mapTo(self.timeline, QPoint(0, 0)).x()

    def frame_at(self, x: float) -> int:
        axis, offset = self._axis()
        return axis.frame_at(x + offset)

    def cursor_x(self) -> float:
        """Where the current frame's line is drawn, in this widget's coordinates."""
        axis, offset = self._axis()
        return axis.x(self.session.frame_idx) - offset

    def row_at(self, y: float) -> int | None:
        row = int(y // STRIP_ROW)
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def mousePressEvent(self, event):
        if not self.session.num_frames:
            return
        frame_idx, obj_id = self.frame_at(event.position().x()), self.row_at(event.position().y())
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and obj_id is not None:
            self._marking = (obj_id, self.rows.index(obj_id), frame_idx)
        self.seek.emit(frame_idx, obj_id)

    def mouseMoveEvent(self, event):
        if event.buttons() & Qt.MouseButton.LeftButton and self.session.num_frames:
            self.seek.emit(self.frame_at(event.position().x()), None)
            if self._marking is not None:
                self.update(QRect(0, self._marking[1] * STRIP_ROW, self.width(), STRIP_ROW))

    def mouseReleaseEvent(self, event):
        if self._marking is not None:
            obj_id, row, first = self._marking
            self._marking = None
            self.update(QRect(0, row * STRIP_ROW, self.width(), STRIP_ROW))
            last = self.frame_at(event.position().x())
            self.range_marked.emit(obj_id, min(first, last), max(first, last))

    def paintEvent(self, _event):
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#2b2b2b"))
        store = self.session.store
        n = self.session.num_frames
        if store is None or n == 0:
            return
        axis, offset = self._axis()
        left = int(round(axis.x(-0.5) - offset))
        width = max(1, int(round(axis.x(n - 0.5) - offset)) - left)
        exposed = _event.rect()
        for row, obj_id in enumerate(self.rows):
            if obj_id not in store or not exposed.intersects(QRect(0, row * STRIP_ROW, self.width(), STRIP_ROW)):
                continue  # only the rows in view (the scroll area shows a few of many)
            obj = store.get_object(obj_id)
            top = row * STRIP_ROW
            if obj_id == self.session.selected:
                painter.fillRect(QRect(0, top, self.width(), STRIP_ROW), QColor("#3d4a5c"))
            painter.setPen(QColor("#888888" if obj.hidden else obj.color))
            painter.drawText(QRect(4, top, max(1, left - 8), STRIP_ROW), Qt.AlignmentFlag.AlignVCenter, obj.name)
            status = self._status.get(obj_id)
            if status is not None:
                painter.drawImage(left, top + 1, self._cached_row(obj_id, status, width, obj.color))
            done = rv.reviewed_mask(store, obj_id, n)
            if done.any():
                painter.drawImage(left, top + STRIP_ROW - 3, self._mask_image(done, width, REVIEWED_COLOR))
            doubtful = self.doubt_frames(obj_id) if self.doubt_frames is not None else None
            if doubtful is not None and doubtful.any():
                painter.drawImage(left, top + 1, self._mask_image(doubtful, width, DOUBT_COLOR))
        if self._marking is not None:  # the range a Shift+drag is marking reviewed
            _obj_id, row, first = self._marking
            a, b = sorted((first, self.session.frame_idx))
            x0, x1 = int(round(axis.x(a - 0.5) - offset)), int(round(axis.x(b + 0.5) - offset))
            painter.fillRect(QRect(x0, row * STRIP_ROW + STRIP_ROW - 4, max(1, x1 - x0), 4), REVIEWED_COLOR)
        painter.setPen(QPen(QColor("#ffffff"), 1))
        self._cursor_x = x = int(round(self.cursor_x()))
        painter.drawLine(x, 0, x, self.height())

    def _cached_row(self, obj_id: int, status: np.ndarray, width: int, color: str) -> QImage:
        """The row image, remade only when the status, width or colour changed (not for a cursor move)."""
        key = (width, color)  # a recompute of the status drops the cached image
        cached = self._images.get(obj_id)
        if cached is None or cached[0] != key:
            cached = self._images[obj_id] = (key, self._row_image(status, width, color))
        return cached[1]

    @staticmethod
    def _columns(values: np.ndarray, width: int) -> np.ndarray:
        """(width,) per pixel column: the highest value of the frames it covers."""
        columns = np.zeros(width, values.dtype)
        np.maximum.at(columns, (np.arange(len(values)) * width) // len(values), values)
        if len(values) < width:  # fewer frames than pixels: stretch each frame over its columns
            columns = values[(np.arange(width) * len(values)) // width]
        return columns

    @classmethod
    def _row_image(cls, status: np.ndarray, width: int, color: str) -> QImage:
        columns = cls._columns(status, width)
        c = QColor(color)
        palette = np.array([[43, 43, 43], [110, 110, 110],
                            [c.red() // 2 + 40, c.green() // 2 + 40, c.blue() // 2 + 40],
                            [c.red(), c.green(), c.blue()]], np.uint8)
        rgb = np.repeat(palette[columns][None], STRIP_ROW - 2, axis=0)  # (h, w, 3)
        tracked_rows = slice(3, STRIP_ROW - 5)
        thin = (columns == TRACKED) | (columns == ABSENT)
        rgb[:3, thin] = palette[NONE]  # tracked/absent frames are thinner than keyframes
        rgb[tracked_rows.stop:, thin] = palette[NONE]
        return _image(rgb)

    @classmethod
    def _mask_image(cls, mask: np.ndarray, width: int, color: QColor) -> QImage:
        on = cls._columns(mask.astype(np.uint8), width).astype(bool)
        rgb = np.zeros((2, width, 3), np.uint8)
        rgb[:] = (43, 43, 43)
        rgb[:, on] = (color.red(), color.green(), color.blue())
        return _image(rgb)


def _image(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()  # own the pixels


class ScorePlot(pg.PlotWidget):
    """The selected object's score over time (and visibility), with the current frame marked. Its x
    range follows the timeline's frame axis; a click or drag on it goes to that frame."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent, background="#202124")
        self.session = session
        self.setFixedHeight(PLOT_HEIGHT)
        self.setMouseEnabled(x=False, y=False)  # the axis is shared: no zooming the plot alone
        self.setMenuEnabled(False)
        self.setYRange(-0.12, 1.12, padding=0)  # room for the 0 and 1 tick labels
        # the legend lives in the axis label, left of the frames, so it covers none of them
        self.setLabel("left", "<span style='color:#4fc3f7'>score</span> "
                              "<span style='color:#ffb74d'>visible</span>")
        self.getPlotItem().hideButtons()
        self.getAxis("left").setWidth(NAME_WIDTH - 30)
        self.getAxis("left").setTicks([[(0, "0"), (0.5, ".5"), (1, "1")]])
        self.showGrid(x=True, y=True, alpha=0.2)
        self.score_curve = self.plot([], [], pen=pg.mkPen("#4fc3f7", width=1.5), name="score")
        self.visible_curve = self.plot([], [], pen=pg.mkPen("#ffb74d", width=1, style=Qt.PenStyle.DashLine),
                                       name="visible")
        self.key_marks = pg.ScatterPlotItem(symbol="d", size=8, brush=pg.mkBrush("#ffffff"))
        self.addItem(self.key_marks)
        self.cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffffff"))
        self.cursor.sigDragged.connect(lambda line: session.set_frame(int(round(line.value()))))
        self.addItem(self.cursor)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.redraw)
        session.video_changed.connect(self.redraw)
        session.selection_changed.connect(lambda _o: self.redraw())
        session.objects_changed.connect(self.redraw)
        session.states_changed.connect(self._on_states)
        session.frame_changed.connect(lambda f: self.cursor.setValue(f))

    def frame_at(self, x: float) -> int:
        """The frame under viewport x."""
        scene = self.viewportTransform().inverted()[0].map(QPointF(x, 0))
        view = self.getPlotItem().vb.mapSceneToView(scene)
        return int(min(max(round(view.x()), 0), max(0, self.session.num_frames - 1)))

    def frame_x(self, frame_idx: float) -> float:
        """Viewport x of a frame."""
        scene = self.getPlotItem().vb.mapViewToScene(QPointF(frame_idx, 0))
        return self.viewportTransform().map(scene).x()

    def _plot_area(self) -> QRectF:
        """The view box in viewport coordinates."""
        return self.viewportTransform().mapRect(self.getPlotItem().vb.sceneBoundingRect())

    def mousePressEvent(self, event):
        plot_area = self._plot_area()
        if (event.button() == Qt.MouseButton.LeftButton and self.session.num_frames
                and plot_area.contains(event.position())):
            self.session.set_frame(self.frame_at(event.position().x()))
        super().mousePressEvent(event)

    def align(self, axis: FrameAxis, offset: float) -> None:
        """Set the x range so frame f sits at axis.x(f) (`offset`: the viewport's x in the Timeline)."""
        vb = self.getPlotItem().vb
        rect = self._plot_area()
        if rect.width() <= 0 or axis.step <= 0:
            return
        first = (rect.left() + offset - axis.x0) / axis.step  # the frame at the view box's left edge
        vb.setXRange(first, first + rect.width() / axis.step, padding=0)

    def _on_states(self, obj_id: int, _frames) -> None:
        if obj_id == self.session.selected and not self._timer.isActive():
            self._timer.start()

    def redraw(self) -> None:
        obj_id = self.session.selected
        store = self.session.store
        if store is None or obj_id is None or obj_id not in store:
            for curve in (self.score_curve, self.visible_curve):
                curve.setData([], [])
            self.key_marks.setData([], [])
            self.setTitle(None)
            return
        n = self.session.num_frames
        score = np.full(n, np.nan)
        visible = np.full(n, np.nan)
        keys = []
        for frame_idx, state in store.states(obj_id).items():
            if frame_idx >= n:
                continue
            visible[frame_idx] = 1.0 if state.visible else 0.0
            if state.keyframe:
                keys.append(frame_idx)
                score[frame_idx] = 1.0
            elif state.score is not None:
                score[frame_idx] = state.score
        frames = np.arange(n)
        self.score_curve.setData(frames, score, connect="finite")
        self.visible_curve.setData(frames, visible * 0.98, connect="finite")
        self.key_marks.setData(keys, [1.0] * len(keys))


class Timeline(QWidget):
    """Play/step controls and the frame slider, the score plot, and the scrolling track strips."""

    axis_changed = Signal()

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.axis = FrameAxis()
        self.play_button = QToolButton()
        self.play_button.setText("▶")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self.set_playing)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(session.set_frame)
        self.slider.installEventFilter(self)  # its geometry defines the frame axis
        self.spin = QSpinBox()
        self.spin.setKeyboardTracking(False)
        self.spin.valueChanged.connect(session.set_frame)
        self.spin.setToolTip("Current frame")
        self.count_label = QLabel("/ 0")
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter objects…")
        self.filter_edit.setToolTip("Show the strips of objects whose name or label contains this text")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._update_rows)
        self.selected_only = QToolButton()
        self.selected_only.setText("Selected")
        self.selected_only.setCheckable(True)
        self.selected_only.setToolTip("Show only the selected object's strip")
        self.selected_only.toggled.connect(self._update_rows)
        self.score_plot = ScorePlot(session)
        self.strips = TrackStrips(session, self)
        self.strips.seek.connect(self._on_strip_seek)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.strips)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # the axis never shifts
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setMinimumHeight(STRIP_ROW * 4)

        left = QWidget()  # the gutter left of the axis: as wide as the strips' name column
        left.setFixedWidth(NAME_WIDTH)
        left_row = QHBoxLayout(left)
        left_row.setContentsMargins(0, 0, 0, 0)
        left_row.addWidget(self.play_button)
        left_row.addStretch(1)
        right = QWidget()  # right of the axis, above the strips' scroll bar
        right_row = QHBoxLayout(right)
        right_row.setContentsMargins(0, 0, 0, 0)
        right_row.addWidget(self.spin)
        right_row.addWidget(self.count_label)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(left)
        row.addWidget(self.slider, 1)
        row.addWidget(right)
        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.selected_only)
        filters.addStretch(3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.score_plot)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(filters)
        self._play_timer = QTimer(self)
        self._play_timer.timeout.connect(self._advance)
        session.video_changed.connect(self._on_video)
        session.objects_changed.connect(self._update_rows)
        session.selection_changed.connect(self._on_selection)
        session.frame_changed.connect(self._on_frame)
        self.axis_changed.connect(self._apply_axis)

    def sizeHint(self) -> QSize:
        return QSize(800, PLOT_HEIGHT + 70 + VISIBLE_ROWS * STRIP_ROW)

    # ---- the shared frame axis -----------------------------------------------------------
    def eventFilter(self, watched, event):
        if watched is self.slider and event.type() in (QEvent.Type.Resize, QEvent.Type.Move, QEvent.Type.Show):
            QTimer.singleShot(0, self._update_axis)  # after the layout has placed everything
        if (watched is self.slider and event.type() == QEvent.Type.MouseButtonPress
                and event.button() == Qt.MouseButton.LeftButton and self.session.num_frames):
            # a click on the groove goes to that frame (QSlider would page by a step); the handle is then
            # under the mouse, so the same press drags it on
            x = event.position().x() + self.slider.mapTo(self, QPoint(0, 0)).x()
            self.session.set_frame(self.axis.frame_at(x))
        return super().eventFilter(watched, event)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        QTimer.singleShot(0, self._update_axis)

    def handle_x(self, frame_idx: int) -> float:
        """Centre of the slider's handle at this frame, in the Timeline's coordinates."""
        option = QStyleOptionSlider()
        self.slider.initStyleOption(option)
        style = self.slider.style()
        groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                      QStyle.SubControl.SC_SliderGroove, self.slider)
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                      QStyle.SubControl.SC_SliderHandle, self.slider)
        span = groove.width() - handle.width()
        fraction = frame_idx / self.slider.maximum() if self.slider.maximum() > 0 else 0.0
        x = groove.x() + handle.width() / 2 + fraction * span
        return x + self.slider.mapTo(self, QPoint(0, 0)).x()

    def _update_axis(self) -> None:
        n = self.session.num_frames
        x0 = self.handle_x(0)
        step = (self.handle_x(n - 1) - x0) / (n - 1) if n > 1 else max(1.0, self.slider.width() / 2)
        axis = FrameAxis(x0, max(step, 1e-6), n)
        if axis != self.axis:
            self.axis = axis
            self.axis_changed.emit()

    def _apply_axis(self) -> None:
        self.score_plot.align(self.axis, self.score_plot.viewport().mapTo(self, QPoint(0, 0)).x())
        self.strips.update()

    # ---- rows ----------------------------------------------------------------------------
    def _update_rows(self) -> None:
        store = self.session.store
        objects = store.objects if store is not None else []
        text = self.filter_edit.text().strip().lower()
        if text:
            objects = [o for o in objects if text in o.name.lower() or text in o.label.lower()]
        if self.selected_only.isChecked():
            objects = [o for o in objects if o.obj_id == self.session.selected]
        self.strips.set_rows([o.obj_id for o in objects])
        self._scroll_to_selected()

    def _on_selection(self, _obj_id) -> None:
        if self.selected_only.isChecked():
            self._update_rows()
        else:
            self.strips.update()
            self._scroll_to_selected()

    def _scroll_to_selected(self) -> None:
        if self.session.selected in self.strips.rows:
            top = self.strips.rows.index(self.session.selected) * STRIP_ROW
            self.scroll.ensureVisible(0, top + STRIP_ROW // 2, 0, STRIP_ROW)

    # ---- video and frame -----------------------------------------------------------------
    def _on_video(self) -> None:
        n = self.session.num_frames
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
            widget.setMaximum(max(0, n - 1))
            widget.blockSignals(False)
        self.count_label.setText(f"/ {max(0, n - 1)}")
        fps = self.session.video.info.fps if self.session.video else 30.0
        self._play_timer.setInterval(int(1000 / max(1.0, min(fps or 30.0, 60.0))))
        self._update_rows()
        self._on_frame(self.session.frame_idx)
        self._update_axis()

    def _on_frame(self, frame_idx: int) -> None:
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
            widget.setValue(frame_idx)
            widget.blockSignals(False)

    def _on_strip_seek(self, frame_idx: int, obj_id) -> None:
        if obj_id is not None:
            self.session.select(obj_id)
        self.session.set_frame(frame_idx)

    # ---- playback and stepping -----------------------------------------------------------
    def set_playing(self, playing: bool) -> None:
        if playing and self.session.video is None:
            playing = False
        if playing and self.session.frame_idx >= self.session.num_frames - 1:
            self.session.set_frame(0)
        self.play_button.blockSignals(True)
        self.play_button.setChecked(playing)
        self.play_button.blockSignals(False)
        self.play_button.setText("⏸" if playing else "▶")
        if playing:
            self._play_timer.start()
        else:
            self._play_timer.stop()

    def toggle_play(self) -> None:
        self.set_playing(not self._play_timer.isActive())

    @property
    def playing(self) -> bool:
        return self._play_timer.isActive()

    def _advance(self) -> None:
        if self.session.frame_idx >= self.session.num_frames - 1:
            self.set_playing(False)
        else:
            self.session.set_frame(self.session.frame_idx + 1)

    def step(self, delta: int) -> None:
        self.session.set_frame(self.session.frame_idx + delta)

    def jump_keyframe(self, forward: bool) -> bool:
        """To the selected object's next (or previous) keyframe; any object's when none is selected."""
        store, f = self.session.store, self.session.frame_idx
        if store is None:
            return False
        obj_ids = [self.session.selected] if self.session.selected is not None else [o.obj_id for o in store.objects]
        keys = sorted({k for obj_id in obj_ids for k in store.keyframes(obj_id)})
        target = next((k for k in keys if k > f), None) if forward else next((k for k in reversed(keys) if k < f), None)
        if target is not None:
            self.session.set_frame(target)
        return target is not None

    def jump_unannotated(self) -> bool:
        """To the next frame where the selected object has no state at all (wraps around)."""
        obj_id = self.session.selected
        if obj_id is None:
            return False
        status = frame_status(self.session, obj_id)
        n, f = len(status), self.session.frame_idx
        order = np.r_[np.arange(f + 1, n), np.arange(0, f + 1)]
        empty = order[status[order] == NONE]
        if len(empty):
            self.session.set_frame(int(empty[0]))
        return bool(len(empty))
