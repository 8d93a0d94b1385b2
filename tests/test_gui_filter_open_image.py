"""The open image and a status filter: hidden while it does not match, it joins the list once it does."""

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def test_the_open_image_joins_the_reviewed_filter_once_it_is_reviewed(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=3, size=64), tmp_path)
    ws = window.ws
    panel, session = ws.image_list, ws.session
    opened = session.image_id
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("reviewed"))
    assert panel.model.rowCount() == 0 and session.image_id == opened
    assert window.position_label.text() == ""  # an empty list: no position to give

    QTest.keyClick(ws.canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=5000)
    assert panel.current_id() == opened and session.image_id == opened
    assert window.position_label.text() == "1 / 1"
    assert panel.summary.text().startswith("1 shown of 3")

    QTest.keyClick(ws.canvas, Qt.Key.Key_U)  # no longer matching: the row stays, the list does not jump
    qtbot.waitUntil(lambda: session.record.status == "predicted", timeout=5000)
    assert panel.model.rowCount() == 1 and panel.model.record(0).status == "predicted"
