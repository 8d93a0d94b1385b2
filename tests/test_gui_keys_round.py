"""N goes round the list, the class under the pointer follows A/D, and the picker hands back to the painting tool."""

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window, viewport_point


def test_n_past_the_last_waiting_image_goes_round_to_the_first_one_from_the_top(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=4, size=64)
    with ProjectStore.open(folder) as store:
        ids = [r.id for r in store.images()]
        store.set_status(ids[2], "reviewed")
        store.set_status(ids[3], "reviewed")
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    ws.image_list.select_row(1)
    qtbot.waitUntil(lambda: ws.session.image_id == ids[1])
    QTest.keyClick(ws.canvas, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: ws.session.image_id == ids[0])
    assert "back to the first image" in window.statusBar().currentMessage()
    QTest.keyClick(ws.canvas, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: ws.session.image_id == ids[1])

    with ProjectStore.open(folder) as store:
        store.set_status(ids[0], "reviewed")
    ws.image_list.reload()
    QTest.keyClick(ws.canvas, Qt.Key.Key_N)
    assert ws.session.image_id == ids[1]
    assert window.statusBar().currentMessage() == "no other image in the list is waiting for review"


def test_the_class_under_a_resting_pointer_is_read_again_from_the_next_image(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    with ProjectStore.open(folder) as store:
        second = store.images()[1]
        store.save_corrected(second.id, np.full((64, 64), 13, np.uint8))
    window = open_window(qtbot, folder, tmp_path)
    canvas = window.ws.canvas
    QTest.mouseMove(canvas.viewport(), viewport_point(canvas, 2.5, 2.5))
    assert window.cursor_label.text() == "2, 2  ·  0 background (mask)"
    QTest.keyClick(canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.ws.session.image_id == second.id)
    assert window.cursor_label.text() == "2, 2  ·  13 hair (mask)"


def test_the_picker_picks_a_class_and_hands_back_to_the_tool_painted_with_last(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, size=64), tmp_path)
    ws = window.ws
    canvas = ws.canvas
    window.actions["tool_eraser"].trigger()
    window.actions["tool_picker"].trigger()
    assert canvas.tool.name == "picker"
    label = int(ws.session.editor.mask[32, 32])
    assert label != ws.palette.current
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     viewport_point(canvas, 32.5, 32.5))
    assert ws.palette.current == label
    assert canvas.tool.name == "eraser" and window.actions["tool_eraser"].isChecked()
    assert window.statusBar().currentMessage().endswith("back to the eraser")


def test_a_picker_click_beside_the_image_picks_nothing_and_keeps_the_picker(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, size=64), tmp_path)
    ws = window.ws
    canvas = ws.canvas
    window.actions["tool_picker"].trigger()
    before = ws.palette.current
    beside = next(p for p in (viewport_point(canvas, x, y) for x, y in ((-3.5, 32.5), (67.5, 32.5), (32.5, -3.5)))
                  if canvas.viewport().rect().contains(p))
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, beside)
    assert ws.palette.current == before and canvas.tool.name == "picker"
    assert not window.statusBar().currentMessage().startswith("picked")
