"""A mask another program writes while the image is open here (an import in a terminal, a second studio) is not
replaced by this studio's next save without a word: the edit is kept unsaved, the person is told, and Ctrl+S saves
it over the other on purpose. The studio's own saves, reviews and undone reviews never count as another's."""

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point


def _stroke(canvas, y=5.5):
    QTest.keyClick(canvas, Qt.Key.Key_2)
    drag(canvas, [viewport_point(canvas, 5.5, y), viewport_point(canvas, 30.5, y)])


def test_an_import_made_while_the_image_is_open_is_not_saved_over(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    theirs = np.full((64, 64), 7, np.uint8)
    try:
        with ProjectStore.open(folder) as other:
            other.save_corrected(image_id, theirs, imported=True)
        _stroke(canvas)
        mine = session.editor.mask.copy()
        qtbot.waitUntil(lambda: image_id in session.unsaved(), timeout=5000)
        assert "changed by another program" in session.unsaved()[image_id]
        window.actions["next_image"].trigger()  # away and back: it opens on the edit, still not saved over
        qtbot.waitUntil(lambda: session.image_id != image_id, timeout=5000)
        window.actions["previous_image"].trigger()
        qtbot.waitUntil(lambda: session.image_id == image_id, timeout=5000)
        assert np.array_equal(session.editor.mask, mine)
        session.save()
        session.writer.wait()
        assert "changed by another program" in session.unsaved()[image_id]
        with ProjectStore.open(folder) as store:
            assert np.array_equal(store.corrected_mask(image_id), theirs)
        assert session.flush() == {}  # Ctrl+S: saved over the other on purpose
        with ProjectStore.open(folder) as store:
            assert np.array_equal(store.corrected_mask(image_id), mine)
    finally:
        session.discard_unsaved()


def test_own_saves_and_reviews_are_never_taken_for_another_programs(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session, canvas = window.ws.session, window.ws.canvas
    image_id = session.image_id
    try:
        _stroke(canvas)
        qtbot.waitUntil(lambda: not session.modified, timeout=5000)
        QTest.keyClick(canvas, Qt.Key.Key_R)
        qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5000)
        QTest.keyClick(canvas, Qt.Key.Key_U)
        qtbot.waitUntil(lambda: session.record.status == "corrected", timeout=5000)
        _stroke(canvas, y=9.5)
        qtbot.waitUntil(lambda: not session.modified, timeout=5000)
        session.writer.wait()
        assert not session.unsaved()
        with ProjectStore.open(folder) as store:
            assert np.array_equal(store.corrected_mask(image_id), session.editor.mask)
    finally:
        session.discard_unsaved()
