"""Masked pre-training never learns from a face a later retrain is measured on: photos nobody has checked yet
already have the split their content gives them, and those bound for validation are left out."""

import numpy as np
from faceparse.core.pretrain import pretrain_records
from faceparse.core.store import ProjectStore
from PIL import Image


def test_photos_bound_for_validation_are_never_pretrained_on(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(30):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"face{i:02d}.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        pretrained = {r.id for r in pretrain_records(store)}
        assert 0 < len(pretrained) < 30
        records = store.images()
        for rec in records[:2]:  # the first two checked go to training and validation whatever their photos
            store.save_corrected(rec.id, np.zeros((16, 16), np.uint8))
        for rec in records[2:]:
            store.save_corrected(rec.id, np.ones((16, 16), np.uint8))
        later_val = {r.id for r in store.images()[2:] if r.split == "val"}
        assert later_val and not later_val & pretrained
        assert {r.id for r in store.images()[2:] if r.split == "train"} <= pretrained


def test_photos_hashed_for_the_split_keep_their_hashes(tmp_path, monkeypatch):
    from faceparse.core import store as store_module

    rng = np.random.default_rng(4)
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"face{i:02d}.png")
    reads = []
    real_hash = store_module.content_hash
    monkeypatch.setattr(store_module, "content_hash", lambda path: reads.append(path) or real_hash(path))
    with ProjectStore.create(folder) as store:
        store.scan()
        assert all(r.content_hash is None for r in store.images())
        first = [r.id for r in pretrain_records(store)]
        assert len(reads) == 12
        assert all(r.content_hash == real_hash(folder / r.relpath) for r in store.images())
        assert [r.id for r in pretrain_records(store)] == first
        assert len(reads) == 12


def test_pretraining_stops_hashing_once_it_has_enough_photos(tmp_path, monkeypatch):
    from faceparse.core import pretrain

    rng = np.random.default_rng(5)
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(folder / f"face{i:02d}.png")
    monkeypatch.setattr(pretrain, "HASH_BATCH", 10)
    with ProjectStore.create(folder) as store:
        store.scan()
        assert len(pretrain_records(store, max_images=5)) == 5
        hashed = [r for r in store.images() if r.content_hash is not None]
        assert 5 <= len(hashed) <= 20


def test_a_copy_of_a_validation_photo_is_not_pretrained_on(tmp_path):
    """The second photo checked validates whatever its content says, and a copy of it joins it when checked."""
    from faceparse.core.store import content_hash, split_for

    rng = np.random.default_rng(6)
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / "a_first.png")
    while True:
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / "b_second.png")
        if split_for(content_hash(folder / "b_second.png")) == "train":
            break
    (folder / "c_copy.png").write_bytes((folder / "b_second.png").read_bytes())
    with ProjectStore.create(folder) as store:
        store.scan()
        first, second, copy = store.images()
        store.save_corrected(first.id, np.zeros((16, 16), np.uint8))
        store.save_corrected(second.id, np.zeros((16, 16), np.uint8))
        assert store.get(second.id).split == "val"
        assert copy.id not in {r.id for r in pretrain_records(store)}
        store.save_corrected(copy.id, np.zeros((16, 16), np.uint8))
        assert store.get(copy.id).split == "val"
