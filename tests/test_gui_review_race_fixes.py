"""R approves the mask on screen even when a pre-label run replaced the prediction on disk after the image opened;
undoing U leaves nothing unsaved; a redo does not throw away a shape still being drawn."""

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def test_r_stores_the_prediction_on_screen_not_a_newer_one_on_disk(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    shown = session.editor.mask.copy()
    newer = np.zeros_like(shown)
    newer[10:30, 10:30] = 1
    with ProjectStore.open(folder) as other:  # a pre-label job writing while the image is open
        other.save_predicted(image_id, newer, "v0002")
    try:
        QTest.keyClick(canvas, Qt.Key.Key_R)
        qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5000)
    finally:
        session.writer.wait()
    with ProjectStore.open(folder) as store:
        assert store.get(image_id).status == "reviewed"
        assert np.array_equal(store.corrected_mask(image_id), shown)


def test_undoing_u_leaves_the_image_reviewed_and_nothing_unsaved(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    try:
        QTest.keyClick(canvas, Qt.Key.Key_R)
        qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5000)
        QTest.keyClick(canvas, Qt.Key.Key_U)
        qtbot.waitUntil(lambda: session.record.status != "reviewed", timeout=5000)
        QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
        qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5000)
        assert not session.modified
        assert not window.isWindowModified()
    finally:
        session.writer.wait()
    with ProjectStore.open(folder) as store:
        assert store.get(image_id).status == "reviewed"


def test_redo_while_a_polygon_is_being_drawn_keeps_its_corners(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    refusals = []
    session.refused.connect(refusals.append)
    try:
        QTest.keyClick(canvas, Qt.Key.Key_2)
        drag(canvas, [viewport_point(canvas, 5.5, 5.5), viewport_point(canvas, 30.5, 5.5)])
        QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
        assert session.undo_stack.canRedo()
        QTest.keyClick(canvas, Qt.Key.Key_P)
        for x, y in ((20.5, 20.5), (40.5, 20.5), (40.5, 40.5)):
            QTest.mouseClick(canvas.viewport(), LEFT, NONE, viewport_point(canvas, x, y))
        QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL_SHIFT)
        assert len(canvas.tool.points) == 3
        assert refusals and "still being drawn" in refusals[-1]
        assert session.undo_stack.canRedo()
        before = session.editor.mask.copy()
        QTest.keyClick(canvas, Qt.Key.Key_Return)
        assert session.editor.mask[24, 36] == 2
        assert (session.editor.mask[before != session.editor.mask] == 2).all()
    finally:
        session.save()
        session.writer.wait()
