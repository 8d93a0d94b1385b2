"""R is a step in the image's undo history: Ctrl+Z takes a slip of R back, Ctrl+Shift+Z reviews again."""

import numpy as np
import pytest
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, install_model, make_project, open_window, viewport_point

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def _opened(qtbot, tmp_path):
    """Two predicted faces, the first open, saved 50 ms after an edit."""
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    return folder, window, window.ws.session, window.ws.canvas


def _paint_a_stroke(canvas):
    QTest.keyClick(canvas, Qt.Key.Key_2)
    drag(canvas, [viewport_point(canvas, 5.5, 5.5), viewport_point(canvas, 30.5, 5.5)])


def _stored(folder, image_id):
    with ProjectStore.open(folder) as store:
        return store.get(image_id).status, store.mask_path("corrected", image_id).exists()


def test_undoing_r_on_an_untouched_prediction_leaves_it_predicted_and_redo_reviews_it_again(qtbot, tmp_path):
    folder, window, session, canvas = _opened(qtbot, tmp_path)
    image_id = session.image_id
    assert _stored(folder, image_id) == ("predicted", False)

    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    assert window.actions["undo"].isEnabled()
    assert not session.modified

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: session.record.status == "predicted", timeout=5000)
    session.writer.wait()
    assert _stored(folder, image_id) == ("predicted", False)
    assert window.ws.image_list.model.record(0).status == "predicted"

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL_SHIFT)
    qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5000)
    session.writer.wait()
    assert _stored(folder, image_id) == ("reviewed", True)
    assert not session.modified
    assert window.statusBar().currentMessage() == f"{session.record.name} marked reviewed"


def test_undoing_r_after_painting_keeps_the_painted_correction(qtbot, tmp_path):
    folder, window, session, canvas = _opened(qtbot, tmp_path)
    image_id = session.image_id
    _paint_a_stroke(canvas)
    painted = session.editor.mask.copy()

    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: session.record.status == "corrected", timeout=5000)
    qtbot.waitUntil(lambda: not session.modified, timeout=5000)
    session.writer.wait()
    assert _stored(folder, image_id) == ("corrected", True)
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(image_id), painted)

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: session.record.status == "predicted", timeout=5000)
    assert np.array_equal(session.editor.mask, session.prediction)


def test_r_on_an_image_reviewed_before_adds_no_step_that_could_unreview_it(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    with ProjectStore.open(folder) as store:
        first = store.images()[0].id
        store.set_status(first, "reviewed")
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session = window.ws.session
    assert session.image_id == first and session.record.status == "reviewed"
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_R)
    session.writer.wait()
    assert not window.actions["undo"].isEnabled()
    assert _stored(folder, first)[0] == "reviewed"


