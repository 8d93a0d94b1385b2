"""Keys that change nothing on screen still answer in the status bar: R once the review is written, A and D at
either end of the list."""

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def test_r_says_the_image_was_marked_reviewed(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    session = window.ws.session
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    assert window.statusBar().currentMessage() == f"{session.record.name} marked reviewed"


def test_a_and_d_at_the_ends_of_the_list_say_so(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    ws = window.ws
    first = ws.session.image_id
    QTest.keyClick(ws.canvas, Qt.Key.Key_A)
    assert ws.session.image_id == first
    assert window.statusBar().currentMessage() == "this is the first image in the list"
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: ws.session.image_id != first)
    assert window.statusBar().currentMessage() != "this is the last image in the list"
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    assert window.statusBar().currentMessage() == "this is the last image in the list"
    assert ws.image_list.view.currentIndex().row() == 1
