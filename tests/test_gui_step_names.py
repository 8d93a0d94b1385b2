"""Small things an annotator reads: Undo and Redo name their step, a polygon left open is not dropped in silence,
and Ctrl+L on a corrected image says the mask is kept."""

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, install_model, make_project, open_window, viewport_point

CTRL = Qt.KeyboardModifier.ControlModifier


def test_undo_and_redo_name_the_step_they_take(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    canvas, actions = window.ws.canvas, window.actions
    assert actions["undo"].text() == "&Undo" and actions["redo"].text() == "&Redo"
    drag(canvas, [viewport_point(canvas, 5.5, 5.5), viewport_point(canvas, 30.5, 5.5)])
    assert actions["undo"].text() == "&Undo brush"
    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: window.ws.session.record.status == "reviewed")
    assert actions["undo"].text() == "&Undo mark reviewed"
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    assert actions["undo"].text() == "&Undo brush" and actions["redo"].text() == "&Redo mark reviewed"


def test_moving_on_from_a_polygon_left_open_says_it_was_not_filled(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    ws = window.ws
    canvas, session = ws.canvas, ws.session
    name = session.record.name
    before = session.editor.mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_P)
    for x, y in ((5.5, 5.5), (30.5, 5.5), (30.5, 30.5)):
        QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         viewport_point(canvas, x, y))
    assert session.sketch_in_progress()
    QTest.keyClick(canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: session.record.name != name)
    assert f"the polygon left open on {name} was not filled" in window.statusBar().currentMessage()
    QTest.keyClick(canvas, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: session.record.name == name)
    assert (session.editor.mask == before).all()


def test_pre_labeling_a_corrected_image_says_its_mask_is_kept(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, corrected=True)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)
    models = window.ws.models
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(lambda: models.prelabel_task is None, timeout=60_000)
    assert window.statusBar().currentMessage().endswith("; your mask is kept (T shows the new prediction)")


def test_pre_labeling_right_after_a_first_stroke_keeps_the_stroke_and_says_so(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)  # autosave a minute away: the stroke is not saved yet
    ws = window.ws
    models, session = ws.models, ws.session
    drag(ws.canvas, [viewport_point(ws.canvas, 5.5, 5.5), viewport_point(ws.canvas, 30.5, 5.5)])
    stroke = session.editor.mask.copy()
    QTest.keyClick(ws.canvas, Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(lambda: models.prelabel_task is None, timeout=60_000)
    assert window.statusBar().currentMessage().endswith("; your mask is kept (T shows the new prediction)")
    assert (session.editor.mask == stroke).all()
    assert ws.store.get(session.image_id).status == "corrected"
