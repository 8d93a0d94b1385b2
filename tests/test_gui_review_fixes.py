"""What the studio shows stays consistent with what the keys act on: a prediction that arrives mid-edit, accepting a
prediction, an image that cannot be opened, and the brush-size keys."""

import threading

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point


def test_smaller_brush_key_reaches_one_pixel(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path)
    window.brush_spin.setValue(4)
    sizes = []
    for _ in range(4):
        QTest.keyClick(window.ws.canvas, Qt.Key.Key_BracketLeft)
        sizes.append(window.brush_spin.value())
    assert sizes == [3, 2, 1, 1] and window.ws.canvas.brush_size == 1


def test_accepting_the_prediction_unticks_show_prediction(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2), tmp_path)
    canvas, toggle = window.ws.canvas, window.actions["toggle_prediction"]
    QTest.keyClick(canvas, Qt.Key.Key_T)
    assert toggle.isChecked() and canvas.showing_prediction
    window.actions["accept_prediction"].trigger()
    assert not toggle.isChecked() and not canvas.showing_prediction
    QTest.keyClick(canvas, Qt.Key.Key_T)
    assert toggle.isChecked() and canvas.showing_prediction


def _prediction_arrives(ws, value):
    record = ws.session.record
    prediction = np.full(ws.session.editor.mask.shape, value, np.uint8)
    ws.store.save_predicted(record.id, prediction, "v0001", uncertainty=0.1)
    ws.models.image_predicted.emit(ws.store.get(record.id))
    return prediction


def test_a_prediction_arriving_mid_polygon_keeps_the_corners(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, predicted=False), tmp_path)
    ws = window.ws
    window.actions["tool_polygon"].trigger()
    for x, y in [(20.5, 20.5), (90.5, 20.5), (90.5, 90.5)]:
        QTest.mouseClick(ws.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         viewport_point(ws.canvas, x, y))
    _prediction_arrives(ws, 1)
    assert len(ws.canvas.tool.points) == 3
    assert ws.session.prediction is not None and (ws.session.prediction == 1).all()


def test_a_prediction_arriving_mid_stroke_keeps_the_stroke(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, predicted=False), tmp_path)
    ws = window.ws
    canvas, viewport = ws.canvas, ws.canvas.viewport()
    QTest.keyClick(canvas, Qt.Key.Key_3)
    before = ws.session.editor.mask.copy()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     viewport_point(canvas, 60, 60))
    QTest.mouseMove(viewport, viewport_point(canvas, 70, 60))
    _prediction_arrives(ws, 2)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       viewport_point(canvas, 70, 60))
    mask = ws.session.editor.mask
    assert (mask[60, 60:71] == 3).all()
    assert np.array_equal(mask[mask != 3], before[mask != 3])  # the rest is the mask the stroke began on
    assert ws.session.undo_stack.count() == 1 and window.isWindowModified()


def test_an_image_that_cannot_open_is_shown_as_nothing_and_next_moves_on(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3)
    with ProjectStore.open(folder) as store:
        ids = [r.id for r in store.images()]
        store.mask_path("corrected", ids[1]).parent.mkdir(parents=True, exist_ok=True)
        store.mask_path("corrected", ids[1]).write_bytes(b"not a png")
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    errors = []
    ws.session.error.connect(errors.append)
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    assert errors and ws.session.record is None and ws.image_list.current_id() == ids[1]
    assert window.windowTitle().split(" — ")[0].endswith("(cannot be opened)[*]")  # never shown as open
    assert window.position_label.text().startswith("2 / ")
    QTest.keyClick(ws.canvas, Qt.Key.Key_R)
    ws.session.writer.wait()
    with ProjectStore.open(folder) as store:
        assert store.get(ids[0]).status == "predicted"
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: ws.session.image_id == ids[2])


def test_a_prediction_arriving_while_the_edit_is_being_saved_keeps_the_edit(qtbot, tmp_path, monkeypatch):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, predicted=False), tmp_path)
    ws = window.ws
    release = threading.Event()
    real_save = ws.store.save_corrected

    def slow_save(*args, **kwargs):
        release.wait(30)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ws.store, "save_corrected", slow_save)
    QTest.keyClick(ws.canvas, Qt.Key.Key_3)
    drag(ws.canvas, [viewport_point(ws.canvas, x, 30.5) for x in (10.5, 60.5)])
    painted = ws.session.editor.mask.copy()
    ws.session.save()  # queued; the write is still running
    _prediction_arrives(ws, 2)
    release.set()
    ws.session.writer.wait()
    assert np.array_equal(ws.session.editor.mask, painted)
    with ProjectStore.open(ws.store.root) as store:
        assert np.array_equal(store.corrected_mask(ws.session.image_id), painted)


