"""The keyboard and mouse reference (Help > Keyboard Shortcuts, F1), built from the action registry so it always
shows the shortcuts the studio really has, plus the canvas gestures that are not actions."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .actions import ACTIONS

CANVAS_GESTURES: tuple[tuple[str, str], ...] = (
    ("Wheel", "Zoom at the cursor"),
    ("Space + drag, middle-button drag", "Pan"),
    ("Ctrl + wheel", "Brush size"),
    ("Two digits quickly", "Classes 10 and up"),
    ("Enter, double-click, right-click, click on the first corner", "Close the polygon"),
    ("Drag a polygon corner", "Move it before the polygon closes"),
    ("Drag from nothing (polygon tool)", "Lasso: a freehand outline, filled on release"),
    ("Backspace", "Take the polygon's last corner back"),
    ("Esc", "Cancel the polygon or stroke being drawn"),
)
"""Canvas input that is not a menu action: pointer gestures and keys that only mean something while drawing."""
LIST_GESTURES: tuple[tuple[str, str], ...] = (
    ("Click a row", "Open the image"),
    ("Right-click a row", "Open it, with its commands, Copy Path and Show in Folder"),
)
"""What the mouse does in the image list."""


def action_rows() -> list[tuple[str, str]]:
    """(shortcuts as the platform shows them, command) for every action that has a shortcut; the ten class keys
    become one row."""
    rows: list[tuple[str, str]] = []
    for spec in ACTIONS:
        if not spec.shortcuts or spec.name.startswith("class_"):
            continue
        keys = ", ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in spec.shortcuts)
        rows.append((keys, spec.text.replace("&", "").rstrip("…")))
    rows.append(("0–9", "Select a class by its number"))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.setObjectName("shortcutsDialog")
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("shortcutsTable")
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Keys", "Command"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        for title, rows in (("Commands", action_rows()), ("On the canvas", CANVAS_GESTURES),
                            ("In the image list", LIST_GESTURES)):
            section = QTreeWidgetItem(self.tree, [title])
            section.setFirstColumnSpanned(True)
            font = section.font(0)
            font.setBold(True)
            section.setFont(0, font)
            section.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for keys, what in rows:
                item = QTreeWidgetItem(self.tree, [keys, what])
                item.setToolTip(1, what)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.resize(self._fitting_width(), 640)

    def _fitting_width(self) -> int:
        """Wide enough for both columns whole (the longest gestures and commands), within the screen."""
        for column in (0, 1):
            self.tree.resizeColumnToContents(column)
        scrollbar = self.tree.verticalScrollBar().sizeHint().width()
        needed = self.tree.columnWidth(0) + self.tree.columnWidth(1) + scrollbar + 4 * self.tree.frameWidth() + 40
        screen = self.screen()
        limit = int(screen.availableGeometry().width() * 0.9) if screen is not None else needed
        return max(560, min(needed, limit))

    def rows(self) -> list[tuple[str, str]]:
        return [(self.tree.topLevelItem(i).text(0), self.tree.topLevelItem(i).text(1))
                for i in range(self.tree.topLevelItemCount())]
