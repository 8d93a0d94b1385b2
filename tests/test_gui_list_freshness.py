"""The image list keeps up with a background pre-label run and with photos replaced on disk: the rows on screen
are read again while masks arrive, the open image's row shows what the editor found, a run that fails part way
still has the list re-read, a row is redrawn when its thumbnail is made, a replaced photo gets a new thumbnail,
stale thumbnails are cleared when a project opens, and keeping many changed photos' masks reads the counts once."""

import os
import time

import numpy as np
from faceparse.app.gui.thumbnail_loader import ThumbnailLoader
from faceparse.core.prelabel import PrelabelProgress
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from faceparse.core.thumbnails import ThumbnailCache
from PIL import Image
from PySide6.QtCore import Qt
from test_gui_helpers import make_project, open_window


def _statuses(window):
    model = window.ws.image_list.model
    return [model.record(row).status for row in range(model.rowCount())]


def test_rows_on_screen_follow_masks_saved_by_a_running_job(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    session = window.ws.session
    assert _statuses(window) == ["new", "new", "new"]
    open_id = session.image_id
    with ProjectStore.open(folder) as job:  # what the pre-label job writes meanwhile
        for rec in job.images():
            job.save_predicted(rec.id, draw_face(rec.id, 64, schema=job.schema)[1], "v0001")
        predicted = job.predicted_mask(open_id)
    panel = window.ws.models
    panel._prelabel_progress(PrelabelProgress(3, 3, 0, 1.0, 0.0, 3.0))
    qtbot.waitUntil(lambda: _statuses(window) == ["predicted"] * 3, timeout=5000)
    assert np.array_equal(session.editor.mask, predicted)  # the open image shows its new prediction
    assert "predicted 3" in window.ws.image_list.summary.text()


def test_progress_refreshes_the_list_at_most_every_few_seconds(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    arrivals = []
    panel.predictions_arriving.connect(lambda: arrivals.append(time.monotonic()))
    for done in range(1, 6):
        panel._prelabel_progress(PrelabelProgress(done, 5, 0, 10.0, 0.0, 0.1 * done))
    assert len(arrivals) == 1


def test_a_failed_run_still_has_the_list_read_again(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    with ProjectStore.open(folder) as job:
        rec = job.images()[1]
        job.save_predicted(rec.id, draw_face(1, 64, schema=job.schema)[1], "v0001")
    window.ws.models._prelabel_failed("stopped: 5 masks in a row could not be saved")
    qtbot.waitUntil(lambda: sorted(_statuses(window)) == ["new", "predicted"], timeout=5000)


def test_the_open_images_row_shows_what_the_editor_found(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    with ProjectStore.open(folder) as job:
        third = job.images()[2]
        job.save_predicted(third.id, draw_face(2, 64, schema=job.schema)[1], "v0001")
    window.ws.image_list.view.setCurrentIndex(window.ws.image_list.model.index(2))
    qtbot.waitUntil(lambda: window.ws.session.image_id == third.id, timeout=5000)
    assert window.ws.image_list.model.record(2).status == "predicted"


def _photo(path, colour):
    Image.fromarray(np.full((40, 40, 3), colour, np.uint8)).save(path)


def test_a_replaced_photo_gets_a_new_thumbnail(qtbot, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "a.png", (200, 0, 0))
    store = ProjectStore.create(folder)
    store.scan()
    loader = ThumbnailLoader(ThumbnailCache(store), 16)
    try:
        record = store.images()[0]
        assert loader.get(record) is None
        qtbot.waitUntil(lambda: loader.get(record) is not None, timeout=10_000)
        assert loader.get(record).pixelColor(8, 8).red() > 150
        _photo(folder / "a.png", (0, 0, 220))
        later = time.time() + 5
        os.utime(folder / "a.png", (later, later))
        store.scan()
        replaced = store.images()[0]
        assert loader.get(replaced) is None
        qtbot.waitUntil(lambda: loader.get(replaced) is not None, timeout=10_000)
        assert loader.get(replaced).pixelColor(8, 8).blue() > 150
    finally:
        loader.stop()
        store.close()


def test_a_row_is_redrawn_when_its_thumbnail_is_made(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=3, size=64), tmp_path)
    panel = window.ws.image_list
    model = panel.model
    loader = window.ws.thumbnails

    def all_made():
        return all(loader.get(model.record(row)) is not None for row in range(3))

    qtbot.waitUntil(all_made, timeout=10_000)
    qtbot.wait(50)  # the announcements of those first thumbnails are delivered before counting
    for row in range(model.rowCount()):
        loader.forget(model.record(row).id)
    redrawn = set()
    model.dataChanged.connect(
        lambda first, _last, roles: redrawn.add(first.row()) if Qt.ItemDataRole.DecorationRole in roles else None)
    panel.view.viewport().update()  # painting the rows asks for their thumbnails again
    qtbot.waitUntil(lambda: redrawn == {0, 1, 2}, timeout=10_000)
    qtbot.waitUntil(all_made, timeout=10_000)
    assert all(not model.data(model.index(row), Qt.ItemDataRole.DecorationRole).isNull() for row in range(3))


def test_opening_a_project_clears_thumbnails_no_photo_asks_for(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    with ProjectStore.open(folder) as store:
        cache = ThumbnailCache(store)
        stale = cache.folder / "ab" / "stale.jpg"
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"old")
    window = open_window(qtbot, folder, tmp_path)
    qtbot.waitUntil(lambda: not stale.exists(), timeout=10_000)
    assert window.ws.store.count() == 2


def test_keeping_many_changed_photos_masks_reads_the_counts_once(qtbot, tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=3, size=64)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.image_list
    calls = []
    real = panel.model.store.counts
    monkeypatch.setattr(panel.model.store, "counts", lambda *a, **k: calls.append(1) or real(*a, **k))
    panel.update_records([panel.model.record(row) for row in range(3)])
    assert len(calls) == 1


def test_a_background_reload_leaves_the_list_scrolled_where_it_was(qtbot, tmp_path):
    from PySide6.QtWidgets import QAbstractItemView

    folder = make_project(tmp_path / "faces", count=40, size=32, predicted=False)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.image_list
    view = panel.view
    open_id = window.ws.session.image_id
    def top_record():
        return panel.model.record(view.indexAt(view.viewport().rect().topLeft()).row())

    view.scrollTo(panel.model.index(25), QAbstractItemView.ScrollHint.PositionAtTop)
    top = top_record()
    assert top is not None and top.id != open_id
    panel.reload()
    assert top_record().id == top.id
    assert panel.model.record(view.currentIndex().row()).id == open_id  # still highlighted, just not scrolled to
