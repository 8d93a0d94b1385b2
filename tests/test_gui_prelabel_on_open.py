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
    assert window.statusBar().currentMessage().startswith("Pre-labeling 3 new images with v0001")
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
