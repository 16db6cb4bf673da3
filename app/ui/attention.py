"""Attention on demand: what the tracker looked at on the shown frame, computed when it is missing.

A run started with View > Attention on keeps the maps of the frames it tracks. For any other frame
(tracked earlier, or before the overlay was switched on) this computes the map in a worker thread:
the object's tracker is prompted on the neighbouring frame that has a state and walks the one step
onto the shown frame. The GUI thread only plans the request and stores the answer.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from trackstudio.app.propagation import state_to_prompt
from trackstudio.trackers.types import Prompt

from .errors import describe
from .session import Session
from .workers import TrackerChoice, TrackerPool, shrink_attention

REQUEST_DELAY_MS = 150  # only for a frame the user stays on, not for every frame scrubbed past


@dataclass
class AttentionRequest:
    obj_id: int
    frame_idx: int  # the frame whose map is wanted
    seed_frame_idx: int  # a neighbouring frame the object has a state on
    prompt: Prompt
    choice: TrackerChoice
    frames: object = field(repr=False)


class AttentionWorker(QObject):
    """Serves the newest waiting request; keeps the trackers it built (one per choice)."""

    ready = Signal(object, object)  # AttentionRequest, (h, w) float32 map or None (the tracker reports none)
    failed = Signal(object, str)
    _wake = Signal()

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._pending: AttentionRequest | None = None
        self._trackers = TrackerPool()  # one per choice, kept between requests
        self._wake.connect(self._serve)

    def submit(self, request: AttentionRequest) -> None:
        """Thread-safe; replaces a request still waiting."""
        with self._lock:
            self._pending = request
        self._wake.emit()

    @Slot()
    def _serve(self) -> None:
        while True:
            with self._lock:
                request, self._pending = self._pending, None
            if request is None:
                return
            try:
                attention = self._compute(request)
            except Exception as exc:  # noqa: BLE001  (shown in the status bar)
                self.failed.emit(request, describe(exc))
                continue
            self.ready.emit(request, attention)

    def _compute(self, request: AttentionRequest) -> np.ndarray | None:
        tracker = self._trackers.get(request.choice)
        if tracker.frames is not request.frames:
            tracker.set_video(request.frames)
        tracker.reset()
        tracker.add_prompt(request.seed_frame_idx, request.obj_id, request.prompt)
        reverse = request.frame_idx < request.seed_frame_idx
        attention = None
        for result in tracker.propagate(request.seed_frame_idx, reverse=reverse, end_frame_idx=request.frame_idx):
            obj = result.objects.get(request.obj_id)
            attention = obj.attention if obj is not None and result.frame_idx == request.frame_idx else None
        return shrink_attention(attention) if attention is not None else None


class AttentionOnDemand(QObject):
    """Asks the worker for the selected object's map on the shown frame when the overlay is on and
    the map is missing. `choice_for(kind)` gives the tracker to ask (None: none usable now)."""

    ready = Signal()  # a map arrived: redraw
    message = Signal(str)

    def __init__(self, session: Session, options, choice_for, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.options, self._choice_for = session, options, choice_for
        self._asked: set[tuple[int, int, TrackerChoice]] = set()  # asked already: never twice for one state
        self.pending: AttentionRequest | None = None
        self.thread = QThread()
        self.worker = AttentionWorker()
        self.worker.moveToThread(self.thread)
        self.worker.ready.connect(self._on_ready)
        self.worker.failed.connect(self._on_failed)
        self.thread.start()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REQUEST_DELAY_MS)
        self._timer.timeout.connect(self.request_shown)
        for signal in (session.frame_changed, session.selection_changed, session.video_changed,
                       session.editing_enabled_changed):
            signal.connect(lambda *_: self.schedule())
        session.states_changed.connect(self._on_states)

    def schedule(self) -> None:
        if self.options.attention:
            self._timer.start()

    def _on_states(self, obj_id: int, frame_idxs) -> None:
        self._asked = {key for key in self._asked if key[0] != obj_id or key[1] not in frame_idxs}
        if obj_id == self.session.selected and self.session.frame_idx in frame_idxs:
            self.schedule()

    def request_shown(self) -> AttentionRequest | None:
        """Ask for the shown frame's map of the selected object if it is missing and can be computed."""
        s = self.session
        obj_id, frame_idx = s.selected, s.frame_idx
        if (not self.options.attention or obj_id is None or s.store is None or obj_id not in s.store
                or s.attention.get(obj_id, frame_idx) is not None or s.state(obj_id) is None):
            return None
        if not s.editing_enabled:  # a run is using the CPU (and brings maps itself when it was asked to)
            return None
        choice = self._choice_for(s.store.get_object(obj_id).kind)
        if choice is None or (obj_id, frame_idx, choice) in self._asked:
            return None
        seed = self._seed(obj_id, frame_idx)
        if seed is None:
            self.message.emit("Attention: the object needs a state on a neighbouring frame to show what the "
                              "tracker looks at here.")
            return None
        self._asked.add((obj_id, frame_idx, choice))
        self.pending = AttentionRequest(obj_id, frame_idx, seed[0], seed[1], choice, s.video)
        self.worker.submit(self.pending)
        self.message.emit(f"Attention: computing what {choice.name} looks at on frame {frame_idx}…")
        return self.pending

    def _seed(self, obj_id: int, frame_idx: int) -> tuple[int, Prompt] | None:
        """The frame before (else after) with a state that makes a prompt: the tracker steps from it."""
        for neighbour in (frame_idx - 1, frame_idx + 1):
            state = self.session.state(obj_id, neighbour) if 0 <= neighbour < self.session.num_frames else None
            prompt = state_to_prompt(state) if state is not None and state.visible else None
            if prompt is not None:
                return neighbour, prompt
        return None

    def _on_ready(self, request: AttentionRequest, attention) -> None:
        if request.frames is not self.session.video or self.session.store is None:
            return  # another video since
        if self.pending is request:
            self.pending = None
        if attention is None:
            self.message.emit(f"Attention: {request.choice.name} does not report where it looks; choose another "
                              "tracker for this kind in the Tracker panel to see it.")
            return
        state = self.session.state(request.obj_id, request.frame_idx)
        if state is not None:  # still there (not undone meanwhile)
            self.session.attention.put(request.obj_id, request.frame_idx, np.asarray(attention, np.float32))
            self.ready.emit()
            self.message.emit(f"Attention on frame {request.frame_idx}: where {request.choice.name} looked for "
                              f"{self.session.store.get_object(request.obj_id).name}.")

    def _on_failed(self, request: AttentionRequest, message: str) -> None:
        if self.pending is request:
            self.pending = None
        self.message.emit(f"Attention could not be computed: {message.splitlines()[0]}")

    def shutdown(self) -> None:
        self.thread.quit()
        self.thread.wait(10_000)
