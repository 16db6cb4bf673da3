"""Small dialogs: export, the F1 shortcuts sheet."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from trackstudio.app.model.interop import FORMATS

MAX_PATH_WIDTH = 900  # pixels: longer paths scroll in their field
EXPORT_FORMATS = {spec.title: (spec.name, spec.suffix) for spec in FORMATS.values()}  # (key, suffix; "" = a folder)


class ExportDialog(QDialog):
    """Choose a format and a destination; `result_format()` / `result_path()` after exec()."""

    def __init__(self, default_stem: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export annotations")
        self._stem = default_stem
        self.format = QComboBox()
        self.format.addItems(list(EXPORT_FORMATS))
        self.path = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.format.currentIndexChanged.connect(self._default_path)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format:", self.format)
        form.addRow("Save to:", row)
        note = QLabel("JSON keeps everything (re-open it with File > Import). COCO, CVAT and TrackStudio NPZ hold "
                      "every kind; YOLO and MOT hold boxes and masks; DLC, SLEAP and TAP-Vid hold points; PNG holds "
                      "masks. Formats ending in (folder) write a folder. See docs/formats.md.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self._default_path()
        # the whole path in view and the note on a few lines, not a narrow column that cuts both
        width = min(self.path.fontMetrics().horizontalAdvance(self.path.text()) + 32, MAX_PATH_WIDTH)
        self.path.setMinimumWidth(max(width, self.path.fontMetrics().horizontalAdvance("x" * 48)))
        self.setMinimumWidth(self.sizeHint().width())
        self.resize(self.minimumWidth(), self.heightForWidth(self.minimumWidth()) if self.hasHeightForWidth()
                    else self.sizeHint().height())

    def result_format(self) -> str:
        return EXPORT_FORMATS[self.format.currentText()][0]

    def result_path(self) -> Path:
        return Path(self.path.text()).expanduser()

    def _default_path(self) -> None:
        suffix = EXPORT_FORMATS[self.format.currentText()][1]
        stem = self._stem
        key = EXPORT_FORMATS[self.format.currentText()][0]
        name = stem.name if key == "json" else f"{stem.name}_{key}"  # coco and json both end in .json
        self.path.setText(str(stem.with_name(name + suffix)))

    def _browse(self) -> None:
        key, suffix = EXPORT_FORMATS[self.format.currentText()]
        if not suffix:
            path = QFileDialog.getExistingDirectory(self, "Folder to export into", str(self._stem.parent))
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export annotations", self.path.text(), f"*{suffix}")
        if path:
            self.path.setText(path)


class ShortcutsDialog(QDialog):
    """The F1 sheet: every shortcut with what it does."""

    def __init__(self, rows: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().setVisible(False)
        for row, (keys, action) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(action))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        tips = QLabel("Mouse: wheel zooms, middle-drag pans (left-drag too with the Select tool). "
                      "Click-to-mask: left click = object, right / Shift+click = background, drag = box.")
        tips.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(tips)
        layout.addWidget(buttons)
        self.resize(520, 600)
