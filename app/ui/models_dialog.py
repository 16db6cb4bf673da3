"""Tracker > Models…: the `trackstudio models` table with download, import and remove buttons.

The logic is app.models_cli's; this file only shows it. Downloads run in a QThread and report
progress through a queued signal, so the window never freezes; Cancel (or closing the dialog)
stops a download and keeps the partial file, which the next try resumes. `ensure_weights(parent,
tracker)` is what the main window calls before building a tracker: it returns True at once when
the weights are there, else offers this dialog.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from trackstudio.app import models_cli
from trackstudio.app.commands import CliError
from trackstudio.trackers.checkpoints import CheckpointError, WeightsSpec, cache_dir

from .errors import gui_wording

COLUMNS = ("Tracker", "Kind", "Default", "Weights", "Size", "Licence", "Status", "Source")


class _Cancelled(Exception):
    """Raised from the progress callback to stop a download (the checkpoint manager keeps the part)."""


class DownloadThread(QThread):
    """Downloads one WeightsSpec; `progress(done_kb, total_kb)` (total 0 when unknown), then `done(error)`."""

    progress = Signal(int, int)
    done = Signal(str)  # "" on success, else the message; "cancelled" when stopped

    def __init__(self, weights: WeightsSpec, cache=None, parent=None):
        super().__init__(parent)
        self.weights, self.cache = weights, cache
        self._stop = False

    def cancel(self) -> None:
        self._stop = True

    def _report(self, done_bytes: int, total_bytes: int | None) -> None:
        if self._stop:
            raise _Cancelled()
        self.progress.emit(done_bytes // 1024, (total_bytes or 0) // 1024)  # KB: stays inside a Qt int

    def run(self) -> None:
        try:
            models_cli.download(self.weights, self.cache, progress=self._report)
        except _Cancelled:
            self.done.emit("cancelled")
        except CheckpointError as exc:
            self.done.emit(str(exc))
        except Exception as exc:  # noqa: BLE001  (a worker thread must report, never die silently)
            self.done.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.done.emit("")


class ModelsDialog(QDialog):
    """Every tracker and its weights; select a row to download, import or remove its file."""

    def __init__(self, parent=None, select_tracker: str | None = None, cache=None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.cache = cache
        self.last_error = ""
        self._rows: list[models_cli.WeightsRow] = []
        self._thread: DownloadThread | None = None

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Source"), QHeaderView.ResizeMode.Stretch)  # long URLs: elided
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.download_button = QPushButton("Download")
        self.import_button = QPushButton("Import file…")
        self.remove_button = QPushButton("Remove")
        self.cancel_button = QPushButton("Cancel download")
        close = QPushButton("Close")
        self.download_button.clicked.connect(self.download_selected)
        self.import_button.clicked.connect(lambda: self.import_selected())
        self.remove_button.clicked.connect(self.remove_selected)
        self.cancel_button.clicked.connect(self.cancel_download)
        close.clicked.connect(self.reject)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        for button in (self.download_button, self.import_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.progress, 2)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.refresh()
        self._fit_to_table()
        if select_tracker is not None:
            self.select(select_tracker)

    def _fit_to_table(self) -> None:
        """Wide enough for every column but the URLs (elided, in full as tooltips), tall enough for the rows."""
        header = self.table.horizontalHeader()
        source = COLUMNS.index("Source")
        columns = sum(header.sectionSize(c) for c in range(len(COLUMNS)) if c != source)
        rows = self.table.verticalHeader().length() + header.height()
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        width, height = columns + 320, rows + 130
        if screen is not None:
            width, height = min(width, int(screen.width() * 0.95)), min(height, int(screen.height() * 0.85))
        self.resize(max(width, 700), max(height, 360))

    # -- table ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        selected = self.selected_row()
        self._rows = models_cli.weights_table(self.cache)
        self.table.setRowCount(len(self._rows))
        for index, row in enumerate(self._rows):
            size = models_cli.format_size(row.size_bytes) if row.weights is not None or row.shipped else "-"
            name = row.tracker + (" (experimental)" if row.experimental else "")
            cells = (name, row.kind, "yes" if row.default else "", row.weights_name, size, row.licence,
                     row.status, row.source)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(row.description if column == 0 else text)
                self.table.setItem(index, column, item)
        if selected is not None:
            self.select(selected.tracker, selected.weights)
        self.status.setText(f"Downloaded weights live in {cache_dir() if self.cache is None else self.cache}.")
        self._update_buttons()

    def select(self, tracker: str, weights: WeightsSpec | None = None) -> bool:
        for index, row in enumerate(self._rows):
            if row.tracker == tracker and (weights is None or row.weights == weights):
                self.table.selectRow(index)
                return True
        return False

    def selected_row(self) -> models_cli.WeightsRow | None:
        indexes = self.table.selectionModel().selectedRows() if self._rows else []
        return self._rows[indexes[0].row()] if indexes else None

    def _update_buttons(self) -> None:
        row = self.selected_row()
        busy = self._thread is not None
        official = row is not None and row.weights is not None
        self.download_button.setEnabled(not busy and official and bool(row.weights.url) and not row.cached)
        self.import_button.setEnabled(not busy and official)
        self.remove_button.setEnabled(not busy and official and row.cached)

    def _fail(self, message: str) -> None:
        message = gui_wording(message)
        self.last_error = message
        self.status.setText(message)

    # -- actions -------------------------------------------------------------------------------------
    def download_selected(self) -> bool:
        """Start downloading the selected row's weights; False when nothing was started."""
        row = self.selected_row()
        if row is None or row.weights is None or self._thread is not None:
            return False
        self.last_error = ""
        self._thread = DownloadThread(row.weights, self.cache, self)
        self._thread.progress.connect(self._on_progress)
        self._thread.done.connect(self._on_done)
        self.progress.setRange(0, 0)  # busy until the size is known
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.status.setText(f"Downloading {row.weights.filename} from {row.weights.url} …")
        self._update_buttons()
        self._thread.start()
        return True

    def _on_progress(self, done_kb: int, total_kb: int) -> None:
        if total_kb > 0:
            self.progress.setRange(0, total_kb)
            self.progress.setValue(min(done_kb, total_kb))

    def _on_done(self, error: str) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.refresh()
        if error == "cancelled":
            self.status.setText("Download cancelled; the partial file is kept and the next download resumes it.")
        elif error:
            self._fail(error)
        else:
            self.status.setText("Downloaded and verified (sha256).")

    def cancel_download(self) -> None:
        if self._thread is not None:
            self._thread.cancel()

    def import_selected(self, path: str | Path | None = None) -> bool:
        """Copy a local file in as the selected row's weights (asks for it when `path` is None)."""
        row = self.selected_row()
        if row is None or row.weights is None:
            return False
        if path is None:
            path, _filter = QFileDialog.getOpenFileName(self, f"Import {row.weights.filename}", str(Path.home()),
                                                        "Checkpoints (*.pt *.pth *.tar *.ckpt);;All files (*)")
            if not path:
                return False
        try:
            target = models_cli.import_file(row.weights, path, self.cache)
        except (CheckpointError, CliError) as exc:
            self._fail(str(exc))
            return False
        self.refresh()
        self.status.setText(f"Imported {Path(path).name} as {target}.")
        return True

    def remove_selected(self) -> bool:
        row = self.selected_row()
        if row is None or row.weights is None:
            return False
        removed = models_cli.remove(row.weights, self.cache)
        self.refresh()
        self.status.setText(f"Removed {row.weights.filename}." if removed else f"{row.weights.filename} was not cached.")
        return removed

    def done(self, result: int) -> None:  # every way of closing the dialog ends here
        if self._thread is not None:
            self._thread.cancel()
            self._thread.wait()
        super().done(result)


def ensure_weights(parent, tracker: str, cache=None) -> bool:
    """True when `tracker` can be built now; otherwise offer to download or import its weights."""
    missing = models_cli.missing_weights(tracker, cache)
    if not missing:
        return True
    weights = missing[0]
    size = models_cli.format_size(weights.size_bytes)
    how = "download it now (verified by sha256)" if weights.url else "import the file you downloaded"
    answer = QMessageBox.question(
        parent, "Weights needed",
        f"{tracker} needs {weights.filename} ({size}, licence {weights.license}), which is not on this computer.\n\n"
        f"Open Track > Models to {how}?")
    if answer != QMessageBox.StandardButton.Yes:
        return False
    dialog = ModelsDialog(parent, select_tracker=tracker, cache=cache)
    if weights.url:
        dialog.download_selected()
    dialog.exec()
    return not models_cli.missing_weights(tracker, cache)
