"""F11 (View > Canvas Only) hides the panels so the picture has the whole window, and brings them back as they were."""

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def _docks(window):
    return [window.list_dock, window.palette_dock, window.models_dock]


def _shown(window):
    return [dock.isVisible() for dock in _docks(window)]


def test_f11_hides_the_panels_and_brings_them_back_as_they_were(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    canvas = window.ws.canvas
    window.list_dock.hide()  # the annotator's own layout: no image list
    qtbot.wait(50)
    before = _shown(window)
    assert any(before)
    width = canvas.width()

    QTest.keyClick(canvas, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not any(_shown(window)))
    assert window.actions["canvas_only"].isChecked()
    qtbot.waitUntil(lambda: canvas.width() > width)
    QTest.keyClick(canvas, Qt.Key.Key_D)  # the keys still work on the picture
    qtbot.waitUntil(lambda: window.ws.session.record.id == window.ws.store.images()[1].id)

    QTest.keyClick(canvas, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: _shown(window) == before)
    assert not window.actions["canvas_only"].isChecked()


def test_a_panel_shown_from_the_view_menu_ends_canvas_only_mode(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    window.actions["canvas_only"].trigger()
    qtbot.waitUntil(lambda: not any(_shown(window)))
    window.list_dock.toggleViewAction().trigger()
    qtbot.waitUntil(lambda: window.list_dock.isVisible())
    assert not window.actions["canvas_only"].isChecked()
    assert not window.palette_dock.isVisible()  # nothing else came back behind the user's choice
    window.actions["canvas_only"].trigger()
    qtbot.waitUntil(lambda: not any(_shown(window)))


def test_closing_the_project_in_canvas_only_mode_keeps_the_panels_for_the_next_one(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    before = _shown(window)
    window.actions["canvas_only"].trigger()
    qtbot.waitUntil(lambda: not any(_shown(window)))
    assert window.close_project()
    assert not window.actions["canvas_only"].isChecked() and not window.actions["canvas_only"].isEnabled()
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=10_000)
    qtbot.waitUntil(lambda: _shown(window) == before)


def test_the_toolbar_button_for_the_tools_a_narrow_window_hides_is_plain_to_see(qtbot, tmp_path):
    from PySide6.QtWidgets import QToolButton

    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    window.resize(700, 500)
    more = window.toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    qtbot.waitUntil(lambda: more.isVisible())
    assert not more.icon().isNull() and more.toolTip().startswith("More tools")
