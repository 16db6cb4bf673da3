"""Moving through the video: slider and play controls, per-object track strips, the score plot."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QSizePolicy, QSlider, QSpinBox, QToolButton, QVBoxLayout,
                               QWidget)

from .session import Session

# Per-frame status of an object, drawn in its strip (higher wins when frames share a pixel column).
NONE, ABSENT, TRACKED, KEYFRAME = 0, 1, 2, 3
STRIP_ROW = 14  # pixels per object row
NAME_WIDTH = 90  # pixels for the object names left of the strips


def frame_status(session: Session, obj_id: int) -> np.ndarray:
    """(T,) uint8 NONE / ABSENT / TRACKED / KEYFRAME for one object over the whole video."""
    status = np.zeros(session.num_frames, np.uint8)
    for frame_idx, state in session.store.states(obj_id).items():
        if frame_idx < len(status):
            status[frame_idx] = KEYFRAME if state.keyframe else (TRACKED if state.visible else ABSENT)
    return status


class TrackStrips(QWidget):
    """One row per object: keyframes (solid, tall), tracked frames (colour), absent frames (grey)."""

    seek = Signal(int, object)  # frame_idx, obj_id

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self._status: dict[int, np.ndarray] = {}
        self._dirty: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)  # coalesce a propagation's many events into a few repaints
        self._timer.timeout.connect(self._recompute)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)  # rows fill the dock
        session.video_changed.connect(self._reset)
        session.objects_changed.connect(self._reset)
        session.states_changed.connect(self._on_states)
        session.frame_changed.connect(lambda _f: self.update())
        session.selection_changed.connect(lambda _o: self.update())

    def sizeHint(self) -> QSize:
        rows = len(self.session.store.objects) if self.session.store is not None else 1
        return QSize(400, max(1, min(rows, 8)) * STRIP_ROW + 4)

    def _reset(self) -> None:
        self._status.clear()
        self._dirty = {o.obj_id for o in self.session.store.objects} if self.session.store else set()
        self._recompute()
        self.updateGeometry()
        self.setMinimumHeight(self.sizeHint().height())

    def _on_states(self, obj_id: int, _frames) -> None:
        self._dirty.add(obj_id)
        if not self._timer.isActive():
            self._timer.start()

    def _recompute(self) -> None:
        store = self.session.store
        for obj_id in self._dirty:
            if store is not None and obj_id in store:
                self._status[obj_id] = frame_status(self.session, obj_id)
        self._dirty.clear()
        self.update()

    def _strip_width(self) -> int:
        return max(1, self.width() - NAME_WIDTH)

    def frame_at(self, x: float) -> int:
        n = max(1, self.session.num_frames)
        return int(min(max((x - NAME_WIDTH) / self._strip_width() * n, 0), n - 1))

    def mousePressEvent(self, event):
        store = self.session.store
        if store is None or not store.objects:
            return
        row = int(event.position().y() // STRIP_ROW)
        objects = store.objects
        obj_id = objects[row].obj_id if 0 <= row < len(objects) else None
        self.seek.emit(self.frame_at(event.position().x()), obj_id)

    def mouseMoveEvent(self, event):
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.seek.emit(self.frame_at(event.position().x()), None)

    def paintEvent(self, _event):
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#2b2b2b"))
        store = self.session.store
        n = self.session.num_frames
        if store is None or n == 0:
            return
        width = self._strip_width()
        for row, obj in enumerate(store.objects):
            top = row * STRIP_ROW
            if obj.obj_id == self.session.selected:
                painter.fillRect(QRect(0, top, self.width(), STRIP_ROW), QColor("#3d4a5c"))
            painter.setPen(QColor("#888888" if obj.hidden else obj.color))
            painter.drawText(QRect(4, top, NAME_WIDTH - 8, STRIP_ROW), Qt.AlignmentFlag.AlignVCenter,
                             obj.name)
            status = self._status.get(obj.obj_id)
            if status is None:
                continue
            painter.drawImage(NAME_WIDTH, top + 1, self._row_image(status, width, obj.color))
        x = NAME_WIDTH + int((self.session.frame_idx + 0.5) / n * width)
        painter.setPen(QPen(QColor("#ffffff"), 1))
        painter.drawLine(x, 0, x, self.height())

    @staticmethod
    def _row_image(status: np.ndarray, width: int, color: str) -> QImage:
        columns = np.zeros(width, np.uint8)
        np.maximum.at(columns, (np.arange(len(status)) * width) // len(status), status)
        if len(status) < width:  # fewer frames than pixels: stretch each frame over its columns
            columns = status[(np.arange(width) * len(status)) // width]
        c = QColor(color)
        palette = np.array([[43, 43, 43], [110, 110, 110],
                            [c.red() // 2 + 40, c.green() // 2 + 40, c.blue() // 2 + 40],
                            [c.red(), c.green(), c.blue()]], np.uint8)
        rgb = np.repeat(palette[columns][None], STRIP_ROW - 2, axis=0)  # (h, w, 3)
        tracked_rows = slice(3, STRIP_ROW - 5)
        thin = (columns == TRACKED) | (columns == ABSENT)
        rgb[:3, thin] = palette[NONE]  # tracked/absent frames are thinner than keyframes
        rgb[tracked_rows.stop:, thin] = palette[NONE]
        rgb = np.ascontiguousarray(rgb)
        image = QImage(rgb.data, width, rgb.shape[0], 3 * width, QImage.Format.Format_RGB888)
        return image.copy()  # QImage does not own numpy's buffer


class Timeline(QWidget):
    """Play/step controls, the frame slider and the track strips."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.play_button = QToolButton()
        self.play_button.setText("▶")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self.set_playing)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(session.set_frame)
        self.spin = QSpinBox()
        self.spin.setKeyboardTracking(False)
        self.spin.valueChanged.connect(session.set_frame)
        self.spin.setToolTip("Current frame")
        self.count_label = QLabel("/ 0")
        self.strips = TrackStrips(session)
        self.strips.seek.connect(self._on_strip_seek)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin)
        row.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(row)
        layout.addWidget(self.strips, 1)
        self._play_timer = QTimer(self)
        self._play_timer.timeout.connect(self._advance)
        session.video_changed.connect(self._on_video)
        session.frame_changed.connect(self._on_frame)

    def _on_video(self) -> None:
        n = self.session.num_frames
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
            widget.setMaximum(max(0, n - 1))
            widget.blockSignals(False)
        self.count_label.setText(f"/ {max(0, n - 1)}")
        fps = self.session.video.info.fps if self.session.video else 30.0
        self._play_timer.setInterval(int(1000 / max(1.0, min(fps or 30.0, 60.0))))
        self._on_frame(self.session.frame_idx)

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


