"""The main window: wires the canvas, timeline, panels, menus and workers to one Session.

`run_gui(path)` is what `trackstudio [PATH]` calls.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QProgressBar)

from trackstudio.app.model import Autosaver, FormatError, FrameState, Project
from trackstudio.app.model.atomic import atomic_write_bytes
from trackstudio.app.model.formats import import_png_masks, load_json
from trackstudio.app.model.interop import export, import_file
from trackstudio.app.model.object_trackers import prune_object_trackers
from trackstudio.app.model.project import PROJECT_SUFFIX
from trackstudio.app.model.prompts import keyframe_problems
from trackstudio.app.video import VIDEO_EXTENSIONS, VideoError, open_video

from . import models_dialog
from .attention import AttentionOnDemand
from .canvas import Canvas
from .dialogs import ExportDialog, ShortcutsDialog
from .dock_layout import DockBalancer, scrolling
from .errors import describe
from .exchange import ImportDialog, VideoExportDialog, VideoExporter
from .labels_panel import LabelsPanel
from .objects_panel import ObjectsPanel
from .review_actions import ReviewActions
from .session import Session
from .timeline import Timeline
from .tools import TOOLS
from .tracker_panel import RANGES, TrackerPanel, missing_weights_text
from .tracking import TrackingController
from .video_list import VideoListPanel
from .workers import PromptService, TrackerChoice

AUTOSAVE_MS = 30_000
PREPARE_DELAY_MS = 150
MAX_RECENT = 10
DOCK_TITLE_PX = 24  # a dock's title bar, above its panel
TOOL_SHORTCUTS = {"select": "S", "point": "P", "box": "B", "brush": "D", "eraser": "E", "fill": "F", "click": "C"}
TOOL_LABELS = {"select": "Select / pan", "point": "Point", "box": "Box", "brush": "Brush", "eraser": "Eraser",
               "fill": "Fill", "click": "Click-to-mask"}


def recovery_dir() -> Path:
    # the generic location: AppDataLocation already ends in <organisation>/<application>, TrackStudio twice
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return (Path(base) / "TrackStudio" if base else Path.home() / ".trackstudio") / "recovery"


class MainWindow(QMainWindow):
    mask_shown = Signal(float)  # seconds from a click-to-mask request to its mask on the canvas

    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings if settings is not None else QSettings("TrackStudio", "TrackStudio")
        self.session = Session(self)
        self.canvas = Canvas(self.session)
        self.setCentralWidget(self.canvas)
        self.tracking = TrackingController(self.session, self)
        self.prompts = PromptService(self)
        self.attention = AttentionOnDemand(self.session, self.canvas.options, self._attention_choice, self)
        self.autosaver = Autosaver()
        self.video_exporter = VideoExporter(self)
        self.video_exporter.finished.connect(self._on_video_exported)
        self.last_error = ""
        self._shut_down = False
        self.last_message = ""
        self._recovery_revision: int | None = None
        self._mask_requested_at = 0.0

        self.objects_panel = ObjectsPanel(self.session)
        self.tracker_panel = TrackerPanel()
        self.timeline = Timeline(self.session)
        self.score_plot = self.timeline.score_plot  # stacked over the strips, on one frame axis
        self.review_actions = ReviewActions(self.session, self)
        self.timeline.strips.doubt_frames = self.review_actions.doubt_frames
        self.timeline.strips.range_marked.connect(self.review_actions.mark_range)
        # the right-hand panels reach the bottom edge and the timeline sits under the frame alone: the
        # window's minimum height is the larger of the two columns, not their sum
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        objects_dock = self._add_dock("Objects", self.objects_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        tracker_dock = self._add_dock("Tracker", scrolling(self.tracker_panel), Qt.DockWidgetArea.RightDockWidgetArea)
        self.labels_panel = LabelsPanel(self.session)
        self.tabifyDockWidget(tracker_dock, self._add_dock("Labels", self.labels_panel,
                                                           Qt.DockWidgetArea.RightDockWidgetArea))
        tracker_dock.raise_()
        self._add_dock("Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.video_list = VideoListPanel()
        # a tab beside Objects: a one-video project needs no room for it (the window stays small)
        self.videos_dock = self._add_dock("Videos", self.video_list, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(objects_dock, self.videos_dock)
        objects_dock.raise_()
        self.dock_balancer = DockBalancer(self, tracker_dock, self.tracker_panel)
        self.tracker_panel.natural_size_changed.connect(self.dock_balancer.schedule)

        self.status_label = QLabel("Open a video, an image folder or a project (File menu, or drop it here).")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m frames")
        # wide enough for its text at any clip length: a squeezed bar cut or wrapped it
        self.progress.setFixedWidth(self.progress.fontMetrics().horizontalAdvance("000000 / 000000 frames") + 24)
        self.progress.hide()
        self.eta_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.eta_label)
        self.statusBar().addPermanentWidget(self.progress)

        self._prepare_timer = QTimer(self)  # pre-encode a frame once the user stops on it, not while scrubbing
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(PREPARE_DELAY_MS)
        self._prepare_timer.timeout.connect(self._prepare_click_frame)
        self.actions: dict[str, QAction] = {}
        self._build_menus()
        self._connect()
        self.setAcceptDrops(True)
        self.setWindowTitle("TrackStudio")
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()
        self._restore_settings()
        self.canvas.setFocus()

    # ---- construction --------------------------------------------------------------------
    def _add_dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, key: str, text: str, slot, shortcut=None, checkable=False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        self.actions[key] = action
        return action

    def _wire(self, key: str, action: QAction) -> QAction:
        """An action made by a panel: its shortcut works window-wide and shortcut_rows lists it."""
        self.addAction(action)
        self.actions[key] = action
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self._action("open_video", "Open &video…", self.open_video_dialog, "Ctrl+O"))
        file_menu.addAction(self._action("open_folder", "Open image &folder…", self.open_folder_dialog,
                                         "Ctrl+Shift+O"))
        file_menu.addAction(self._action("open_project", "Open &project…", self.open_project_dialog, "Ctrl+Alt+O"))
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addAction(self._action("add_videos", "&Add videos to project…", self.add_videos_dialog,
                                         tip="Add more videos to this project (Videos panel)"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("save", "&Save project", lambda: self.save_project(), "Ctrl+S"))
        file_menu.addAction(self._action("save_as", "Save project &as…", self.save_project_as, "Ctrl+Shift+S"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("import", "&Import annotations…", self.import_dialog, "Ctrl+I"))
        file_menu.addAction(self._action("export", "&Export annotations…", self.export_dialog, "Ctrl+E"))
        file_menu.addAction(self._action("export_video", "Export &video…", self.export_video_dialog, "Ctrl+Shift+E"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("quit", "&Quit", self.close, "Ctrl+Q"))

        edit = bar.addMenu("&Edit")
        edit.addAction(self._action("undo", "&Undo", self.undo, "Ctrl+Z"))
        edit.addAction(self._action("redo", "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"]))
        edit.addSeparator()
        edit.addAction(self._action("absent", "Mark &absent on this frame", self.mark_absent, "A",
                                    tip="The selected object is hidden or out of view here (a keyframe)"))
        edit.addAction(self._action("clear_frame", "Clear this &frame", self.clear_frame, "Backspace"))
        edit.addAction(self._action("clear_tracked", "Clear &tracked frames of the object", self.clear_tracked))

        view = bar.addMenu("&View")
        opts = self.canvas.options
        for key, text, attr, shortcut in (("show_masks", "&Masks", "masks", "Shift+M"),
                                          ("show_outlines", "Mask &outlines", "outlines", None),
                                          ("show_boxes", "&Boxes", "boxes", "Shift+B"),
                                          ("show_labels", "&Names and scores", "labels", "Shift+L"),
                                          ("show_points", "&Points and trails", "points", "Shift+P"),
                                          ("show_attention", "&Attention heatmap (selected object)", "attention",
                                           "Shift+A")):
            action = self._action(key, text, lambda on, a=attr: self.set_overlay(a, on), shortcut, checkable=True)
            action.setChecked(getattr(opts, attr))
            view.addAction(action)
        opacity = view.addMenu("Mask &opacity")
        self._choice_menu(opacity, "mask_opacity", [(f"{int(v * 100)} %", v) for v in (0.2, 0.35, 0.45, 0.6, 0.8)])
        trails = view.addMenu("&Trail length")
        self._choice_menu(trails, "trail_length", [("off" if v == 0 else f"{v} frames", v) for v in (0, 5, 15, 30, 60)])
        view.addSeparator()
        view.addAction(self._action("fit", "&Fit frame to window", self.canvas.fit, "Ctrl+0"))
        view.addAction(self._action("shortcuts", "Keyboard &shortcuts", self.show_shortcuts, "F1"))
        docks = view.addMenu("&Panels")
        for dock in self.findChildren(QDockWidget):
            docks.addAction(dock.toggleViewAction())

        tools_menu = bar.addMenu("&Tools")
        toolbar = self.addToolBar("Tools")
        toolbar.setObjectName("toolbar_tools")
        group = QActionGroup(self)
        for tool in TOOLS:
            action = self._action(f"tool_{tool}", TOOL_LABELS[tool], lambda _c=False, t=tool: self.set_tool(t),
                                  TOOL_SHORTCUTS[tool], checkable=True,
                                  tip=f"{TOOL_LABELS[tool]} ({TOOL_SHORTCUTS[tool]})")
            group.addAction(action)
            tools_menu.addAction(action)
            toolbar.addAction(action)
        self.actions["tool_select"].setChecked(True)
        tools_menu.addSeparator()
        tools_menu.addAction(self._action("brush_smaller", "Brush smaller", lambda: self.canvas.tools.scale_brush(0.8),
                                          "["))
        tools_menu.addAction(self._action("brush_bigger", "Brush bigger", lambda: self.canvas.tools.scale_brush(1.25),
                                          "]"))

        objects = bar.addMenu("&Objects")
        for kind, key in (("box", "Ctrl+B"), ("mask", "Ctrl+M"), ("point", "Ctrl+P")):
            objects.addAction(self._action(f"add_{kind}", f"Add {kind} object",
                                           lambda _c=False, k=kind: self.objects_panel.add_object(k), key))
        objects.addAction(self._action("add_grid", "Add point &grid (in the selected box/mask, or the frame)",
                                       lambda: self.add_point_grid(), "Ctrl+G"))
        objects.addAction(self._action("delete_object", "&Delete selected object", self.objects_panel.delete_selected,
                                       "Del"))
        objects.addAction(self._action("toggle_hidden", "&Hide / show selected object", self.toggle_hidden, "H"))
        objects.addSeparator()
        for key in ("merge", "split", "swap"):  # identity fixes (also in the panel's context menu)
            objects.addAction(self._wire(f"{key}_objects", getattr(self.objects_panel.actions, key)))
        for n in range(1, 10):
            self._action(f"select_{n}", f"Select object {n}",
                         lambda _c=False, i=n - 1: self.objects_panel.select_index(i), str(n))

        track = bar.addMenu("T&rack")
        track.addAction(self._action("track_all", "Track &whole video", self.propagate_all, "Ctrl+T"))
        track.addAction(self._action("track_here", "Propagate from &here", self.propagate_here, "Ctrl+R"))
        track.addAction(self._action("cancel", "&Cancel tracking", self.tracking.cancel, "Esc"))
        track.addSeparator()
        track.addAction(self._action("models", "&Models and weights…", lambda: self.show_models()))

        nav = bar.addMenu("&Navigate")
        nav.addAction(self._action("play", "&Play / pause", self.timeline.toggle_play, "Space"))
        nav.addAction(self._action("next", "Next frame", lambda: self.timeline.step(1), "Right"))
        nav.addAction(self._action("prev", "Previous frame", lambda: self.timeline.step(-1), "Left"))
        nav.addAction(self._action("next10", "10 frames forward", lambda: self.timeline.step(10), "Shift+Right"))
        nav.addAction(self._action("prev10", "10 frames back", lambda: self.timeline.step(-10), "Shift+Left"))
        nav.addAction(self._action("first", "First frame", lambda: self.session.set_frame(0), "Home"))
        nav.addAction(self._action("last", "Last frame", lambda: self.session.set_frame(self.session.num_frames - 1),
                                   "End"))
        nav.addAction(self._action("next_key", "Next keyframe", lambda: self.timeline.jump_keyframe(True), "PgDown"))
        nav.addAction(self._action("prev_key", "Previous keyframe", lambda: self.timeline.jump_keyframe(False),
                                   "PgUp"))
        nav.addAction(self._action("next_empty", "Next frame without annotation (selected object)",
                                   self._jump_unannotated, "N"))
        nav.addSeparator()  # the review queue
        review = self.review_actions
        for key, action, shortcut in (("next_doubt", review.next, "."), ("prev_doubt", review.previous, ","),
                                      ("review_all", review.all_objects, None),
                                      ("mark_reviewed", review.mark, "R"), ("unmark_reviewed", review.unmark, None)):
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            nav.addAction(self._wire(key, action))
        self._update_recent_menu()

    def _choice_menu(self, menu, attr: str, values: list[tuple[str, float]]) -> None:
        group = QActionGroup(self)
        current = getattr(self.canvas.options, attr)
        for text, value in values:
            action = QAction(text, self, checkable=True)
            action.setChecked(value == current)
            action.triggered.connect(lambda _c=False, v=value: self.set_overlay(attr, v))
            group.addAction(action)
            menu.addAction(action)

    def _connect(self) -> None:
        s = self.session
        self.canvas.message.connect(self.show_message)
        self.objects_panel.message.connect(self.show_message)
        self.objects_panel.actions.message.connect(self.show_message)
        self.review_actions.message.connect(self.show_message)
        self.labels_panel.message.connect(self.show_message)
        self.attention.message.connect(self.show_message)
        self.attention.ready.connect(self.canvas.refresh)
        self.tracking.follow_paused.connect(lambda: self.show_message(
            "Following paused for this run, as you moved; tracking goes on (untick and tick Follow to follow again)."))
        self.canvas.tools.mask_requested.connect(self._request_mask)
        self.canvas.tools.tool_changed.connect(lambda t: self.actions[f"tool_{t}"].setChecked(True))
        self.canvas.tools.tool_changed.connect(lambda _t: self._prepare_click_frame())
        self.prompts.worker.reply_ready.connect(self._on_mask_reply)
        self.prompts.worker.failed.connect(self._on_mask_failed)
        self.tracker_panel.propagate_all.connect(self.propagate_all)
        self.tracker_panel.propagate_here.connect(self.propagate_here)
        self.tracker_panel.cancel.connect(self.tracking.cancel)
        self.tracker_panel.models_requested.connect(self.show_models)
        self.tracker_panel.follow.toggled.connect(lambda on: setattr(self.tracking, "follow", on))
        self.tracking.started.connect(self._on_tracking_started)
        self.tracking.progress.connect(self._on_tracking_progress)
        self.tracking.finished.connect(self._on_tracking_finished)
        for signal in (s.objects_changed, s.video_changed):
            signal.connect(self._update_title)
        s.states_changed.connect(lambda *_: self._update_title())
        s.frame_changed.connect(self._show_frame_info)
        s.video_changed.connect(lambda: self._show_video_list(s.project))
        for signal in (s.objects_changed, s.states_changed):
            signal.connect(lambda *_: self.video_list.refresh(current_only=True))
        self.video_list.video_chosen.connect(self.switch_video)
        self.video_list.add_requested.connect(self.add_videos_dialog)
        self.video_list.remove_requested.connect(self.remove_current_video)
        self.video_list.reviewed_changed.connect(self.set_reviewed)
        s.frame_changed.connect(lambda _f: self._prepare_timer.start())

    # ---- messages and errors -------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.last_message = text
        self.status_label.setText(text)

    def show_error(self, title: str, error: BaseException | str) -> None:
        """A non-blocking dialog that says what went wrong and what to do."""
        text = error if isinstance(error, str) else describe(error)
        self.last_error = text
        self.show_message(f"{title}: {text.splitlines()[0]}")
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def ask(self, title: str, text: str) -> bool:
        """Yes/no question (tests replace this)."""
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def ask_save(self) -> str:
        """'save', 'discard' or 'cancel' for unsaved changes (tests replace this)."""
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(self, "Unsaved changes", "Save the project before closing?",
                                      buttons.Save | buttons.Discard | buttons.Cancel)
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def _update_title(self) -> None:
        self.setWindowTitle(self.session.title())

    def _show_frame_info(self, frame_idx: int) -> None:
        if self.session.video is not None and not self.tracking.running:
            info = self.session.video.info
            self.eta_label.setText(f"frame {frame_idx} / {info.num_frames - 1}  ·  {info.width}x{info.height}")

    # ---- opening -------------------------------------------------------------------------
    def open_video_dialog(self) -> None:
        exts = " ".join(f"*{e}" for e in VIDEO_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self._last_dir(), f"Videos ({exts});;All files (*)")
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of frames", self._last_dir())
        if path:
            self.open_path(path)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_dir(),
                                              f"TrackStudio projects (*{PROJECT_SUFFIX})")
        if path:
            self.open_path(path)

    def open_path(self, path, project: Project | None = None) -> bool:
        """Open a video, an image folder or a project; errors go to a dialog. True on success."""
        path = Path(path)
        try:
            if project is None and path.suffix.lower() == PROJECT_SUFFIX:
                project = self._load_project(path)
                video = open_video(project.video.path)
                self._check_project_video(project, video)
            else:
                video = open_video(path)
                if project is None:
                    project = self._recovered(video) or Project(video.info)
        except Exception as exc:  # noqa: BLE001  (every failure becomes a dialog, never a crash)
            self.show_error(f"Cannot open {path.name}", exc)
            return False
        if not self.confirm_discard():
            video.close()
            return False
        self.tracking.shutdown()
        self.session.set_document(video, project)
        self.tracker_panel.apply_settings(project.settings.get("tracker", {}))
        self._recovery_revision = project.store.revision
        self._add_recent(path)
        self.show_message(f"Opened {path.name}: {video.info.num_frames} frames, {video.info.width}x"
                          f"{video.info.height}. Pick a tool (toolbar) and annotate a frame, then Track (Ctrl+T).")
        return True

    # ---- the project's videos ------------------------------------------------------------
    def _show_video_list(self, project) -> None:
        self.video_list.set_project(project)
        if project is not None and len(project.videos) > 1:
            self.videos_dock.raise_()  # a many-video project: its list is what the user picks from

    def add_videos_dialog(self) -> None:
        if self.session.project is None:
            self.show_message("Open a video or a project first, then add more videos to it.")
            return
        exts = " ".join(f"*{e}" for e in VIDEO_EXTENSIONS)
        paths, _ = QFileDialog.getOpenFileNames(self, "Add videos to the project", self._last_dir(),
                                                f"Videos ({exts});;All files (*)")
        if paths:
            self.add_videos(paths)

    def add_videos(self, paths) -> int:
        """Add video files to the open project (each is read once for its size); returns how many."""
        project, added, problems = self.session.project, 0, []
        for path in paths:
            try:
                with open_video(path) as video:
                    project.add_video(video.info)
                added += 1
            except Exception as exc:  # noqa: BLE001  (the others are still added)
                problems.append(f"{Path(path).name}: {describe(exc).splitlines()[0]}")
        self._show_video_list(project)
        self._update_title()
        if problems:
            self.show_error("Some videos were not added", "\n".join(problems))
        else:
            self.show_message(f"Added {added} video(s): pick one in the Videos panel.")
        return added

    def switch_video(self, index: int) -> bool:
        """Open the project's video `index` (only now is the file opened) with its own annotations."""
        project = self.session.project
        if project is None or index == project.current:
            return False
        if self.tracking.running:
            self.show_message("Tracking is running: wait for it or press Esc before switching videos.")
            self.video_list.refresh()
            return False
        previous = project.current
        project.current = index
        try:
            video = open_video(project.video.path)
            self._check_project_video(project, video)
        except Exception as exc:  # noqa: BLE001
            project.current = previous
            self.video_list.refresh()
            self.show_error(f"Cannot open {project.videos[index].name}", exc)
            return False
        project.share_label_schema(project.videos[previous].store)  # one label schema for every video
        self.tracking.shutdown()
        self.session.set_document(video, project)
        self.show_message(f"Video {index + 1} of {len(project.videos)}: {project.entry.name} "
                          f"({project.entry.status}).")
        return True

    def remove_current_video(self) -> bool:
        """Drop the open video and its annotations from the project (after asking); the window shows a neighbour."""
        project = self.session.project
        if project is None or len(project.videos) == 1:
            self.show_message("A project keeps at least one video.")
            return False
        entry, index = project.entry, project.current
        if entry.store.objects and not self.ask("Remove video", f"Remove {entry.name} and its "
                                                f"{len(entry.store.objects)} object(s) from the project?"):
            return False
        if not self.switch_video(index - 1 if index > 0 else 1):
            return False
        project.remove_video(index)
        self._show_video_list(project)
        self._update_title()
        self.show_message(f"Removed {entry.name} from the project.")
        return True

    def set_reviewed(self, reviewed: bool) -> None:
        if self.session.project is not None:
            self.session.project.entry.reviewed = reviewed
            self.video_list.refresh()
            self._update_title()

    def _load_project(self, path: Path) -> Project:
        autosave = Autosaver.find(path)
        if autosave is not None:
            if self.ask("Recover autosave", f"{path.name} has a newer autosave (TrackStudio may have closed "
                                            "without saving). Recover it? (No deletes it.)"):
                return Autosaver.recover(path)
            autosave.unlink(missing_ok=True)
        return Project.load(path)

    def _check_project_video(self, project: Project, video) -> None:
        want, got = project.video, video.info
        if (want.width, want.height) != (got.width, got.height) or want.num_frames != got.num_frames:
            video.close()
            raise VideoError(f"{got.path}: the project was made for a {want.width}x{want.height} video with "
                             f"{want.num_frames} frames, but this one is {got.width}x{got.height} with "
                             f"{got.num_frames} frames; move the right video next to the project")

    def _recovery_path(self, video_path: str) -> Path:
        digest = hashlib.sha1(str(Path(video_path).resolve()).encode()).hexdigest()[:10]
        return recovery_dir() / f"{Path(video_path).stem}-{digest}{PROJECT_SUFFIX}"

    def _recovered(self, video) -> Project | None:
        """Annotations autosaved for this video before it was ever saved as a project, if the user wants them."""
        path = self._recovery_path(video.info.path)
        if not path.exists():
            return None
        if not self.ask("Recover unsaved work", f"There are unsaved annotations for {Path(video.info.path).name} "
                                                "from an earlier session. Recover them? (No deletes them.)"):
            path.unlink(missing_ok=True)
            return None
        project = Project.load(path)
        project.path = None
        return project

    def confirm_discard(self) -> bool:
        project = self.session.project
        if project is None or not project.dirty:
            return True
        if not project.store.objects:
            self._drop_recovery()
            return True
        answer = self.ask_save()
        if answer == "save":
            return self.save_project()
        if answer == "discard":
            self._drop_recovery()  # discarded work must not come back as a recovery prompt
            return True
        return False

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_path(urls[0]))

    # ---- recent files and settings -------------------------------------------------------
    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: Path) -> None:
        item = str(path.resolve())
        recent = [item] + [p for p in self._recent() if p != item]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self.settings.setValue("last_dir", str(path.resolve().parent))
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for item in recent:
            self.recent_menu.addAction(item, lambda p=item: self.open_path(p))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        else:  # first start: most of the height to the frame, room for many objects
            self._first_layout()
        try:
            saved = json.loads(str(self.settings.value("overlays", "{}")))
        except ValueError:
            saved = {}
        for attr, value in saved.items():
            if hasattr(self.canvas.options, attr) and type(value) is type(getattr(self.canvas.options, attr)):
                self.set_overlay(attr, value)
        try:
            tracker = json.loads(str(self.settings.value("tracker", "{}")))
        except ValueError:
            tracker = {}
        self.tracker_panel.apply_settings(tracker)
        radius = self.settings.value("brush_radius")
        if radius is not None:
            self.canvas.tools.brush_radius = float(radius)

    def _first_layout(self) -> None:
        docks = {d.objectName(): d for d in self.findChildren(QDockWidget)}
        self.resizeDocks([docks["dock_timeline"]], [self.timeline.sizeHint().height()], Qt.Orientation.Vertical)
        natural = self.tracker_panel.sizeHint()  # the tracker panel whole, its buttons in view
        self.resizeDocks([docks["dock_objects"], docks["dock_tracker"]], [420, natural.height() + DOCK_TITLE_PX],
                         Qt.Orientation.Vertical)
        self.resizeDocks([docks["dock_tracker"]], [natural.width() + 16], Qt.Orientation.Horizontal)

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("overlays", json.dumps(vars(self.canvas.options)))
        self.settings.setValue("tracker", json.dumps(self.tracker_panel.settings()))
        self.settings.setValue("brush_radius", self.canvas.tools.brush_radius)

    # ---- saving, autosave, import/export -------------------------------------------------
    def save_project(self, path=None) -> bool:
        project = self.session.project
        if project is None:
            return False
        if path is None and project.path is None:
            return self.save_project_as()
        project.settings["tracker"] = self.tracker_panel.settings()
        prune_object_trackers(project.settings, project.store)
        try:
            saved = project.save(path)
        except Exception as exc:  # noqa: BLE001
            self.show_error("Cannot save the project", exc)
            return False
        self._drop_recovery()
        self._add_recent(saved)
        self._update_title()
        self.show_message(f"Saved {saved}")
        return True

    def save_project_as(self) -> bool:
        project = self.session.project
        if project is None:
            return False
        start = project.path or Path(project.video.path).with_suffix(PROJECT_SUFFIX)
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(start), f"*{PROJECT_SUFFIX}")
        if not path:
            return False
        if not path.endswith(PROJECT_SUFFIX):
            path += PROJECT_SUFFIX
        return self.save_project(path)

    def autosave(self) -> Path | None:
        """Timer tick: saved projects get `<file>.autosave`, unsaved ones a recovery file per video."""
        project = self.session.project
        if project is None or self.tracking.running:
            return None  # mid-run states are half a propagation: wait for it to end
        try:
            if project.path is not None:
                return self.autosaver.autosave(project)
            if project.store.revision != self._recovery_revision and project.store.objects:
                target = self._recovery_path(project.video.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, project.to_bytes(target))
                self._recovery_revision = project.store.revision
                return target
        except OSError as exc:
            self.show_message(f"Autosave failed: {exc}")
        return None

    def _drop_recovery(self) -> None:
        """Delete the project's recovery file or autosave: saved or discarded, it is stale."""
        project = self.session.project
        if project is not None:
            stale = [self._recovery_path(project.video.path)]
            if project.path is not None:
                stale.append(Autosaver.autosave_path(project.path))
            for path in stale:
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass

    def export_dialog(self) -> None:
        project = self.session.project
        if project is None:
            self.show_message("Nothing to export yet: open a video and annotate it first.")
            return
        stem = Path(project.path or project.video.path)
        dialog = ExportDialog(stem.with_suffix(""), self)
        if dialog.exec():
            self.export_to(dialog.result_format(), dialog.result_path())

    def export_to(self, fmt: str, path) -> bool:
        """Write the annotations in format `fmt` (a name in app.model.interop.FORMATS: json, coco, yolo, ...)."""
        project = self.session.project
        if project is None:
            return False
        try:
            frame_times = self.session.video.frame_times() if self.session.video is not None else None
            export(project.store, project.video, path, fmt, frame_times=frame_times)
        except Exception as exc:  # noqa: BLE001
            self.show_error("Export failed", exc)
            return False
        self.show_message(f"Exported {fmt.upper()} to {path}")
        return True

    def import_dialog(self) -> None:
        if self.session.project is None:
            self.show_message("Open the video first, then import its annotations.")
            return
        dialog = ImportDialog(self._last_dir(), self)
        if dialog.exec() and dialog.path.text():
            self.import_as(dialog.result_path(), dialog.result_format(), tracked=dialog.tracked.isChecked())

    def import_as(self, path, fmt: str, tracked: bool = False) -> bool:
        """Add a file's labels as new objects (one undo step): keyframes, or tracked frames when `tracked`."""
        if self.session.project is None or self._locked():
            return False
        path = Path(path)
        try:
            created = import_file(path, fmt, self.session.store, self.session.project.video, tracked=tracked)
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"Cannot import {path.name}", exc)
            return False
        frames = sum(len(self.session.store.frames(obj.obj_id)) for obj in created)
        self.show_message(f"Imported {len(created)} objects ({frames} annotated frames) from {path.name}")
        return True

    def export_video_dialog(self) -> None:
        project = self.session.project
        if project is None or self.session.video is None:
            self.show_message("Nothing to render yet: open a video and annotate it first.")
            return
        stem = Path(project.path or project.video.path)
        dialog = VideoExportDialog(stem.with_name(stem.stem + "_review.mp4"), self)
        if dialog.exec():
            self.export_video(Path(dialog.path.text()).expanduser(), dialog.side_by_side.isChecked())

    def export_video(self, path, side_by_side: bool = False) -> bool:
        """Render the review video in a worker; progress and Cancel in a dialog, the result in the status bar."""
        if self.session.project is None or self.session.video is None:
            return False
        if self.video_exporter.running:
            self.show_message("A video is being rendered already.")
            return False
        return self.video_exporter.start(self.session.video, self.session.store, path, side_by_side, self)

    def _on_video_exported(self, completed: bool, path: str, error: str) -> None:
        if error:
            self.show_error("Export video failed", error)
        elif completed:
            self.show_message(f"Exported the review video to {path}")
        else:
            self.show_message("Video export cancelled (nothing written)")

    def import_from(self, path) -> bool:
        """A TrackStudio JSON replaces the annotations (undo: reopen); a PNG folder adds mask objects (undoable)."""
        project, path = self.session.project, Path(path)
        try:
            if path.is_dir():
                created = import_png_masks(path, project.store, project.video)
                self.show_message(f"Imported {len(created)} mask objects from {path.name}")
                return True
            store, video = load_json(path)
            info = project.video
            if video.width and (video.width, video.height) != (info.width, info.height):
                raise FormatError(f"the annotations are for a {video.width}x{video.height} video but this one is "
                                  f"{info.width}x{info.height}", "video", path)
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"Cannot import {path.name}", exc)
            return False
        self.tracking.shutdown()
        project.store = store  # the project's other videos keep their annotations
        self.session.set_document(self.session.video, project)
        self.show_message(f"Imported {len(store.objects)} objects from {path.name}")
        return True

    # ---- editing -------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        self.canvas.tools.set_tool(tool)

    def set_overlay(self, attr: str, value) -> None:
        setattr(self.canvas.options, attr, value)
        key = {"masks": "show_masks", "outlines": "show_outlines", "boxes": "show_boxes", "labels": "show_labels",
               "points": "show_points", "attention": "show_attention"}.get(attr)
        if key in self.actions and self.actions[key].isChecked() != bool(value):
            self.actions[key].setChecked(bool(value))
        if attr == "attention" and value:
            self.show_message("Attention: what the tracker looks at for the selected object on this frame "
                              "(computed when missing).")
            self.attention.schedule()
        self.canvas.refresh()

    def _attention_choice(self, kind: str) -> TrackerChoice | None:
        """The tracker asked for an attention map of a `kind` object: the panel's, when it can be built."""
        name = self.tracker_panel.tracker_name(kind)
        if not name or missing_weights_text(name):
            return None
        return self.tracker_panel.choice(name, attention=True)

    def _locked(self) -> bool:
        if self.tracking.running:
            self.show_message("Tracking is running: wait for it or press Esc to cancel.")
            return True
        return self.session.store is None

    def undo(self) -> None:
        if not self._locked():
            stack = self.session.store.undo_stack
            text = stack.undo_text
            if stack.undo():
                self.show_message(f"Undid: {text}")

    def redo(self) -> None:
        if not self._locked():
            stack = self.session.store.undo_stack
            text = stack.redo_text
            if stack.redo():
                self.show_message(f"Redid: {text}")

    def mark_absent(self) -> None:
        obj_id = self.session.selected
        if obj_id is not None and not self._locked():
            self.session.edit_state(obj_id, FrameState(visible=False, keyframe=True))

    def clear_frame(self) -> None:
        obj_id = self.session.selected
        if obj_id is not None and not self._locked():
            self.session.store.clear_state(obj_id, self.session.frame_idx)

    def clear_tracked(self) -> None:
        obj_id = self.session.selected
        if obj_id is not None and not self._locked():
            self.session.store.clear_tracked(obj_id)

    def toggle_hidden(self) -> None:
        obj_id = self.session.selected
        if obj_id is not None and self.session.store is not None:
            obj = self.session.store.get_object(obj_id)
            self.session.store.update_object(obj_id, hidden=not obj.hidden)

    def add_point_grid(self, rows: int = 4, cols: int = 4) -> list[int]:
        """Many point objects at once: a grid over the selected box / mask on this frame, else the frame."""
        s = self.session
        if self._locked():
            return []
        info = s.video.info
        region = np.array([0, 0, info.width, info.height], np.float32)
        state = s.state(s.selected) if s.selected is not None else None
        if state is not None and state.visible:
            if state.box is not None:
                region = state.box
            elif state.mask is not None and state.mask.bbox() is not None:
                region = state.mask.bbox()
        xs = region[0] + (np.arange(cols) + 0.5) * (region[2] - region[0]) / cols
        ys = region[1] + (np.arange(rows) + 0.5) * (region[3] - region[1]) / rows
        created = []
        with s.store.macro("Add point grid"):
            for y in ys:
                for x in xs:
                    obj = s.store.add_object("point")
                    s.store.set_state(obj.obj_id, s.frame_idx,
                                      FrameState(point=(float(x) - 0.5, float(y) - 0.5), keyframe=True))
                    created.append(obj.obj_id)
        s.select(created[0])
        return created

    def _jump_unannotated(self) -> None:
        if not self.timeline.jump_unannotated():
            self.show_message("Every frame has an annotation for the selected object (or none is selected).")

    # ---- click-to-mask -------------------------------------------------------------------
    def _prompt_choice(self) -> TrackerChoice | None:
        name = self.tracker_panel.tracker_name("mask")
        return self.tracker_panel.choice(name) if name else None

    def _prepare_click_frame(self) -> None:
        """With the click-to-mask tool on, encode the current frame in the background before the click."""
        choice = self._prompt_choice()
        if (self.canvas.tools.tool == "click" and choice is not None and self.session.video is not None
                and not self.tracking.running and not missing_weights_text(choice.name)):
            self.prompts.prepare(self.session.frame_idx, choice, self.session.video)

    def _request_mask(self, obj_id: int, frame_idx: int, clicks, box) -> None:
        choice = self._prompt_choice()
        if choice is None:
            self.show_error("Click-to-mask", "No mask tracker is available.\n\nReinstall TrackStudio: the built-in "
                                             "mask trackers ship with it.")
            return
        if not self.ensure_weights(choice.name):  # asked before anything tries the network
            self.show_message(f"Click-to-mask: {missing_weights_text(choice.name)} Get it in Track > Models…, "
                              "or choose another mask tracker in the Tracker panel.")
            return
        self._mask_requested_at = time.perf_counter()
        self.prompts.request(frame_idx, obj_id, clicks, box, choice, self.session.video)
        self.show_message("Click-to-mask: computing the mask…")

    def _on_mask_reply(self, reply) -> None:
        req, result = reply.request, reply.result
        store = self.session.store
        if (not self.prompts.is_latest(req) or req.frames is not self.session.video or store is None
                or req.obj_id not in store):
            return  # a newer click is on its way, or the document changed
        if not self.session.editing_enabled:
            self.show_message("Tracking is running: the mask from your click was not stored.")
            return
        mask = result.mask
        visible = bool(result.visible and mask is not None and mask.any())
        store.set_state(req.obj_id, req.frame_idx, FrameState(mask=mask, box=req.box, clicks=req.clicks,
                                                              visible=visible, keyframe=True))
        self.canvas.refresh_now()  # on screen now, not one event-loop turn later
        seconds = time.perf_counter() - self._mask_requested_at
        self.show_message(f"Mask from {0 if req.clicks is None else len(req.clicks)} click(s)"
                          f"{' + box' if req.box is not None else ''} in {seconds * 1000:.0f} ms. "
                          "Add clicks to refine it (right click removes area).")
        self.mask_shown.emit(seconds)

    def _on_mask_failed(self, request, message: str) -> None:
        if self.prompts.is_latest(request):
            self.show_error("Click-to-mask failed", message)

    # ---- tracking ------------------------------------------------------------------------
    def _scope(self) -> list[int] | None:
        s = self.session
        if self.tracker_panel.selected_only.isChecked():
            return [s.selected] if s.selected is not None else []
        return None

    def propagate_all(self) -> bool:
        if self.session.store is None or self.tracking.running:
            return False
        return self._start(self.tracking.plan_all(self._scope()), "Track whole video",
                           "Nothing to track: annotate an object on some frame first (a keyframe). Frames that "
                           "already have a result are kept: to redo them, correct a frame and press Ctrl+R there, "
                           "or use Edit > Clear tracked frames.")

    def propagate_here(self) -> bool:
        s = self.session
        if s.store is None or self.tracking.running:
            return False
        scope = self._scope()
        obj_ids = [o.obj_id for o in s.store.objects] if scope is None else scope
        mode = RANGES[self.tracker_panel.range_mode.currentIndex()]
        max_frames = self.tracker_panel.num_frames.value() if mode == "N frames" else None
        passes = self.tracking.plan_here(obj_ids, self.tracker_panel.direction.currentText(), max_frames,
                                         until_keyframe=mode == "to the next keyframe")
        return self._start(passes, f"Propagate from frame {s.frame_idx}",
                           f"Nothing to propagate from frame {s.frame_idx}: no object has a keyframe here. Correct "
                           "an object on this frame (the edit is a keyframe), then press Ctrl+R.")

    def _start(self, passes, text: str, nothing_to_do: str) -> bool:
        tracked = {obj_id for p in passes for obj_id in p.write_ranges}
        info = self.session.video.info
        for _index, obj, frame_idx, _field, why in keyframe_problems(self.session.store, info.width, info.height):
            if obj.obj_id in tracked:  # the check `trackstudio track` makes before a run
                self.show_message(f"Cannot track {obj.name}: its keyframe on frame {frame_idx} cannot prompt a "
                                  f"tracker ({why}). Redraw or delete it.")
                return False
        if not passes:
            self.show_message(nothing_to_do)
            return False
        choices = self.tracker_panel.choices(self.canvas.options.attention, {p.tracker for p in passes if p.tracker})
        for key in {p.tracker_key for p in passes}:
            if key in choices and not self.ensure_weights(choices[key].name):
                self.show_message(f"{choices[key].name} has no weights yet: "
                                  "Track > Models… downloads or imports them.")
                return False
        try:
            return self.tracking.start(passes, choices, text)
        except Exception as exc:  # noqa: BLE001
            self.show_error("Cannot start tracking", exc)
            return False

    def _on_tracking_started(self) -> None:
        self.tracker_panel.set_running(True)
        self.progress.setValue(0)
        self.progress.show()
        self.show_message("Tracking… results appear as they arrive; Esc cancels and keeps what is done.")

    def _on_tracking_progress(self, done: int, total: int, seconds_left: float) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)
        if math.isfinite(seconds_left):
            self.eta_label.setText(f"{seconds_left:.0f} s left" if seconds_left >= 1 else "almost done")

    def _on_tracking_finished(self, cancelled: bool, error: str, written: int) -> None:
        self.tracker_panel.set_running(False)
        self.progress.hide()
        self.eta_label.clear()
        if error:
            self.show_error("Tracking failed", error)
        else:
            self.show_message(f"{'Cancelled: kept' if cancelled else 'Done:'} {written} tracked states. Correct any "
                              "frame (it becomes a keyframe) and press Ctrl+R to propagate from there; Ctrl+Z undoes "
                              "the whole run.")
        self.canvas.refresh()
        self._show_frame_info(self.session.frame_idx)

    # ---- help and shutdown ---------------------------------------------------------------
    def shortcut_rows(self) -> list[tuple[str, str]]:
        rows = []
        for action in self.actions.values():
            keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
            if keys:
                rows.append((keys, action.text().replace("&", "")))
        rows.append(("Wheel / middle-drag", "Zoom / pan the frame"))
        rows.append(("Right click / Shift+click", "Click-to-mask: mark background"))
        return rows

    def ensure_weights(self, tracker: str) -> bool:
        """True when `tracker`'s weights are cached; otherwise offers to download or import them (tests replace this)."""
        return models_dialog.ensure_weights(self, tracker)

    def show_models(self, select_tracker: str = "") -> None:
        dialog = models_dialog.ModelsDialog(self, select_tracker=select_tracker or None)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self.tracker_panel.refresh_weights())
        dialog.show()

    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(self.shortcut_rows(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def closeEvent(self, event):
        # after shutdown() the user already chose to quit: nothing is left to ask
        if not self._shut_down and not self.confirm_discard():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the workers and remember the settings (idempotent)."""
        self._shut_down = True
        self._autosave_timer.stop()
        self.tracking.shutdown()
        self.timeline.set_playing(False)
        self.prompts.shutdown()
        self.video_exporter.shutdown()
        self.attention.shutdown()
        self._save_settings()
        self.session.close()


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("TrackStudio")
        app.setOrganizationName("TrackStudio")
    return app


def run_gui(path: str | None = None) -> int:
    """Open the main window (on `path` when given) and run until it closes."""
    if not _has_display():
        print("trackstudio: no display found. Run it in a desktop session (or over ssh -X), or use the command line "
              "(`trackstudio track ...`).", file=sys.stderr)
        return 1
    app = application()
    window = MainWindow()

    def excepthook(exc_type, exc, tb):  # a bug in a slot: tell the user, keep the window alive
        sys.__excepthook__(exc_type, exc, tb)
        window.show_error("Unexpected error", exc)

    sys.excepthook = excepthook
    window.show()
    if path:
        QTimer.singleShot(0, lambda: window.open_path(path))
    try:
        return app.exec()
    finally:
        sys.excepthook = sys.__excepthook__
