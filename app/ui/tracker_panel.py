"""The tracker panel: which tracker per kind, the device, and the range of a propagation run."""
from __future__ import annotations

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QFrame, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from trackstudio.app import models_cli
from trackstudio.trackers import registry

from .tracker_options import TrackerOptionsDialog, checked_options
from .workers import TrackerChoice

DIRECTIONS = ("forward", "backward", "both")
RANGES = ("to the end", "N frames", "to the next keyframe")
NO_WEIGHTS = "  ⚠ no weights"  # marks a tracker whose weights are not on this computer


def missing_weights_text(tracker: str) -> str:
    """'' when `tracker` can be built now, else one line naming the file it needs."""
    try:
        missing = models_cli.missing_weights(tracker)
    except (KeyError, ValueError):  # not a registered tracker (a plugin that went away)
        return ""
    if not missing:
        return ""
    weights = missing[0]
    return (f"{tracker} needs {weights.filename} ({models_cli.format_size(weights.size_bytes)}), which is not on "
            "this computer yet.")


def available_devices() -> list[str]:
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


class TrackerPanel(QWidget):
    propagate_all = Signal()  # every (or the selected) object through the whole clip
    propagate_here = Signal()  # from the current frame, with the direction and range chosen
    cancel = Signal()
    models_requested = Signal(str)  # tracker whose weights the user wants to get (opens Track > Models)
    natural_size_changed = Signal()  # the weights notice appeared or went

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tracker_boxes: dict[str, QComboBox] = {}
        self.option_buttons: dict[str, QToolButton] = {}
        self.options: dict[str, dict] = {}  # tracker name -> the options the user set (Options…)
        self._experimental: set[str] = set()
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.problem = ""
        for kind in ("box", "mask", "point"):
            combo = QComboBox()
            combo.setMinimumContentsLength(12)  # long names must not set the dock's minimum width
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            try:
                for spec in registry.specs(kind):
                    combo.addItem(spec.name, spec.name)
                    combo.setItemData(combo.count() - 1, spec.description, 3)  # 3 = ToolTipRole
                    if spec.experimental:
                        self._experimental.add(spec.name)
            except Exception as exc:  # noqa: BLE001  (a broken tracker package must not stop the app)
                self.problem = f"Some trackers failed to load: {exc}"
            combo.setToolTip(f"Tracker for {kind} objects (best first)")
            combo.currentIndexChanged.connect(lambda _i: self.refresh_weights())
            combo.currentIndexChanged.connect(lambda _i, kind=kind: self._show_options(kind))
            self.tracker_boxes[kind] = combo
            options = QToolButton()
            options.setText("Options…")
            options.clicked.connect(lambda _checked=False, kind=kind: self.edit_options(kind))
            self.option_buttons[kind] = options
            row = QHBoxLayout()
            row.addWidget(combo, 1)
            row.addWidget(options)
            form.addRow(f"{kind.capitalize()}:", row)
            self._show_options(kind)
        # what the chosen trackers lack, with the way to get it, before anything tries the network
        self.weights_notice = QFrame()
        self.weights_notice.setStyleSheet("QFrame { background: #5c4813; border-radius: 3px; }")
        self.weights_label = QLabel()
        self.weights_label.setWordWrap(True)
        self.weights_button = QPushButton("Get weights…")
        self.weights_button.setToolTip("Track > Models: download or import the weights")
        self.weights_button.clicked.connect(self._request_models)
        notice_row = QHBoxLayout(self.weights_notice)
        notice_row.setContentsMargins(4, 2, 4, 2)
        notice_row.addWidget(self.weights_label, 1)
        notice_row.addWidget(self.weights_button)
        self.weights_notice.hide()
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.device.setToolTip("auto = CUDA GPU, then Apple MPS, then CPU")
        form.addRow("Device:", self.device)
        self.direction = QComboBox()
        self.direction.addItems(DIRECTIONS)
        form.addRow("Direction:", self.direction)
        self.range_mode = QComboBox()
        self.range_mode.addItems(RANGES)
        self.num_frames = QSpinBox()
        self.num_frames.setRange(2, 1_000_000)
        self.num_frames.setValue(50)
        self.num_frames.setEnabled(False)
        self.range_mode.currentIndexChanged.connect(lambda i: self.num_frames.setEnabled(RANGES[i] == "N frames"))
        range_row = QHBoxLayout()
        range_row.addWidget(self.range_mode, 1)
        range_row.addWidget(self.num_frames)
        form.addRow("Range:", range_row)
        self.selected_only = QCheckBox("Selected object only")
        form.addRow(self.selected_only)
        self.follow = QCheckBox("Follow tracking on the canvas")
        self.follow.setChecked(True)
        form.addRow(self.follow)

        self.all_button = QPushButton("Track whole video")
        self.all_button.setToolTip("Every object from its keyframes, forward and backward (Ctrl+T)")
        self.all_button.clicked.connect(self.propagate_all)
        self.here_button = QPushButton("Propagate from here")
        self.here_button.setToolTip("From the current frame in the chosen direction and range (Ctrl+R)")
        self.here_button.clicked.connect(self.propagate_here)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop tracking and keep the frames done so far (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.all_button)
        buttons.addWidget(self.here_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.weights_notice)
        layout.addLayout(buttons)
        layout.addWidget(self.cancel_button)
        if self.problem:
            note = QLabel(self.problem)
            note.setWordWrap(True)
            layout.addWidget(note)
        layout.addStretch(1)
        self.refresh_weights()

    # ---- weights -------------------------------------------------------------------------
    def refresh_weights(self) -> None:
        """Re-mark the trackers whose weights are missing (after Track > Models changed the cache)."""
        for combo in self.tracker_boxes.values():
            for index in range(combo.count()):
                name = combo.itemData(index)
                label = name + ("  (experimental)" if name in self._experimental else "")
                combo.setItemText(index, label + (NO_WEIGHTS if missing_weights_text(name) else ""))
        self._show_weights_notice()

    def missing_weights(self) -> list[tuple[str, str]]:
        """(tracker, what it lacks) for each chosen tracker that cannot be built yet."""
        names = dict.fromkeys(n for kind in self.tracker_boxes if (n := self.tracker_name(kind)))
        return [(name, text) for name in names if (text := missing_weights_text(name))]

    def _show_weights_notice(self) -> None:
        missing = self.missing_weights()
        self.weights_label.setText(" ".join(text for _name, text in missing))
        if self.weights_notice.isHidden() == bool(missing):
            self.weights_notice.setVisible(bool(missing))
            self.natural_size_changed.emit()

    def _request_models(self) -> None:
        missing = self.missing_weights()
        self.models_requested.emit(missing[0][0] if missing else "")

    def set_running(self, running: bool) -> None:
        self.all_button.setEnabled(not running)
        self.here_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    # ---- options -------------------------------------------------------------------------
    def edit_options(self, kind: str) -> None:
        """The chosen tracker's options in a dialog; OK keeps those that differ from the defaults."""
        name = self.tracker_name(kind)
        if not name:
            return
        dialog = TrackerOptionsDialog(name, self.options.get(name, {}), self)
        if dialog.exec() == TrackerOptionsDialog.DialogCode.Accepted:
            self.options[name] = dialog.values()
            if not self.options[name]:
                del self.options[name]
            for each in self.tracker_boxes:
                self._show_options(each)

    def _show_options(self, kind: str) -> None:
        """The Options… button says how many options of the chosen tracker differ from its defaults."""
        button = self.option_buttons.get(kind)
        if button is None:
            return
        options = self.options.get(self.tracker_name(kind) or "", {})
        button.setText(f"Options ({len(options)})…" if options else "Options…")
        shown = ", ".join(f"{option}={value!r}" for option, value in options.items())
        button.setToolTip(f"Set: {shown}" if options else "The tracker's options (all at their defaults)")

    def choice(self, name: str, attention: bool = False) -> TrackerChoice:
        """How to build tracker `name` now: the panel's device and the options set for it."""
        options = tuple(sorted(self.options.get(name, {}).items()))
        return TrackerChoice(name, self.device.currentText(), attention, options)

    def tracker_name(self, kind: str) -> str | None:
        return self.tracker_boxes[kind].currentData()

    def set_tracker(self, kind: str, name: str) -> bool:
        combo = self.tracker_boxes[kind]
        index = combo.findData(name)
        if index >= 0:
            combo.setCurrentIndex(index)
        return index >= 0

    def choices(self, attention: bool = False, object_trackers=()) -> dict[str, TrackerChoice]:
        """Kind -> the panel's tracker; plus name -> that tracker for trackers chosen per object."""
        choices = {kind: self.choice(name, attention)
                   for kind in self.tracker_boxes if (name := self.tracker_name(kind))}
        choices.update((name, self.choice(name, attention)) for name in object_trackers)
        return choices

    def settings(self) -> dict:
        return {"trackers": {k: self.tracker_name(k) for k in self.tracker_boxes}, "device": self.device.currentText(),
                "direction": self.direction.currentText(), "range": self.range_mode.currentText(),
                "num_frames": self.num_frames.value(),
                "options": {name: dict(options) for name, options in self.options.items()}}

    def apply_settings(self, settings: dict) -> None:
        for kind, name in (settings.get("trackers") or {}).items():
            if kind in self.tracker_boxes and isinstance(name, str):
                self.set_tracker(kind, name)
        for combo, key in ((self.device, "device"), (self.direction, "direction"), (self.range_mode, "range")):
            index = combo.findText(str(settings.get(key, "")))
            if index >= 0:
                combo.setCurrentIndex(index)
        if isinstance(settings.get("num_frames"), int):
            self.num_frames.setValue(settings["num_frames"])
        self.options = {}
        saved = settings.get("options")
        for name, options in (saved.items() if isinstance(saved, dict) else ()):
            try:
                self.options[name] = checked_options(name, options)
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # another version's tracker or option: its defaults, as for a tracker that went away
        for kind in self.tracker_boxes:
            self._show_options(kind)
