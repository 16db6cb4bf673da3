"""The project's videos: one row each with its status (not started / prompted / tracked / reviewed).

Clicking a row asks the window to switch to that video (it opens the file only then); "Add
videos…" asks it to add files, "Remove" to drop the open video; "Reviewed" marks the current video
as checked by a person.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout,
                               QWidget)

from trackstudio.app.model import Project
from trackstudio.app.model.project import STATUSES

STATUS_COLORS = {"not started": "#9e9e9e", "prompted": "#f0a030", "tracked": "#3c8ce6", "reviewed": "#3cb450"}


class VideoListPanel(QWidget):
    video_chosen = Signal(int)  # index into project.videos
    add_requested = Signal()
    remove_requested = Signal()
    reviewed_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.list = QListWidget()
        self.list.setToolTip("The project's videos; click one to open it")
        self.add_button = QPushButton("Add videos…")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the open video and its annotations from the project")
        self.reviewed = QCheckBox("Reviewed")
        self.reviewed.setToolTip("Mark the current video as checked (its status becomes 'reviewed')")
        self.counts = QLabel()
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.reviewed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list)
        layout.addWidget(self.counts)
        layout.addLayout(buttons)
        self.list.itemClicked.connect(lambda item: self._choose(self.list.row(item)))
        self.list.itemActivated.connect(lambda item: self._choose(self.list.row(item)))
        self.add_button.clicked.connect(self.add_requested)
        self.remove_button.clicked.connect(self.remove_requested)
        self.reviewed.clicked.connect(self.reviewed_changed)
        self.setEnabled(False)

    def set_project(self, project: Project | None) -> None:
        """Rebuild the rows (a new project, or videos were added)."""
        self.project = project
        self.list.clear()
        self.setEnabled(project is not None)
        if project is None:
            return
        for _ in project.videos:
            self.list.addItem(QListWidgetItem())
        self.refresh()

    def refresh(self, current_only: bool = False) -> None:
        """Statuses and the current row; `current_only` after edits (only the open video changes, and
        a tracking run edits it on every frame)."""
        project = self.project
        if project is None or self.list.count() != len(project.videos):
            return
        rows = [project.current] if current_only else range(len(project.videos))
        for index in rows:
            entry = project.videos[index]
            item = self.list.item(index)
            status = entry.status
            item.setText(f"{entry.name}  —  {status}")
            item.setData(Qt.ItemDataRole.UserRole, status)
            item.setForeground(QColor(STATUS_COLORS[status]))
            item.setToolTip(f"{entry.video.path}\n{entry.video.num_frames} frames, "
                            f"{entry.video.width}x{entry.video.height}: {status}")
            font = item.font()
            font.setBold(index == project.current)
            item.setFont(font)
        self.list.setCurrentRow(project.current)
        self.reviewed.setChecked(project.entry.reviewed)
        self.remove_button.setEnabled(len(project.videos) > 1)
        statuses = self.statuses()
        self.counts.setText(f"{len(statuses)} video{'s' if len(statuses) != 1 else ''}: " + ", ".join(
            f"{statuses.count(status)} {status}" for status in STATUSES if status in statuses))

    def statuses(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _choose(self, index: int) -> None:
        if self.project is not None and index != self.project.current:
            self.video_chosen.emit(index)
