"""Viewing and navigation: zoom, pan, brush size, cursor readout, visibility, opacity, settings; the undo memory cap."""

import numpy as np
import pytest
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from faceparse.app.gui.undo import BoundedUndoStack
from faceparse.core.label_editor import LabelEditor
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from test_gui_helpers import drag, make_project, open_window, viewport_point


def _wheel(widget, pos: QPoint, delta: int, modifiers=Qt.KeyboardModifier.NoModifier):
    event = QWheelEvent(QPointF(pos), QPointF(widget.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, delta),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_zoom_pan_brush_size_and_cursor_readout(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    canvas = window.ws.canvas
    viewport = canvas.viewport()
    fitted = canvas.scale_factor
    _wheel(viewport, viewport.rect().center(), 240)
    assert canvas.scale_factor > fitted * 1.3
    window.actions["zoom_actual"].trigger()
    assert canvas.scale_factor == 1.0
    window.actions["zoom_fit"].trigger()
    assert abs(canvas.scale_factor - fitted) < 1e-6

    window.brush_spin.setValue(20)
    _wheel(viewport, viewport.rect().center(), 120, Qt.KeyboardModifier.ControlModifier)
    assert canvas.brush_size > 20 and window.brush_spin.value() == canvas.brush_size
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < 20

    for _ in range(6):
        _wheel(viewport, viewport.rect().center(), 240)
    before = (canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value())
    mask_before = window.ws.session.editor.mask.copy()
    c = viewport.rect().center()
    drag(canvas, [c, c + QPoint(-40, -30)], Qt.MouseButton.MiddleButton)
    after = (canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value())
    assert after[0] > before[0] and after[1] > before[1]
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    drag(canvas, [c, c + QPoint(30, 20)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() < after[0]
    assert np.array_equal(window.ws.session.editor.mask, mask_before)  # panning never paints

    window.actions["zoom_fit"].trigger()
    mask = window.ws.session.editor.mask
    QTest.mouseMove(viewport, viewport_point(canvas, 64.5, 64.5))
    label = int(mask[64, 64])
    assert window.cursor_label.text().startswith(f"64, 64  ·  {label} {window.ws.store.schema.classes[label]}")


def test_class_visibility_and_opacity(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=1)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    skin = ws.store.schema.index("skin")
    mask = ws.session.editor.mask
    assert ws.canvas.overlay.buffer[mask == skin].all()
    item = ws.palette.tree.topLevelItem(skin)
    item.setCheckState(1, Qt.CheckState.Unchecked)
    assert not ws.canvas.overlay.buffer[mask == skin].any()
    assert ws.canvas.overlay.buffer[(mask != skin) & (mask != 0)].all()
    window.opacity_slider.setValue(30)
    assert abs(ws.canvas.opacity - 0.3) < 1e-9


def test_recent_projects_and_settings_are_remembered(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=1)
    window = open_window(qtbot, folder, tmp_path)
    window.brush_spin.setValue(33)
    window.close()
    again = MainWindow(StudioSettings.at(tmp_path / "studio.ini"))
    qtbot.addWidget(again)
    assert again.settings.recent_projects() == [str(folder.resolve())]
    assert again.welcome.recent.count() == 1
    assert again.brush_spin.value() == 33


def test_undo_history_memory_cap_drops_the_oldest_steps(qtbot):
    editor = LabelEditor(np.zeros((256, 256), np.uint8), num_classes=3)
    stack = BoundedUndoStack(max_bytes=20_000)
    snapshots = []
    for i in range(12):
        snapshots.append(editor.mask.copy())
        stack.push_edit(editor.paint_disk(20 + 18 * i, 128, 20, 1 + i % 2), editor.apply, editor.revert)
    assert stack.nbytes <= 20_000
    undone = 0
    while stack.can_undo_edit():
        stack.undo_edit()
        undone += 1
    assert 0 < undone < 12
    assert np.array_equal(editor.mask, snapshots[12 - undone])
    assert not stack.canUndo()
    while stack.canRedo():
        stack.redo()
    assert editor.mask[128, 20 + 18 * 11] == 2


@pytest.mark.parametrize("saved_after", [0, 1])
def test_undoing_past_the_memory_cap_never_claims_the_saved_state(qtbot, saved_after):
    editor = LabelEditor(np.zeros((256, 256), np.uint8), num_classes=3)
    stack = BoundedUndoStack(max_bytes=6_000)
    if saved_after == 0:
        stack.setClean()
    for i in range(4):
        stack.push_edit(editor.paint_disk(30 + 50 * i, 128, 20, 1), editor.apply, editor.revert)
        if i + 1 == saved_after:
            stack.setClean()
    assert not stack.isClean()
    while stack.can_undo_edit():
        stack.undo_edit()
    assert editor.mask.any(), "the released steps are still on the mask"
    assert not stack.isClean()


def test_dropping_a_folder_opens_its_project(qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    folder = make_project(tmp_path / "faces", count=2)
    window = MainWindow(StudioSettings.at(tmp_path / "studio.ini"))
    qtbot.addWidget(window)
    window.show()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=10_000)
    assert window.ws.store.root == folder.resolve()


def test_a_photo_of_a_few_pixels_fits_the_window_and_zooming_in_keeps_its_size(qtbot, tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(np.full((4, 3, 3), 90, np.uint8)).save(folder / "tiny.png")
    with ProjectStore.create(folder) as store:
        store.scan()
    window = open_window(qtbot, folder, tmp_path)
    canvas = window.ws.canvas
    viewport = canvas.viewport()
    fitted = canvas.scale_factor
    assert max(3 * fitted / viewport.width(), 4 * fitted / viewport.height()) > 0.8  # it fills the view
    assert fitted > 64  # beyond the closest zoom, which zooming in must not shrink it to
    _wheel(viewport, viewport.rect().center(), 240)
    assert canvas.scale_factor == pytest.approx(fitted)
    _wheel(viewport, viewport.rect().center(), -240)
    assert canvas.scale_factor < fitted
    _wheel(viewport, viewport.rect().center(), 240)
    assert fitted * 0.5 < canvas.scale_factor <= fitted + 1e-6


def test_the_recent_list_shows_each_projects_name_first_and_fits_its_entries(qtbot, tmp_path):
    from faceparse.app.gui.welcome import WelcomePage

    page = WelcomePage()
    qtbot.addWidget(page)
    folders = [str(tmp_path / "a long shared parent folder name" / "deeper still" / f"project {i}") for i in range(10)]
    page.set_recent(folders)
    page.show()
    qtbot.waitExposed(page)
    first = page.recent.item(0)
    assert first.text().startswith("project 0") and first.toolTip() == folders[0]
    last_row = page.recent.visualItemRect(page.recent.item(9))
    assert last_row.bottom() <= page.recent.viewport().rect().bottom()


def test_the_palette_says_the_selected_class_in_words(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, size=64), tmp_path)
    palette = window.ws.palette
    for key, words in ((Qt.Key.Key_3, "eye_g: eyeglasses"), (Qt.Key.Key_1, "skin: face skin")):
        QTest.keyClick(window.ws.canvas, key)
        assert palette.about.text().startswith(words) and palette.about.isVisible()
    palette.end_digits()
    palette.digit_pressed(1)
    palette.digit_pressed(6)
    assert palette.about.text() == "neck_l: necklace"
    assert "necklace" in palette.tree.topLevelItem(16).toolTip(0)
    palette.select(0)
    assert not palette.about.isVisible()


def test_h_shows_only_the_selected_class_following_the_selection_and_again_brings_the_others_back(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    ws = window.ws
    canvas, palette = ws.canvas, ws.palette
    every = set(range(ws.store.schema.num_classes))
    palette.tree.topLevelItem(13).setCheckState(1, Qt.CheckState.Unchecked)
    before = {0, 13}
    assert canvas.overlay.hidden == before

    QTest.keyClick(canvas, Qt.Key.Key_H)
    assert window.actions["solo_class"].isChecked()
    assert canvas.overlay.hidden == every - {palette.current}
    palette.end_digits()
    QTest.keyClick(canvas, Qt.Key.Key_3)
    assert canvas.overlay.hidden == every - {3}
    assert palette.tree.topLevelItem(3).checkState(1) == Qt.CheckState.Checked
    assert palette.tree.topLevelItem(1).checkState(1) == Qt.CheckState.Unchecked

    QTest.keyClick(canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: ws.session.image_id != ws.image_list.model.record(0).id)
    assert canvas.overlay.hidden == every - {3}

    QTest.keyClick(canvas, Qt.Key.Key_H)
    assert canvas.overlay.hidden == before
    assert palette.tree.topLevelItem(13).checkState(1) == Qt.CheckState.Unchecked