def test_shift_r_reviews_and_opens_the_next_image_not_reviewed_but_a_refused_review_stays(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    session, canvas = ws.session, ws.canvas
    ids = [ws.image_list.model.record(r).id for r in range(3)]
    QTest.keyClick(canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: session.image_id == ids[1])
    session.writer.wait()
    assert _stored(folder, ids[0])[0] == "reviewed"

    QTest.keyClick(canvas, Qt.Key.Key_T)
    assert canvas.showing_prediction
    QTest.keyClick(canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    session.writer.wait()
    assert session.image_id == ids[1]
    assert _stored(folder, ids[1])[0] == "predicted"
    assert "press T" in window.statusBar().currentMessage()


def _settle(qtbot, session):
    session.writer.wait()
    qtbot.wait(200)
    session.writer.wait()


def test_a_stroke_undone_after_r_is_undone_on_disk_too(qtbot, tmp_path):
    folder, window, session, canvas = _opened(qtbot, tmp_path)
    image_id = session.image_id
    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    _paint_a_stroke(canvas)
    _settle(qtbot, session)
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    _settle(qtbot, session)
    assert not session.modified
    with ProjectStore.open(folder) as store:
        assert store.get(image_id).status == "reviewed"
        assert np.array_equal(store.corrected_mask(image_id), session.editor.mask)


def test_r_twice_in_a_row_is_one_step_and_r_again_right_after_undoing_it_is_a_step_again(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session = window.ws.session
    image_id = session.image_id
    session.mark_reviewed()
    session.mark_reviewed()
    assert session.undo_stack.count() == 1
    _settle(qtbot, session)
    session.undo()
    session.mark_reviewed()
    _settle(qtbot, session)
    assert _stored(folder, image_id)[0] == "reviewed"
    assert session.can_undo()
    session.undo()
    _settle(qtbot, session)
    assert _stored(folder, image_id) == ("predicted", False)


def test_a_review_whose_status_could_not_be_written_leaves_no_step_to_take_back(qtbot, tmp_path, monkeypatch):
    from faceparse.core.store import ProjectError

    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    _paint_a_stroke(canvas)
    real = session.store.set_status

    def refuse_review(image_id, status, **kwargs):
        if status == "reviewed":
            raise ProjectError("database is locked")
        return real(image_id, status, **kwargs)

    monkeypatch.setattr(session.store, "set_status", refuse_review)
    messages = []
    session.message.connect(messages.append)
    session.mark_reviewed()
    _settle(qtbot, session)
    assert session.record.status == "corrected"
    session.undo()
    assert "no longer marked reviewed" not in messages
    assert np.array_equal(session.editor.mask, session.prediction)


@pytest.mark.parametrize("autosave_ms", [50, 60_000])
def test_undoing_r_after_a_new_prediction_hands_back_the_new_prediction_not_the_old_approval(qtbot, tmp_path,
                                                                                             autosave_ms):
    """R approves the untouched prediction, Ctrl+L predicts the image again (the approval is kept aside as the
    reviewed mask), and Ctrl+Z takes the review back: nobody ever corrected the image, so it is predicted again,
    showing the new prediction, with no corrected mask left behind; Ctrl+Shift+Z approves what is then shown."""
    folder = make_project(tmp_path / "faces", count=2, size=64)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=autosave_ms)
    session, canvas, models = window.ws.session, window.ws.canvas, window.ws.models
    image_id = session.image_id
    approved = session.editor.mask.copy()

    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    QTest.keyClick(canvas, Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(lambda: models.prelabel_task is None, timeout=60_000)
    with ProjectStore.open(folder) as store:
        new_prediction = store.predicted_mask(image_id)
    assert not np.array_equal(new_prediction, approved)

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: session.record.status == "predicted", timeout=5000)
    qtbot.wait(200)  # past the autosave that follows taking a review back
    session.writer.wait()
    assert _stored(folder, image_id) == ("predicted", False)
    assert np.array_equal(session.editor.mask, new_prediction)
    assert not session.modified

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL_SHIFT)
    qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5000)
    session.writer.wait()
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.current_mask(image_id), new_prediction)


def test_undoing_every_stroke_after_a_new_prediction_leaves_the_image_predicted_showing_it(qtbot, tmp_path):
    """A stroke (saved), Ctrl+L, Ctrl+Z: no edit of anyone's is left, so the image is the model's again, and the
    screen shows the model's newest mask rather than the older one the stroke was undone back to."""
    folder = make_project(tmp_path / "faces", count=2, size=64)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session, canvas, models = window.ws.session, window.ws.canvas, window.ws.models
    image_id = session.image_id
    _paint_a_stroke(canvas)
    qtbot.waitUntil(lambda: session.record.status == "corrected" and not session.modified, timeout=5000)
    QTest.keyClick(canvas, Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(lambda: models.prelabel_task is None, timeout=60_000)
    with ProjectStore.open(folder) as store:
        new_prediction = store.predicted_mask(image_id)

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: session.record.status == "predicted", timeout=5000)
    qtbot.waitUntil(lambda: np.array_equal(session.editor.mask, new_prediction), timeout=5000)
    session.writer.wait()
    assert _stored(folder, image_id) == ("predicted", False)
    assert not session.modified and not window.actions["undo"].isEnabled()


def test_u_after_an_edit_is_a_step_of_the_history_that_undo_and_redo_follow(qtbot, tmp_path):
    """R, a stroke, U: Ctrl+Z approves the image again (it does not take the review back a second time), the next
    Ctrl+Z takes the stroke back with the image still reviewed, and redoing all three ends where U left it."""
    folder, window, session, canvas = _opened(qtbot, tmp_path)
    image_id = session.image_id
    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    _paint_a_stroke(canvas)
    painted = session.editor.mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_U)
    qtbot.waitUntil(lambda: session.record.status == "corrected", timeout=5000)

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: session.record.status == "reviewed", timeout=5000)
    assert window.statusBar().currentMessage() == f"{session.record.name} marked reviewed"
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    assert not np.array_equal(session.editor.mask, painted)
    qtbot.wait(200)
    session.writer.wait()
    assert session.record.status == "reviewed"
    assert _stored(folder, image_id)[0] == "reviewed"

    for _ in range(2):
        QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL_SHIFT)
    assert np.array_equal(session.editor.mask, painted)
    qtbot.waitUntil(lambda: session.record.status == "corrected", timeout=5000)
    session.writer.wait()
    assert _stored(folder, image_id) == ("corrected", True)
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(image_id), painted)
