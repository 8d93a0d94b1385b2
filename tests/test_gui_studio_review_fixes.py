"""Studio behaviour around photos changed on disk and the polygon tool: a review on a photo replaced while open
stays flagged, a neighbour read ahead is read again when its photo changed, a lasso fills what it goes round, the
title keeps naming a photo that cannot be opened, and a polygon of two corners is kept with a word of why."""

import math

import numpy as np
from faceparse.core.imageio import load_rgb
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def test_review_of_a_mask_drawn_on_a_photo_replaced_while_open_is_flagged(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    session, canvas = window.ws.session, window.ws.canvas
    rec = session.record
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(folder / rec.relpath)  # replaced while open
    QTest.keyClick(canvas, Qt.Key.Key_3)
    drag(canvas, [viewport_point(canvas, x, 20.5) for x in (10.5, 70.5)])
    QTest.keyClick(canvas, Qt.Key.Key_R)  # approves a mask drawn on the OLD photo
    session.writer.wait()
    qtbot.wait(50)
    with ProjectStore.open(folder) as store:
        store.scan()
        assert [c.relpath for c in store.changed_photos()] == [rec.relpath]


def _shown_rgb(canvas):
    img = canvas._photo.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    buf = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return buf[:, : 3 * img.width()].reshape(img.height(), img.width(), 3)


def test_a_neighbour_read_ahead_shows_its_photo_as_it_is_on_disk(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    second = ws.image_list.model.record(1)
    qtbot.waitUntil(lambda: second.id in ws.session.prefetch._bundles, timeout=5000)
    path = folder / second.relpath
    Image.fromarray(np.full((64, 64, 3), (255, 0, 0), np.uint8)).save(path, quality=100)  # retouched elsewhere
    window.actions["next_image"].trigger()
    qtbot.waitUntil(lambda: ws.session.image_id == second.id)
    diff = np.abs(_shown_rgb(ws.canvas).astype(int) - load_rgb(path).astype(int)).mean()
    assert diff < 5


def test_a_lasso_traced_round_twice_fills_its_inside(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=128)
    window = open_window(qtbot, folder, tmp_path)
    canvas, session = window.ws.canvas, window.ws.session
    window.actions["tool_polygon"].trigger()
    QTest.keyClick(canvas, Qt.Key.Key_5)
    ts = np.linspace(0, 4 * math.pi, 160)  # two turns, the second 0-6 px inside the first
    drag(canvas, [viewport_point(canvas, 64 + (40 - t / 2) * math.cos(t), 64 + (40 - t / 2) * math.sin(t))
                  for t in ts])
    m = session.editor.mask
    assert m[64, 64] == 5 and (m == 5).sum() > 3500


def test_the_title_keeps_naming_the_photo_that_cannot_be_opened(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    second = ws.image_list.model.record(1)
    (folder / second.relpath).unlink()
    QTest.keyClick(ws.canvas, Qt.Key.Key_5)
    drag(ws.canvas, [viewport_point(ws.canvas, 5.5, 5.5), viewport_point(ws.canvas, 40.5, 5.5)])
    window.actions["next_image"].trigger()  # saves image 1, image 2 cannot open
    assert window.windowTitle().startswith(f"{second.name} (cannot be opened)")
    window.writer.wait()
    qtbot.wait(100)  # image 1's save lands
    assert window.windowTitle().startswith(f"{second.name} (cannot be opened)")


def test_closing_a_two_corner_polygon_keeps_the_corners_and_says_why(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    canvas = window.ws.canvas
    window.actions["tool_polygon"].trigger()
    for x, y in ((10.5, 10.5), (40.5, 40.5)):
        QTest.mouseClick(canvas.viewport(), LEFT, NONE, viewport_point(canvas, x, y))
    window.statusBar().clearMessage()
    QTest.keyClick(canvas, Qt.Key.Key_Return)
    assert len(canvas.tool.points) == 2
    assert "at least 3 corners" in window.statusBar().currentMessage()
    QTest.mouseClick(canvas.viewport(), LEFT, NONE, viewport_point(canvas, 10.5, 40.5))
    QTest.keyClick(canvas, Qt.Key.Key_Return)
    assert canvas.tool.points == []
    assert window.ws.session.editor.mask[30, 15] == canvas.label


def test_the_picker_reads_the_class_from_the_prediction_on_screen(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    canvas, session = window.ws.canvas, window.ws.session
    window.actions["toggle_prediction"].trigger()
    assert canvas.showing_prediction
    prediction = session.prediction
    y, x = np.argwhere(prediction == prediction.max())[0]
    window.actions["tool_picker"].trigger()
    before = session.editor.mask.copy()
    QTest.mouseClick(canvas.viewport(), LEFT, NONE, viewport_point(canvas, x + 0.5, y + 0.5))
    assert canvas.label == int(prediction.max())
    assert np.array_equal(session.editor.mask, before)


def test_a_built_in_cuda_provider_is_not_named_as_running_before_a_run(monkeypatch):
    from faceparse.app.gui import model_jobs

    monkeypatch.setattr(model_jobs, "choose_providers", lambda device: (["CUDAExecutionProvider", "CPU"], None))
    assert model_jobs.device_description("auto").startswith("GPU (CUDA), once a run confirms it")
    monkeypatch.setattr(model_jobs, "choose_providers", lambda device: (["CPUExecutionProvider"], None))
    assert model_jobs.device_description("auto") == "CPU"
