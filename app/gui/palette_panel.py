"""The class palette: the project's schema as a list of colours and names, with per-class visibility and protection.

Clicking a row (or pressing its number) selects the class the brush paints. "Show" hides a class from the overlay;
"Over" is the paint-only-over set: unticking a class protects it from every tool. Number keys select classes 0-9,
and two digits typed quickly select classes 10 and up, so large schemas stay reachable from the keyboard. Under the
list, the selected class is said in words (`neck_l` is a necklace), and each row's tooltip says it too. "Show only
the selected class" (solo) hides every other class, for colours too close to tell apart.
"""

from __future__ import annotations

import time

from faceparse.core.schemas import LabelSchema
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

SHOW_COLUMN, OVER_COLUMN = 1, 2
TWO_DIGIT_WINDOW_S = 0.8


def swatch(rgb: tuple[int, int, int], side: int = 14) -> QIcon:
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(*rgb))
    painter.setPen(QColor(0, 0, 0, 120))
    painter.drawRoundedRect(0, 0, side - 1, side - 1, 3, 3)
    painter.end()
    return QIcon(pixmap)


class PalettePanel(QWidget):
    class_selected = Signal(int)
    hidden_changed = Signal(object)  # set of hidden class indices
    paint_over_changed = Signal(object)  # set of classes tools may overwrite, or None for all

    def __init__(self, schema: LabelSchema, parent: QWidget | None = None):
        super().__init__(parent)
        self.schema = schema
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("palette")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Class", "Show", "Over"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(SHOW_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(OVER_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.tree.headerItem().setToolTip(SHOW_COLUMN, "Show this class in the overlay")
        self.tree.headerItem().setToolTip(OVER_COLUMN, "Tools may paint over this class (untick to protect it)")
        for index, (name, rgb) in enumerate(zip(schema.classes, schema.colors, strict=True)):
            item = QTreeWidgetItem([f"{index:>2}  {name}", "", ""])
            item.setIcon(0, swatch(rgb))
            item.setData(0, Qt.ItemDataRole.UserRole, index)
            item.setCheckState(SHOW_COLUMN, Qt.CheckState.Unchecked if index == 0 else Qt.CheckState.Checked)
            item.setCheckState(OVER_COLUMN, Qt.CheckState.Checked)
            words = schema.describe(index)
            item.setToolTip(0, f"class {index}: {name}" + (f" ({words})" if words else ""))
            self.tree.addTopLevelItem(item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree)
        self.about = QLabel(self)
        self.about.setObjectName("classDescription")
        self.about.setWordWrap(True)
        layout.addWidget(self.about)
        self.current = 1 if schema.num_classes > 1 else 0
        self._describe(self.current)
        self._last_digit: tuple[int, float] | None = None
        self._hidden_before_solo: set[int] | None = None
        self.tree.setCurrentItem(self.tree.topLevelItem(self.current))
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemChanged.connect(self._item_changed)

    def select(self, label: int) -> None:
        if 0 <= label < self.schema.num_classes:
            self.tree.setCurrentItem(self.tree.topLevelItem(label))

    def digit_pressed(self, digit: int) -> None:
        """A number key: select that class, or a two-digit class when a second digit follows quickly."""
        now = time.monotonic()
        previous, self._last_digit = self._last_digit, (digit, now)
        if previous is not None and now - previous[1] < TWO_DIGIT_WINDOW_S and previous[0] > 0:
            combined = previous[0] * 10 + digit
            if combined < self.schema.num_classes:
                self._last_digit = None
                self.select(combined)
                return
        self.select(digit)

    def end_digits(self) -> None:
        self._last_digit = None

    def _current_changed(self, item: QTreeWidgetItem | None, _previous) -> None:
        if item is not None:
            self.current = int(item.data(0, Qt.ItemDataRole.UserRole))
            self._describe(self.current)
            if self.solo:
                self._show_only_current()
            self.class_selected.emit(self.current)

    @property
    def solo(self) -> bool:
        return self._hidden_before_solo is not None

    def set_solo(self, on: bool) -> None:
        """Show only the selected class, following the selection; off brings back the classes shown before."""
        if on == self.solo:
            return
        if on:
            self._hidden_before_solo = self.hidden()
            self._show_only_current()
        else:
            hidden, self._hidden_before_solo = self._hidden_before_solo, None
            self.set_hidden(hidden)

    def _show_only_current(self) -> None:
        self.set_hidden(set(range(self.schema.num_classes)) - {self.current})

    def _describe(self, index: int) -> None:
        words = self.schema.describe(index)
        self.about.setText(f"{self.schema.classes[index]}: {words}" if words else "")
        self.about.setVisible(bool(words))

    def _checked(self, column: int) -> set[int]:
        return {i for i in range(self.tree.topLevelItemCount())
                if self.tree.topLevelItem(i).checkState(column) == Qt.CheckState.Checked}

    def hidden(self) -> set[int]:
        return set(range(self.schema.num_classes)) - self._checked(SHOW_COLUMN)

    def paint_over(self) -> set[int] | None:
        allowed = self._checked(OVER_COLUMN)
        return None if len(allowed) == self.schema.num_classes else allowed

    def set_paint_over(self, classes: set[int] | None) -> None:
        for i in range(self.tree.topLevelItemCount()):
            state = Qt.CheckState.Checked if classes is None or i in classes else Qt.CheckState.Unchecked
            self.tree.topLevelItem(i).setCheckState(OVER_COLUMN, state)

    def set_hidden(self, classes: set[int]) -> None:
        """Tick the Show boxes of all but `classes`; the overlay hears of it once, not once per box."""
        blocked = self.tree.blockSignals(True)
        try:
            for i in range(self.tree.topLevelItemCount()):
                state = Qt.CheckState.Unchecked if i in classes else Qt.CheckState.Checked
                self.tree.topLevelItem(i).setCheckState(SHOW_COLUMN, state)
        finally:
            self.tree.blockSignals(blocked)
        self.hidden_changed.emit(self.hidden())

    def _item_changed(self, _item: QTreeWidgetItem, column: int) -> None:
        if column == SHOW_COLUMN:
            self.hidden_changed.emit(self.hidden())
        elif column == OVER_COLUMN:
            self.paint_over_changed.emit(self.paint_over())
