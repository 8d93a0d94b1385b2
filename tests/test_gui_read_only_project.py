"""A project that cannot be written (an archive, a share, read-only media) opens in the studio to be looked at
and exported: every photo and mask shows, nothing is written beside it, and each change is refused with the
reason."""


import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from read_only_helpers import make_read_only
from test_gui_helpers import drag, make_project, open_window, viewport_point

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_only_project(tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=3)
    with ProjectStore.open(folder) as store:
        first = store.images()[0]
        store.save_corrected(first.id, store.predicted_mask(first.id))
    make_read_only(folder, monkeypatch)
    return folder


def test_it_opens_shows_its_masks_and_refuses_every_change_with_the_reason(qtbot, tmp_path, monkeypatch):
    folder = read_only_project(tmp_path, monkeypatch)
    before = files(folder)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    ws = window.ws
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)  # opening takes no scan: no wait on its own
    assert ws.store.read_only
    assert "(read-only)" in window.windowTitle()
    assert window.statusBar().currentMessage().startswith("Read-only project: it can be looked at and exported")
    assert ws.image_list.model.rowCount() == 3
    session = ws.session
    with ProjectStore.open_for_reading(folder) as store:
        assert np.array_equal(session.editor.mask, store.current_mask(session.image_id))
    for name in ("tool_brush", "tool_fill", "import_labels", "save", "prelabel_all_again"):
        assert not window.actions[name].isEnabled(), name
    for name in ("export", "next_image", "toggle_prediction", "zoom_fit"):
        assert window.actions[name].isEnabled(), name
    assert not ws.models.retrain_button.isEnabled() and not ws.models.prelabel_all_button.isEnabled()
    assert "read-only" in ws.models.retrain_phase.text()

    shown = session.editor.mask.copy()
    drag(ws.canvas, [viewport_point(ws.canvas, x, 20.5) for x in (10.5, 70.5)])
    assert np.array_equal(session.editor.mask, shown) and not session.modified
    assert "is read-only here" in window.statusBar().currentMessage()
    refusals: list[str] = []
    session.refused.connect(refusals.append)
    window.statusBar().clearMessage()
    for key, modifier in ((Qt.Key.Key_R, Qt.KeyboardModifier.NoModifier), (Qt.Key.Key_R, SHIFT),
                          (Qt.Key.Key_Return, CTRL), (Qt.Key.Key_L, CTRL)):
        QTest.keyClick(ws.canvas, key, modifier)
        assert "can be looked at and exported but not changed" in window.statusBar().currentMessage(), key
        window.statusBar().clearMessage()
    assert len(refusals) == 3  # R, Shift+R and Ctrl+Enter through the session; Ctrl+L through the Models panel
    assert session.record.status == "corrected"  # as it was: not reviewed
    QTest.keyClick(ws.canvas, Qt.Key.Key_T, CTRL)
    assert "Not available: the project in" in ws.models.retrain_phase.text()

    first = session.image_id
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: session.image_id != first)
    qtbot.wait(200)  # an autosave would have run by now
    assert window.close_project(asked=True)
    window.writer.wait()
    assert files(folder) == before


def test_its_masks_export_from_the_dialog(qtbot, tmp_path, monkeypatch):
    folder = read_only_project(tmp_path, monkeypatch)
    before = files(folder)
    window = open_window(qtbot, folder, tmp_path)
    dialog = window.show_export()
    dialog.format.setCurrentIndex(dialog.format.findData("index-png"))
    dialog.split.setText("1,0,0")
    dialog.destination.setText(str(tmp_path / "exported"))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None or "failed" in dialog.status.text(), timeout=20_000)
    assert dialog.result is not None, dialog.status.text()
    assert dialog.result.count == 1
    assert len(list((tmp_path / "exported" / "masks" / "train").iterdir())) == 1
    dialog.close()
    assert window.close_project(asked=True)
    assert files(folder) == before
