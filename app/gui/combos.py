"""Combo boxes that may be narrower than their longest entry, in docks a user can make narrow: the closed box
elides its choice, so its tooltip repeats the whole of it, and the open list is always as wide as its longest
entry."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

EXPLANATION = "faceparseExplanation"
ITEM_PADDING = 24  # an entry's margins and its check mark in the open list


def shrinkable(combo: QComboBox, characters: int = 8) -> None:
    """A combo box as narrow as a few characters when its panel is; nothing of its entries is lost to a reader."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(characters)
    combo.setProperty(EXPLANATION, combo.toolTip())
    model = combo.model()
    for signal in (model.rowsInserted, model.rowsRemoved, model.dataChanged, model.modelReset):
        signal.connect(lambda *_: _fit_popup(combo))
    combo.currentIndexChanged.connect(lambda _index: _show_choice(combo))
    _fit_popup(combo)
    _show_choice(combo)


def _fit_popup(combo: QComboBox) -> None:
    view = combo.view()
    metrics = view.fontMetrics()
    widest = max((metrics.horizontalAdvance(combo.itemText(i)) for i in range(combo.count())), default=0)
    view.setMinimumWidth(widest + ITEM_PADDING + view.verticalScrollBar().sizeHint().width() + 2 * view.frameWidth())
    _show_choice(combo)


def _show_choice(combo: QComboBox) -> None:
    """The tooltip names the whole current choice, before what the box's own tooltip explained."""
    explanation = combo.property(EXPLANATION) or ""
    combo.setToolTip("\n\n".join(part for part in (combo.currentText(), explanation) if part))
