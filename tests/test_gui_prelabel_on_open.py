"""Opening a folder gives its photos masks to correct: images no model has labeled yet are pre-labeled at once,
unless Models > Pre-label New Images on Opening is off; a project whose images all have predictions starts nothing."""

from faceparse.app.gui.main_window import PRELABEL_ON_OPEN
from faceparse.app.gui.settings import StudioSettings
from faceparse.core.store import ProjectStore
from test_gui_helpers import install_model, make_project, open_window


def statuses(folder):
    with ProjectStore.open(folder) as store:
        return [rec.status for rec in store.images()]


def test_new_images_are_prelabeled_when_the_project_opens(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64, predicted=False)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path, prelabel_on_open=True)
    panel = window.ws.models
    assert window.actions["prelabel_on_open"].isChecked()
    assert window.statusBar().currentMessage().startswith("Pre-labeling 3 images with v0001")
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert statuses(folder) == ["predicted"] * 3
    assert window.ws.session.prediction is not None


def test_the_menu_switch_turns_it_off_and_is_remembered(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path, prelabel_on_open=True)
    qtbot.waitUntil(lambda: window.ws.models.prelabel_task is None, timeout=60_000)
    window.actions["prelabel_on_open"].trigger()
    assert StudioSettings.at(tmp_path / "studio.ini").get(PRELABEL_ON_OPEN, True, bool) is False

    more = make_project(tmp_path / "more", count=2, size=64, predicted=False)
    install_model(more)
    assert window.open_folder(more)
    qtbot.waitUntil(lambda: window.ws.session.record is not None, timeout=10_000)
    qtbot.wait(200)
    assert window.ws.models.prelabel_task is None and statuses(more) == ["new", "new"]


def test_a_fully_predicted_project_starts_nothing(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=True)
    window = open_window(qtbot, folder, tmp_path, prelabel_on_open=True)
    qtbot.wait(200)
    assert window.ws.models.prelabel_task is None


def test_a_photo_that_cannot_be_read_does_not_start_a_run_that_would_do_nothing(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=True)
    (folder / "zz_broken.jpg").write_text("not a photo")
    with ProjectStore.open(folder) as store:
        store.scan()
        store.fill_details()
        assert store.find("zz_broken.jpg").error and store.count_awaiting_prediction() == 0
    window = open_window(qtbot, folder, tmp_path, prelabel_on_open=True)
    qtbot.wait(200)
    assert window.ws.models.prelabel_task is None
    assert "Pre-labeling" not in window.statusBar().currentMessage()


def test_a_predicted_photo_changed_since_is_predicted_again_on_opening(qtbot, tmp_path):
    import os

    from PIL import Image

    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=True)
    install_model(folder)
    with ProjectStore.open(folder) as store:
        record = store.images()[1]
    path = folder / record.relpath
    with Image.open(path) as photo:
        photo.convert("RGB").resize((48, 48)).save(path)
    os.utime(path, ns=(record.mtime_ns + 3_000_000_000,) * 2)
    window = open_window(qtbot, folder, tmp_path, prelabel_on_open=True)
    assert window.statusBar().currentMessage().startswith("Pre-labeling 1 image with v0001")
    qtbot.waitUntil(lambda: window.ws.models.prelabel_task is None, timeout=60_000)
    with ProjectStore.open(folder) as store:
        again = store.get(record.id)
        assert again.model_version == "v0001" and store.predicted_mask(record.id).shape == (48, 48)


def test_an_image_that_could_not_open_opens_once_all_images_predicted_it_again(qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=True)
    install_model(folder)
    with ProjectStore.open(folder) as store:
        second = store.images()[1]
        path = store.mask_path("predicted", second.id)
    path.write_bytes(path.read_bytes()[:30])  # a damaged prediction
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    assert ws.session.record is None and ws.image_list.current_id() == second.id
    window.actions["prelabel_all"].trigger()
    qtbot.waitUntil(lambda: ws.models.prelabel_task is None, timeout=60_000)
    qtbot.waitUntil(lambda: ws.session.record is not None, timeout=10_000)
    assert ws.session.record.id == second.id and ws.session.prediction is not None
