"""The import dialog, driven through its widgets: check, import, refusal and cancel, and the window showing the
imported masks afterwards."""

import threading

import numpy as np
import pytest
from faceparse.app.gui.import_dialog import ImportDialog
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window

COUNT = 3


@pytest.fixture
def dataset(tmp_path):
    """An index-png export of corrected masks (each its prediction with a painted block), and those masks."""
    source = make_project(tmp_path / "source", count=COUNT)
    masks = {}
    with ProjectStore.open(source) as store:
        for i, record in enumerate(store.images()):
            mask = store.predicted_mask(record.id).copy()
            mask[10 + i:40, 20:60] = 5
            store.save_corrected(record.id, mask)
            masks[record.relpath] = mask
        export_dataset(store, tmp_path / "dataset", "index-png", only="corrected", split="1,0,0")
    return tmp_path / "dataset", masks


def open_dialog(qtbot, window: MainWindow, source, fmt: str = "index-png") -> ImportDialog:
    window.actions["import_labels"].trigger()
    dialog = window.findChild(ImportDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.source.setText(str(source))
    dialog.format.setCurrentIndex(dialog.format.findData(fmt))
    return dialog


def click(qtbot, dialog: ImportDialog, button) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert dialog.running
    qtbot.waitUntil(lambda: not dialog.running, timeout=20_000)


def nothing_corrected(store: ProjectStore) -> bool:
    return store.count("corrected") == 0 and not any((store.masks_dir / "corrected").iterdir())


def test_the_action_needs_a_project(qtbot, tmp_path):
    window = MainWindow(StudioSettings.at(tmp_path / "studio.ini"))
    qtbot.addWidget(window)
    action = window.actions["import_labels"]
    assert not action.isEnabled()
    assert window.show_import() is None
    assert action.shortcut().toString() == "Ctrl+I"
    assert [a for a in window.actions.values() if a is not action and a.shortcut() == action.shortcut()] == []


def test_check_then_import_shows_the_masks(qtbot, tmp_path, dataset):
    source, masks = dataset
    window = open_window(qtbot, make_project(tmp_path / "target", count=COUNT), tmp_path)
    ws = window.ws
    open_id = ws.session.image_id
    dialog = open_dialog(qtbot, window, source)

    click(qtbot, dialog, dialog.check_button)
    report = dialog.report_view.toPlainText()
    assert f"Would import {COUNT} corrected masks from {source}" in report, report
    assert f"Labels found: {COUNT}" in report
    assert dialog.status.text().startswith("Check passed")
    assert nothing_corrected(ws.store)

    click(qtbot, dialog, dialog.import_button)
    assert dialog.status.text() == f"Imported {COUNT} corrected masks.", dialog.status.text()
    assert f"Imported: {COUNT}" in dialog.report_view.toPlainText()
    for record in ws.store.images():
        assert record.status == "corrected"
        assert np.array_equal(ws.store.corrected_mask(record.id), masks[record.relpath])
    assert ws.session.image_id == open_id
    assert np.array_equal(ws.session.editor.mask, masks[ws.session.record.relpath])
    assert ws.image_list.model.record(0).status == "corrected"

    click(qtbot, dialog, dialog.check_button)
    assert f"Already identical: {COUNT}" in dialog.report_view.toPlainText()


@pytest.mark.parametrize("case", ["missing folder", "wrong format"])
def test_a_refused_import_shows_its_problems_and_saves_nothing(qtbot, tmp_path, dataset, case):
    source, _ = dataset
    target = make_project(tmp_path / "target", count=COUNT)
    window = open_window(qtbot, target, tmp_path)
    ws = window.ws
    shown = ws.session.editor.mask.copy()
    if case == "missing folder":
        dialog, expected = open_dialog(qtbot, window, tmp_path / "nowhere"), "does not exist"
    else:
        dialog, expected = open_dialog(qtbot, window, source, "lapa"), "no LaPa"

    click(qtbot, dialog, dialog.check_button)
    assert "an import would be refused" in dialog.status.text()
    assert dialog.report_view.toPlainText().startswith("An import from")
    click(qtbot, dialog, dialog.import_button)
    assert dialog.status.text().startswith("Refused: "), dialog.status.text()
    assert "Nothing was imported" in dialog.status.text()
    text = dialog.report_view.toPlainText()
    assert text.startswith("Nothing was imported from")
    assert dialog.report.problems and expected in text, text
    for problem in dialog.report.problems:
        assert problem in text
    assert nothing_corrected(ws.store)
    assert {r.status for r in ws.store.images()} == {"predicted"}
    assert np.array_equal(ws.session.editor.mask, shown)


def test_cancel_before_the_check_ends_imports_nothing(qtbot, tmp_path, dataset):
    """Both worker threads are held busy so the import is still waiting when Cancel is clicked."""
    source, _ = dataset
    window = open_window(qtbot, make_project(tmp_path / "target", count=COUNT), tmp_path)
    dialog = open_dialog(qtbot, window, source)
    gate = threading.Event()
    holders = [window.jobs.start(lambda _r, _c: gate.wait(30)) for _ in range(window.jobs.pool.maxThreadCount())]
    try:
        QTest.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
        assert dialog.running and dialog.close_button.text() == "Cancel import"
        assert not dialog.import_button.isEnabled() and not dialog.source.isEnabled()
        QTest.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
        assert dialog.isVisible()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not dialog.running and all(h.done.is_set() for h in holders), timeout=20_000)
    assert dialog.status.text() == "Import cancelled; nothing was imported."
    assert dialog.close_button.text() == "Close" and dialog.import_button.isEnabled()
    assert nothing_corrected(window.ws.store)

    click(qtbot, dialog, dialog.import_button)
    assert dialog.status.text() == f"Imported {COUNT} corrected masks."


