"""Work that runs off the GUI thread: propagation runs and click-to-mask prompt calls.

Each worker is a QObject moved to its own QThread and talks to the GUI only through queued
signals; the GUI thread never waits on a model. A propagation worker holds at most a few updates
in flight (a semaphore the GUI releases as it applies them), so a fast tracker cannot flood the
event loop and stall the window.
"""
from __future__ import annotations

import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from trackstudio.app.propagation import FrameUpdate, Pass, run_passes
from trackstudio.trackers import registry
from trackstudio.trackers.types import ObjectResult, Prompt

from .errors import describe

MAX_IN_FLIGHT = 4  # frame updates queued for the GUI thread before the worker waits
WORKER_NICENESS = 10  # below the GUI thread, still far above idle
ATTENTION_MAX_SIDE = 256  # attention maps are shrunk to this before they cross to the GUI


@dataclass(frozen=True)
class TrackerChoice:
    """Which tracker to build for a kind, and how."""

    name: str
    device: str = "auto"
    attention: bool = False
    options: tuple[tuple[str, object], ...] = ()  # (option, value) the user set (Tracker panel > Options…)

    def config(self) -> dict:
        return {**dict(self.options), **({"return_attention": True} if self.attention else {})}


class TrackerPool:
    """Built trackers kept between runs (their caches make the next run faster).

    Only ever touched by one worker thread at a time: the GUI starts a new run after the last ended.
    """

    def __init__(self):
        self._trackers: dict[TrackerChoice, object] = {}

    def get(self, choice: TrackerChoice):
        tracker = self._trackers.get(choice)
        if tracker is None:
            # the same tracker with options the user has since changed is not asked for again: let it go
            for kept in [c for c in self._trackers if c.name == choice.name and c.options != choice.options]:
                del self._trackers[kept]
            tracker = registry.build(choice.name, choice.config(), device=choice.device)
            self._trackers[choice] = tracker
        return tracker


