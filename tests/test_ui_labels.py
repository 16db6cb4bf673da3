"""The Labels panel driven like a user: add and rename classes and attributes, give the selected
object a class and attributes (the frame one on the current frame), undo, save and reopen."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtWidgets import QLineEdit  # noqa: E402

from trackstudio.app.model import FrameState, Project  # noqa: E402
from trackstudio.app.model import labels as lb  # noqa: E402
from test_ui_flows import NOT_A_DOUBLE_CLICK_MS, clip, open_clip, window  # noqa: E402,F401


def rename_cell(qtbot, table, row, text):
    """Click the cell, F2, type the new name, Enter (the table's own editor)."""
    qtbot.wait(10)  # the panel rebuilds its tables on the next event-loop turn
    item = table.item(row, 0)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(item).center())
    qtbot.keyClick(table, Qt.Key.Key_F2)  # edit the current cell
    editors = [e for e in table.findChildren(QLineEdit) if e.isVisible()]  # closed ones linger until deleted
    assert len(editors) == 1, "no cell editor opened"
    editor = editors[0]
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.wait(10)


def tick(qtbot, box):
    """A click on a check box's indicator (its empty right part does not toggle it)."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))


def test_labels_panel_classes_attributes_and_the_selected_object(qtbot, window, clip, tmp_path):
    win = window
    open_clip(win, clip)
    panel = win.labels_panel
    panel.parentWidget().raise_()  # its dock tab, as a click on the tab would
    qtbot.waitUntil(panel.isVisible)
    store = win.session.store
    a = store.add_object("box").obj_id
    store.set_state(a, 0, FrameState(box=[30, 40, 54, 64], keyframe=True))
    win.session.select(a)

    qtbot.mouseClick(panel.add_class_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.add_class_button, Qt.MouseButton.LeftButton)
    rename_cell(qtbot, panel.classes, 0, "person")
    rename_cell(qtbot, panel.classes, 1, "person")  # a duplicate: refused, the old name comes back
    assert lb.schema(store).class_names == ["person", "class 2"]
    assert "used twice" in win.last_message
    qtbot.mouseClick(panel.add_attribute_button, Qt.MouseButton.LeftButton)
    rename_cell(qtbot, panel.attributes, 0, "occluded")
    qtbot.mouseClick(panel.add_attribute_button, Qt.MouseButton.LeftButton)
    rename_cell(qtbot, panel.attributes, 1, "truncated")
    qtbot.wait(10)
    panel.attributes.cellWidget(1, 1).setCurrentText("object")  # the "Applies to" combo box
    qtbot.wait(10)
    assert lb.schema(store).attributes == (lb.Attribute("occluded", "frame"), lb.Attribute("truncated", "object"))

    panel.class_combo.setCurrentIndex(1)
    panel.class_combo.activated.emit(1)  # what choosing the item with the mouse emits
    assert store.get_object(a).label == "person"
    assert store.get_object(a).color == lb.schema(store).class_color("person")
    win.session.set_frame(5)
    tick(qtbot, panel.flag_boxes[("frame", "occluded")])
    tick(qtbot, panel.flag_boxes[("object", "truncated")])
    assert lb.attributes_of(store, a, 5) == {"occluded"} and lb.attributes_of(store, a) == {"truncated"}
    win.session.set_frame(6)
    assert not panel.flag_boxes[("frame", "occluded")].isChecked()
    assert panel.flag_boxes[("object", "truncated")].isChecked()
    qtbot.keyClick(win.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert lb.attributes_of(store, a) == frozenset()

    # with classes, the Objects panel's label column takes class names only
    tree = win.objects_panel.tree
    for text, label, words in (("dog", "person", "not a class"), ("class 2", "class 2", "")):
        qtbot.wait(10)
        item = tree.topLevelItem(0)
        pos = tree.visualItemRect(item).center()
        pos.setX(tree.columnViewportPosition(3) + 5)
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos, delay=NOT_A_DOUBLE_CLICK_MS)
        qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        editors = [e for e in tree.findChildren(QLineEdit) if e.isVisible()]
        assert len(editors) == 1
        editors[0].selectAll()
        qtbot.keyClicks(editors[0], text)
        qtbot.keyClick(editors[0], Qt.Key.Key_Return)
        qtbot.wait(10)
        assert store.get_object(a).label == label and words in win.last_message
    assert store.get_object(a).color == lb.schema(store).class_color("class 2")
    qtbot.keyClick(win.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.get_object(a).label == "person"
    assert win.save_project(tmp_path / "l.tsproj")
    again = Project.load(tmp_path / "l.tsproj")
    assert lb.schema(again.store).class_names == ["person", "class 2"]
    assert lb.attributes_of(again.store, a, 5) == {"occluded"}
    assert again.store.get_object(a).label == "person"
