"""File > Import (any exchange format) and File > Export video (rendered in a worker thread)."""
from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QProgressDialog, QPushButton, QVBoxLayout)

from trackstudio.app.model.interop import FORMATS, guess_format
from trackstudio.app.render import render_video, snapshot

from .errors import describe


class ImportDialog(QDialog):
    """A file or folder, its format (guessed from the name) and keyframes vs tracked frames."""

    def __init__(self, start_dir: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import annotations")
        self._start_dir = start_dir
        self.path = QLineEdit()
        self.path.textChanged.connect(self._guess)
        pick_file, pick_folder = QPushButton("File…"), QPushButton("Folder…")
        pick_file.clicked.connect(self._browse_file)
        pick_folder.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(pick_file)
        row.addWidget(pick_folder)
        self.format = QComboBox()
        for spec in FORMATS.values():
            self.format.addItem(spec.title, spec.name)
        self.tracked = QCheckBox("Import as tracked frames (the file's own keyframes stay keyframes)")
        form = QFormLayout()
        form.addRow("From:", row)
        form.addRow("Format:", self.format)
        note = QLabel("Imported labels become new objects. As keyframes they are ground truth the trackers carry on "
                      "from; as tracked frames a new tracking run may replace them. Folders: a YOLO dataset, a MOT "
                      "sequence, DAVIS PNG masks.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.tracked)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def result_path(self) -> Path:
        return Path(self.path.text()).expanduser()

    def result_format(self) -> str:
        return self.format.currentData()

    def _guess(self, text: str) -> None:
        fmt = guess_format(text) if text else None
        if fmt is not None:
            self.format.setCurrentIndex(self.format.findData(fmt))

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Annotation file", self._start_dir,
                                              "Annotations (*.json *.xml *.txt *.csv *.slp *.npz *.pkl *.yaml);;"
                                              "All files (*)")
        if path:
            self.path.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Annotation folder", self._start_dir)
        if path:
            self.path.setText(path)


class VideoExportDialog(QDialog):
    """Where to write the review video, and whether to show the original beside it."""

    def __init__(self, default_path: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export video")
        self.path = QLineEdit(str(default_path))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.side_by_side = QCheckBox("Side by side: original | overlay")
        form = QFormLayout()
        form.addRow("Save to:", row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.side_by_side)
        layout.addWidget(QLabel("H.264 MP4 with masks, boxes, point trails, names and scores drawn on every frame."))
        layout.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export video", self.path.text(), "MP4 video (*.mp4)")
        if path:
            self.path.setText(path)


class _RenderWorker(QObject):
    progress = Signal(int, int)
    finished = Signal(bool, str)  # completed (False: cancelled or failed), error message

    def __init__(self, video, objects, path: Path, side_by_side: bool, stop: threading.Event):
        super().__init__()
        self._args = (video, objects, path, side_by_side)
        self._stop = stop

    @Slot()
    def run(self) -> None:
        video, objects, path, side_by_side = self._args
        try:
            done = render_video(video, objects, path, side_by_side=side_by_side,
                                progress=self.progress.emit, should_stop=self._stop.is_set)
        except Exception as exc:  # noqa: BLE001  (reported in the window, not lost in the thread)
            self.finished.emit(False, describe(exc))
            return
        self.finished.emit(done, "")


class VideoExporter(QObject):
    """Renders in a QThread with a progress dialog whose Cancel stops it between frames.

    `finished(completed, path, error)` comes on the GUI thread when the thread has ended.
    """

    finished = Signal(bool, str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _RenderWorker | None = None
        self._path = ""
        self._stop = threading.Event()
        self.progress_dialog: QProgressDialog | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, video, store, path: Path, side_by_side: bool, parent_widget) -> bool:
        if self.running:
            return False
        self._stop.clear()
        objects = snapshot(store)  # the worker reads this copy; the user may go on editing
        self._thread = QThread(self)
        worker = _RenderWorker(video, objects, Path(path), side_by_side, self._stop)
        worker.moveToThread(self._thread)
        self._thread.started.connect(worker.run)
        dialog = QProgressDialog(f"Rendering {Path(path).name}…", "Cancel", 0, len(video), parent_widget)
        dialog.setWindowTitle("Export video")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.cancel)
        # slots of this GUI-thread object, so the signals queue over from the worker thread
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._finish)
        self.progress_dialog = dialog
        self._worker, self._path = worker, str(path)
        dialog.show()
        self._thread.start()
        return True

    def cancel(self) -> None:
        self._stop.set()

    @Slot(int, int)
    def _on_progress(self, done: int, _total: int) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.setValue(done)

    @Slot(bool, str)
    def _finish(self, done: bool, error: str) -> None:
        if self._thread is None:
            return  # shut down already (the window closed while rendering)
        thread, self._thread = self._thread, None
        thread.quit()
        thread.wait()
        self._worker.deleteLater()
        self._worker = None
        if self.progress_dialog is not None:
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None
        self.finished.emit(done, self._path, error)

    def shutdown(self) -> None:
        """Stop a render and wait for its thread (closing the window)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.quit()
            self._thread.wait()
            self._thread = None
