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
