"""A photo replaced by another of the same size must not keep passing its old mask off as its own."""
import os
import sqlite3

import numpy as np
import pytest
from faceparse.core.datasets import snapshot_project
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore
from PIL import Image

W, H = 16, 12


def put_photo(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def mask(value):
    m = np.zeros((H, W), np.uint8)
    m[3:9, 4:12] = value
    return m


@pytest.fixture
def store(tmp_path):
    for i in range(3):
        put_photo(tmp_path / "faces" / f"face{i}.png", seed=i)
    s = ProjectStore.create(tmp_path / "faces")
    s.scan()
    s.fill_details()
    for rec in s.images():
        s.save_corrected(rec.id, mask(1 + rec.id % 3))
    yield s
    s.close()


def replace_with_same_size_photo(store, rec, seed=99):
    path = store.root / rec.relpath
    before = path.stat().st_mtime_ns
    put_photo(path, seed=seed)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_a_same_size_replacement_is_flagged_after_the_rescan(store):
    rec = store.images()[0]
    assert not rec.photo_changed
    replace_with_same_size_photo(store, rec)
    store.scan()
    store.fill_details()
    changed = store.get(rec.id)
    assert changed.photo_changed and changed.status == "corrected"
    assert store.corrected_mask(rec.id) is not None, "the old mask is kept, not thrown away"
    assert [r.id for r in store.images() if r.photo_changed] == [rec.id]


def test_touching_a_photo_without_changing_it_flags_nothing(store):
    rec = store.images()[0]
    path = store.root / rec.relpath
    os.utime(path, ns=(rec.mtime_ns + 5_000_000_000, rec.mtime_ns + 5_000_000_000))
    store.scan()
    store.fill_details()
    assert not store.get(rec.id).photo_changed
    assert not store.photo_changed_since_checked(store.get(rec.id))


def test_export_skips_a_changed_photo_with_its_reason(store, tmp_path):
    rec = store.images()[1]
    replace_with_same_size_photo(store, rec)
    result = export_dataset(store, tmp_path / "out", "coco", only="corrected")
    assert result.count == 2
    assert len(result.skipped) == 1 and rec.relpath in result.skipped[0] and "changed" in result.skipped[0]


def test_training_skips_a_changed_photo(store):
    rec = store.images()[2]
    replace_with_same_size_photo(store, rec)
    store.scan()
    store.fill_details()
    snapshot = snapshot_project(store)
    assert rec.relpath in [path for path, _ in snapshot.skipped]
    used = {s.relpath for s in snapshot.train + snapshot.val}
    assert rec.relpath not in used and len(used) == 2


@pytest.mark.parametrize("how", ["save", "review"])
def test_saving_or_reviewing_again_accepts_the_mask_for_the_new_photo(store, tmp_path, how):
    rec = store.images()[0]
    replace_with_same_size_photo(store, rec)
    store.scan()
    store.fill_details()
    assert store.get(rec.id).photo_changed
    if how == "save":
        store.save_corrected(rec.id, mask(5))
    else:
        store.set_status(rec.id, "reviewed")
    accepted = store.get(rec.id)
    assert not accepted.photo_changed and not store.photo_changed_since_checked(accepted)
    result = export_dataset(store, tmp_path / "out", "coco", only="corrected")
    assert result.count == 3 and result.skipped == []


def _as_before_the_check(store, unhashed=None):
    """Close the project and take its database back to before `labeled_hash` existed; returns the folder."""
    root, db = store.root, store.db_path
    store.close()
    with sqlite3.connect(db) as c:
        c.execute("ALTER TABLE images DROP COLUMN labeled_hash")
        if unhashed is not None:
            c.execute("UPDATE images SET content_hash = NULL WHERE id = ?", (unhashed,))
    return root


def test_a_project_from_before_the_check_counts_its_masks_as_checked_on_the_current_photos(store):
    checked = store.images()[0]
    root = _as_before_the_check(store)
    with ProjectStore.open(root) as reopened:
        rec = reopened.get(checked.id)
        assert rec.labeled_hash == rec.content_hash is not None
        replace_with_same_size_photo(reopened, rec)
        reopened.scan()
        reopened.fill_details()
        assert reopened.get(rec.id).photo_changed


@pytest.mark.parametrize("how", ["save", "review"])
def test_checking_a_photo_replaced_since_the_last_scan_accepts_the_photo_on_disk(store, tmp_path, how):
    rec = store.images()[0]
    replace_with_same_size_photo(store, rec)
    if how == "save":
        store.save_corrected(rec.id, mask(5))
    else:
        store.set_status(rec.id, "reviewed")
    assert not store.photo_changed_since_checked(store.get(rec.id))
    store.scan()
    store.fill_details()
    assert not store.get(rec.id).photo_changed and store.changed_photos() == []


def test_a_rescan_keeps_which_model_pre_labeled_a_checked_image(store):
    rec = store.images()[0]
    store.save_predicted(rec.id, mask(2), "v0001")
    path = store.root / rec.relpath
    os.utime(path, ns=(rec.mtime_ns + 7_000_000_000,) * 2)
    store.scan()
    assert store.get(rec.id).model_version == "v0001"


def test_a_checked_image_not_yet_hashed_when_the_project_was_upgraded_takes_its_first_hash(store):
    rec = store.images()[0]
    root = _as_before_the_check(store, unhashed=rec.id)
    with ProjectStore.open(root) as reopened:
        assert reopened.get(rec.id).labeled_hash is None
        reopened.fill_details()
        assert reopened.get(rec.id).labeled_hash == reopened.get(rec.id).content_hash is not None
        replace_with_same_size_photo(reopened, rec)
        reopened.scan()
        reopened.fill_details()
        assert [r.id for r in reopened.changed_photos()] == [rec.id]


def test_a_photo_unchanged_since_the_scan_is_not_read_again(store, monkeypatch):
    from faceparse.core import store as store_module

    def no_reading(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(store_module, "content_hash", no_reading)
    rec = store.images()[0]
    store.save_corrected(rec.id, mask(4))
    store.set_status(rec.id, "reviewed")
    assert not store.photo_changed_since_checked(store.get(rec.id))


def test_masks_of_renumbered_photos_are_not_kept_for_the_wrong_pictures(store):
    """face0 deleted and face1, face2 renamed one place down: each name now holds the picture another name's mask
    was checked on, so keeping the masks 'as the photos are the same' would pair every mask with the wrong face."""
    from faceparse.core.changed_photos import keep_changed_masks

    root = store.root
    (root / "face0.png").unlink()
    for old, new in (("face1.png", "face0.png"), ("face2.png", "face1.png")):
        os.replace(root / old, root / new)
        os.utime(root / new, ns=(os.stat(root / new).st_mtime_ns + 2_000_000_000,) * 2)
    store.scan()
    changed = {rec.relpath for rec in store.changed_photos()}
    assert changed == {"face0.png", "face1.png"}
    result = keep_changed_masks(store)
    assert not result.kept
    assert all("checked on" in reason for _, reason in result.refused)
    assert {rec.relpath for rec in store.changed_photos()} == changed
