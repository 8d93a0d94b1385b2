"""Polygon and lasso: a drag from nothing is a lasso; a wobble while clicking a corner is just a click."""

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window, viewport_point

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def test_a_wobble_on_the_second_corner_of_a_zoomed_out_polygon_keeps_the_corners(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, size=1024, predicted=False), tmp_path)
    canvas, viewport = window.ws.canvas, window.ws.canvas.viewport()
    assert canvas.scale_factor < 0.6
    QTest.keyClick(canvas, Qt.Key.Key_P)
    QTest.mouseClick(viewport, LEFT, NONE, viewport_point(canvas, 200, 200))
    second = viewport_point(canvas, 800, 200)
    QTest.mousePress(viewport, LEFT, NONE, second)
    QTest.mouseMove(viewport, second + QPoint(2, 1))
    QTest.mouseRelease(viewport, LEFT, NONE, second + QPoint(2, 1))
    assert len(canvas.tool.points) == 2
    assert not window.ws.session.editor.mask.any()
    QTest.mouseClick(viewport, LEFT, NONE, viewport_point(canvas, 800, 800))
    QTest.keyClick(canvas, Qt.Key.Key_Return)
    assert window.ws.session.editor.mask[300, 700] != 0


def test_a_drag_from_nothing_is_a_lasso_that_fills_on_release(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, predicted=False), tmp_path)
    canvas, viewport = window.ws.canvas, window.ws.canvas.viewport()
    QTest.keyClick(canvas, Qt.Key.Key_4)
    QTest.keyClick(canvas, Qt.Key.Key_P)
    corners = [(20.5, 20.5), (100.5, 20.5), (100.5, 100.5), (20.5, 100.5)]
    QTest.mousePress(viewport, LEFT, NONE, viewport_point(canvas, *corners[0]))
    for x, y in corners[1:]:
        QTest.mouseMove(viewport, viewport_point(canvas, x, y))
    QTest.mouseRelease(viewport, LEFT, NONE, viewport_point(canvas, *corners[-1]))
    assert canvas.tool.points == []
    assert window.ws.session.editor.mask[60, 60] == 4
