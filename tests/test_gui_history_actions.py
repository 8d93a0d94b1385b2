"""Undo and Redo are enabled exactly when they would do something."""

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point


def _history(window) -> tuple[bool, bool]:
    return window.actions["undo"].isEnabled(), window.actions["redo"].isEnabled()


def _stroke(window) -> None:
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_5)
    drag(canvas, [viewport_point(canvas, x, 64) for x in (30, 50, 70)])


def test_an_opened_image_offers_neither_undo_nor_redo(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "p"), tmp_path)
    assert _history(window) == (False, False)


def test_a_stroke_enables_undo_and_undoing_it_enables_redo(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "p"), tmp_path)
    _stroke(window)
    assert _history(window) == (True, False)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _history(window) == (False, True)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert _history(window) == (True, False)


def test_an_outline_being_drawn_can_be_undone_and_then_nothing_is_left(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "p"), tmp_path)
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_P)
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     viewport_point(canvas, 40, 40))
    assert canvas.tool.points
    assert _history(window) == (True, False)
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.tool.points
    assert _history(window) == (False, False)


def test_moving_to_another_image_leaves_an_empty_history(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "p"), tmp_path)
    _stroke(window)
    first = window.ws.session.record.id
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.ws.session.record.id != first)
    assert _history(window) == (False, False)


def test_undo_that_drops_a_stroke_still_held_leaves_nothing_to_undo(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "p"), tmp_path)
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_5)
    QTest.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     viewport_point(canvas, 40, 64))
    assert _history(window) == (True, False)
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.tool.holds_pixels()
    assert _history(window) == (False, False)
    QTest.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       viewport_point(canvas, 40, 64))