def test_a_photo_replaced_by_one_of_the_same_size_is_flagged_until_reviewed_again(qtbot, tmp_path):
    import os

    from faceparse.app.gui.image_list import RECORD_ROLE, badge_for
    from PIL import Image

    folder = make_project(tmp_path / "faces", count=2)
    with ProjectStore.open(folder) as store:
        first = store.images()[0]
        store.set_status(first.id, "reviewed")
        path = store.root / first.relpath
    with Image.open(path) as photo:
        pixels = np.asarray(photo.convert("RGB")).copy()
    pixels[:40] = 255 - pixels[:40]
    Image.fromarray(pixels).save(path)
    later = first.mtime_ns + 3_000_000_000
    os.utime(path, ns=(later, later))

    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    assert ws.session.record.id == first.id

    def badge():
        return badge_for(ws.image_list.model.index(0).data(RECORD_ROLE))[0]

    qtbot.waitUntil(lambda: badge() == "photo changed", timeout=10_000)
    qtbot.waitUntil(lambda: "changed after" in window.statusBar().currentMessage(), timeout=10_000)
    assert "photo changed after" in ws.image_list.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    QTest.keyClick(ws.canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: not ws.store.get(first.id).photo_changed, timeout=10_000)
    qtbot.waitUntil(lambda: badge() == "reviewed", timeout=10_000)


def test_keep_masks_of_changed_photos_clears_every_warning_that_fits_after_asking(qtbot, tmp_path, monkeypatch):
    import os

    from faceparse.app.gui import main_window as main_window_module
    from faceparse.app.gui.image_list import RECORD_ROLE, badge_for
    from PIL import Image
    from PySide6.QtWidgets import QMessageBox

    folder = make_project(tmp_path / "faces", count=3)
    with ProjectStore.open(folder) as store:
        records = store.images()
        for rec in records:
            store.set_status(rec.id, "reviewed")
    for rec, size in zip(records, (None, (64, 64), (30, 20)), strict=True):
        path = folder / rec.relpath
        with Image.open(path) as photo:
            photo = photo.convert("RGB")
            (photo.resize(size) if size else photo.point(lambda v: 255 - v)).save(path)
        os.utime(path, ns=(rec.mtime_ns + 3_000_000_000,) * 2)

    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    model = ws.image_list.model

    def badges():
        return [badge_for(model.index(row).data(RECORD_ROLE))[0] for row in range(model.rowCount())]

    qtbot.waitUntil(lambda: badges() == ["photo changed"] * 3, timeout=10_000)
    panel = ws.image_list
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("attention"))
    assert model.rowCount() == 3
    panel.status_filter.setCurrentIndex(panel.status_filter.findData(None))
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)  # the resized photo: its mask is the old size, so it cannot open
    assert ws.session.record is None and "128x128 but the image is 64x64" in ws.canvas.notice
    asked = []
    answer = [QMessageBox.StandardButton.No]
    monkeypatch.setattr(main_window_module.QMessageBox, "question",
                        staticmethod(lambda *args, **kwargs: asked.append(args[2]) or answer[0]))
    window.actions["keep_changed_masks"].trigger()
    assert "3 photo(s) changed" in asked[0] and len(ws.store.changed_photos()) == 3
    answer[0] = QMessageBox.StandardButton.Yes
    window.actions["keep_changed_masks"].trigger()
    qtbot.waitUntil(lambda: "Kept the masks" in window.statusBar().currentMessage(), timeout=10_000)
    assert [r.id for r in ws.store.changed_photos()] == [records[2].id]
    assert badges() == ["reviewed", "reviewed", "photo changed"]
    message = window.statusBar().currentMessage()
    assert "Kept the masks of 2 changed photo(s) as checked (1 scaled to the photo's new size)" in message
    assert f"1 not kept ({records[2].name}: the photo is now 30x20 but its mask is 128x128, another shape" in message
    window._details_filled(ws)  # the check of every file, finishing after the keep, leaves its summary on show
    assert window.statusBar().currentMessage() == message
    assert ws.store.corrected_mask(records[1].id).shape == (64, 64)
    assert ws.store.get(records[1].id).effort == 0  # still the prediction approved as it was, only smaller
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("attention"))
    assert model.rowCount() == 1 and model.record(0).id == records[2].id
    panel.status_filter.setCurrentIndex(panel.status_filter.findData(None))
    assert ws.session.record.id == records[1].id and ws.session.editor.mask.shape == (64, 64)  # opened now
    assert not ws.session.record.photo_changed and ws.canvas.notice == ""