class ScorePlot(pg.PlotWidget):
    """The selected object's score over time (and point visibility), with the current frame marked."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent, background="#202124")
        self.session = session
        self.setMinimumHeight(90)
        self.setMouseEnabled(x=True, y=False)
        self.setYRange(-0.05, 1.05)
        self.setLabel("left", "score")
        self.getPlotItem().hideButtons()
        self.showGrid(x=True, y=True, alpha=0.2)
        self.score_curve = self.plot([], [], pen=pg.mkPen("#4fc3f7", width=1.5), name="score")
        self.visible_curve = self.plot([], [], pen=pg.mkPen("#ffb74d", width=1, style=Qt.PenStyle.DashLine),
                                       stepMode=None, name="visible")
        self.key_marks = pg.ScatterPlotItem(symbol="d", size=8, brush=pg.mkBrush("#ffffff"))
        self.addItem(self.key_marks)
        self.cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffffff"))
        self.cursor.sigDragged.connect(lambda line: session.set_frame(int(round(line.value()))))
        self.addItem(self.cursor)
        self.legend = self.getPlotItem().addLegend(offset=(-4, 4))
        self.legend.addItem(self.score_curve, "score")
        self.legend.addItem(self.visible_curve, "visible")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.redraw)
        session.video_changed.connect(self._on_video)
        session.selection_changed.connect(lambda _o: self.redraw())
        session.objects_changed.connect(self.redraw)
        session.states_changed.connect(self._on_states)
        session.frame_changed.connect(lambda f: self.cursor.setValue(f))

    def _on_video(self) -> None:
        self.setXRange(0, max(1, self.session.num_frames - 1), padding=0.01)
        self.redraw()

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
        self.setTitle(f"{store.get_object(obj_id).name}: score and visibility", color="#cccccc", size="9pt")
