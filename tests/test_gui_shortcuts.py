"""Help > Keyboard Shortcuts (F1): the reference lists every action's real shortcut and the canvas gestures, opens
from the welcome page too, and F1 again brings back the same window."""

from faceparse.app.gui.actions import ACTIONS
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from faceparse.app.gui.shortcuts_dialog import CANVAS_GESTURES, LIST_GESTURES, ShortcutsDialog
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def native(shortcut: str) -> str:
    return QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)


def test_f1_shows_every_shortcut_of_the_open_project(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_F1)
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    rows = dict(dialog.rows())
    for spec in ACTIONS:
        if spec.shortcuts and not spec.name.startswith("class_"):
            keys = next(k for k, what in rows.items() if what == spec.text.replace("&", "").rstrip("…"))
            assert all(native(s) in keys for s in spec.shortcuts), spec.name
    assert rows[native("Ctrl+Z")] == "Undo"
    assert "0–9" in rows
    assert all(rows[keys] == what for keys, what in CANVAS_GESTURES + LIST_GESTURES)

    dialog.close()
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_F1)
    assert window.findChildren(ShortcutsDialog) == [dialog] and dialog.isVisible()


def test_the_reference_opens_from_the_help_menu_without_a_project(qtbot, tmp_path):
    window = MainWindow(StudioSettings.at(tmp_path / "studio.ini"), autosave_ms=60_000)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.ws is None
    help_menu = next(m.menu() for m in window.menuBar().actions() if m.text() == "&Help")
    entry = next(a for a in help_menu.actions() if a.objectName() == "shortcuts")
    assert entry.isEnabled()
    entry.trigger()
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()


def test_the_reference_is_wide_enough_for_its_longest_lines(qtbot):
    dialog = ShortcutsDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    screen = dialog.screen().availableGeometry().width()
    if dialog.width() < int(screen * 0.9):  # the screen leaves room: nothing is cut short
        assert dialog.tree.columnWidth(1) >= dialog.tree.sizeHintForColumn(1)
    rows = [dialog.tree.topLevelItem(i) for i in range(dialog.tree.topLevelItemCount())]
    assert all(row.toolTip(1) == row.text(1) for row in rows if row.text(1))
