"""A photo whose header reads but whose data stops short: whichever part of the studio decodes it first (a
thumbnail, the read-ahead of the neighbours, or opening it) records the error, so its list badge says "error"
without a rescan, and nothing prints a traceback for it."""

from __future__ import annotations

import io

import numpy as np
from faceparse.app.gui.image_cache import PrefetchCache
from faceparse.app.gui.image_list import badge_for
from faceparse.app.gui.thumbnail_loader import ThumbnailLoader
from faceparse.app.gui.workers import TaskRunner
from faceparse.core.imageio import ImageLoadError, read_size
from faceparse.core.store import ProjectStore
from faceparse.core.thumbnails import ThumbnailCache
from PIL import Image
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from test_gui_helpers import open_window


def _truncated_jpeg() -> bytes:
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), np.uint8)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    return data[: len(data) // 2]


def _project(folder, names=("a.png", "b_cut.jpg", "c.png")):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name in names:
        if name.endswith("_cut.jpg"):
            (folder / name).write_bytes(_truncated_jpeg())
        else:
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(folder / name)
    store = ProjectStore.create(folder, "celebamask-hq")
    store.scan()
    return store


def _by_name(store, name):
    return next(r for r in store.images() if r.name == name)


def test_the_header_reads_so_only_decoding_finds_the_damage(tmp_path):
    store = _project(tmp_path / "f")
    try:
        assert read_size(tmp_path / "f" / "b_cut.jpg") == (96, 96)
        assert _by_name(store, "b_cut.jpg").error is None
    finally:
        store.close()


def test_a_photo_that_does_not_decode_needs_attention(tmp_path):
    from faceparse.core.store import NEEDS_ATTENTION

    with _project(tmp_path / "f") as store:
        assert store.count(NEEDS_ATTENTION) == 0
        record = _by_name(store, "b_cut.jpg")
        store.note_load_error(record.id, ImageLoadError("x", "the file is truncated"))
        assert store.count(NEEDS_ATTENTION) == 1
        assert [r.id for r in store.images(NEEDS_ATTENTION)] == [record.id]


def test_note_load_error_records_lasting_failures_once(tmp_path):
    store = _project(tmp_path / "f")
    try:
        record = _by_name(store, "b_cut.jpg")
        assert store.note_load_error(record.id, ImageLoadError("x", "locked", lasting=False)) is None
        assert store.get(record.id).error is None
        updated = store.note_load_error(record.id, ImageLoadError("x", "the file is truncated"))
        assert updated is not None and updated.error == "the file is truncated"
        assert store.note_load_error(record.id, ImageLoadError("x", "the file is truncated")) is None
    finally:
        store.close()


def test_the_details_pass_keeps_a_decode_error_found_while_it_read_the_file(tmp_path):
    with _project(tmp_path / "f") as store:
        record = _by_name(store, "b_cut.jpg")
        details = store._details

        def a_thumbnail_fails_meanwhile(image_id, *rest):
            out = details(image_id, *rest)
            if image_id == record.id:
                store.note_load_error(image_id, ImageLoadError("x", "the file is truncated"))
            return out

        store._details = a_thumbnail_fails_meanwhile
        store.fill_details()
        after = store.get(record.id)
    assert after.error == "the file is truncated" and after.width == 96


def test_a_recorded_decode_error_goes_when_the_photo_is_copied_again_whole(tmp_path):
    import os

    path = tmp_path / "f" / "b_cut.jpg"
    with _project(tmp_path / "f") as store:
        record = _by_name(store, "b_cut.jpg")
        store.fill_details()  # hashed: a later change of its time alone is settled by hashing it again
        store.note_load_error(record.id, ImageLoadError("x", "the file is truncated"))
        size = len(path.read_bytes())
        whole = io.BytesIO()
        Image.new("RGB", (96, 96), (90, 120, 150)).save(whole, "JPEG")
        assert len(whole.getvalue()) < size
        path.write_bytes(whole.getvalue().ljust(size, b"\0"))  # copied again whole, into the same-sized file
        os.utime(path, ns=(record.mtime_ns + 5_000_000_000,) * 2)
        store.scan()
        store.settle_touched()
        assert store.get(record.id).error is None


def test_thumbnail_loader_records_the_error_and_says_which_record_broke(qtbot, tmp_path):
    store = _project(tmp_path / "f")
    loader = ThumbnailLoader(ThumbnailCache(store), 32)
    try:
        record = _by_name(store, "b_cut.jpg")
        with qtbot.waitSignal(loader.broken, timeout=10_000) as signal:
            assert loader.get(record) is None
        assert signal.args[0].id == record.id and "truncated" in signal.args[0].error
        assert "truncated" in store.get(record.id).error
        qtbot.waitUntil(lambda: loader.get(record) is not None)
        assert loader.get(record).isNull()
    finally:
        loader.stop()
        store.close()


class _Listener(QObject):
    """A receiver on the GUI thread, as the image list is: what the loader sends it arrives through the event loop."""

    def __init__(self):
        super().__init__()
        self.heard = []

    @Slot(object)
    def hear(self, value) -> None:
        self.heard.append(value)


def test_results_reach_the_gui_thread_while_running_and_not_after_stopping(qtbot, tmp_path):
    """A thumbnail made while the project is open is announced (the list redraws its row); the project then closes
    (the loader stops, then the store closes) while the worker's last results still wait in the event loop: those
    must not reach the list, whose store is gone."""
    store = _project(tmp_path / "f")
    loader = ThumbnailLoader(ThumbnailCache(store), 32)
    listener = _Listener()
    loader.broken.connect(listener.hear)
    loader.ready.connect(listener.hear)
    first = _by_name(store, "a.png")
    try:
        assert loader.get(first) is None
        qtbot.waitUntil(lambda: listener.heard == [first.id], timeout=10_000)
        assert loader.get(_by_name(store, "b_cut.jpg")) is None
        assert loader.get(_by_name(store, "c.png")) is None
        loader.pool.waitForDone()  # both made, their signals queued, no event processed yet
        assert "truncated" in store.get(_by_name(store, "b_cut.jpg").id).error
    finally:
        loader.stop()
        store.close()
    qtbot.wait(100)
    assert listener.heard == [first.id]


def test_read_ahead_records_the_error_quietly(qtbot, tmp_path, capfd):
    store = _project(tmp_path / "f")
    runner = TaskRunner(1)
    heard = []
    cache = PrefetchCache(store, runner, heard.append)
    try:
        broken, good = _by_name(store, "b_cut.jpg"), _by_name(store, "c.png")
        cache.prefetch([broken.id, good.id])
        qtbot.waitUntil(lambda: bool(heard) and not runner.busy, timeout=10_000)
        qtbot.wait(50)
        assert [r.id for r in heard] == [broken.id] and "truncated" in heard[0].error
        assert "truncated" in store.get(broken.id).error
        assert cache.take(broken.id) is None and cache.take(good.id) is not None
        assert "Traceback" not in capfd.readouterr().err
    finally:
        runner.wait()
        store.close()


def test_opening_it_in_the_studio_shows_why_and_turns_its_badge_to_error(qtbot, tmp_path, capfd):
    _project(tmp_path / "f").close()
    window = open_window(qtbot, tmp_path / "f", tmp_path)
    ws = window.ws
    model = ws.image_list.model
    row = model.row_of(_by_name(ws.store, "b_cut.jpg").id)
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    assert ws.session.record is None
    assert "truncated" in window.statusBar().currentMessage()
    assert "cannot be opened" in ws.canvas.notice and "truncated" in ws.canvas.notice
    assert _light_pixels(ws.canvas) > 50
    qtbot.waitUntil(lambda: badge_for(model.record(row))[0] == "error", timeout=10_000)
    image_id = model.record(row).id  # the index is written by the loading thread, maybe just after the badge turns
    qtbot.waitUntil(lambda: "truncated" in (ws.store.get(image_id).error or ""), timeout=10_000)
    QTest.keyClick(window, Qt.Key.Key_D)
    assert ws.session.record is not None and ws.session.record.name == "c.png"
    assert ws.canvas.notice == "" and "truncated" not in window.statusBar().currentMessage()
    assert "Traceback" not in capfd.readouterr().err


def _light_pixels(canvas) -> int:
    """How many pixels of the empty canvas are near white: the written notice (the background is dark grey)."""
    image = canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    rgb = pixels[:, : 3 * image.width()].reshape(image.height(), image.width(), 3)
    return int((rgb.min(axis=2) > 150).sum())


def test_the_title_and_position_name_the_chosen_photo_that_cannot_be_opened(qtbot, tmp_path):
    _project(tmp_path / "f").close()
    window = open_window(qtbot, tmp_path / "f", tmp_path)
    ws = window.ws
    before = window.position_label.text()
    QTest.keyClick(ws.canvas, Qt.Key.Key_D)
    assert ws.session.record is None
    assert window.windowTitle().startswith("b_cut.jpg (cannot be opened)[*] — ")
    assert window.position_label.text() != before and window.position_label.text().startswith("2 / ")
    assert window.zoom_label.text() == ""


def test_a_thumbnail_that_fails_unexpectedly_leaves_the_loader_serving_the_next_rows(qtbot, tmp_path, monkeypatch):
    store = _project(tmp_path / "f")
    cache = ThumbnailCache(store)
    real_load = cache.load
    odd = _by_name(store, "a.png")

    def load(record):
        if record.id == odd.id:
            raise ValueError("a picture no decoder expected")
        return real_load(record)

    monkeypatch.setattr(cache, "load", load)
    monkeypatch.setattr(store, "note_load_error", lambda *a: (_ for _ in ()).throw(RuntimeError("database locked")))
    loader = ThumbnailLoader(cache, 32)
    try:
        assert loader.get(odd) is None
        qtbot.waitUntil(lambda: loader.get(odd) is not None, timeout=10_000)
        assert loader.get(odd).isNull()
        cut = _by_name(store, "b_cut.jpg")
        assert loader.get(cut) is None
        qtbot.waitUntil(lambda: loader.get(cut) is not None, timeout=10_000)  # recording its error failed
        good = _by_name(store, "c.png")
        assert loader.get(good) is None
        qtbot.waitUntil(lambda: loader.get(good) is not None, timeout=10_000)
        assert not loader.get(good).isNull() and loader.get(good).width() == 32
    finally:
        loader.stop()
        store.close()
