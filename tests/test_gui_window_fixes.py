"""The main window driven from the keyboard: retrain right after a correction, moving past photos that cannot be
opened, where the keys are after a project opens, error badges, late job results after closing, keypad Enter and
exporting when a save failed."""

from contextlib import contextmanager

import numpy as np
from faceparse.app.gui.image_list import badge_for
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox
from test_gui_helpers import drag, install_model, make_project, open_window, viewport_point
from test_gui_unsaved import answer_unsaved


def _paint(canvas, label_key=Qt.Key.Key_5) -> None:
    QTest.keyClick(canvas, label_key)
    drag(canvas, [viewport_point(canvas, x, 10.5) for x in (10.5, 40.5)])


def _fake_retrain(panel) -> list:
    """Retrain configs the panel asked to start; nothing is trained."""
    started: list = []
    panel.retrain.start = lambda config: started.append(config) or 1
    return started


@contextmanager
def _disk_full(store):
    """Saving masks fails inside; afterwards it works again, so closing the window at teardown does not stop to
    ask about unsaved masks."""
    real = store.save_corrected

    def fail(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    store.save_corrected = fail
    try:
        yield
    finally:
        store.save_corrected = real


def _photo_folder(folder, names: dict[str, bytes | None]):
    """A project of 64 px random photos (None) and files with the given bytes."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, data in names.items():
        if data is None:
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(folder / name)
        else:
            (folder / name).write_bytes(data)
    ProjectStore.create(folder, "celebamask-hq").close()
    return folder


def _on_screen(widget) -> bool:
    """Shown, not just visible: a dock tab behind another is "visible" but has nothing on screen."""
    return not widget.visibleRegion().isEmpty()


def _visible_boxes() -> list:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


# --- 1. retrain -----------------------------------------------------------------------------------------------


def test_ctrl_t_right_after_the_first_correction_trains_on_it(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=3, size=64, predicted=False), tmp_path)
    ws = window.ws
    started = _fake_retrain(ws.models)
    assert not _on_screen(ws.models)  # the Models tab is behind Classes
    _paint(ws.canvas)
    QTest.keyClick(ws.canvas, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert started, ws.models.retrain_phase.text()
    qtbot.waitUntil(lambda: _on_screen(ws.models))


def test_ctrl_t_says_why_it_does_not_train_when_the_correction_cannot_be_saved(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64, predicted=False), tmp_path)
    ws = window.ws
    started = _fake_retrain(ws.models)
    _paint(ws.canvas)
    with _disk_full(ws.store):
        QTest.keyClick(ws.canvas, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert not started
    assert "could not be saved" in ws.models.retrain_phase.text()
    assert "the disk is full" in ws.models.retrain_phase.text()
    qtbot.waitUntil(lambda: _on_screen(ws.models))


# --- 2 and 5. photos that cannot be opened -----------------------------------------------------------------------


def test_d_moves_on_when_the_first_photo_cannot_be_opened(qtbot, tmp_path):
    folder = _photo_folder(tmp_path / "f", {"a_broken.jpg": b"\xff\xd8\xff\xe0garbage", "b.png": None, "c.png": None})
    window = open_window_on_broken(qtbot, folder, tmp_path)
    ws = window.ws
    for name in ("previous_image", "next_image", "next_unreviewed"):
        assert window.actions[name].isEnabled(), name
    assert not window.actions["undo"].isEnabled()
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    assert ws.session.record is not None and ws.session.record.name == "b.png"


def open_window_on_broken(qtbot, folder, tmp_path):
    """The window on a project whose first photo cannot be opened (so no image ever loads at start)."""
    window = open_window(qtbot, folder, tmp_path, image_opens=False)
    assert window.ws.session.record is None
    return window


def test_d_twice_steps_over_an_undecodable_photo_without_a_box_taking_the_keys(qtbot, tmp_path):
    folder = _photo_folder(tmp_path / "f", {"a.png": None, "b_broken.jpg": b"\xff\xd8\xff\xe0 not really",
                                            "c.png": None})
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    for _ in range(2):
        QTest.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_D)
        qtbot.wait(50)
        assert QApplication.activeWindow() is window and not _visible_boxes()
    assert ws.session.record is not None and ws.session.record.name == "c.png"


# --- 3. focus after opening -------------------------------------------------------------------------------------


def test_space_drag_right_after_opening_pans_instead_of_painting(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    canvas, session = window.ws.canvas, window.ws.session
    assert QApplication.focusWidget() is canvas
    pos = QPointF(canvas.viewport().rect().center())
    for _ in range(3):
        QApplication.sendEvent(canvas.viewport(), QWheelEvent(
            pos, QPointF(canvas.viewport().mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
    before = session.editor.mask.copy()
    QTest.keyPress(QApplication.focusWidget(), Qt.Key.Key_Space)
    middle = canvas.viewport().rect().center()
    drag(canvas, [middle, middle + QPoint(60, 0), middle + QPoint(120, 0)])
    QTest.keyRelease(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert np.array_equal(session.editor.mask, before) and not session.modified


# --- 4. error badges --------------------------------------------------------------------------------------------


def test_broken_photos_get_their_error_badge_in_the_first_session(qtbot, tmp_path):
    folder = _photo_folder(tmp_path / "f", {"a_ok.png": None, "b_empty.jpg": b"", "c_text.png": b"not an image"})
    window = open_window(qtbot, folder, tmp_path)
    model = window.ws.image_list.model

    def badges():
        return [badge_for(model.record(row))[0] for row in range(model.rowCount())]

    qtbot.waitUntil(lambda: badges()[1:] == ["error", "error"], timeout=10_000)
    assert window.ws.session.record.name == "a_ok.png"


# --- 6. late results after closing --------------------------------------------------------------------------------


def _project_with_a_model(tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    install_model(folder)
    return folder


def test_closing_while_this_image_is_pre_labelled(qtbot, tmp_path):
    window = open_window(qtbot, _project_with_a_model(tmp_path), tmp_path)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    window.close()
    qtbot.wait(200)
    assert window.ws is None


def test_closing_while_all_images_are_pre_labelled(qtbot, tmp_path, monkeypatch):
    window = open_window(qtbot, _project_with_a_model(tmp_path), tmp_path)
    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: True)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_L,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    window.close()
    qtbot.wait(200)
    assert window.ws is None


def test_closing_while_a_model_is_activated(qtbot, tmp_path):
    window = open_window(qtbot, _project_with_a_model(tmp_path), tmp_path)
    panel = window.ws.models
    panel.roll_back()
    window.close()
    qtbot.wait(200)
    assert window.ws is None and panel._closed


# --- 7. keypad Enter ------------------------------------------------------------------------------------------


def test_ctrl_keypad_enter_accepts_the_prediction(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    fired = []
    window.actions["accept_prediction"].triggered.connect(lambda: fired.append(True))
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_Enter,
                   Qt.KeyboardModifier.KeypadModifier | Qt.KeyboardModifier.ControlModifier)
    assert fired


# --- 8. export after a failed save ------------------------------------------------------------------------------


def test_export_asks_when_a_correction_could_not_be_saved(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    _paint(window.ws.canvas)
    with _disk_full(window.ws.store):
        cancelled = answer_unsaved(QMessageBox.StandardButton.Cancel)
        refused = window.show_export()
        exported_anyway = answer_unsaved(QMessageBox.StandardButton.Ignore)
        dialog = window.show_export()
    if dialog is not None:
        dialog.reject()
    if refused is not None:
        refused.reject()
    assert refused is None and cancelled and "the disk is full" in cancelled[0]
    assert dialog is not None and exported_anyway


def test_the_position_follows_the_list_as_it_is_filtered(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=5)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    panel = ws.image_list
    for _ in range(2):
        QTest.keyClick(ws.canvas, Qt.Key.Key_R)
        QTest.keyClick(ws.canvas, Qt.Key.Key_D)
        qtbot.wait(50)
    ws.session.writer.wait()
    qtbot.waitUntil(lambda: ws.session.record is not None and ws.session.record.status == "predicted")
    assert window.position_label.text() == "3 / 5"
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("predicted"))
    qtbot.waitUntil(lambda: window.position_label.text() == "1 / 3", timeout=5_000)
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("reviewed"))
    qtbot.waitUntil(lambda: window.position_label.text() == "– / 2", timeout=5_000)
