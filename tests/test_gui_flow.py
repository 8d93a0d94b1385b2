"""Keyboard flow, list filtering and sorting, and exporting from the dialog, driven through the real widgets."""

import numpy as np
from faceparse.core.imageio import load_mask
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point


def test_accept_review_and_next_not_reviewed(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=4)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    session, image_list = ws.session, ws.image_list
    ids = [image_list.model.record(r).id for r in range(4)]
    assert session.image_id == ids[0]

    QTest.keyClick(ws.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(ws.canvas, Qt.Key.Key_R)
    session.writer.wait()
    qtbot.waitUntil(lambda: image_list.model.record(0).status == "reviewed")
    with ProjectStore.open(folder) as store:
        assert store.get(ids[0]).status == "reviewed"
        assert np.array_equal(store.corrected_mask(ids[0]), store.predicted_mask(ids[0]))

    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: session.image_id == ids[1])
    QTest.keyClick(ws.canvas, Qt.Key.Key_R)
    session.writer.wait()
    qtbot.waitUntil(lambda: image_list.model.record(1).status == "reviewed")

    image_list.select_row(0)
    qtbot.waitUntil(lambda: session.image_id == ids[0])
    QTest.keyClick(ws.canvas, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: session.image_id == ids[2])
    assert window.position_label.text().startswith("3 /")

    image_list.status_filter.setCurrentIndex(image_list.status_filter.findData("reviewed"))
    assert image_list.model.rowCount() == 2
    assert {image_list.model.record(r).id for r in range(2)} == set(ids[:2])
    image_list.status_filter.setCurrentIndex(0)
    image_list.order.setCurrentIndex(image_list.order.findData("uncertainty"))
    assert [image_list.model.record(r).id for r in range(4)] == ids[::-1]


def test_prediction_toggle_is_read_only_and_outline_mode_draws_borders(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    canvas, session = ws.canvas, ws.session
    QTest.keyClick(canvas, Qt.Key.Key_2)
    drag(canvas, [viewport_point(canvas, 5.5, 5.5), viewport_point(canvas, 30.5, 5.5)])
    edited = session.editor.mask.copy()

    window.actions["toggle_prediction"].trigger()
    assert canvas.showing_prediction
    assert canvas.overlay.source is session.prediction
    drag(canvas, [viewport_point(canvas, 5.5, 60.5), viewport_point(canvas, 30.5, 60.5)])
    assert np.array_equal(session.editor.mask, edited)
    window.actions["toggle_prediction"].trigger()
    assert canvas.overlay.source is session.editor.mask

    window.actions["toggle_outline"].trigger()
    buffer = canvas.overlay.buffer
    mask = session.editor.mask
    interior = (mask[1:-1, 1:-1] == mask[:-2, 1:-1]) & (mask[1:-1, 1:-1] == mask[2:, 1:-1]) & \
               (mask[1:-1, 1:-1] == mask[1:-1, :-2]) & (mask[1:-1, 1:-1] == mask[1:-1, 2:])
    assert not buffer[1:-1, 1:-1][interior].any()
    assert buffer[1:-1, 1:-1][~interior & (mask[1:-1, 1:-1] != 0)].all()


def test_export_dialog_writes_index_pngs(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    QTest.keyClick(ws.canvas, Qt.Key.Key_5)
    drag(ws.canvas, [viewport_point(ws.canvas, 10.5, 10.5), viewport_point(ws.canvas, 50.5, 10.5)])
    image_id, edited = ws.session.image_id, ws.session.editor.mask.copy()

    dialog = window.show_export()
    dialog.format.setCurrentIndex(dialog.format.findData("index-png"))
    dialog.split.setText("1,0,0")
    out = tmp_path / "exported"
    dialog.destination.setText(str(out))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None or "failed" in dialog.status.text(), timeout=20_000)
    assert dialog.result is not None, dialog.status.text()
    assert dialog.result.count == 1
    name = ws.store.get(image_id).relpath.rsplit(".", 1)[0]
    assert np.array_equal(load_mask(out / "masks" / "train" / f"{name}.png"), edited)
    assert "Exported 1 image (" in dialog.status.text()