def test_a_prediction_made_before_the_photo_changed_size_is_set_aside_and_the_photo_opens(qtbot, tmp_path):
    from PIL import Image

    folder = make_project(tmp_path / "faces", count=2, size=64)
    with ProjectStore.open(folder) as store:
        second = store.images()[1]
    with Image.open(folder / second.relpath) as photo:
        photo.convert("RGB").resize((40, 40)).save(folder / second.relpath)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    assert ws.session.record is not None and ws.session.record.id == second.id
    assert ws.session.editor.mask.shape == (40, 40) and not ws.session.editor.mask.any()
    assert ws.session.prediction is None
    assert "old prediction was set aside" in window.statusBar().currentMessage()
    with ProjectStore.open(folder) as store:
        assert store.predicted_mask(second.id).shape == (64, 64)  # nothing deleted: a pre-label run replaces it


def test_u_takes_back_a_review_made_by_shift_r_after_the_studio_moved_on(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64)
    with ProjectStore.open(folder) as store:
        last = store.images()[2].id
        store.set_status(last, "reviewed")  # reviewed when the project was open before: no step in any history
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    first = ws.session.record.id
    QTest.keyClick(ws.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().endswith(" marked reviewed"), timeout=10_000)
    assert ws.store.get(first).status == "reviewed" and ws.session.record.id != first
    QTest.keyClick(ws.canvas, Qt.Key.Key_U)
    assert "is not marked reviewed" in window.statusBar().currentMessage()
    QTest.keyClick(ws.canvas, Qt.Key.Key_A)
    assert ws.session.record.id == first and ws.session.undo_stack.top_is_review()  # it came back with the image
    QTest.keyClick(ws.canvas, Qt.Key.Key_U)  # the approval of an untouched prediction taken back: predicted again
    qtbot.waitUntil(lambda: ws.store.get(first).status == "predicted", timeout=10_000)
    assert "no longer marked reviewed" in window.statusBar().currentMessage()
    assert not ws.store.mask_path("corrected", first).exists()
    drag(ws.canvas, [viewport_point(ws.canvas, 5.5, 5.5), viewport_point(ws.canvas, 30.5, 5.5)])
    QTest.keyClick(ws.canvas, Qt.Key.Key_R)  # R and U in one visit, after an edit: U is a step of its own
    qtbot.waitUntil(lambda: ws.store.get(first).status == "reviewed", timeout=10_000)
    QTest.keyClick(ws.canvas, Qt.Key.Key_U)
    qtbot.waitUntil(lambda: ws.store.get(first).status == "corrected", timeout=10_000)
    assert ws.session.undo_stack.top_is_unreview() and not ws.session.undo_stack.canRedo()
    stroke = ws.session.editor.mask.copy()
    ws.session.undo()  # Ctrl+Z after U approves again and keeps the stroke
    qtbot.waitUntil(lambda: ws.store.get(first).status == "reviewed", timeout=10_000)
    assert np.array_equal(ws.session.editor.mask, stroke)
    ws.session.undo()  # and once more takes the review back
    qtbot.waitUntil(lambda: ws.store.get(first).status == "corrected", timeout=10_000)
    assert np.array_equal(ws.session.editor.mask, stroke)

    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: ws.session.image_id == last, timeout=10_000)
    assert not ws.session.undo_stack.canUndo()
    QTest.keyClick(ws.canvas, Qt.Key.Key_U)
    qtbot.waitUntil(lambda: ws.store.get(last).status == "predicted", timeout=10_000)
    assert not ws.store.mask_path("corrected", last).exists()
