"""Next and previous follow the open image's place in the list even when the filter does not show it."""

from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def _filtered_window(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=6)
    with ProjectStore.open(folder) as store:
        ids = [r.id for r in store.images()]
        store.set_status(ids[2], "reviewed")
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    ws.image_list.select_id(ids[2])
    qtbot.waitUntil(lambda: ws.session.image_id == ids[2])
    ws.image_list.status_filter.setCurrentIndex(ws.image_list.status_filter.findData("predicted"))
    assert ws.image_list.model.row_of(ids[2]) is None and ws.session.image_id == ids[2]
    return window, ids


def test_next_goes_to_the_image_after_the_open_one(qtbot, tmp_path):
    window, ids = _filtered_window(qtbot, tmp_path)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.ws.session.image_id == ids[3])


def test_previous_goes_to_the_image_before_the_open_one(qtbot, tmp_path):
    window, ids = _filtered_window(qtbot, tmp_path)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: window.ws.session.image_id == ids[1])


def test_next_unreviewed_starts_after_the_open_one(qtbot, tmp_path):
    window, ids = _filtered_window(qtbot, tmp_path)
    window.actions["next_unreviewed"].trigger()
    qtbot.waitUntil(lambda: window.ws.session.image_id == ids[3])


def test_previous_from_an_open_image_that_is_listed_but_not_selected(qtbot, tmp_path):
    window, ids = _filtered_window(qtbot, tmp_path)
    ws = window.ws
    ws.image_list.status_filter.setCurrentIndex(0)
    assert ws.image_list.model.row_of(ids[2]) == 2 and ws.session.image_id == ids[2]
    ws.image_list.view.setCurrentIndex(ws.image_list.model.index(-1))
    QTest.keyClick(ws.canvas, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: ws.session.image_id == ids[1])
