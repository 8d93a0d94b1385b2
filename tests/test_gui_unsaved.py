"""Closing the studio when the last save fails: the user is asked, and the corrections are not lost."""

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox
from test_gui_helpers import drag, make_project, open_window, viewport_point


def answer_unsaved(button: QMessageBox.StandardButton, before=None) -> list[str]:
    """Click `button` in the unsaved-masks dialog once it is up; returns the dialog's text when it was seen."""
    seen: list[str] = []

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or box.objectName() != "unsaved_masks":
            QTimer.singleShot(10, click)
            return
        seen.append(box.text())
        if before is not None:
            before()
        box.button(button).click()

    QTimer.singleShot(0, click)
    return seen


def paint_and_break_saving(qtbot, tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    QTest.keyClick(ws.canvas, Qt.Key.Key_3)
    drag(ws.canvas, [viewport_point(ws.canvas, x, 20.5) for x in (10.5, 70.5)])
    painted = ws.session.editor.mask.copy()
    image_id = ws.session.image_id
    real_save = ws.store.save_corrected

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ws.store, "save_corrected", disk_full)
    return folder, window, image_id, painted, lambda: monkeypatch.setattr(ws.store, "save_corrected", real_save)


def test_failed_final_save_keeps_the_window_open_and_retry_saves_the_mask(qtbot, tmp_path, monkeypatch):
    folder, window, image_id, painted, repair = paint_and_break_saving(qtbot, tmp_path, monkeypatch)
    seen = answer_unsaved(QMessageBox.StandardButton.Cancel)
    window.close()
    assert seen and "the disk is full" in seen[0]
    assert window.isVisible() and window.ws is not None
    assert np.array_equal(window.ws.session.editor.mask, painted)
    QApplication.processEvents()
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]

    seen = answer_unsaved(QMessageBox.StandardButton.Retry, before=repair)
    window.close()
    assert seen and not window.isVisible() and window.ws is None
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(image_id), painted)


def test_discard_closes_without_the_unsaved_mask(qtbot, tmp_path, monkeypatch):
    folder, window, image_id, _, _ = paint_and_break_saving(qtbot, tmp_path, monkeypatch)
    seen = answer_unsaved(QMessageBox.StandardButton.Discard)
    window.close()
    assert seen and not window.isVisible() and window.ws is None
    with ProjectStore.open(folder) as store:
        assert store.corrected_mask(image_id) is None
