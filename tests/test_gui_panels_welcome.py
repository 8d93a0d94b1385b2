"""What the studio's panels and dialogs show: the Images, Classes and Models panels are hidden on the welcome page
and come back as they were (the layout the person chose is what the next start remembers); a mask that cannot be
read has an error badge; the export dialog offers LaPa's classes or the project's own for the LaPa layout."""

import numpy as np
from faceparse.app.gui.image_list import badge_for
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def _docks(window):
    return window.list_dock, window.palette_dock, window.models_dock


def _visible(window) -> list[bool]:
    return [d.isVisible() for d in _docks(window)]


def test_panels_are_hidden_on_the_welcome_page_and_return_with_a_project(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    assert window.list_dock.isVisible() and window.palette_dock.isVisible()
    assert all(d.toggleViewAction().isEnabled() for d in _docks(window))
    assert window.close_project()
    assert _visible(window) == [False, False, False]
    assert not any(d.toggleViewAction().isEnabled() for d in _docks(window))
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=10_000)
    assert window.list_dock.isVisible() and window.palette_dock.isVisible()


def test_a_panel_the_person_closed_stays_closed_after_a_restart(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    window.list_dock.toggleViewAction().trigger()
    assert not window.list_dock.isVisible()
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())

    again = MainWindow(StudioSettings.at(tmp_path / "studio.ini"), autosave_ms=60_000)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    assert _visible(again) == [False, False, False]
    assert again.open_folder(folder)
    qtbot.waitUntil(lambda: again.ws is not None and again.ws.session.record is not None, timeout=10_000)
    assert not again.list_dock.isVisible()
    assert again.palette_dock.isVisible() or again.models_dock.isVisible()


def test_an_unreadable_corrected_mask_shows_an_error_badge_until_it_opens_again(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64, corrected=True)
    with ProjectStore.open(folder) as store:
        second = store.images()[1]
        damaged = store.mask_path("corrected", second.id)
    good = damaged.read_bytes()
    damaged.write_bytes(b"not a png")
    window = open_window(qtbot, folder, tmp_path)
    model = window.ws.image_list.model
    assert badge_for(model.record(1))[0] == "corrected"
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: badge_for(model.record(1))[0] == "error", timeout=5_000)
    assert "unreadable" in model.record(1).error
    assert window.ws.session.record is None

    damaged.write_bytes(good)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: window.ws.session.image_id == model.record(0).id, timeout=5_000)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.ws.session.image_id == second.id, timeout=5_000)
    assert badge_for(model.record(1))[0] == "corrected"


def _export(qtbot, dialog, out):
    dialog.split.setText("1,0,0")
    dialog.destination.setText(str(out))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None or "failed" in dialog.status.text(), timeout=20_000)
    assert dialog.result is not None, dialog.status.text()
    return np.array(Image.open(next((out / "train" / "labels").iterdir())))


def test_export_dialog_offers_lapa_classes_or_the_project_own_for_the_lapa_layout(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=1, size=64, corrected=True)
    window = open_window(qtbot, folder, tmp_path)
    dialog = window.show_export()
    dialog.format.setCurrentIndex(dialog.format.findData("index-png"))
    entries = [dialog.schema.itemText(i) for i in range(dialog.schema.count())]
    assert entries[0] == "celebamask-hq (the project's)" and "lapa (mapped)" in entries
    dialog.format.setCurrentIndex(dialog.format.findData("lapa"))
    entries = [dialog.schema.itemText(i) for i in range(dialog.schema.count())]
    assert entries[0].startswith("lapa (the format's own classes") and "lapa (mapped)" not in entries
    assert dialog.schema.currentData() is None

    assert _export(qtbot, dialog, tmp_path / "lapa").max() < 11
    assert dialog.result.schema.name == "lapa"
    dialog.result = None
    dialog.schema.setCurrentIndex(dialog.schema.findData("celebamask-hq"))
    assert _export(qtbot, dialog, tmp_path / "own").max() > 10
    assert dialog.result.schema.name == "celebamask-hq"
    assert "masks in schema celebamask-hq (19 classes)" in dialog.status.text()
    dialog.close()


def test_the_export_dialog_names_each_image_it_left_out_and_why(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64, corrected=True)
    with ProjectStore.open(folder) as store:
        gone = store.images()[2]
    window = open_window(qtbot, folder, tmp_path)
    (folder / gone.relpath).unlink()  # deleted while the project is open, after the scan
    dialog = window.show_export()
    dialog.format.setCurrentIndex(dialog.format.findData("lapa"))
    _export(qtbot, dialog, tmp_path / "out")
    text = dialog.status.text()
    assert "Exported 2 images" in text and "Left out 1:" in text and f"{gone.relpath}:" in text
    dialog.close()


def test_an_empty_project_says_it_has_no_photos_and_shows_nothing_of_the_last_one(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    assert window.zoom_label.text() and window.position_label.text() == "1 / 2"
    empty = tmp_path / "empty"
    empty.mkdir()
    ProjectStore.create(empty).close()
    assert window.open_folder(empty)
    qtbot.waitUntil(lambda: "No photos in" in window.ws.canvas.notice, timeout=10_000)
    assert window.zoom_label.text() == "" and window.position_label.text() == ""
    assert window.ws.session.record is None
