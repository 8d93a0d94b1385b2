"""Accepting a prediction is undone like an edit, R refuses an image with nothing on it, and the pointer and brush
ring tell where a click paints: hidden only over an editable mask, and gone with the brush when the tool changes."""

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point

SIZE = 64
CTRL, SHIFT, NONE = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def _saved(folder, image_id):
    """The image's status in the store and whether it has a corrected mask file."""
    with ProjectStore.open(folder) as store:
        return store.get(image_id).status, store.mask_path("corrected", image_id).exists()


def _wait_saved(qtbot, window, folder, image_id, expected):
    session = window.ws.session
    qtbot.waitUntil(lambda: not session.modified, timeout=5_000)
    session.writer.wait()
    qtbot.waitUntil(lambda: _saved(folder, image_id) == expected, timeout=5_000)


def _paint_row(canvas, y: float) -> None:
    drag(canvas, [viewport_point(canvas, x, y) for x in (5.5, 55.5)])


def test_undoing_the_acceptance_of_an_untouched_prediction_leaves_it_predicted(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=100)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    assert _saved(folder, image_id) == ("predicted", False)

    QTest.keyClick(canvas, Qt.Key.Key_Return, CTRL)
    _wait_saved(qtbot, window, folder, image_id, ("corrected", True))

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    _wait_saved(qtbot, window, folder, image_id, ("predicted", False))
    assert np.array_equal(session.editor.mask, session.prediction)

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL | SHIFT)
    _wait_saved(qtbot, window, folder, image_id, ("corrected", True))


def test_accepting_after_edits_undoes_in_two_steps_and_redo_accepts_again(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=100)
    session, canvas = window.ws.session, window.ws.canvas
    image_id, prediction = session.image_id, session.prediction.copy()
    QTest.keyClick(canvas, Qt.Key.Key_4)
    _paint_row(canvas, 10.5)
    painted = session.editor.mask.copy()
    assert not np.array_equal(painted, prediction)

    QTest.keyClick(canvas, Qt.Key.Key_Return, CTRL)
    _wait_saved(qtbot, window, folder, image_id, ("corrected", True))
    assert np.array_equal(session.editor.mask, prediction)

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    _wait_saved(qtbot, window, folder, image_id, ("corrected", True))
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(image_id), painted)

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    _wait_saved(qtbot, window, folder, image_id, ("predicted", False))

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL | SHIFT)
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL | SHIFT)
    assert np.array_equal(session.editor.mask, prediction)
    _wait_saved(qtbot, window, folder, image_id, ("corrected", True))
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(image_id), prediction)


def test_r_refuses_an_image_with_nothing_on_it_but_reviews_one_erased_on_purpose(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    errors: list[str] = []
    session.refused.connect(errors.append)

    QTest.keyClick(canvas, Qt.Key.Key_R)
    session.writer.wait()
    assert errors and "nothing to mark reviewed" in errors[-1]
    assert "nothing to mark reviewed" in window.statusBar().currentMessage()
    assert window._warning_box is None  # a slip is said in the status bar; no box covers the face
    assert _saved(folder, image_id) == ("new", False)

    QTest.keyClick(canvas, Qt.Key.Key_4)
    _paint_row(canvas, 10.5)
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    errors.clear()
    QTest.keyClick(canvas, Qt.Key.Key_R)
    session.writer.wait()
    assert errors and "nothing to mark reviewed" in errors[-1]
    assert _saved(folder, image_id) == ("new", False)

    _paint_row(canvas, 10.5)
    QTest.keyClick(canvas, Qt.Key.Key_E)
    window.brush_spin.setValue(60)
    _paint_row(canvas, 10.5)
    assert not session.editor.mask.any()
    errors.clear()
    QTest.keyClick(canvas, Qt.Key.Key_R)
    session.writer.wait()
    qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5_000)
    assert errors == []
    assert _saved(folder, image_id) == ("reviewed", True)


