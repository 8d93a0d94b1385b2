"""The session keeps what the annotator did: a failed save is reopened, an unmasked image can be reviewed, and a
read-ahead copy never shows a stale status."""

import threading

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point

SIZE = 64


def paint_row(canvas, y: float) -> None:
    drag(canvas, [viewport_point(canvas, x, y) for x in (5.5, 55.5)])


def leave_and_return(qtbot, window) -> None:
    """D then A, through the actions: a failed save's message box may hold the keyboard meanwhile."""
    session = window.ws.session
    image_id = session.image_id
    window.actions["next_image"].trigger()
    qtbot.waitUntil(lambda: session.image_id != image_id)
    session.writer.wait()
    qtbot.wait(50)
    window.actions["previous_image"].trigger()
    qtbot.waitUntil(lambda: session.image_id == image_id)


def test_an_image_whose_save_failed_reopens_on_the_unsaved_edit(qtbot, tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=3, size=SIZE)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    session, image_id = ws.session, ws.session.image_id
    real_save = ws.store.save_corrected
    failures = [OSError(28, "No space left on device")]

    def full_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ws.store, "save_corrected", full_once)
    try:
        QTest.keyClick(ws.canvas, Qt.Key.Key_5)
        paint_row(ws.canvas, 10.5)
        first_edit = session.editor.mask.copy()
        leave_and_return(qtbot, window)
        assert image_id in session.unsaved()
        assert np.array_equal(session.editor.mask, first_edit)
        assert session.modified and window.isWindowModified()

        paint_row(ws.canvas, 40.5)
        both_edits = session.editor.mask.copy()
        window.actions["save"].trigger()
        assert session.flush() == {}
    finally:
        session.discard_unsaved()  # so a failure ends the test instead of asking about unsaved masks on close
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(image_id), both_edits)
    assert (both_edits[10] == 5).any()


def test_reviewing_an_image_without_any_mask_saves_the_shown_mask(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=SIZE, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    session = window.ws.session
    errors: list[str] = []
    session.error.connect(errors.append)
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_4)
    drag(canvas, [viewport_point(canvas, 10, 10), viewport_point(canvas, 30, 12)])
    QTest.keyClick(canvas, Qt.Key.Key_R)
    session.writer.wait()
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    assert session.editor.mask.any()
    assert errors == []
    with ProjectStore.open(folder) as store:
        assert store.get(session.image_id).status == "reviewed"
        assert np.array_equal(store.corrected_mask(session.image_id), session.editor.mask)


def test_a_read_ahead_image_shows_the_status_written_after_it_was_read(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=SIZE)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    session, image_id = ws.session, ws.session.image_id
    leave_and_return(qtbot, window)
    busy = threading.Event()
    session.writer.submit(lambda: busy.wait(10))
    QTest.keyClick(ws.canvas, Qt.Key.Key_R)
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: session.image_id != image_id)
    qtbot.waitUntil(lambda: image_id in session.prefetch._bundles)
    busy.set()
    session.writer.wait()
    qtbot.wait(50)
    QTest.keyClick(ws.canvas, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: session.image_id == image_id)
    assert session.record.status == "reviewed"
    assert "(reviewed)" in window.windowTitle()
