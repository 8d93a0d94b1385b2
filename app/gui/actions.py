"""Every command of the studio in one table: its text, shortcuts, icon and tooltip.

One registry means a shortcut is defined once, menus and toolbars show the same action, and a test can trigger any
command by name. The window connects each action to a handler; this module knows nothing about what they do.
"""

from __future__ import annotations

from dataclasses import dataclass

import qtawesome as qta
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcuts: tuple[str, ...] = ()
    icon: str | None = None
    tip: str = ""
    checkable: bool = False
    group: str | None = None


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_folder", "&Open Folder or Project…", ("Ctrl+O",), "fa5s.folder-open",
               "Open a folder of face photos (it becomes a project) or an existing project"),
    ActionSpec("save", "&Save Mask", ("Ctrl+S",), "fa5s.save", "Save the current mask now"),
    ActionSpec("export", "&Export Dataset…", ("Ctrl+E",), "fa5s.file-export", "Write the labeled images as a dataset"),
    ActionSpec("import_labels", "&Import Labels…", ("Ctrl+I",), "fa5s.file-import",
               "Check a dataset's labels against the project, then bring them in as masks"),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",), "fa5s.power-off"),
    ActionSpec("undo", "&Undo", ("Ctrl+Z",), "fa5s.undo"),
    ActionSpec("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "fa5s.redo"),
    ActionSpec("tool_brush", "&Brush", ("B",), "fa5s.paint-brush", "Paint the selected class", True, "tool"),
    ActionSpec("tool_eraser", "&Eraser", ("E",), "fa5s.eraser", "Paint background", True, "tool"),
    ActionSpec("tool_fill", "&Fill", ("F",), "fa5s.fill-drip", "Fill a connected region with the selected class",
               True, "tool"),
    ActionSpec("tool_polygon", "&Polygon / Lasso", ("P",), "fa5s.draw-polygon",
               "Click corners (Enter, a double-click or the first corner closes; drag a corner to move it, "
               "Backspace removes the last) or drag a freehand outline; the inside is filled",
               True, "tool"),
    ActionSpec("tool_picker", "Pick &Class", ("I",), "fa5s.eye-dropper", "Take the class under the cursor, then go back to the tool painted with last",
               True, "tool"),
    ActionSpec("brush_smaller", "Smaller Brush", ("[",), "fa5s.minus-circle"),
    ActionSpec("brush_larger", "Larger Brush", ("]",), "fa5s.plus-circle"),
    ActionSpec("zoom_fit", "Zoom to &Fit", ("Ctrl+0",), "fa5s.expand"),
    ActionSpec("zoom_actual", "Actual &Pixels (1:1)", ("Ctrl+1",), "fa5s.search"),
    ActionSpec("toggle_outline", "&Outline Mode", ("O",), "fa5s.draw-polygon", "Draw class borders only", True),
    ActionSpec("toggle_prediction", "Show &Prediction", ("T",), "fa5s.robot",
               "Show the model's prediction instead of the corrected mask (read-only)", True),
    ActionSpec("toggle_overlay", "Show &Mask", ("M",), "fa5s.layer-group", "Show or hide the mask overlay", True),
    ActionSpec("canvas_only", "Canvas &Only", ("F11",), "fa5s.expand",
               "Hide the panels so the picture has the whole window; again to bring them back", True),
    ActionSpec("solo_class", "Show Only the Selected &Class", ("H",), "fa5s.eye",
               "Hide every class but the one selected (it follows the selection); off shows the others again", True),
    ActionSpec("previous_image", "&Previous Image", ("A", "PgUp"), "fa5s.arrow-left"),
    ActionSpec("next_image", "&Next Image", ("D", "PgDown"), "fa5s.arrow-right"),
    ActionSpec("next_unreviewed", "Next &Not Reviewed", ("N",), "fa5s.forward",
               "The next image that is not reviewed yet, going round to the top of the list after the last"),
    ActionSpec("accept_prediction", "&Accept Prediction", ("Ctrl+Return", "Ctrl+Enter"), "fa5s.check",
               "Use the model's mask as the corrected mask"),
    ActionSpec("mark_reviewed", "Mark &Reviewed", ("R",), "fa5s.check-double",
               "Save and mark this image as reviewed (Undo takes it back)"),
    ActionSpec("review_and_next", "Mark Reviewed and &Go On", ("Shift+R",), "fa5s.step-forward",
               "Mark this image reviewed, then open the next one not reviewed yet"),
    ActionSpec("unmark_reviewed", "Unmar&k Reviewed", ("U",), "fa5s.times",
               "Take back this image's review, however long ago it was made: it becomes a correction again"),
    ActionSpec("find_image", "&Find Image by Name…", ("Ctrl+F",), "fa5s.search",
               "List only the photos whose path holds the text typed (Esc clears it)"),
    ActionSpec("keep_changed_masks", "&Keep Masks of Changed Photos…", (), "fa5s.link",
               "Photos retouched, re-encoded or resized since their masks were checked: keep their masks (scaled "
               "with a resized photo) without reviewing each again"),
    ActionSpec("prelabel_image", "Pre-label This &Image", ("Ctrl+L",), "fa5s.magic"),
    ActionSpec("prelabel_all", "Pre-label &All Images", ("Ctrl+Shift+L",), "fa5s.layer-group"),
    ActionSpec("prelabel_all_again", "Pre-label All Images A&gain…", (), "fa5s.redo",
               "Predict again every image nobody has corrected or reviewed, including predictions that are "
               "current and those imported from another dataset"),
    ActionSpec("retrain", "&Retrain Model", ("Ctrl+T",), "fa5s.sync-alt",
               "Fine-tune on the corrected images in the background"),
    ActionSpec("prelabel_on_open", "Pre-label New Images on &Opening", (), None,
               "When a project opens with images no model has labeled yet, pre-label them at once", True),
    ActionSpec("shortcuts", "&Keyboard Shortcuts…", ("F1",), "fa5s.keyboard",
               "Every key and mouse gesture of the studio"),
    *(ActionSpec(f"class_{d}", f"Class {d}", (str(d),)) for d in range(10)),
)


def build_actions(parent: QWidget) -> dict[str, QAction]:
    """QActions for every spec, parented to (and active in) `parent`; tool actions are mutually exclusive."""
    actions: dict[str, QAction] = {}
    groups: dict[str, QActionGroup] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, parent)
        action.setObjectName(spec.name)
        if spec.icon:
            action.setIcon(qta.icon(spec.icon))
        if spec.shortcuts:
            action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
            shown = ", ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in spec.shortcuts)
            action.setToolTip(f"{spec.tip or spec.text.replace('&', '').rstrip('…')} ({shown})")
        elif spec.tip:
            action.setToolTip(spec.tip)
        action.setCheckable(spec.checkable)
        if spec.group:
            group = groups.setdefault(spec.group, QActionGroup(parent))
            group.setExclusive(True)
            group.addAction(action)
        parent.addAction(action)
        actions[spec.name] = action
    return actions


class _PageKeysStay(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            event.accept()
            return True
        return False


def keep_page_keys(widget: QWidget) -> None:
    """PgUp/PgDown step the value of a focused number box, as they do everywhere else, instead of firing the
    previous/next image shortcuts."""
    widget.installEventFilter(_PageKeysStay(widget))