def test_enter_checks_and_imports_nothing(qtbot, tmp_path, dataset):
    source, _ = dataset
    window = open_window(qtbot, make_project(tmp_path / "target", count=COUNT), tmp_path)
    dialog = open_dialog(qtbot, window, source)
    QTest.keyClick(dialog.source, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Check passed" in dialog.status.text(), timeout=20_000)
    assert dialog.isVisible()
    assert nothing_corrected(window.ws.store)


def test_browsing_to_one_split_of_a_coco_export_takes_the_whole_export(qtbot, tmp_path, monkeypatch):
    from faceparse.app.gui import import_dialog

    source = make_project(tmp_path / "source", count=COUNT)
    with ProjectStore.open(source) as store:
        for record in store.images():
            store.save_corrected(record.id, store.predicted_mask(record.id))
        export_dataset(store, tmp_path / "coco", "coco", only="corrected", split="0.34,0.33,0.33")
    other = tmp_path / "other.json"
    other.write_text("{}")
    window = open_window(qtbot, make_project(tmp_path / "faces", count=COUNT), tmp_path)
    dialog = open_dialog(qtbot, window, "", fmt="coco")
    for chosen, expected in ((tmp_path / "coco" / "annotations" / "instances_val.json", tmp_path / "coco"),
                             (other, other)):
        monkeypatch.setattr(import_dialog.QFileDialog, "getOpenFileName", lambda *_a, c=chosen, **_k: (str(c), ""))
        dialog._browse()
        assert dialog.source.text() == str(expected)


def test_a_long_problem_wraps_so_its_reason_is_in_view(qtbot, tmp_path, dataset):
    source, _ = dataset
    target = make_project(tmp_path / "target", count=COUNT)
    with ProjectStore.open(target) as store:
        first = store.images()[0]
        store.save_corrected(first.id, np.zeros_like(store.predicted_mask(first.id)))
    window = open_window(qtbot, target, tmp_path)
    dialog = open_dialog(qtbot, window, source)
    dialog.resize(520, 420)
    click(qtbot, dialog, dialog.check_button)
    text = dialog.report_view.toPlainText()
    assert "Replace corrected masks that differ" in text and "--overwrite" in text
    qtbot.waitUntil(lambda: dialog.report_view.horizontalScrollBar().maximum() == 0)
