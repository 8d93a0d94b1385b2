"""On a first start (no remembered layout) the panels open as wide as their contents ask, not at their smallest;
once the person has a layout, it is what comes back."""

from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from PySide6.QtCore import Qt
from test_gui_helpers import make_project


def opened(qtbot, tmp_path, folder) -> MainWindow:
    settings = StudioSettings.at(tmp_path / "studio.ini")
    settings.set("prelabel_on_open", False)
    window = MainWindow(settings, autosave_ms=60_000)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=10_000)
    return window


def test_panels_open_at_the_width_their_contents_ask_for(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = opened(qtbot, tmp_path, folder)
    models = window.ws.models
    window.models_dock.raise_()
    qtbot.waitUntil(lambda: window.models_dock.width() > window.models_dock.minimumSizeHint().width() + 20)
    assert window.models_dock.width() >= min(models.sizeHint().width(), window.width() // 4) - 8
    assert window.list_dock.width() >= min(window.ws.image_list.sizeHint().width(), window.width() // 4) - 8

    window.resizeDocks([window.list_dock], [400], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: abs(window.list_dock.width() - 400) <= 2)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())
    again = opened(qtbot, tmp_path, folder)
    qtbot.wait(100)
    assert abs(again.list_dock.width() - 400) <= 2  # the person's layout, not the contents' widths
