"""The Labels panel: the project's classes (with colours) and yes/no attributes, and for the selected
object its class, its object attributes and its attributes on the current frame. Every edit is one
undo step in the store (`app.model.labels`)."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QColorDialog, QComboBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QScrollArea, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from trackstudio.app.model import labels as lb
from trackstudio.app.model.colors import next_color

from .objects_panel import color_icon
from .session import Session

NO_CLASS = "(no class)"


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(22)  # compact rows: the panel shares the dock area
    table.horizontalHeader().setStretchLastSection(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setMaximumHeight(130)
    return table


def _unique(base: str, taken: list[str]) -> str:
    n = 1
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"


class LabelsPanel(QWidget):
    message = Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.classes = _table(["Class", "Colour"])
        self.classes.setToolTip("Double-click a name to rename it (its objects follow); "
                                "double-click a colour to change it")
        self.classes.itemChanged.connect(self._on_class_edited)
        self.classes.cellDoubleClicked.connect(lambda row, col: col == 1 and self.recolor_class(row))
        self.add_class_button = QPushButton("Add class")
        self.add_class_button.clicked.connect(self.add_class)
        self.remove_class_button = QPushButton("Remove")
        self.remove_class_button.clicked.connect(self.remove_class)
        self.attributes = _table(["Attribute", "Applies to"])
        self.attributes.setToolTip("Yes/no attributes: per object (e.g. truncated) or per frame (e.g. occluded)")
        self.attributes.itemChanged.connect(self._on_attribute_edited)
        self.add_attribute_button = QPushButton("Add attribute")
        self.add_attribute_button.clicked.connect(self.add_attribute)
        self.remove_attribute_button = QPushButton("Remove")
        self.remove_attribute_button.clicked.connect(self.remove_attribute)

        self.object_box = QGroupBox("Selected object")
        self.class_combo = QComboBox()
        self.class_combo.activated.connect(self._on_class_chosen)
        self.object_flags = QHBoxLayout()
        self.frame_flags = QHBoxLayout()
        self.frame_label = QLabel("On this frame:")
        form = QFormLayout(self.object_box)
        form.addRow("Class:", self.class_combo)
        form.addRow("Object:", self.object_flags)
        form.addRow(self.frame_label, self.frame_flags)
        self.flag_boxes: dict[tuple[str, str], QCheckBox] = {}  # (scope, name) -> checkbox

        content = QWidget()  # scrolls: the panel shares its dock area with Objects and must not crowd it
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.classes)
        layout.addLayout(self._row(self.add_class_button, self.remove_class_button))
        layout.addWidget(self.attributes)
        layout.addLayout(self._row(self.add_attribute_button, self.remove_attribute_button))
        layout.addWidget(self.object_box)
        layout.addStretch(1)

        # rebuilt on the next event-loop turn: an edit made inside a table's signal must not delete its item
        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.setInterval(0)
        self._rebuild_timer.timeout.connect(self.rebuild)
        session.video_changed.connect(self.rebuild)
        session.meta_changed.connect(self._on_meta)
        # deferred, like the Objects panel: an edit made inside a widget's signal must not delete it
        session.objects_changed.connect(lambda: QTimer.singleShot(0, self._show_object))
        session.selection_changed.connect(lambda _o: self._show_object())
        session.frame_changed.connect(lambda _f: self._show_object())

    def _on_meta(self, key: str) -> None:
        if key == lb.SCHEMA_KEY:
            self._rebuild_timer.start()
        elif key == lb.VALUES_KEY:
            self._show_object()

    @staticmethod
    def _row(*widgets) -> QHBoxLayout:
        row = QHBoxLayout()
        for widget in widgets:
            row.addWidget(widget)
        row.addStretch(1)
        return row

    # ---- schema edits --------------------------------------------------------------------
    def _schema(self) -> lb.LabelSchema:
        return lb.schema(self.session.store) if self.session.store is not None else lb.LabelSchema()

    def _set_schema(self, schema: lb.LabelSchema, text: str) -> bool:
        if self.session.store is None:
            return False
        if not self.session.editing_enabled:
            self.message.emit("Tracking is running: edit the labels when it ends (or press Esc).")
            self._rebuild_timer.start()
            return False
        lb.set_schema(self.session.store, schema, text)
        return True

    def add_class(self) -> None:
        schema = self._schema()
        name = _unique("class", schema.class_names)
        color = next_color(c.color for c in schema.classes)
        if self._set_schema(replace(schema, classes=schema.classes + (lb.LabelClass(name, color),)), f"Add {name}"):
            self.message.emit(f"Added {name}: double-click its name to rename it.")

    def remove_class(self) -> None:
        schema, row = self._schema(), self.classes.currentRow()
        if 0 <= row < len(schema.classes):
            name = schema.classes[row].name
            self._set_schema(replace(schema, classes=schema.classes[:row] + schema.classes[row + 1:]), f"Remove {name}")

    def recolor_class(self, row: int) -> None:
        schema = self._schema()
        if not 0 <= row < len(schema.classes):
            return
        color = QColorDialog.getColor(QColor(schema.classes[row].color), self, "Class colour")
        if color.isValid():
            classes = list(schema.classes)
            classes[row] = replace(classes[row], color=color.name())
            self._set_schema(replace(schema, classes=tuple(classes)), f"Recolour {classes[row].name}")

    def _on_class_edited(self, item: QTableWidgetItem) -> None:
        schema = self._schema()
        if item.column() != 0 or not 0 <= item.row() < len(schema.classes):
            return
        self._rename(lambda name: lb.rename_class(schema, item.row(), name), item.text(), "class")

    def add_attribute(self) -> None:
        schema = self._schema()
        name = _unique("attribute", [a.name for a in schema.attributes])
        if self._set_schema(replace(schema, attributes=schema.attributes + (lb.Attribute(name, "frame"),)),
                            f"Add {name}"):
            self.message.emit(f"Added {name} (per frame): double-click its name to rename it.")

    def remove_attribute(self) -> None:
        schema, row = self._schema(), self.attributes.currentRow()
        if 0 <= row < len(schema.attributes):
            name = schema.attributes[row].name
            self._set_schema(replace(schema, attributes=schema.attributes[:row] + schema.attributes[row + 1:]),
                             f"Remove {name}")

    def _edit_attribute(self, row: int, **fields) -> lb.LabelSchema:
        schema = self._schema()
        attributes = list(schema.attributes)
        attributes[row] = replace(attributes[row], **fields)
        return replace(schema, attributes=tuple(attributes))

    def _on_attribute_edited(self, item: QTableWidgetItem) -> None:
        if item.column() == 0 and 0 <= item.row() < len(self._schema().attributes):
            self._rename(lambda name: self._edit_attribute(item.row(), name=name), item.text(), "attribute")

    def _on_scope_chosen(self, row: int, scope: str) -> None:
        if 0 <= row < len(self._schema().attributes):
            self._set_schema(self._edit_attribute(row, scope=scope), f"Attribute applies to each {scope}")

    def _rename(self, make, name: str, what: str) -> None:
        try:
            schema = make(name.strip())
        except ValueError as exc:
            self.message.emit(f"Cannot rename the {what}: {exc}.")
            self._rebuild_timer.start()  # puts the old name back
            return
        self._set_schema(schema, f"Rename {what} to {name.strip()}")

    # ---- the selected object -------------------------------------------------------------
    def _editable_object(self) -> int | None:
        """The selected object when it may be edited now (not during a run: its undo step is the run's)."""
        obj_id, store = self.session.selected, self.session.store
        if obj_id is None or store is None or obj_id not in store:
            return None
        if not self.session.editing_enabled:
            self.message.emit("Tracking is running: edit the labels when it ends (or press Esc).")
            self._show_object()  # put the widgets back
            return None
        return obj_id

    def _on_class_chosen(self, index: int) -> None:
        obj_id, store = self._editable_object(), self.session.store
        if obj_id is None:
            return
        name = "" if index == 0 else self.class_combo.itemText(index)
        lb.assign_class(store, obj_id, name)
        self.message.emit(f"{store.get_object(obj_id).name} is {'a ' + name if name else 'without class'}.")

    def _on_flag(self, scope: str, name: str, on: bool) -> None:
        obj_id, store = self._editable_object(), self.session.store
        if obj_id is None:
            return
        lb.set_attribute(store, obj_id, name, on, None if scope == "object" else self.session.frame_idx)

    # ---- view ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        schema = self._schema()
        for table in (self.classes, self.attributes):
            table.blockSignals(True)
            table.setRowCount(0)
        for row, cls in enumerate(schema.classes):
            self.classes.insertRow(row)
            self.classes.setItem(row, 0, QTableWidgetItem(cls.name))
            swatch = QTableWidgetItem(color_icon(cls.color), cls.color)
            swatch.setFlags(swatch.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.classes.setItem(row, 1, swatch)
        for row, attribute in enumerate(schema.attributes):
            self.attributes.insertRow(row)
            self.attributes.setItem(row, 0, QTableWidgetItem(attribute.name))
            scope = QComboBox()
            scope.addItems(["frame", "object"])
            scope.setCurrentText(attribute.scope)
            scope.currentTextChanged.connect(lambda text, r=row: self._on_scope_chosen(r, text))
            self.attributes.setCellWidget(row, 1, scope)
        for table in (self.classes, self.attributes):
            table.blockSignals(False)
        self._rebuild_flags(schema)
        self._show_object()

    def _rebuild_flags(self, schema: lb.LabelSchema) -> None:
        for box in self.flag_boxes.values():
            box.deleteLater()
        self.flag_boxes = {}
        for scope, row in (("object", self.object_flags), ("frame", self.frame_flags)):
            for name in schema.attribute_names(scope):
                box = QCheckBox(name)
                box.toggled.connect(lambda on, s=scope, n=name: self._on_flag(s, n, on))
                row.addWidget(box)
                self.flag_boxes[(scope, name)] = box

    def _show_object(self) -> None:
        store, obj_id = self.session.store, self.session.selected
        obj = store.get_object(obj_id) if store is not None and obj_id in store else None
        self.object_box.setEnabled(obj is not None)
        self.object_box.setTitle(f"Selected object: {obj.name}" if obj else "Selected object: none")
        self.frame_label.setText(f"On frame {self.session.frame_idx}:")
        schema = self._schema()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem(NO_CLASS)
        for cls in schema.classes:
            self.class_combo.addItem(color_icon(cls.color), cls.name)
        self.class_combo.setCurrentIndex(schema.class_names.index(obj.label) + 1
                                         if obj is not None and obj.label in schema.class_names else 0)
        self.class_combo.blockSignals(False)
        for (scope, name), box in self.flag_boxes.items():
            on = obj is not None and name in lb.attributes_of(store, obj.obj_id,
                                                               None if scope == "object" else self.session.frame_idx)
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
