"""The store under the failures a person's machine produces: an import's kept masks outlive another process's
clean-up, a photo replaced with another size while open still takes its edits, a passing read error is not held
against a photo, a full disk while keeping changed photos' masks is called that, and concurrent writes never
loosen the files' permissions."""

import errno
import os
import sqlite3
import threading
import time

import numpy as np
import pytest
from faceparse.core import atomic
from faceparse.core.changed_photos import keep_changed_masks
from faceparse.core.imageio import ImageLoadError, load_mask, load_rgb
from faceparse.core.mask_rollback import MaskRollback
from faceparse.core.store import MaskError, ProjectStore
from PIL import Image, ImageFile


def make_project(folder, size=(40, 30), count=1):
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((size[1], size[0], 3), 60 + i, np.uint8)).save(folder / f"face{i}.png")
    with ProjectStore.create(folder) as store:
        store.scan()
    return folder


def mask_of(size, value):
    mask = np.zeros((size[1], size[0]), np.uint8)
    mask[2:8, 3:9] = value
    return mask


def test_an_imports_kept_mask_survives_a_clean_up_by_another_open(tmp_path):
    folder = make_project(tmp_path / "faces")
    with ProjectStore.open(folder) as store:
        image_id = store.images()[0].id
        original = mask_of((40, 30), 1)
        store.save_corrected(image_id, original)
        an_hour_ago = time.time() - 2 * 3600
        os.utime(store.mask_path("corrected", image_id), (an_hour_ago, an_hour_ago))
        rollback = MaskRollback(store)
        rollback.keep(image_id)
        with ProjectStore.open(folder):  # a retrain worker or `faceparse info` opening the project meanwhile
            pass
        store.save_corrected(image_id, mask_of((40, 30), 2))
        rollback.restore()
        assert np.array_equal(store.corrected_mask(image_id), original)


def test_two_imports_keeping_one_image_each_restore_their_own_mask(tmp_path):
    folder = make_project(tmp_path / "faces")
    with ProjectStore.open(folder) as store:
        image_id = store.images()[0].id
        first_seen = mask_of((40, 30), 1)
        store.save_corrected(image_id, first_seen)
        first = MaskRollback(store)
        first.keep(image_id)
        store.save_corrected(image_id, mask_of((40, 30), 2))
        second = MaskRollback(store)  # a second import started meanwhile, in a terminal
        second.keep(image_id)
        second.discard()  # its saves went through: it forgets its own copy, and only that
        first.restore()
        assert np.array_equal(store.corrected_mask(image_id), first_seen)
        assert not [p for p in store.mask_path("corrected", image_id).parent.iterdir() if ".kept" in p.name]


def replace_photo(path, size):
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(path)
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))


def test_a_photo_replaced_with_another_size_takes_a_mask_of_either_size_until_the_next_scan(tmp_path):
    folder = make_project(tmp_path / "faces")
    with ProjectStore.open(folder) as store:
        rec = store.images()[0]
        store.save_corrected(rec.id, mask_of((40, 30), 2))  # the index learns the photo's size
        replace_photo(folder / rec.relpath, (60, 20))
        store.save_corrected(rec.id, mask_of((60, 20), 3))  # opened after the change: the new size
        assert store.corrected_mask(rec.id).shape == (20, 60)
        store.save_corrected(rec.id, mask_of((40, 30), 4))  # opened before the change: the size it had
        assert store.corrected_mask(rec.id).shape == (30, 40)
        with pytest.raises(MaskError, match=r"is 10x10, but the image is 60x20"):
            store.save_corrected(rec.id, np.zeros((10, 10), np.uint8))


def test_an_unchanged_photo_still_refuses_a_mask_of_another_size(tmp_path):
    folder = make_project(tmp_path / "faces")
    with ProjectStore.open(folder) as store:
        with pytest.raises(MaskError, match=r"is 60x20, but the image is 40x30"):
            store.save_corrected(store.images()[0].id, np.zeros((20, 60), np.uint8))


@pytest.fixture
def failing_reads(monkeypatch):
    def fail(self):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)


def test_a_system_read_error_is_a_passing_failure(tmp_path, failing_reads):
    folder = make_project(tmp_path / "faces")
    with pytest.raises(ImageLoadError) as caught:
        load_rgb(folder / "face0.png")
    assert not caught.value.lasting
    assert "could not be read just now (Input/output error)" in caught.value.reason
    with ProjectStore.open(folder) as store:
        assert store.note_load_error(store.images()[0].id, caught.value) is None
        assert store.images()[0].error is None


def test_a_damaged_file_is_still_a_lasting_failure(tmp_path):
    path = tmp_path / "broken.png"
    Image.new("RGB", (32, 32)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ImageLoadError) as caught:
        load_rgb(path)
    assert caught.value.lasting
    with pytest.raises(ImageLoadError) as caught:
        load_mask(path)
    assert caught.value.lasting


def test_a_full_index_while_noting_a_load_error_loses_nothing(tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces")
    with ProjectStore.open(folder) as store:
        def full(*args):
            raise sqlite3.OperationalError("database or disk is full")
        monkeypatch.setattr(store, "set_error", full)
        rec = store.images()[0]
        assert store.note_load_error(rec.id, ImageLoadError(folder / rec.relpath, "the file is corrupt")) is None


def test_keeping_a_changed_photos_mask_on_a_full_disk_says_so(tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=2)
    with ProjectStore.open(folder) as store:
        for rec in store.images():
            store.save_corrected(rec.id, mask_of((40, 30), 1))
            store.set_status(rec.id, "reviewed")
        for rec in store.images():
            replace_photo(folder / rec.relpath, (80, 60))  # scaled 2x: its mask is scaled with it
        store.scan()
        assert len(store.changed_photos()) == 2

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(store, "save_corrected", no_space)
        kept = keep_changed_masks(store)
    assert not kept.kept
    assert [reason for _, reason in kept.refused] == ["its scaled mask could not be saved: the disk is full"] * 2


def test_atomic_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    before = os.umask(0o022)
    os.umask(before)

    def forbidden(mask):
        raise AssertionError("the umask was set while writing")
    monkeypatch.setattr(os, "umask", forbidden)
    errors = []

    def write(n):
        try:
            for i in range(20):
                atomic.atomic_write_bytes(tmp_path / f"{n}-{i}.bin", b"x", durable=False)
        except AssertionError as e:
            errors.append(e)
    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert (tmp_path / "0-0.bin").stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK
