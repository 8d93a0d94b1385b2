"""The image list and the import and export dialogs: an image named at opening is found however deep in the
list, an import opens an image whose old mask could not be, keeps the open image's undo history when it leaves its
mask alone, a list ordered by uncertainty lists images scored during a run, and a cancelled export says so until
it stops."""

import numpy as np
from faceparse.app.gui import image_list
from faceparse.app.gui.image_list import badge_for
from faceparse.app.gui.import_dialog import ImportDialog
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point


def _import_labels(qtbot, window, source, option: str):
    """Run File > Import Labels on `source` with the dialog's check box `option` ticked; the dialog, once done."""
    window.actions["import_labels"].trigger()
    dialog = window.findChild(ImportDialog)
    dialog.source.setText(str(source))
    getattr(dialog, option).setChecked(True)
    QTest.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=20_000)
    return dialog

def test_named_image_beyond_twenty_pages_is_opened(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(image_list, "PAGE_SIZE", 4)  # 20 pages = 80 rows instead of 10,000
    folder = make_project(tmp_path / "faces", count=90, size=32)
    with ProjectStore.open(folder) as store:
        wanted = store.images()[85]
    window = MainWindow(StudioSettings.at(tmp_path / "studio.ini"), autosave_ms=60_000)
    window.settings.set("prelabel_on_open", False)
    qtbot.addWidget(window)
    window.show()
    assert window.open_folder(folder / wanted.relpath)
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=20_000)
    qtbot.wait(500)
    assert window.ws.session.record.relpath == wanted.relpath, (window.ws.session.record.relpath,
                                                               window.statusBar().currentMessage())


def test_import_over_an_unopenable_mask_opens_the_image(qtbot, tmp_path):
    source = make_project(tmp_path / "source", count=2, corrected=True)
    with ProjectStore.open(source) as store:
        export_dataset(store, tmp_path / "dataset", "index-png", only="corrected", split="1,0,0")
    target = make_project(tmp_path / "target", count=2)
    with ProjectStore.open(target) as store:
        first = store.images()[0]
        store.save_corrected(first.id, store.predicted_mask(first.id))
        # another program leaves a corrected mask of the wrong size
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(store.mask_path("corrected", first.id))
    window = open_window(qtbot, target, tmp_path, image_opens=False)
    ws = window.ws
    qtbot.waitUntil(lambda: ws.image_list.model.record(0).error is not None, timeout=5000)
    assert ws.session.record is None  # cannot be opened
    dialog = _import_labels(qtbot, window, tmp_path / "dataset", "overwrite")
    assert dialog.status.text().startswith("Imported"), dialog.status.text()
    assert ws.store.corrected_mask(first.id).shape == (128, 128)  # the project now holds a good mask
    qtbot.wait(300)
    assert badge_for(ws.image_list.model.record(0))[0] == "corrected"
    assert ws.session.record is not None and ws.session.record.id == first.id


def _many_photos(qtbot, tmp_path, count, side, predicted=False):
    """A studio window on `count` plain photos of `side` px (each with a prediction when `predicted`)."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.full((side, side, 3), i % 256, np.uint8)).save(folder / f"img_{i:04d}.png")
    with ProjectStore.create(folder, "celebamask-hq") as store:
        store.scan()
        for r in store.images() if predicted else []:
            store.save_predicted(r.id, np.ones((side, side), np.uint8), "v0001", uncertainty=0.1)
    settings = StudioSettings.at(tmp_path / "studio.ini")
    settings.set("prelabel_on_open", False)
    window = MainWindow(settings, autosave_ms=60_000)
    qtbot.addWidget(window)
    window.show()
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=20_000)
    return folder, window


def test_cancelling_stays_visible_until_the_export_stops(qtbot, tmp_path):
    _, window = _many_photos(qtbot, tmp_path, 1500, 32, predicted=True)
    dialog = window.show_export()
    dialog.selection.setCurrentIndex(dialog.selection.findData("all"))
    dialog.destination.setText(str(tmp_path / "out"))
    texts = []
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "of" in dialog.status.text(), timeout=20_000)
    QTest.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "Cancelling…"
    while dialog.running:
        qtbot.wait(1)
        texts.append(dialog.status.text())
    assert all(t == "Cancelling…" for t in texts[:-1]), [t for t in texts if t != "Cancelling…"][:3]


def test_scored_image_beyond_first_page_is_listed(qtbot, tmp_path):
    folder, window = _many_photos(qtbot, tmp_path, 600, 16)
    ws = window.ws
    panel = ws.image_list
    panel.order.setCurrentIndex(panel.order.findData("uncertainty"))
    assert panel.model.rowCount() == 500
    # a pre-label run (its own connection) scores an image the list has not loaded yet, as the worker does
    with ProjectStore.open(folder) as other:
        late = other.images()[550]
        other.save_predicted(late.id, np.zeros((16, 16), np.uint8), "v0001", uncertainty=0.9)
    ws.models.predictions_arriving.emit()  # what the panel emits on progress
    qtbot.wait(100)
    panel.view.scrollToBottom()
    while panel.model.canFetchMore():
        panel.model.fetchMore()
    listed = {panel.model.record(r).id for r in range(panel.model.rowCount())}
    assert late.id in listed


def test_import_of_other_images_keeps_the_open_images_undo(qtbot, tmp_path):
    source = make_project(tmp_path / "source", count=3, corrected=True)
    with ProjectStore.open(source) as store:
        export_dataset(store, tmp_path / "dataset", "index-png", only="corrected", split="1,0,0")
    for f in (tmp_path / "dataset").rglob("synthetic_00000*"):
        f.unlink()  # the dataset has no label for the image that will be open
    window = open_window(qtbot, make_project(tmp_path / "target", count=3), tmp_path)
    ws, canvas = window.ws, window.ws.canvas
    assert ws.session.record.relpath == "synthetic_00000.jpg"
    before = ws.session.editor.mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_2)
    drag(canvas, [viewport_point(canvas, 5.5, 5.5), viewport_point(canvas, 40.5, 5.5)])
    painted = ws.session.editor.mask.copy()
    assert not np.array_equal(before, painted) and window.actions["undo"].isEnabled()

    dialog = _import_labels(qtbot, window, tmp_path / "dataset", "ignore_unmatched")
    assert dialog.status.text() == "Imported 2 corrected masks.", dialog.status.text()
    assert np.array_equal(ws.session.editor.mask, painted)  # the open image's mask was not touched
    assert window.actions["undo"].isEnabled(), "Ctrl+Z lost its stroke"
    window.actions["undo"].trigger()
    assert np.array_equal(ws.session.editor.mask, before)
