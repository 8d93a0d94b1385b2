"""Each image keeps its undo history while the annotator visits others: Ctrl+Z after coming back takes back the
edits made before leaving, unless the mask changed meanwhile; only the last few images keep one."""

import numpy as np
from faceparse.app.gui.image_histories import ImageHistories
from faceparse.core.label_editor import Box, Edit
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point

CTRL = Qt.KeyboardModifier.ControlModifier


def _stroke(canvas, row: float, digit=Qt.Key.Key_2):
    QTest.keyClick(canvas, digit)
    drag(canvas, [viewport_point(canvas, 5.5, row), viewport_point(canvas, 40.5, row)])


def _go(qtbot, window, step: int):
    session = window.ws.session
    before = session.image_id
    window.actions["next_image" if step > 0 else "previous_image"].trigger()
    qtbot.waitUntil(lambda: session.image_id != before and session.editor is not None)


def test_coming_back_to_an_image_brings_its_undo_history_and_undoing_all_of_it_leaves_it_predicted(qtbot,
                                                                                                  tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session, canvas = window.ws.session, window.ws.canvas
    first = session.image_id
    predicted = session.editor.mask.copy()
    _stroke(canvas, 5.5)
    one_stroke = session.editor.mask.copy()
    _stroke(canvas, 20.5, Qt.Key.Key_3)
    two_strokes = session.editor.mask.copy()

    _go(qtbot, window, 1)
    assert not window.actions["undo"].isEnabled()  # the second image has no history of its own yet
    _stroke(canvas, 30.5)
    _go(qtbot, window, -1)
    assert session.image_id == first
    assert np.array_equal(session.editor.mask, two_strokes)
    assert window.actions["undo"].isEnabled() and not window.isWindowModified()

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(session.editor.mask, one_stroke)
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(session.editor.mask, predicted)
    assert not window.actions["undo"].isEnabled()
    session.flush()
    with ProjectStore.open(folder) as store:  # every edit of the image taken back: it is the model's again
        assert store.get(first).status == "predicted" and store.corrected_mask(first) is None

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(session.editor.mask, one_stroke)
    _go(qtbot, window, 1)
    session.flush()
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(first), one_stroke)
        assert store.get(first).status == "corrected"
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)  # the second image's own stroke, kept across the visit too
    session.flush()
    with ProjectStore.open(folder) as store:
        assert store.get(session.image_id).status == "predicted"


def test_a_mask_changed_while_the_annotator_was_away_starts_a_new_history(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=50)
    session, canvas = window.ws.session, window.ws.canvas
    first = session.image_id
    _stroke(canvas, 5.5)
    _go(qtbot, window, 1)
    session.flush()
    elsewhere = np.full((64, 64), 4, np.uint8)
    with ProjectStore.open(folder) as store:  # another program saves a mask for the image meanwhile
        store.save_corrected(first, elsewhere)
    _go(qtbot, window, -1)
    assert np.array_equal(session.editor.mask, elsewhere)
    assert not window.actions["undo"].isEnabled()
    assert window.statusBar().currentMessage().endswith("starts again: its mask was changed meanwhile")
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(session.editor.mask, elsewhere)


def _edit(value: int, size: int = 8) -> Edit:
    box = Box(0, 0, size, size)
    return Edit(box, np.zeros((size, size), np.uint8), np.full((size, size), value, np.uint8), f"paint {value}")


def test_only_the_last_images_keep_a_history_each_trimmed_to_the_parked_cap(qtbot):
    histories = ImageHistories(history_bytes=10_000, parked_images=2, parked_bytes=200)
    mask = np.zeros((8, 8), np.uint8)
    applied = []
    for image_id in (1, 2, 3):
        for value in (1, 2, 3):
            histories.active.push_edit(_edit(value), applied.append, applied.append)
        assert histories.active.nbytes == 3 * 128
        histories.park(image_id, mask, None)
        assert histories.active.count() == 0
    assert histories.parked() == [2, 3]  # the first image's history went to make room

    assert histories.resume(1, mask) is None and histories.active.count() == 0
    assert histories.dropped_because == "only the last 2 images visited keep theirs"
    resumed = histories.resume(3, mask)
    assert resumed is not None and histories.active.count() == 3
    assert histories.active.nbytes == 128  # the two oldest steps gave up their pixels to fit the parked cap
    assert histories.group.activeStack() is histories.active

    histories.park(3, mask, None)
    assert histories.resume(3, np.ones((8, 8), np.uint8)) is None  # another mask: the old steps do not fit it
    assert histories.dropped_because == "its mask was changed meanwhile"
    assert histories.resume(5, mask) is None and histories.dropped_because is None  # never had one
    assert histories.parked() == [2]
    histories.park(4, mask, None)  # an image left with no history parks nothing
    assert histories.parked() == [2]
