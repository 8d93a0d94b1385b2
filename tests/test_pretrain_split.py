"""Masked pre-training never learns from a face a later retrain is measured on: photos nobody has checked yet
already have the split their content gives them, and those bound for validation are left out."""

import numpy as np
from faceparse.core.pretrain import pretrain_records
from faceparse.core.store import ProjectStore, split_for
from PIL import Image


def noise_photos(tmp_path, count, seed, side=16):
    """A folder of `count` random photos of `side` px."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (side, side, 3), np.uint8)).save(folder / f"face{i:02d}.png")
    return folder


def test_photos_bound_for_validation_are_never_pretrained_on(tmp_path):
    folder = noise_photos(tmp_path, 30, seed=3)
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

    folder = noise_photos(tmp_path, 12, seed=4)
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

    folder = noise_photos(tmp_path, 40, seed=5, side=8)
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


def test_finding_the_faces_counts_against_pretrainings_share_of_the_time_limit(monkeypatch):
    import time
    from types import SimpleNamespace

    from faceparse.core import pretrain
    from faceparse.core.recipes import TrainConfig

    def slow_images(ctx):
        time.sleep(0.4)
        return pretrain.PretrainImages([np.zeros((8, 8, 3), np.uint8)] * 4, 4)

    limits = []
    monkeypatch.setattr(pretrain, "_job_images", slow_images)
    monkeypatch.setattr(pretrain, "masked_pretrain", lambda images, config, **kw: limits.append(config.time_limit_s))
    monkeypatch.setattr(pretrain.MaskedPretrainNet, "from_parser", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(pretrain, "transfer_pretrained_body", lambda net, model: None)
    config = TrainConfig.for_task("parser", time_limit_s=2.0)
    ctx = SimpleNamespace(config=config, model=None, arch_args={}, device="cpu", cancel_event=None,
                          cancelled=lambda: False, emit=lambda *a, **k: None, note=lambda *a: None,
                          check_cancel=lambda: None, pretrain_seconds=0.0)
    pretrain.pretrain_phase(ctx)
    share = 2.0 * pretrain.PRETRAIN_SHARE_OF_TIME_LIMIT
    assert ctx.pretrain_seconds >= 0.4
    assert limits and limits[0] <= share - 0.4 + 1e-6


def test_a_project_opened_for_reading_is_not_written_to_for_the_split(tmp_path):
    folder = noise_photos(tmp_path, 10, seed=7)
    with ProjectStore.create(folder) as store:
        store.scan()
    with ProjectStore.open(folder, read_only=True) as store:
        assert len(pretrain_records(store)) > 0
        assert all(r.content_hash is None for r in store.images())


def test_a_photo_pretrained_on_is_never_made_the_first_validation_image(tmp_path):
    from faceparse.core.store import content_hash

    rng = np.random.default_rng(8)
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("a_first", "c_third"):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"{name}.png")
    while True:  # a photo whose content would send it to training
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / "b_second.png")
        if split_for(content_hash(folder / "b_second.png")) == "train":
            break
    with ProjectStore.create(folder) as store:
        store.scan()
        first, second, third = store.images()
        store.save_corrected(first.id, np.zeros((16, 16), np.uint8))
        store.note_pretrained_on([second.id])
        store.save_corrected(second.id, np.zeros((16, 16), np.uint8))
        assert store.get(second.id).split == "train"
        store.save_corrected(third.id, np.zeros((16, 16), np.uint8))
        assert store.get(third.id).split == "val"
