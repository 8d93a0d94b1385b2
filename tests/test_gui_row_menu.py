"""Right-clicking a row of the image list opens that image and offers the commands for it, its path to copy and its
folder to show."""

from faceparse.app.gui import row_menu
from faceparse.core.store import ProjectStore
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu
from test_gui_helpers import make_project, open_window


def _right_click(window, row):
    """Right-click the row (or below the rows): the menus it pops up."""
    panel = window.ws.image_list
    view = panel.view
    pos = view.visualRect(panel.model.index(row)).center() if row is not None else \
        view.viewport().rect().bottomLeft()
    view.customContextMenuRequested.emit(pos)
    return [menu for menu in panel.findChildren(QMenu) if menu.isVisible()]


def _action(menu, text):
    return next(a for a in menu.actions() if a.text().replace("&", "") == text)


def test_a_right_click_opens_the_row_and_its_commands_act_on_it(qtbot, tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=3, size=64)
    window = open_window(qtbot, folder, tmp_path)
    model = window.ws.image_list.model
    third = model.record(2)
    assert window.ws.session.image_id != third.id

    [menu] = _right_click(window, 2)
    assert window.ws.session.image_id == third.id
    texts = [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]
    assert texts == ["Mark Reviewed", "Unmark Reviewed", "Accept Prediction", "Pre-label This Image", "Copy Path",
                     "Show in Folder"]

    _action(menu, "Mark Reviewed").trigger()
    window.ws.session.writer.wait()
    qtbot.waitUntil(lambda: model.record(2).status == "reviewed")
    with ProjectStore.open(folder) as store:
        assert store.get(third.id).status == "reviewed"

    _action(menu, "Copy Path").trigger()
    assert QGuiApplication.clipboard().text() == str(folder / third.relpath)
    opened = []
    monkeypatch.setattr(row_menu.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    _action(menu, "Show in Folder").trigger()
    assert opened == [str(folder)]


def test_a_right_click_below_the_rows_shows_no_menu(qtbot, tmp_path, monkeypatch):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    opened_before = window.ws.session.image_id
    assert _right_click(window, None) == []
    assert window.ws.session.image_id == opened_before
