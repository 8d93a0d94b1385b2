"""An annotator's approval and keys stay theirs: a reviewed prediction survives pre-labeling again, and a slip that
was autosaved and then undone leaves the image as it was."""

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, install_model, make_project, open_window, viewport_point


def test_a_prediction_marked_reviewed_survives_prelabeling_the_image_again(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    session, canvas = ws.session, ws.canvas
    image_id = session.record.id
    approved = session.editor.mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    QTest.keyClick(canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: ws.models.prelabel_task is None, timeout=60_000)
    with ProjectStore.open(folder) as store:
        assert not np.array_equal(store.predicted_mask(image_id), approved)  # the model did predict again
        assert np.array_equal(store.current_mask(image_id), approved)
        assert store.get(image_id).status == "reviewed"
    assert np.array_equal(session.editor.mask, approved)


def _status(folder, image_id):
    with ProjectStore.open(folder) as store:
        return store.get(image_id).status, store.corrected_mask(image_id)


def _slip_autosaved_then_undone(qtbot, window):
    session, canvas = window.ws.session, window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_4)
    drag(canvas, [viewport_point(canvas, 10.5, 10.5), viewport_point(canvas, 60.5, 10.5)])
    qtbot.waitUntil(lambda: not session.modified and session.record.status == "corrected", timeout=5_000)
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert session.modified


def test_a_slip_autosaved_then_undone_leaves_a_new_image_new(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, predicted=False)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=100)
    session = window.ws.session
    first = session.record.id
    _slip_autosaved_then_undone(qtbot, window)
    assert not session.editor.mask.any()
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: session.record.id != first)
    assert session.flush() == {}
    assert _status(folder, first) == ("new", None)
    qtbot.waitUntil(lambda: window.ws.image_list.model.record(0).status == "new")


def test_a_slip_on_a_prediction_undone_leaves_it_predicted_and_r_still_approves_it(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=100)
    session = window.ws.session
    image_id, prediction = session.record.id, session.prediction.copy()
    _slip_autosaved_then_undone(qtbot, window)
    assert session.save()
    session.writer.wait()
    assert _status(folder, image_id) == ("predicted", None)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    status, corrected = _status(folder, image_id)
    assert status == "reviewed" and np.array_equal(corrected, prediction)


def test_undoing_part_of_the_work_still_saves_the_rest(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=1, predicted=False)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=100)
    session, canvas = window.ws.session, window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_4)
    drag(canvas, [viewport_point(canvas, 10.5, 30.5), viewport_point(canvas, 60.5, 30.5)])
    _slip_autosaved_then_undone(qtbot, window)
    assert session.flush() == {}
    status, corrected = _status(folder, session.record.id)
    assert status == "corrected" and np.array_equal(corrected, session.editor.mask) and corrected.any()
