"""Shared set-up for the GUI tests (no tests here): a small synthetic project and a studio window on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face, make_synthetic_folder
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest


def make_project(folder: Path, count: int = 3, size: int = 128, predicted: bool = True,
                 corrected: bool = False) -> Path:
    """Synthetic faces; with `predicted`, each image gets its true mask stored as the model's prediction, with
    `corrected` as the annotator's correction."""
    make_synthetic_folder(folder, count, size=size, seed=7)
    with ProjectStore.create(folder, "celebamask-hq") as store:
        store.scan()
        for i, record in enumerate(store.images()):
            face_seed = int(np.random.SeedSequence([7, i]).generate_state(1)[0])
            _, mask = draw_face(face_seed, size=size, schema=store.schema)
            if predicted:
                store.save_predicted(record.id, mask, "v0001", uncertainty=0.1 * (i + 1))
            if corrected:
                store.save_corrected(record.id, mask)
    return folder


def open_window(qtbot, folder: Path, tmp_path: Path, autosave_ms: int = 60_000, image_opens: bool = True,
                prelabel_on_open: bool = False) -> MainWindow:
    """The studio on `folder`, once its first image is open (or, without `image_opens`, once it is chosen in the
    list: a first photo that cannot be opened never loads). Pre-labeling on opening is off unless asked for: the
    tests that want predictions store them."""
    settings = StudioSettings.at(tmp_path / "studio.ini")
    settings.set("prelabel_on_open", prelabel_on_open)
    window = MainWindow(settings, autosave_ms=autosave_ms)
    qtbot.addWidget(window)
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    assert window.open_folder(folder)
    if image_opens:
        qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=10_000)
    else:
        qtbot.waitUntil(lambda: window.ws is not None and window.ws.image_list.view.currentIndex().row() == 0,
                        timeout=10_000)
    return window


def install_model(folder: Path) -> None:
    """A 1x1-convolution ONNX model registered as the project's active parser version v0001."""
    from onnx_models import foreground_model

    with ProjectStore.open(folder) as store:
        version_dir = store.models_dir / "parser" / "v0001"
        version_dir.mkdir(parents=True)
        foreground_model(version_dir / "model.onnx")
        store.add_model_version("parser", "v0001", version_dir, {"miou_no_bg": 0.1})
        store.set_active_model("parser", "v0001")


def viewport_point(canvas, x: float, y: float) -> QPoint:
    """The viewport pixel that shows image point (x, y)."""
    return canvas.mapFromScene(QPointF(x, y))


def scene_point(canvas, point: QPoint) -> tuple[float, float]:
    p = canvas.mapToScene(point)
    return p.x(), p.y()


def drag(canvas, points: list[QPoint], button=Qt.MouseButton.LeftButton) -> None:
    viewport = canvas.viewport()
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, points[0])
    for p in points[1:]:
        QTest.mouseMove(viewport, p)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, points[-1])
