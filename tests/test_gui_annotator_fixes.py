"""An annotator's approval and keys stay theirs: a reviewed prediction survives pre-labeling again, and a slip that
was autosaved and then undone leaves the image as it was."""

import shutil
import threading

import numpy as np
import shiboken6
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
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


def test_an_image_opened_while_the_scan_runs_stays_open_when_the_scan_lands(qtbot, tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=4)
    with ProjectStore.open(folder) as store:
        ids = [r.id for r in store.images()]
        store.set_setting("studio.last_image", ids[2])
    scan_may_end = threading.Event()
    real_scan = ProjectStore.scan

    def slow_scan(self, *args, **kwargs):
        scan_may_end.wait(10)
        return real_scan(self, *args, **kwargs)

    monkeypatch.setattr(ProjectStore, "scan", slow_scan)
    window = MainWindow(StudioSettings.at(tmp_path / "studio.ini"), autosave_ms=60_000)
    qtbot.addWidget(window)
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    assert window.open_folder(folder)
    ws = window.ws
    view = ws.image_list.view
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     view.visualRect(ws.image_list.model.index(0)).center())
    qtbot.waitUntil(lambda: ws.session.image_id == ids[0])
    canvas = ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_4)
    QTest.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     viewport_point(canvas, 10.5, 10.5))
    QTest.mouseMove(canvas.viewport(), viewport_point(canvas, 40.5, 10.5))
    scan_may_end.set()
    qtbot.waitUntil(lambda: window._details_task is not None, timeout=10_000)
    QTest.mouseMove(canvas.viewport(), viewport_point(canvas, 80.5, 10.5))
    QTest.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       viewport_point(canvas, 80.5, 10.5))
    assert ws.session.image_id == ids[0]
    assert ws.image_list.model.record(ws.image_list.view.currentIndex().row()).id == ids[0]
    assert ws.session.flush() == {}
    _, corrected = _status(folder, ids[0])
    assert (corrected[10, 12:78] == 4).all()


def test_a_photo_or_folder_inside_a_project_opens_that_project(qtbot, tmp_path):
    folder = tmp_path / "faces"
    make_project(folder / "batch1", count=2)
    shutil.rmtree(folder / "batch1" / ".faceparse")
    with ProjectStore.create(folder) as store:
        store.scan()
        photo = store.root / store.images()[1].relpath
    window = open_window(qtbot, photo, tmp_path)
    assert window.ws.store.root == folder.resolve()
    assert window.ws.session.record.relpath == "batch1/" + photo.name
    assert window.open_folder(folder / "batch1")
    qtbot.waitUntil(lambda: window.ws.session.record is not None)
    assert window.ws.store.root == folder.resolve()
    assert not ProjectStore.is_project(folder / "batch1")


def test_an_export_the_user_can_fix_says_why_without_a_traceback(qtbot, tmp_path, capfd):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, corrected=True), tmp_path)
    dialog = window.show_export()
    dialog.split.setText("1,0,0")
    dialog.destination.setText(str(window.ws.store.root / "inside"))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "failed" in dialog.status.text(), timeout=20_000)
    assert "Traceback" not in capfd.readouterr().err


def test_undo_while_the_prediction_is_shown_brings_back_the_working_mask_it_changes(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    before = session.editor.mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_4)
    drag(canvas, [viewport_point(canvas, 10.5, 10.5), viewport_point(canvas, 100.5, 10.5)])
    QTest.keyClick(canvas, Qt.Key.Key_T)
    assert canvas.showing_prediction and window.actions["toggle_prediction"].isChecked()
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.showing_prediction and not window.actions["toggle_prediction"].isChecked()
    assert canvas.overlay.source is session.editor.mask
    assert np.array_equal(session.editor.mask, before)
    QTest.keyClick(canvas, Qt.Key.Key_T)
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not canvas.showing_prediction
    assert (session.editor.mask[10, 20:90] == 4).all()


def test_a_dab_or_another_key_between_two_digits_ends_the_two_digit_class(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, predicted=False), tmp_path)
    palette, canvas = window.ws.palette, window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_1)
    drag(canvas, [viewport_point(canvas, 10.5, 10.5), viewport_point(canvas, 30.5, 10.5)])
    QTest.keyClick(canvas, Qt.Key.Key_2)
    assert palette.current == 2
    QTest.keyClick(canvas, Qt.Key.Key_1)
    QTest.keyClick(canvas, Qt.Key.Key_D)
    QTest.keyClick(canvas, Qt.Key.Key_3)
    assert palette.current == 3
    QTest.keyClick(canvas, Qt.Key.Key_1)
    QTest.keyClick(canvas, Qt.Key.Key_4)
    assert palette.current == 14


