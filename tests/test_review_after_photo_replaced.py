"""A photo replaced on disk while its mask was being drawn: saving and then reviewing that mask (`R` in the
studio) must leave the image flagged "photo changed", as a save alone does."""

import numpy as np
from faceparse.core.store import ProjectStore
from PIL import Image


def _project(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"f{i}.png")
    return folder


def _replace_photo(path):
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(path)


def test_a_review_right_after_the_save_keeps_the_photo_changed_flag(tmp_path):
    folder = _project(tmp_path)
    with ProjectStore.create(folder) as store:
        store.scan()
        store.fill_details()
        rec = store.images()[0]
        seen = (rec.size_bytes, rec.mtime_ns)
        _replace_photo(folder / rec.relpath)
        store.save_corrected(rec.id, np.ones((16, 16), np.uint8), photo_seen=seen)
        store.set_status(rec.id, "reviewed", photo_seen=seen)
        store.scan()
        assert [r.relpath for r in store.changed_photos()] == [rec.relpath]


def test_a_save_on_the_photo_as_it_is_now_is_not_flagged(tmp_path):
    folder = _project(tmp_path)
    with ProjectStore.create(folder) as store:
        store.scan()
        rec = store.images()[0]
        _replace_photo(folder / rec.relpath)
        store.scan()
        rec = store.get(rec.id)
        seen = (rec.size_bytes, rec.mtime_ns)
        store.save_corrected(rec.id, np.ones((20, 20), np.uint8), photo_seen=seen)
        store.set_status(rec.id, "reviewed", photo_seen=seen)
        store.scan()
        assert store.changed_photos() == []
        assert store.get(rec.id).status == "reviewed"
