"""The `faceparse-studio FOLDER` entry point: it starts the window and opens (or creates) the project."""

from faceparse.app.gui.main import launch
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import make_synthetic_folder
from PySide6.QtCore import QSettings


def test_launch_creates_and_opens_the_project_named_on_the_command_line(qtbot, tmp_path):
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    folder = tmp_path / "photos"
    make_synthetic_folder(folder, 2, size=64)
    window = launch([str(folder), "--schema", "lapa"])
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=10_000)
    assert window.ws.image_list.model.rowCount() == 2
    assert "photos" in window.windowTitle()
    assert window.settings.recent_projects() == [str(folder.resolve())]
    window.close()
    with ProjectStore.open(folder) as store:
        assert store.schema.name == "lapa"
