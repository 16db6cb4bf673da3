"""Propagation runs from the GUI's side: plan, start the worker, apply its updates, one undo step."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from trackstudio.app.model.object_trackers import object_trackers
from trackstudio.app.propagation import (FrameUpdate, Pass, apply_update, plan_from_frame, plan_whole_video,
                                         split_by_tracker)

from .session import Session
from .workers import PropagationRun, TrackerChoice, TrackerPool


class TrackingController(QObject):
    """Starts at most one run at a time; while it runs the store's states are locked against user
    edits and every update lands in one undo step of its own (edits to objects made meanwhile stay
    separate steps), so one Ctrl+Z takes the whole run back and nothing else."""

    started = Signal()
    progress = Signal(int, int, float)  # done, total, seconds left
    finished = Signal(bool, str, int)  # cancelled, error message, states written
    follow_paused = Signal()  # the user moved to another frame: the run no longer moves the view

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.pool = TrackerPool()
        self._follow = True
        self._follow_paused = False  # for this run, after the user navigated
        self._following = False  # the frame change under way is the run's own
        self.run: PropagationRun | None = None
        self._step = None  # the run's undo step (MacroCommand)
        self._written = 0
        self._token: object | None = None
        session.frame_changed.connect(self._on_frame_changed)

    @property
    def follow(self) -> bool:
        """Show each tracked frame as it arrives (until the user moves elsewhere during the run)."""
        return self._follow

    @follow.setter
    def follow(self, on: bool) -> None:
        self._follow = on
        self._follow_paused = False

    @property
    def running(self) -> bool:
        return self.run is not None

    # ---- planning ------------------------------------------------------------------------
    def plan_all(self, obj_ids=None) -> list[Pass]:
        return self._object_trackers(plan_whole_video(self.session.store, self.session.num_frames, obj_ids))

    def plan_here(self, obj_ids, direction: str, max_frames: int | None, until_keyframe: bool) -> list[Pass]:
        s = self.session
        passes = []
        for reverse in {"forward": (False,), "backward": (True,), "both": (False, True)}[direction]:
            passes += plan_from_frame(s.store, s.num_frames, obj_ids, s.frame_idx, reverse=reverse,
                                      max_frames=max_frames, until_keyframe=until_keyframe)
        return self._object_trackers(passes)

    def _object_trackers(self, passes: list[Pass]) -> list[Pass]:
        """Objects with a tracker of their own (Objects panel) get passes of their own."""
        project = self.session.project
        return split_by_tracker(passes, object_trackers(project.settings, project.store))

    # ---- running -------------------------------------------------------------------------
    def start(self, passes: list[Pass], choices: dict[str, TrackerChoice], text: str = "Propagate") -> bool:
        if self.running or not passes or self.session.video is None:
            return False
        missing = sorted({p.tracker_key for p in passes} - set(choices))
        if missing:
            raise ValueError(f"no tracker is available for {', '.join(missing)} objects")
        self.session.set_editing_enabled(False)
        self._step = self.session.store.undo_stack.open_step(text)
        self._written = 0
        self._follow_paused = False
        # updates and the end signal of a run that was shut down may still be queued: tag them
        token = self._token = object()
        self.run = PropagationRun(passes, choices, self.pool, self.session.video,
                                  lambda update, attention: self._apply(update, attention, token), self)
        self.run.progress.connect(self.progress)
        self.run.done.connect(lambda cancelled, error: self._on_done(cancelled, error, token))
        self.started.emit()
        self.run.start()
        return True

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()

    def shutdown(self) -> None:
        """Stop any run and wait for its thread (closing the window or opening another video)."""
        if self.run is not None:
            self.run.cancel()
            self.run.wait()
            self._on_done(True, "", self._token)

    def _apply(self, update: FrameUpdate, attention: dict, token: object) -> None:
        if token is not self._token or self.run is None:
            return  # a late update of a run that was shut down
        self._written += apply_update(self.session.store, update, self._step)
        for obj_id, attention_map in attention.items():
            self.session.attention.put(obj_id, update.frame_idx, attention_map)
        if self._follow and not self._follow_paused:
            self._following = True
            try:
                self.session.set_frame(update.frame_idx)
            finally:
                self._following = False

    def _on_frame_changed(self, _frame_idx: int) -> None:
        # the user scrubbed or stepped during the run: leave the view where they put it
        if self.run is not None and self._follow and not self._following and not self._follow_paused:
            self._follow_paused = True
            self.follow_paused.emit()

    def _on_done(self, cancelled: bool, error: str, token: object) -> None:
        if token is not self._token or self.run is None:
            return
        self.run = None
        if self._step is not None:
            self.session.store.undo_stack.close_step(self._step)
            self._step = None
        self.session.set_editing_enabled(True)
        self.finished.emit(cancelled, error, self._written)