def shrink_attention(attention: np.ndarray) -> np.ndarray:
    attention = np.asarray(attention, np.float32)
    h, w = attention.shape
    scale = ATTENTION_MAX_SIDE / max(h, w)
    if scale < 1:
        attention = cv2.resize(attention, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
    return attention


class _AttentionTap:
    """Passes a tracker through untouched, keeping the attention maps of the frame it yielded last."""

    def __init__(self, tracker):
        self._tracker = tracker
        self.latest: dict[int, np.ndarray] = {}  # obj_id -> (h, w) attention on the last frame

    def __getattr__(self, name):
        return getattr(self._tracker, name)

    def propagate(self, *args, **kwargs):
        for result in self._tracker.propagate(*args, **kwargs):
            self.latest = {obj_id: shrink_attention(r.attention)
                           for obj_id, r in result.objects.items() if r.attention is not None}
            yield result


def _yield_to_gui() -> None:
    """Lower the calling worker thread's CPU priority so the GUI thread wins a busy core at once.

    Linux sets niceness per thread (the thread id as the process id); elsewhere this does nothing.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
        except OSError:
            pass  # not permitted here: the worker keeps its priority


class PropagationWorker(QObject):
    """Runs `run_passes` in its thread and emits one signal per frame walked."""

    update_ready = Signal(object, object)  # FrameUpdate, {obj_id: attention}
    failed = Signal(str)
    finished = Signal(bool)  # cancelled

    def __init__(self, passes: list[Pass], choices: dict[str, TrackerChoice], pool: TrackerPool, frames):
        super().__init__()
        self._passes, self._choices, self._pool, self._frames = passes, choices, pool, frames
        self._cancel = threading.Event()
        self._slots = threading.Semaphore(MAX_IN_FLIGHT)

    def cancel(self) -> None:
        """Thread-safe: the run stops before the next frame."""
        self._cancel.set()

    def applied(self) -> None:
        """The GUI applied one update: room for another."""
        self._slots.release()

    @Slot()
    def run(self) -> None:
        _yield_to_gui()
        try:
            # Models live as long as the app: build them without collector passes, then keep them (and
            # the window) out of its scans; a full pass otherwise stops the GUI thread for ~100 ms.
            gc.disable()
            try:
                taps = {key: _AttentionTap(self._pool.get(choice)) for key, choice in self._choices.items()
                        if any(p.tracker_key == key for p in self._passes)}
            finally:
                gc.freeze()
                gc.enable()
            updates = run_passes(self._passes, taps, self._frames)
            try:
                for update in updates:
                    if not self._wait_for_slot():
                        break
                    self.update_ready.emit(update, dict(taps[update.tracker_key].latest))
                    if self._cancel.is_set():
                        break
            finally:
                updates.close()
        except Exception as exc:  # noqa: BLE001  (shown to the user; the GUI must not die with the worker)
            self.failed.emit(describe(exc))
        self.finished.emit(self._cancel.is_set())

    def _wait_for_slot(self) -> bool:
        while not self._slots.acquire(timeout=0.05):
            if self._cancel.is_set():
                return False
        return not self._cancel.is_set()


class PropagationRun(QObject):
    """One propagation on the GUI side: owns the thread, applies updates, reports progress.

    `apply(update, attention)` is called on the GUI thread for every update, in order.
    """

    progress = Signal(int, int, float)  # done, total, seconds left (nan while unknown)
    done = Signal(bool, str)  # cancelled, error message ("" when none)

    def __init__(self, passes: list[Pass], choices: dict[str, TrackerChoice], pool: TrackerPool, frames,
                 apply, parent: QObject | None = None):
        super().__init__(parent)
        self._apply = apply
        self._error = ""
        self._started = time.monotonic()
        self.thread = QThread()
        self.worker = PropagationWorker(passes, choices, pool, frames)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.update_ready.connect(self._on_update)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(self._on_finished)
        # quit from the worker's side (QThread.quit is thread-safe): waiting for the thread never
        # depends on the GUI event loop
        self.worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self._started = time.monotonic()
        self.thread.start()

    def cancel(self) -> None:
        self.worker.cancel()

    @property
    def running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, ms: int = 10_000) -> bool:
        """Block until the thread ends (shutdown only; never during normal use)."""
        return self.thread.wait(ms)

    def _on_update(self, update: FrameUpdate, attention: dict) -> None:
        try:
            self._apply(update, attention)
        finally:
            self.worker.applied()
        elapsed = time.monotonic() - self._started
        left = elapsed / update.done * (update.total - update.done) if update.done else float("nan")
        self.progress.emit(update.done, update.total, left)

    def _on_failed(self, message: str) -> None:
        self._error = message

    def _on_finished(self, cancelled: bool) -> None:
        self.thread.wait()  # the worker has returned from run(): only the thread's exit is left
        self.done.emit(cancelled, self._error)


@dataclass
class PromptRequest:
    """Click-to-mask: clicks and/or a box on one frame for one object."""

    serial: int
    frame_idx: int
    obj_id: int
    clicks: np.ndarray | None  # (K, 3) x, y, label
    box: np.ndarray | None  # (4,)
    choice: TrackerChoice
    frames: object = field(repr=False)


@dataclass
class PrepareRequest:
    """Encode a frame ahead of the user's first click on it."""

    frame_idx: int
    choice: TrackerChoice
    frames: object = field(repr=False)


@dataclass
class PromptReply:
    request: PromptRequest
    result: ObjectResult
    seconds: float


class PromptWorker(QObject):
    """Keeps one mask tracker for prompt calls; only the newest waiting request is served.

    Clicks always go first; a waiting prepare (pre-encoding the frame the user is on) runs only when no
    click waits, so the first click on a frame usually finds its features ready.
    """

    reply_ready = Signal(object)  # PromptReply
    failed = Signal(object, str)  # PromptRequest, message
    _wake = Signal()

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._pending: PromptRequest | None = None
        self._pending_prepare: PrepareRequest | None = None
        self._tracker = None
        self._tracker_choice: TrackerChoice | None = None
        self._frames = None
        self._wake.connect(self._serve)

    def submit(self, request: PromptRequest) -> None:
        """Thread-safe; replaces any request still waiting."""
        with self._lock:
            self._pending = request
        self._wake.emit()

    def prepare(self, request: PrepareRequest) -> None:
        """Thread-safe; replaces any prepare still waiting."""
        with self._lock:
            self._pending_prepare = request
        self._wake.emit()

    @Slot()
    def _serve(self) -> None:
        while True:
            with self._lock:
                request, self._pending = self._pending, None
                prepare = None
                if request is None:
                    prepare, self._pending_prepare = self._pending_prepare, None
            if request is None and prepare is None:
                return
            if prepare is not None:
                try:
                    self._tracker_for(prepare).prepare_frame(prepare.frame_idx)
                except Exception:  # noqa: BLE001  (only a head start: the click itself reports errors)
                    pass
                continue
            started = time.perf_counter()
            try:
                result = self._tracker_for(request).add_prompt(
                    request.frame_idx, request.obj_id, Prompt(clicks=request.clicks, box=request.box))
            except Exception as exc:  # noqa: BLE001  (reported in a dialog)
                self.failed.emit(request, describe(exc))
                continue
            self.reply_ready.emit(PromptReply(request, result, time.perf_counter() - started))

    def _tracker_for(self, request: PromptRequest | PrepareRequest):
        if request.choice != self._tracker_choice:
            self._tracker = registry.build(request.choice.name, request.choice.config(), device=request.choice.device)
            self._tracker_choice, self._frames = request.choice, None
        if request.frames is not self._frames:
            self._tracker.set_video(request.frames)
            self._frames = request.frames
        return self._tracker


class PromptService(QObject):
    """The GUI-side handle of the prompt worker thread."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.worker = PromptWorker()
        self.worker.moveToThread(self.thread)
        self.thread.start()
        self._serial = 0

    def request(self, frame_idx: int, obj_id: int, clicks, box, choice: TrackerChoice, frames) -> PromptRequest:
        self._serial += 1
        req = PromptRequest(self._serial, frame_idx, obj_id, clicks, box, choice, frames)
        self.worker.submit(req)
        return req

    def prepare(self, frame_idx: int, choice: TrackerChoice, frames) -> None:
        self.worker.prepare(PrepareRequest(frame_idx, choice, frames))

    def is_latest(self, request: PromptRequest) -> bool:
        return request.serial == self._serial

    def shutdown(self) -> None:
        self.thread.quit()
        self.thread.wait(10_000)
