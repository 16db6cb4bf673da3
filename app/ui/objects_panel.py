"""The objects panel: add, delete, rename, recolour, label, hide/show and select objects."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QColorDialog, QHBoxLayout, QMenu, QToolButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from trackstudio.app.model.labels import assign_class, schema

from .object_actions import ObjectActions
from .session import Session

COL_VISIBLE, COL_NAME, COL_KIND, COL_LABEL, COL_TRACKER = range(5)


def color_icon(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ObjectsPanel(QWidget):
    message = Signal(str)  # why an action did nothing

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["", "Name", "Kind", "Label", "Tracker"])
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # Ctrl+click: a second one
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.actions = ObjectActions(session, self.selected_ids, self)
        self.actions.trackers_changed.connect(self.rebuild)
        self.context_menu: QMenu | None = None  # the open right-click menu
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(COL_VISIBLE, 44)
        self.tree.setColumnWidth(COL_NAME, 110)
        self.tree.setColumnWidth(COL_KIND, 44)
        self.tree.setToolTip("Double-click a name or label to edit it; the checkbox shows or hides the object; "
                             "keys 1-9 select the first nine objects; Ctrl+click picks a second one (merge, swap); "
                             "right-click for identities and the object's own tracker.")
        self.tree.itemSelectionChanged.connect(self._on_tree_selection)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemDoubleClicked.connect(self._on_double_click)

        self.add_button = QToolButton()
        self.add_button.setText("Add ▾")
        self.add_button.setToolTip("Add an object (Ctrl+B box, Ctrl+M mask, Ctrl+P point)")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add_button)
        for kind in ("box", "mask", "point"):
            menu.addAction(f"{kind.capitalize()} object", lambda k=kind: self.add_object(k))
        self.add_button.setMenu(menu)
        self.delete_button = QToolButton()
        self.delete_button.setText("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        self.color_button = QToolButton()
        self.color_button.setText("Colour…")
        self.color_button.clicked.connect(self.recolor_selected)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.add_button, self.delete_button, self.color_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.tree)

        session.video_changed.connect(self.rebuild)
        # deferred: an edit made from inside the tree's own signal must not clear the tree under it
        session.objects_changed.connect(lambda: QTimer.singleShot(0, self.rebuild))
        session.selection_changed.connect(self._show_selection)
        session.editing_enabled_changed.connect(self._on_editing_enabled)

    # ---- actions -------------------------------------------------------------------------
    def add_object(self, kind: str) -> int | None:
        store = self.session.store
        if store is None:
            return None
        obj = store.add_object(kind)
        self.session.select(obj.obj_id)
        return obj.obj_id

    def delete_selected(self) -> None:
        obj_id = self.session.selected
        if obj_id is None or self.session.store is None:
            return
        if not self.session.editing_enabled:  # the run is writing its states
            self.message.emit("Tracking is running: delete the object when it ends (Esc cancels the run).")
            return
        self.session.store.remove_object(obj_id)

    def _on_editing_enabled(self, enabled: bool) -> None:
        self.delete_button.setEnabled(enabled)
        self.delete_button.setToolTip("" if enabled else "Not while tracking runs (Esc cancels it)")

    def recolor_selected(self) -> None:
        obj_id = self.session.selected
        if obj_id is None:
            return
        current = QColor(self.session.store.get_object(obj_id).color)
        color = QColorDialog.getColor(current, self, "Object colour")
        if color.isValid() and obj_id in self.session.store:
            self.session.store.update_object(obj_id, color=color.name())

    def select_index(self, index: int) -> None:
        """Keys 1-9: select the index-th object in panel order."""
        store = self.session.store
        if store is not None and 0 <= index < len(store.objects):
            self.session.select(store.objects[index].obj_id)

    # ---- view ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        store = self.session.store
        for n, obj in enumerate(store.objects if store is not None else []):
            item = QTreeWidgetItem(["", obj.name, obj.kind, obj.label, self.actions.tracker_of(obj.obj_id) or ""])
            item.setData(COL_NAME, Qt.ItemDataRole.UserRole, obj.obj_id)
            item.setIcon(COL_VISIBLE, color_icon(obj.color))
            item.setText(COL_VISIBLE, str(n + 1) if n < 9 else "")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(COL_VISIBLE, Qt.CheckState.Unchecked if obj.hidden else Qt.CheckState.Checked)
            item.setToolTip(COL_VISIBLE, "Shown (uncheck to hide)")
            self.tree.addTopLevelItem(item)
        self.tree.blockSignals(False)
        self._show_selection(self.session.selected)

    def _item_obj(self, item: QTreeWidgetItem) -> int:
        return int(item.data(COL_NAME, Qt.ItemDataRole.UserRole))

    def selected_ids(self) -> list[int]:
        """The objects picked in the tree, in panel order."""
        return [self._item_obj(self.tree.topLevelItem(i)) for i in range(self.tree.topLevelItemCount())
                if self.tree.topLevelItem(i).isSelected()]

    def _context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        if item is None or self.session.store is None:
            return
        self.context_menu = menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addMenu(self.actions.tracker_menu(self._item_obj(item), menu))
        menu.addSeparator()
        for action in (self.actions.merge, self.actions.split, self.actions.swap):
            menu.addAction(action)
        menu.popup(self.tree.viewport().mapToGlobal(pos))

    def _show_selection(self, obj_id) -> None:
        if obj_id in self.selected_ids():
            return  # part of a multiple selection the user is making
        self.tree.blockSignals(True)
        self.tree.clearSelection()
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if self._item_obj(item) == obj_id:
                item.setSelected(True)
                self.tree.scrollToItem(item)
        self.tree.blockSignals(False)

    def _on_tree_selection(self) -> None:
        item = self.tree.currentItem()
        if item is not None and item.isSelected():
            self.session.select(self._item_obj(item))
        elif self.tree.selectedItems():
            self.session.select(self._item_obj(self.tree.selectedItems()[0]))

    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        if column in (COL_NAME, COL_LABEL):
            self.tree.editItem(item, column)
        elif column == COL_KIND:
            self.recolor_selected()

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        store = self.session.store
        obj_id = self._item_obj(item)
        if store is None or obj_id not in store:
            return
        if column == COL_NAME and item.text(COL_NAME).strip():
            store.update_object(obj_id, name=item.text(COL_NAME).strip())
        elif column == COL_LABEL:
            label = item.text(COL_LABEL).strip()
            try:  # with a label schema, a label is one of its classes (and takes its colour)
                if schema(store).classes:
                    assign_class(store, obj_id, label)
                else:
                    store.update_object(obj_id, label=label)
            except ValueError as exc:
                self.actions.message.emit(f"{exc}: pick a class in the Labels panel.")
                QTimer.singleShot(0, self.rebuild)
        elif column == COL_VISIBLE:
            store.update_object(obj_id, hidden=item.checkState(COL_VISIBLE) != Qt.CheckState.Checked)
