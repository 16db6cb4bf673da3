"""A tracker's options, edited in a form made from its config dataclass (as `trackstudio track --set` sets them).

Only options with a number, a yes / no or a text default get a field; the rest (nested option sets, tuples) stay
at their defaults here and remain reachable through the command line and the Python API.
"""
from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit,
                               QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from trackstudio.trackers import registry

HIDDEN = {"return_attention"}  # the window sets it itself, for the attention overlay
SPIN_LIMIT = 1_000_000_000


def editable_defaults(name: str) -> dict:
    """Option -> default of the tracker's options that the form edits (bool, int, float or str defaults)."""
    return {option: value for option, value in registry.config_defaults(name).items()
            if option not in HIDDEN and isinstance(value, (bool, int, float, str))}


def checked_options(name: str, options: dict) -> dict:
    """Options the form edits, checked as the tracker checks them (registry.checked_options); ValueError says what is
    wrong. (A saved project may hold options of another version's trackers.)"""
    others = set(options) - set(editable_defaults(name))
    if others:
        raise ValueError(f"{name}: not options the window sets: {', '.join(sorted(others))}")
    return registry.checked_options(name, options)


class TrackerOptionsDialog(QDialog):
    """One field per editable option, shown with its current value; OK keeps the values that differ from the
    defaults (after the tracker's own checks), Reset puts every field back to its default."""

    def __init__(self, name: str, options: dict, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"{name} options")
        self.name = name
        self.defaults = editable_defaults(name)
        self.fields: dict[str, QWidget] = {}
        form = QFormLayout()
        for option, default in self.defaults.items():
            field = _field_for(default)
            field.setToolTip(f"default: {default!r}")
            self.fields[option] = field
            _set_value(field, options.get(option, default))
            form.addRow(f"{option}:", field)
        body = QWidget()
        body.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #e06c60;")
        self.problem.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.reset_button = QPushButton("Reset to defaults")
        buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.reset_button.clicked.connect(self.reset)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Options of {name} for the next runs (saved with the project)."))
        layout.addWidget(scroll, 1)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.resize(460, 520)

    def reset(self) -> None:
        for option, default in self.defaults.items():
            _set_value(self.fields[option], default)

    def values(self) -> dict:
        """The options whose fields differ from the defaults."""
        return {option: value for option, field in self.fields.items()
                if (value := _value(field, self.defaults[option])) != self.defaults[option]}

    def accept(self) -> None:
        try:
            checked_options(self.name, self.values())
        except (TypeError, ValueError) as exc:  # e.g. a range the tracker refuses: say so, keep the dialog open
            self.problem.setText(str(exc))
            self.problem.show()
            return
        super().accept()


def _field_for(default) -> QWidget:
    if isinstance(default, bool):
        return QCheckBox()
    if isinstance(default, int):
        field = QSpinBox()
        field.setRange(-SPIN_LIMIT, SPIN_LIMIT)
        return field
    if isinstance(default, float):
        field = QDoubleSpinBox()
        field.setDecimals(4)
        field.setRange(-SPIN_LIMIT, SPIN_LIMIT)
        return field
    return QLineEdit()


def _set_value(field: QWidget, value) -> None:
    if isinstance(field, QCheckBox):
        field.setChecked(bool(value))
    elif isinstance(field, (QSpinBox, QDoubleSpinBox)):
        field.setValue(value)
    else:
        field.setText(str(value))


def _value(field: QWidget, default):
    if isinstance(field, QCheckBox):
        return field.isChecked()
    if isinstance(field, QDoubleSpinBox):
        # the 4 decimals shown: a default with more digits stays itself unless the user changed the field
        return default if round(default, 4) == field.value() else field.value()
    if isinstance(field, QSpinBox):
        return field.value()
    return field.text()