def _hover(canvas, x: float = 30.5, y: float = 30.5) -> None:
    QTest.mouseMove(canvas.viewport(), viewport_point(canvas, x, y))


def _cursor(canvas) -> Qt.CursorShape:
    return canvas.viewport().cursor().shape()


def test_the_pointer_shows_over_the_read_only_prediction_and_a_click_says_why_nothing_happens(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE)
    window = open_window(qtbot, folder, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    for x, tool_key in ((30.5, Qt.Key.Key_B), (40.5, Qt.Key.Key_E)):
        QTest.keyClick(canvas, tool_key)
        _hover(canvas, x)
        assert _cursor(canvas) == Qt.CursorShape.BlankCursor and canvas._brush_ring.isVisible()

        QTest.keyClick(canvas, Qt.Key.Key_T)
        assert canvas.showing_prediction
        assert _cursor(canvas) != Qt.CursorShape.BlankCursor and not canvas._brush_ring.isVisible()
        _hover(canvas, 20.5, 20.5)
        assert _cursor(canvas) != Qt.CursorShape.BlankCursor and not canvas._brush_ring.isVisible()

        window.statusBar().clearMessage()
        before = session.editor.mask.copy()
        QTest.mouseClick(canvas.viewport(), LEFT, NONE, viewport_point(canvas, 20.5, 20.5))
        assert np.array_equal(session.editor.mask, before) and session.undo_stack.count() == 0
        assert "read-only" in window.statusBar().currentMessage()
        assert "press T" in window.statusBar().currentMessage()

        QTest.keyClick(canvas, Qt.Key.Key_T)
        assert not canvas.showing_prediction and _cursor(canvas) == Qt.CursorShape.BlankCursor


def test_the_pointer_shows_when_no_image_can_be_edited(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE)
    with ProjectStore.open(folder) as store:
        second = [r.id for r in store.images()][1]
        store.mask_path("corrected", second).parent.mkdir(parents=True, exist_ok=True)
        store.mask_path("corrected", second).write_bytes(b"not a png")
    window = open_window(qtbot, folder, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    _hover(canvas)
    assert _cursor(canvas) == Qt.CursorShape.BlankCursor
    QTest.keyClick(canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.ws.image_list.current_id() == second)
    assert session.record is None
    assert _cursor(canvas) != Qt.CursorShape.BlankCursor and not canvas._brush_ring.isVisible()


def test_a_tool_key_takes_the_brush_ring_away_at_once(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE)
    window = open_window(qtbot, folder, tmp_path)
    canvas = window.ws.canvas
    for x, tool_key in ((20.5, Qt.Key.Key_F), (40.5, Qt.Key.Key_P)):
        QTest.keyClick(canvas, Qt.Key.Key_B)
        _hover(canvas, x)
        assert canvas._brush_ring.isVisible()
        QTest.keyClick(canvas, tool_key)
        assert not canvas._brush_ring.isVisible()
        assert _cursor(canvas) == Qt.CursorShape.CrossCursor


def test_a_hidden_mask_is_not_painted_and_a_click_says_why(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE)
    window = open_window(qtbot, folder, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_B)
    QTest.keyClick(canvas, Qt.Key.Key_M)
    assert not window.actions["toggle_overlay"].isChecked()
    _hover(canvas, 30.5)
    assert _cursor(canvas) != Qt.CursorShape.BlankCursor and not canvas._brush_ring.isVisible()
    window.statusBar().clearMessage()
    before = session.editor.mask.copy()
    drag(canvas, [viewport_point(canvas, x, 20.5) for x in (10.5, 40.5)])
    assert np.array_equal(session.editor.mask, before) and session.undo_stack.count() == 0
    assert "press M" in window.statusBar().currentMessage()

    QTest.keyClick(canvas, Qt.Key.Key_M)
    drag(canvas, [viewport_point(canvas, x, 20.5) for x in (10.5, 40.5)])
    assert session.undo_stack.count() == 1 and not np.array_equal(session.editor.mask, before)
