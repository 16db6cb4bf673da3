"""Keeps the main window's panels usable across window resizes.

Qt gives all growth of a window to its central widget: panels squashed while the window was small
stay squashed after it grows again. After each resize this gives the bottom panels a share of the
height and the tracker panel its natural size, never less than the user gave them; the same when
the tracker panel grows (its missing-weights notice shows).
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

BOTTOM_DOCKS_SHARE = 0.22  # of the window's height, for the timeline and score panels
RIGHT_DOCKS_MAX_SHARE = 0.35  # of the window's width, at most, for the tracker panel's natural width


class DockBalancer(QObject):
    """Re-balances `window`'s docks once Qt has laid out a resized window; `balance()` does it now."""

    def __init__(self, window: QMainWindow, natural_dock: QDockWidget, natural_panel: QWidget):
        super().__init__(window)
        self._window, self._natural_dock, self._natural_panel = window, natural_dock, natural_panel
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.balance)
        window.installEventFilter(self)

    def schedule(self) -> None:
        """Balance soon (the panel's natural size changed)."""
        if self._window.isVisible():
            self._timer.start()

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize and self._window.isVisible() and event.oldSize().isValid():
            self._timer.start()
        return False

    def balance(self) -> None:
        window = self._window
        docks = [d for d in window.findChildren(QDockWidget) if d.isVisible() and not d.isFloating()]
        bottom = [d for d in docks if window.dockWidgetArea(d) == Qt.DockWidgetArea.BottomDockWidgetArea]
        if bottom:
            height = int(window.height() * BOTTOM_DOCKS_SHARE)
            window.resizeDocks(bottom, [max(height, d.minimumSizeHint().height(), d.height()) for d in bottom],
                               Qt.Orientation.Vertical)
        dock, panel = self._natural_dock, self._natural_panel
        if dock not in docks:
            return
        width = min(panel.sizeHint().width() + 16, int(window.width() * RIGHT_DOCKS_MAX_SHARE))
        window.resizeDocks([dock], [max(dock.width(), width)], Qt.Orientation.Horizontal)
        column = [d for d in docks if window.dockWidgetArea(d) == window.dockWidgetArea(dock)]
        if len(column) > 1:  # the natural height to this panel, the rest shared by the others
            natural = panel.sizeHint().height() + dock.minimumSizeHint().height()
            rest = max(1, window.centralWidget().height() - natural) // (len(column) - 1)
            window.resizeDocks(column, [natural if d is dock else rest for d in column], Qt.Orientation.Vertical)


def scrolling(panel: QWidget) -> QScrollArea:
    """`panel` in a frameless scroll area: a small window scrolls it instead of refusing to shrink."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area
