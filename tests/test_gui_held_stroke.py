"""What is saved is always a state of the undo history: a stroke whose button is still held is never written half
done, and leaving the image or closing with the button held keeps the stroke."""

import numpy as np
import pytest
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def _start(qtbot, tmp_path, autosave_ms=60_000):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=autosave_ms)
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_3)
    window.brush_spin.setValue(6)
    drag(canvas, [viewport_point(canvas, x, 20.5) for x in (10.5, 40.5)])
    return folder, window


def _hold_stroke(canvas, y=110.5):
    viewport = canvas.viewport()
    QTest.mousePress(viewport, LEFT, NONE, viewport_point(canvas, 10.5, y))
    QTest.mouseMove(viewport, viewport_point(canvas, 60.5, y))


def _release(canvas, y=110.5):
    QTest.mouseRelease(canvas.viewport(), LEFT, NONE, viewport_point(canvas, 60.5, y))


def _on_disk(folder, image_id):
    with ProjectStore.open(folder) as store:
        return store.corrected_mask(image_id)


def _leave_and_flush(qtbot, window, image_id):
    window.actions["next_image"].trigger()
    qtbot.waitUntil(lambda: window.ws.session.image_id != image_id)
    window.ws.session.flush()


@pytest.mark.parametrize("taken_back_by", ["undo after release", "escape while held"])
def test_autosave_waits_for_a_held_stroke_so_taking_it_back_leaves_nothing_on_disk(qtbot, tmp_path, taken_back_by):
    folder, window = _start(qtbot, tmp_path, autosave_ms=200)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    _hold_stroke(canvas)
    qtbot.wait(600)
    if taken_back_by == "escape while held":
        QTest.keyClick(canvas, Qt.Key.Key_Escape)
        _release(canvas)
    else:
        _release(canvas)
        window.actions["undo"].trigger()
    memory = session.editor.mask.copy()
    assert (memory[110] == 3).sum() == 0
    _leave_and_flush(qtbot, window, image_id)
    assert np.array_equal(_on_disk(folder, image_id), memory)


def _holding(qtbot, tmp_path):
    """A window whose open image has one finished stroke and a second one whose button is still held."""
    folder, window = _start(qtbot, tmp_path)
    image_id = window.ws.session.image_id
    _hold_stroke(window.ws.canvas)
    held = window.ws.session.editor.mask.copy()
    assert (held[110] == 3).sum() > 0
    return folder, window, image_id, held


def test_leaving_the_image_with_the_button_held_keeps_the_stroke(qtbot, tmp_path):
    folder, window, image_id, held = _holding(qtbot, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: session.image_id != image_id)
    _release(canvas)
    session.flush()
    assert np.array_equal(_on_disk(folder, image_id), held)
    window.actions["previous_image"].trigger()
    qtbot.waitUntil(lambda: session.image_id == image_id)
    assert np.array_equal(session.editor.mask, held)


def test_closing_with_the_button_held_keeps_the_stroke(qtbot, tmp_path):
    folder, window, image_id, held = _holding(qtbot, tmp_path)
    assert window.close()
    assert np.array_equal(_on_disk(folder, image_id), held)


def test_undo_during_a_held_stroke_takes_back_only_that_stroke(qtbot, tmp_path):
    _, window = _start(qtbot, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    after_first = session.editor.mask.copy()
    _hold_stroke(canvas)
    window.actions["undo"].trigger()
    _release(canvas)
    assert np.array_equal(session.editor.mask, after_first)
    assert session.undo_stack.count() == 1 and session.undo_stack.canUndo()


def test_a_quick_second_tap_of_the_brush_paints_too(qtbot, tmp_path):
    _, window = _start(qtbot, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    window.brush_spin.setValue(2)
    viewport = canvas.viewport()
    first, second = viewport_point(canvas, 60.5, 100.5), viewport_point(canvas, 63.5, 100.5)
    QTest.mouseClick(viewport, LEFT, NONE, first)
    QTest.mouseDClick(viewport, LEFT, NONE, second)
    QTest.mouseRelease(viewport, LEFT, NONE, second)
    assert session.editor.mask[100, 60] == 3 and session.editor.mask[100, 63] == 3


def test_marking_an_unlabeled_image_reviewed_with_the_button_held_keeps_the_stroke_and_reviews(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    canvas, image_id = window.ws.canvas, window.ws.session.image_id
    QTest.keyClick(canvas, Qt.Key.Key_3)
    _hold_stroke(canvas)
    held = window.ws.session.editor.mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_R)
    _release(canvas)
    window.ws.session.flush()
    with ProjectStore.open(folder) as store:
        assert store.get(image_id).status == "reviewed"
        assert np.array_equal(store.corrected_mask(image_id), held)
