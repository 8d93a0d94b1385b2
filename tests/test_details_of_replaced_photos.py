"""The background details pass reads a photo's size and hash some time after the scan saw the file. A photo replaced
in between (or while it is read) must not have the new picture's size and hash stored beside the old file's byte size
and time: the index would then describe a photo nobody has scanned, and a mask drawn on the old one would be refused
for not fitting the new one."""

import os

import numpy as np
import pytest
from faceparse.core import store as store_module
from faceparse.core.store import MaskError, ProjectStore
from PIL import Image


def _photo(path, width, height, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _replace(path, width, height):
    before = path.stat().st_mtime_ns
    _photo(path, width, height, seed=7)
    os.utime(path, ns=(before + 3_000_000_000,) * 2)


@pytest.fixture
def project(tmp_path):
    """A scanned folder of two photos, a.png and b.png, whose details are not read yet."""
    folder = tmp_path / "faces"
    folder.mkdir()
    _photo(folder / "a.png", 40, 30, seed=1)
    _photo(folder / "b.png", 40, 30, seed=2)
    store = ProjectStore.create(folder)
    store.scan()
    yield folder, store
    store.close()


def _record(store, name):
    return next(r for r in store.images() if r.name == name)


def test_a_photo_replaced_after_the_scan_waits_for_the_scan_that_sees_it(project):
    folder, store = project
    a, b = sorted(store.images(), key=lambda r: r.name)
    _replace(folder / "a.png", 20, 50)
    assert store.fill_details() == 2
    waiting = store.get(a.id)
    assert (waiting.width, waiting.height, waiting.content_hash) == (None, None, None)
    assert (store.get(b.id).width, store.get(b.id).height) == (40, 30) and store.get(b.id).content_hash

    store.scan()
    store.fill_details()
    seen = store.get(a.id)
    assert (seen.width, seen.height) == (20, 50) and seen.content_hash is not None
    assert (seen.size_bytes, seen.mtime_ns) == ((folder / "a.png").stat().st_size,
                                                (folder / "a.png").stat().st_mtime_ns)


def test_a_photo_replaced_while_it_is_read_keeps_no_details(project, monkeypatch):
    _folder, store = project
    real_hash = store_module.content_hash

    def hash_then_replace(path):
        digest = real_hash(path)
        if path.name == "a.png" and not getattr(hash_then_replace, "done", False):
            hash_then_replace.done = True
            _replace(path, 20, 50)
        return digest

    monkeypatch.setattr(store_module, "content_hash", hash_then_replace)
    a = _record(store, "a.png")
    store.fill_details()
    assert store.get(a.id).content_hash is None and store.get(a.id).width is None


def test_a_mask_saved_on_the_old_photo_fits_after_the_details_pass(project):
    """The annotator opened the photo as scanned and detailed; it is replaced by one of another size before the save
    (a later details pass has nothing to read again): the mask of the size they saw is taken, and the photo is
    flagged changed."""
    folder, store = project
    store.fill_details()
    a = _record(store, "a.png")
    seen = (a.size_bytes, a.mtime_ns)
    _replace(folder / "a.png", 20, 50)
    store.fill_details()
    store.save_corrected(a.id, np.ones((30, 40), np.uint8), photo_seen=seen)
    store.scan()
    assert [changed.id for changed in store.changed_photos()] == [a.id]


def test_checking_a_mask_against_an_undetailed_replaced_photo_records_no_size(project):
    folder, store = project
    a = _record(store, "a.png")
    _replace(folder / "a.png", 20, 50)
    store.save_corrected(a.id, np.ones((50, 20), np.uint8))  # drawn on the new photo, as opened now
    assert store.get(a.id).width is None  # the size of the file the index describes is still unknown
    store.scan()
    store.fill_details()
    assert (store.get(a.id).width, store.get(a.id).height) == (20, 50)


def test_a_mask_drawn_on_a_photo_replaced_before_its_size_was_read_is_kept_and_flagged(project):
    """The photo was opened before the details pass read its size, and replaced by one of another size while it
    was painted: nothing is left to measure the mask against, so it is saved at the size it was drawn and the
    image is flagged "photo changed", not refused (the annotator's work would be lost on closing)."""
    folder, store = project
    a = _record(store, "a.png")
    seen = (a.size_bytes, a.mtime_ns)
    _replace(folder / "a.png", 20, 50)
    drawn = np.ones((30, 40), np.uint8)
    with pytest.raises(MaskError, match="is 40x30, but the image is 20x50"):
        store.save_corrected(a.id, drawn)  # without saying which photo it was drawn on, it does not fit
    store.save_corrected(a.id, drawn, photo_seen=seen)
    assert np.array_equal(store.corrected_mask(a.id), drawn)
    store.scan()
    store.fill_details()
    assert [changed.id for changed in store.changed_photos()] == [a.id]


def test_a_mask_drawn_on_a_photo_the_index_has_already_rescanned_is_kept_and_flagged(project):
    folder, store = project
    store.fill_details()
    a = _record(store, "a.png")
    seen = (a.size_bytes, a.mtime_ns)
    _replace(folder / "a.png", 20, 50)
    store.scan()  # the index now describes the new photo: the old one's size is forgotten
    store.fill_details()
    store.save_corrected(a.id, np.ones((30, 40), np.uint8), photo_seen=seen)
    assert [changed.id for changed in store.changed_photos()] == [a.id]
    assert store.get(a.id).photo_changed
