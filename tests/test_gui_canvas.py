"""The studio window driven like a user: keys, mouse strokes, undo/redo, fill, switching images, saved pixels."""

import numpy as np
from faceparse.core.label_editor import LabelEditor
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, scene_point, viewport_point


def _center(points):
    return [(x - 0.5, y - 0.5) for x, y in points]


def test_paint_undo_redo_fill_switch_and_saved_pixels(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces")
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    canvas, session = ws.canvas, ws.session
    first_id = session.image_id
    start = session.editor.mask.copy()
    expected = LabelEditor(start, ws.store.schema.num_classes)

    QTest.keyClick(canvas, Qt.Key.Key_3)
    assert ws.palette.current == 3 and canvas.label == 3
    assert window.isWindowModified() is False

    window.brush_spin.setValue(9)
    path = [viewport_point(canvas, x, 20.5) for x in (10.5, 40.5, 70.5)]
    drag(canvas, path)
    scene = _center(scene_point(canvas, p) for p in path)
    expected.stroke(scene[:1], 4.5, 3)
    expected.stroke(scene[:2], 4.5, 3)
    expected.stroke(scene[1:], 4.5, 3)
    assert np.array_equal(session.editor.mask, expected.mask)
    assert (session.editor.mask[20, 12:69] == 3).all()
    assert window.isWindowModified()
    assert session.undo_stack.count() == 1  # one stroke, one undo step

    painted = session.editor.mask.copy()
    window.actions["undo"].trigger()
    assert np.array_equal(session.editor.mask, start)
    assert not window.isWindowModified()
    window.actions["redo"].trigger()
    assert np.array_equal(session.editor.mask, painted)

    QTest.keyClick(canvas, Qt.Key.Key_F)
    assert window.actions["tool_fill"].isChecked()
    QTest.keyClick(canvas, Qt.Key.Key_1)
    QTest.keyClick(canvas, Qt.Key.Key_5)  # two digits typed quickly: class 15
    assert canvas.label == 15
    fill_at = viewport_point(canvas, 2.5, 120.5)
    fx, fy = scene_point(canvas, fill_at)
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, fill_at)
    expected.flood_fill(int(fx), int(fy), 15)
    assert np.array_equal(session.editor.mask, expected.mask)
    assert session.editor.mask[120, 2] == 15

    window.actions["next_image"].trigger()
    qtbot.waitUntil(lambda: session.image_id != first_id)
    session.flush()
    with ProjectStore.open(folder) as store:
        saved = store.corrected_mask(first_id)
        assert store.get(first_id).status == "corrected"
    assert np.array_equal(saved, expected.mask)

    window.actions["previous_image"].trigger()
    qtbot.waitUntil(lambda: session.image_id == first_id)
    assert np.array_equal(session.editor.mask, expected.mask)
    window.actions["undo"].trigger()  # the image's history came back with it: the fill is taken back
    assert np.array_equal(session.editor.mask, painted)
    assert window.isWindowModified()


def test_eraser_polygon_picker_and_protected_classes(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    canvas, session = ws.canvas, ws.session
    mask = session.editor.mask

    skin = ws.store.schema.index("skin")
    QTest.keyClick(canvas, Qt.Key.Key_I)
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     viewport_point(canvas, 64.5, 64.5))
    assert canvas.label == int(mask[64, 64])

    ws.palette.select(13)  # hair
    over = set(range(ws.store.schema.num_classes)) - {skin}
    ws.palette.set_paint_over(over)
    before = mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_P)
    corners = [viewport_point(canvas, x, y) for x, y in ((30.5, 30.5), (100.5, 30.5), (100.5, 100.5), (30.5, 100.5))]
    for p in corners:
        QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    QTest.keyClick(canvas, Qt.Key.Key_Return)
    inside = np.zeros_like(before, bool)
    inside[35:96, 35:96] = True
    assert (mask[inside & (before == skin)] == skin).all()
    assert (mask[inside & (before != skin)] == 13).all()
    assert (mask[~inside & ~np.pad(np.ones((73, 73), bool), 28)[:128, :128]] ==
            before[~inside & ~np.pad(np.ones((73, 73), bool), 28)[:128, :128]]).all()

    ws.palette.set_paint_over(None)
    QTest.keyClick(canvas, Qt.Key.Key_E)
    window.brush_spin.setValue(6)
    drag(canvas, [viewport_point(canvas, 64.5, 64.5), viewport_point(canvas, 64.5, 70.5)])
    assert (mask[64:71, 64] == 0).all()



def test_polygon_corners_move_backspace_takes_one_back_and_the_first_corner_closes(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    canvas, session = ws.canvas, ws.session
    before = session.editor.mask.copy()
    steps = session.undo_stack.count()
    ws.palette.select(13)
    QTest.keyClick(canvas, Qt.Key.Key_P)
    viewport = canvas.viewport()

    def click(x, y):
        QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         viewport_point(canvas, x, y))

    click(30.5, 30.5)
    click(100.5, 30.5)
    click(120.5, 115.5)  # misplaced
    drag(canvas, [viewport_point(canvas, 120.5, 115.5), viewport_point(canvas, 110.5, 108.5),
                  viewport_point(canvas, 100.5, 100.5)])
    click(60.5, 124.5)  # one click too many
    QTest.keyClick(canvas, Qt.Key.Key_Backspace)
    click(30.5, 100.5)
    assert len(canvas.tool.points) == 4 and (session.editor.mask == before).all()
    click(30.5, 30.5)  # back on the first corner: fills

    corners = [scene_point(canvas, viewport_point(canvas, x, y))
               for x, y in ((30.5, 30.5), (100.5, 30.5), (100.5, 100.5), (30.5, 100.5))]
    expected = LabelEditor(before.copy(), ws.store.schema.num_classes)
    expected.fill_polygon(_center(corners), 13, "polygon")
    assert canvas.tool.points == []
    assert np.array_equal(session.editor.mask, expected.mask)
    assert (session.editor.mask[35:96, 35:96] == 13).all() and (session.editor.mask[105:, :] == before[105:, :]).all()
    assert session.undo_stack.count() == steps + 1

def test_closing_with_unsaved_edits_keeps_them(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path)
    session = window.ws.session
    image_id = session.image_id
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_4)
    drag(window.ws.canvas, [viewport_point(window.ws.canvas, 20.5, 100.5),
                            viewport_point(window.ws.canvas, 60.5, 100.5)])
    edited = session.editor.mask.copy()
    assert window.isWindowModified()
    window.close()
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(image_id), edited)
        assert store.get_setting("studio.last_image") == image_id


def test_autosave_writes_shortly_after_the_last_edit(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=200)
    session, canvas = window.ws.session, window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_6)
    drag(canvas, [viewport_point(canvas, 30.5, 30.5), viewport_point(canvas, 90.5, 40.5)])
    edited = session.editor.mask.copy()
    qtbot.waitUntil(lambda: not window.isWindowModified(), timeout=5_000)
    session.writer.wait()
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(session.image_id), edited)
    assert session.image_id == window.ws.image_list.current_id()
