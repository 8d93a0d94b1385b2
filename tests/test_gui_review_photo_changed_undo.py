"""R pressed by a slip on a "photo changed" image, then Ctrl+Z: the review is taken back but the "photo changed"
flag is gone for good, so export and training take a mask nobody checked against the new photo."""
import numpy as np
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window

CTRL = Qt.KeyboardModifier.ControlModifier


def _case(qtbot, tmp_path, status):
    folder = make_project(tmp_path / "faces", count=2, corrected=True)
    with ProjectStore.open(folder) as store:
        store.fill_details()
        first = store.images()[0]
        store.set_status(first.id, status)
        path = store.root / first.relpath
    pixels = np.asarray(Image.open(path)).copy()
    pixels[:10] = 255
    Image.fromarray(pixels).save(path)  # the photo is retouched after its mask was checked
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    qtbot.waitUntil(lambda: ws.image_list.model.record(0).photo_changed, timeout=10_000)
    ws.image_list.reload()
    ws.session.reload()
    qtbot.waitUntil(lambda: ws.session.record is not None and ws.session.record.photo_changed)
    assert ws.store.get(first.id).photo_changed

    QTest.keyClick(ws.canvas, Qt.Key.Key_R)  # a slip
    qtbot.waitUntil(lambda: ws.store.get(first.id).status == "reviewed" and not ws.store.get(first.id).photo_changed)
    QTest.keyClick(ws.canvas, Qt.Key.Key_Z, CTRL)  # taken back
    ws.session.flush()
    qtbot.wait(200)
    after = ws.store.get(first.id)
    assert after.status == status
    assert after.photo_changed, "the photo-changed flag was lost by R + Ctrl+Z"
    assert [r.id for r in ws.store.changed_photos()] == [first.id]


def test_a_slip_of_r_on_a_reviewed_image_whose_photo_changed_is_taken_back(qtbot, tmp_path):
    _case(qtbot, tmp_path, "reviewed")


def test_a_slip_of_r_on_a_corrected_image_whose_photo_changed_is_taken_back(qtbot, tmp_path):
    _case(qtbot, tmp_path, "corrected")
