"""A retrain at a smaller size than the model in use keeps its validation faces at that model's size, so the model
in use is measured on pictures as large as pre-labeling gives it, not on enlarged small ones; training samples
stay at the training size."""

import numpy as np
from drawn_projects import KnownFaces, draw_scenes, scene_project
from faceparse.core.datasets import snapshot_project
from faceparse.core.faces import FACES
from faceparse.core.framing import Framing


def two_splits(store):
    """One photo in each split, whatever their hashes say."""
    ids = [rec.id for rec in store.images()]
    with store._write() as c:
        c.execute("UPDATE images SET split = 'train'")
        c.execute("UPDATE images SET split = 'val' WHERE id = ?", (ids[0],))


def test_validation_face_crops_are_cut_at_the_larger_size(tmp_path):
    scenes = draw_scenes((2, 1), size=(160, 120))
    store = scene_project(tmp_path / "faces", scenes)
    try:
        two_splits(store)
        snapshot = snapshot_project(store, "parser", framing=Framing(FACES, KnownFaces(scenes)), input_size=32,
                                    val_input_size=64)
        assert snapshot.train and snapshot.val
        assert all(s.image.shape == (32, 32, 3) and s.mask.shape == (32, 32) for s in snapshot.train)
        assert all(s.image.shape == (64, 64, 3) and s.mask.shape == (64, 64) for s in snapshot.val)
        same = snapshot_project(store, "parser", framing=Framing(FACES, KnownFaces(scenes)), input_size=32,
                                val_input_size=16)
        assert all(s.image.shape == (32, 32, 3) for s in same.train + same.val)  # never smaller than training's
    finally:
        store.close()


def test_validation_photos_are_kept_larger_in_whole_image_projects(tmp_path):
    scenes = draw_scenes((1, 1), size=(160, 120))
    store = scene_project(tmp_path / "whole", scenes, mode=None)
    try:
        two_splits(store)
        snapshot = snapshot_project(store, "parser", max_side=40, val_max_side=120)
        assert [s.image.shape for s in snapshot.train] == [(30, 40, 3)]
        assert [s.mask.shape for s in snapshot.val] == [(90, 120)]
        assert np.isin(snapshot.val[0].mask, np.unique(scenes[snapshot.val[0].relpath][1])).all()
    finally:
        store.close()
