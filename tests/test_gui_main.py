"""The `faceparse-studio FOLDER` entry point: it starts the window and opens (or creates) the project."""

from faceparse.app.gui.main import main
from faceparse.app.gui.main_window import MainWindow
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import make_synthetic_folder
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication


def test_main_creates_and_opens_the_project_named_on_the_command_line(qtbot, tmp_path):
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    folder = tmp_path / "photos"
    make_synthetic_folder(folder, 2, size=64)
    seen = {}

    def check() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        window = windows[0] if windows else None
        if window is not None and window.ws is not None and window.ws.session.record is not None:
            seen["rows"] = window.ws.image_list.model.rowCount()
            seen["title"] = window.windowTitle()
            window.close()
            QApplication.quit()
        else:
            QTimer.singleShot(50, check)

    QTimer.singleShot(50, check)
    assert main([str(folder), "--schema", "lapa"]) == 0
    assert seen["rows"] == 2 and "photos" in seen["title"]
    with ProjectStore.open(folder) as store:
        assert store.schema.name == "lapa"
