"""The export and import dialogs remember a project's last choices (not the risky ones), keep a typed dataset name
when browsing, and take a relative path from the folder beside the project."""

from pathlib import Path

from faceparse.app.gui.import_dialog import ImportDialog
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def test_export_choices_are_remembered_and_a_relative_destination_lands_beside_the_project(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    store = window.ws.store
    store.save_corrected(store.images()[0].id, store.predicted_mask(store.images()[0].id))
    dialog = window.show_export()
    dialog.format.setCurrentIndex(dialog.format.findData("coco"))
    dialog.selection.setCurrentIndex(dialog.selection.findData("all"))
    dialog.split.setText("1,0,0")
    dialog.seed.setValue(7)
    dialog.overwrite.setChecked(True)
    dialog.destination.setText("relative-export")
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None or "failed" in dialog.status.text(), timeout=20_000)
    assert dialog.result is not None, dialog.status.text()
    assert Path(dialog.result.out_dir) == folder.resolve().parent / "relative-export"
    assert any((folder.parent / "relative-export").iterdir())
    dialog.close()

    again = window.show_export()
    assert again.format.currentData() == "coco" and again.selection.currentData() == "all"
    assert again.split.text() == "1,0,0" and again.seed.value() == 7
    assert Path(again.destination.text()) == folder.resolve().parent / "relative-export"
    assert not again.overwrite.isChecked()
    again.close()


def test_browsing_keeps_the_typed_dataset_name(qtbot, tmp_path, monkeypatch):
    from faceparse.app.gui import export_dialog

    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setattr(export_dialog.QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(other))
    dialog = window.show_export()
    dialog.destination.setText(str(tmp_path / "exports" / "faces-v3"))
    dialog._browse()
    assert Path(dialog.destination.text()) == other / "faces-v3"
    dialog.close()


def test_import_choices_are_remembered_but_not_replacing(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path)
    window.actions["import_labels"].trigger()
    dialog = window.findChild(ImportDialog)
    dialog.format.setCurrentIndex(dialog.format.findData("labelme"))
    dialog.source.setText("labels-from-elsewhere")
    dialog.scale_masks.setChecked(True)
    dialog.overwrite.setChecked(True)
    QTest.mouseClick(dialog.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=20_000)
    assert Path(dialog.source.text()) == window.ws.store.root.parent / "labels-from-elsewhere"
    dialog.close()
    dialog.deleteLater()
    qtbot.waitUntil(lambda: window.findChild(ImportDialog) is None, timeout=5_000)

    window.actions["import_labels"].trigger()
    again = window.findChild(ImportDialog)
    assert again.format.currentData() == "labelme" and again.scale_masks.isChecked()
    assert Path(again.source.text()) == window.ws.store.root.parent / "labels-from-elsewhere"
    assert not again.overwrite.isChecked()


def test_an_export_that_fails_is_not_offered_again(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path)
    dialog = window.show_export()
    dialog.split.setText("abc")
    dialog.destination.setText(str(tmp_path / "out"))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=20_000)
    assert dialog.result is None
    dialog.close()
    again = window.show_export()
    assert again.split.text() == "0.8,0.1,0.1"
    again.close()
