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


def test_d_in_a_filter_that_matches_nothing_says_so(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    panel = window.ws.image_list
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("reviewed"))
    assert panel.model.total == 0
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    assert window.statusBar().currentMessage() == 'no image in the list: the filter "Reviewed" matches none'


def test_the_class_under_a_resting_pointer_follows_t_and_edits(qtbot, tmp_path):
    from test_gui_helpers import drag, viewport_point

    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, size=64), tmp_path)
    canvas = window.ws.canvas
    QTest.mouseMove(canvas.viewport(), viewport_point(canvas, 10.5, 10.5))
    assert window.cursor_label.text().endswith("(mask)")
    QTest.keyClick(canvas, Qt.Key.Key_T)
    assert window.cursor_label.text().endswith("(prediction)")
    QTest.keyClick(canvas, Qt.Key.Key_T)
    assert window.cursor_label.text().endswith("(mask)")
    QTest.keyClick(canvas, Qt.Key.Key_4)
    drag(canvas, [viewport_point(canvas, 6, 10.5), viewport_point(canvas, 14, 10.5)])
    QTest.mouseMove(canvas.viewport(), viewport_point(canvas, 40.5, 40.5))
    QTest.mouseMove(canvas.viewport(), viewport_point(canvas, 10.5, 10.5))
    assert window.cursor_label.text().startswith("10, 10  ·  4 ")
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.cursor_label.text().startswith("10, 10  ·  4 ")