def test_n_stops_at_a_reviewed_image_whose_photo_changed(qtbot, tmp_path):
    from PIL import Image

    folder = make_project(tmp_path / "faces", count=3)
    with ProjectStore.open(folder) as store:
        store.fill_details()
        ids = [r.id for r in store.images()]
        for image_id in ids[:2]:
            store.set_status(image_id, "reviewed")
        path = store.root / store.get(ids[1]).relpath
    pixels = np.asarray(Image.open(path)).copy()
    pixels[:10] = 255
    Image.fromarray(pixels).save(path)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    qtbot.waitUntil(lambda: ws.image_list.model.record(1).photo_changed, timeout=10_000)
    ws.image_list.select_row(0)
    qtbot.waitUntil(lambda: ws.session.image_id == ids[0])
    QTest.keyClick(ws.canvas, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: ws.session.image_id == ids[1])


def test_a_save_that_keeps_failing_shows_one_warning_that_counts(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication, QMessageBox

    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path, autosave_ms=60_000)
    session, canvas = window.ws.session, window.ws.canvas

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(window.ws.store, "save_corrected", disk_full)
    for k in range(4):
        drag(canvas, [viewport_point(canvas, 10.5, 10.5 + 8 * k), viewport_point(canvas, 60.5, 10.5 + 8 * k)])
        session.save()
        session.writer.wait()
        qtbot.wait(20)
    boxes = [b for b in QApplication.topLevelWidgets() if isinstance(b, QMessageBox) and b.isVisible()]
    assert len(boxes) == 1
    assert "the disk is full" in boxes[0].text() and "4 times" in boxes[0].text()
    boxes[0].close()
    monkeypatch.undo()
    assert session.flush() == {}


def test_clicking_the_models_panel_leaves_the_keys_with_the_canvas(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    folder = make_project(tmp_path / "faces", count=3, predicted=False)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    window.models_dock.show()
    window.models_dock.raise_()
    ws.canvas.setFocus()
    epochs = ws.models.epochs.value()
    QTest.mouseClick(ws.models.prelabel_one_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ws.models.prelabel_task is None, timeout=60_000)
    assert QApplication.focusWidget() is ws.canvas
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_5)
    assert ws.palette.current == 5 and ws.models.epochs.value() == epochs
    tta = ws.models.tta.isChecked()
    QTest.mouseClick(ws.models.tta, Qt.MouseButton.LeftButton)
    assert ws.models.tta.isChecked() != tta and QApplication.focusWidget() is ws.canvas
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert ws.models.tta.isChecked() != tta


def test_the_retrain_verdict_says_not_promoted_once():
    from faceparse.app.gui.models_panel import ModelsPanel

    text = ModelsPanel.describe_result({"version": "v0002", "metric": "miou", "score": 0.5, "promoted": False,
                                        "baseline_version": "v0001", "baseline_score": 0.6,
                                        "reason": "not promoted: 0.5000 does not beat 0.6000"})
    assert text.count("not promoted") == 1 and "does not beat" in text


def test_a_finished_export_hides_its_progress_bar(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, corrected=True), tmp_path)
    dialog = window.show_export()
    dialog.split.setText("1,0,0")
    dialog.destination.setText(str(tmp_path / "exported"))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=20_000)
    assert not dialog.progress.isVisible()


def test_this_image_with_no_image_open_says_what_to_do(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=1)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)
    models = window.ws.models
    models.start_prelabel_image(None)
    assert models.prelabel_task is None and "No image is open" in models.prelabel_status.text()


def test_closing_the_project_closes_its_export_and_import_dialogs(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, corrected=True), tmp_path)
    export = window.show_export()
    assert export.isVisible()
    export.split.setText("1,0,0")
    export.destination.setText(str(tmp_path / "exported"))
    QTest.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    assert export.task.done.wait(20)  # its result is on its way to the dialog when the project closes
    assert window.close_project()
    qtbot.wait(100)
    assert not shiboken6.isValid(export) or not export.isVisible()
    imported = window.show_import()
    assert imported is None
