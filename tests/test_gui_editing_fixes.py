"""Editing edge cases: a stroke interrupted by a pan, a tool key or T; R after a failed save or on the prediction;
keys that belong to the focused field; Backspace on a polygon corner being dragged."""

from __future__ import annotations

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from test_gui_helpers import drag, make_project, open_window, viewport_point

LEFT, MIDDLE, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier


def _window(qtbot, tmp_path, count=2):
    folder = make_project(tmp_path / "faces", count=count, size=64)
    return folder, open_window(qtbot, folder, tmp_path)


def test_letting_go_of_the_stroke_while_the_middle_button_pans_ends_the_stroke(qtbot, tmp_path):
    _, window = _window(qtbot, tmp_path)
    canvas, session = window.ws.canvas, window.ws.session
    viewport = canvas.viewport()
    QTest.keyClick(canvas, Qt.Key.Key_5)
    window.brush_spin.setValue(3)
    start = session.editor.mask.copy()
    a, b = viewport_point(canvas, 5.5, 5.5), viewport_point(canvas, 20.5, 5.5)
    QTest.mousePress(viewport, LEFT, NONE, a)
    QTest.mouseMove(viewport, b)
    QTest.mousePress(viewport, MIDDLE, NONE, b)
    QTest.mouseRelease(viewport, LEFT, NONE, b)
    QTest.mouseRelease(viewport, MIDDLE, NONE, b)
    assert session.undo_stack.count() == 1 and not canvas.tool.holds_pixels()
    stroke = session.editor.mask.copy()
    for y in (30.5, 40.5, 50.5):
        QTest.mouseMove(viewport, viewport_point(canvas, 30.5, y))
    assert np.array_equal(session.editor.mask, stroke), "hovering with no button held painted"
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(session.editor.mask, start)


def test_a_tool_key_or_t_in_the_middle_of_a_stroke_keeps_what_was_painted(qtbot, tmp_path):
    _, window = _window(qtbot, tmp_path)
    canvas, session = window.ws.canvas, window.ws.session
    viewport = canvas.viewport()
    QTest.keyClick(canvas, Qt.Key.Key_5)
    for key in (Qt.Key.Key_E, Qt.Key.Key_T):
        QTest.keyClick(canvas, Qt.Key.Key_B)
        before, steps = session.editor.mask.copy(), session.undo_stack.count()
        a, b = viewport_point(canvas, 5.5, 20.5), viewport_point(canvas, 40.5, 20.5)
        QTest.mousePress(viewport, LEFT, NONE, a)
        QTest.mouseMove(viewport, b)
        painted = session.editor.mask.copy()
        assert (painted != before).any()
        QTest.keyClick(canvas, key)
        QTest.mouseRelease(viewport, LEFT, NONE, b)
        assert np.array_equal(session.editor.mask, painted) and session.undo_stack.count() == steps + 1
        if canvas.showing_prediction:
            QTest.keyClick(canvas, Qt.Key.Key_T)
        session.editor.mask[...] = before  # the next round starts from the same mask
        canvas.mask_changed(None)


def _painted(qtbot, tmp_path):
    """A window whose first image has one unsaved stroke of class 5; also the errors the session reports."""
    folder, window = _window(qtbot, tmp_path)
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_5)
    drag(canvas, [viewport_point(canvas, 5.5, 5.5), viewport_point(canvas, 40.5, 5.5)])
    errors = []
    window.ws.session.error.connect(errors.append)
    return folder, window, errors


def test_r_after_a_failed_save_does_not_mark_the_image_reviewed(qtbot, tmp_path, monkeypatch):
    folder, window, errors = _painted(qtbot, tmp_path)
    ws = window.ws
    session, canvas = ws.session, ws.canvas
    image_id = session.image_id

    def disk_full(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ws.store, "save_corrected", disk_full)
    QTest.keyClick(canvas, Qt.Key.Key_R)
    session.writer.wait()
    qtbot.waitUntil(lambda: any("not marked reviewed" in e for e in errors), timeout=5_000)
    with ProjectStore.open(folder) as store:
        assert store.get(image_id).status != "reviewed"
    monkeypatch.undo()
    session.retry_unsaved()
    session.writer.wait()
    qtbot.waitUntil(lambda: not session.unsaved(), timeout=5_000)


def test_r_while_the_prediction_is_shown_approves_nothing_unseen(qtbot, tmp_path):
    folder, window, errors = _painted(qtbot, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    QTest.keyClick(canvas, Qt.Key.Key_T)
    assert canvas.showing_prediction
    QTest.keyClick(canvas, Qt.Key.Key_R)
    session.writer.wait()
    assert "press T to see the working mask first" in window.statusBar().currentMessage()
    assert errors == [] and window._warning_box is None  # a slip, said in the status bar only
    with ProjectStore.open(folder) as store:
        assert store.get(image_id).status != "reviewed"


def test_space_drag_after_touching_the_opacity_slider_pans(qtbot, tmp_path):
    _, window = _window(qtbot, tmp_path)
    canvas, session = window.ws.canvas, window.ws.session
    slider = window.opacity_slider
    QTest.mouseClick(slider, LEFT, NONE, QPoint(slider.width() // 4, slider.height() // 2))
    assert QApplication.focusWidget() is canvas
    before = session.editor.mask.copy()
    QTest.keyPress(QApplication.focusWidget(), Qt.Key.Key_Space)
    drag(canvas, [viewport_point(canvas, 10.5, 10.5), viewport_point(canvas, 50.5, 50.5)])
    QTest.keyRelease(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert np.array_equal(session.editor.mask, before)


def test_page_keys_in_the_brush_size_box_step_the_size_not_the_image(qtbot, tmp_path):
    _, window = _window(qtbot, tmp_path, count=3)
    spin, session = window.brush_spin, window.ws.session
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    first, size = session.image_id, spin.value()
    QTest.keyClick(spin.lineEdit(), Qt.Key.Key_PageUp)
    assert session.image_id == first and spin.value() > size
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_PageDown)
    assert session.image_id != first


def test_backspace_while_dragging_the_last_polygon_corner(qtbot, tmp_path):
    _, window = _window(qtbot, tmp_path, count=1)
    canvas = window.ws.canvas
    viewport = canvas.viewport()
    QTest.keyClick(canvas, Qt.Key.Key_P)
    for x, y in ((10.5, 10.5), (40.5, 10.5), (40.5, 40.5)):
        QTest.mouseClick(viewport, LEFT, NONE, viewport_point(canvas, x, y))
        qtbot.wait(QApplication.doubleClickInterval() + 50)
    QTest.mousePress(viewport, LEFT, NONE, viewport_point(canvas, 40.5, 40.5))
    QTest.keyClick(canvas, Qt.Key.Key_Backspace)
    assert len(canvas.tool.points) == 3
    point = QPointF(viewport_point(canvas, 30.5, 50.5))
    QApplication.postEvent(viewport, QMouseEvent(QEvent.Type.MouseMove, point, viewport.mapToGlobal(point),
                                                 Qt.MouseButton.NoButton, LEFT, NONE))
    qtbot.wait(50)
    QTest.mouseRelease(viewport, LEFT, NONE, viewport_point(canvas, 30.5, 50.5))
    QTest.keyClick(canvas, Qt.Key.Key_Backspace)
    assert len(canvas.tool.points) == 2
