"""A photo replaced on disk while its mask is being corrected: the mask is saved as drawn on the photo the
annotator saw, so the image counts as "photo changed" instead of passing the mask off as the new photo's."""

import numpy as np
import pytest
from faceparse.app.gui import main_window
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point


def _detailed(folder, image_id) -> bool:
    with ProjectStore.open(folder) as store:
        record = store.get(image_id)
        return record.width is not None and record.content_hash is not None


@pytest.mark.parametrize("details_read_first", [True, False])
def test_a_mask_drawn_before_the_photo_was_replaced_flags_the_photo_as_changed(qtbot, tmp_path, monkeypatch,
                                                                               details_read_first):
    """Whether the background pass read the photo's size before it was replaced or not (then the index never knew
    the size the mask was drawn at), the edit is saved and the image flagged."""
    folder = make_project(tmp_path / "faces", count=2, predicted=False)
    if not details_read_first:  # a large folder: the pass has not reached this photo yet
        monkeypatch.setattr(main_window, "_fill_details", lambda store, cancel: False)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=60_000)
    session, canvas = window.ws.session, window.ws.canvas
    rec = session.record
    if details_read_first:
        qtbot.waitUntil(lambda: _detailed(folder, rec.id), timeout=10_000)
    Image.fromarray(np.full((200, 90, 3), 128, np.uint8)).save(folder / rec.relpath)  # replaced while open
    QTest.keyClick(canvas, Qt.Key.Key_3)
    drag(canvas, [viewport_point(canvas, x, 20.5) for x in (10.5, 70.5)])
    window.actions["next_image"].trigger()
    session.writer.wait()
    qtbot.waitUntil(lambda: not session.unsaved())
    with ProjectStore.open(folder) as store:
        assert store.get(rec.id).status == "corrected"
        store.scan()
        assert [changed.relpath for changed in store.changed_photos()] == [rec.relpath]


def test_a_mask_saved_on_the_photo_as_it_was_opened_is_not_flagged(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, predicted=False)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=60_000)
    session, canvas = window.ws.session, window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_3)
    drag(canvas, [viewport_point(canvas, x, 20.5) for x in (10.5, 70.5)])
    QTest.keyClick(canvas, Qt.Key.Key_R)
    session.writer.wait()
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    with ProjectStore.open(folder) as store:
        store.scan()
        assert store.changed_photos() == []
