"""A photo whose time alone changed (touched, copied without its times, restored from a backup) keeps its
prediction once hashing shows the same bytes; the same byte size with other bytes is still predicted again."""

import os

import numpy as np
import pytest
from drawn_projects import draw_folder
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.prelabel import PrelabelJob
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from onnx_models import foreground_model
from PIL import Image

COUNT = 4
SIZE = 64


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("touched_models") / "face.onnx")


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "photos"
    draw_folder(root, COUNT, SIZE, seed=200, suffix=".bmp", background="none")
    s = ProjectStore.create(root)
    s.scan()
    yield s
    s.close()


def touch(path, seconds=5):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


def same_size_other_bytes(path):
    """Rewrite a BMP with other pixels: an uncompressed file keeps its byte size exactly."""
    size = path.stat().st_size
    pixels = np.asarray(Image.open(path)).copy()
    Image.fromarray(255 - pixels).save(path)
    assert path.stat().st_size == size


def mask_times(store):
    return {rec.relpath: store.mask_path("predicted", rec.id).stat().st_mtime_ns for rec in store.images()}


def test_touching_every_photo_predicts_nothing_again(store, model):
    first = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    assert first.predicted == COUNT
    before = mask_times(store)
    for rec in store.images():
        touch(store.root / rec.relpath)
    scan = store.scan()
    assert scan.changed == COUNT
    assert all(rec.hash_before is not None and rec.model_version == first.model_id for rec in store.images())
    again = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    assert again.predicted == 0 and again.skipped_current == COUNT
    assert mask_times(store) == before
    assert all(rec.hash_before is None and rec.content_hash is not None for rec in store.images())


def test_same_size_other_bytes_is_predicted_again(store, model):
    first = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    path = store.root / "face2.bmp"
    same_size_other_bytes(path)
    touch(path)
    touch(store.root / "face1.bmp")
    store.scan()
    again = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    assert again.predicted == 1 and again.skipped_current == COUNT - 1
    assert store.find("face2.bmp").model_version == first.model_id
    assert not any(rec.hash_before for rec in store.images())


def test_a_touched_photo_is_not_current_until_hashed(store, model):
    job = PrelabelJob(store, model, mode=WHOLE_IMAGE)
    result = job.run()
    touch(store.root / "face0.bmp")
    store.scan()
    rec = store.find("face0.bmp")
    assert not job.is_current(rec, result.model_id)
    assert store.settle_touched() == 1
    assert job.is_current(store.find("face0.bmp"), result.model_id)
    assert store.settle_touched() == 0


def test_the_details_pass_settles_touched_photos_too(store, model):
    result = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    same_size_other_bytes(store.root / "face3.bmp")
    touch(store.root / "face3.bmp")
    touch(store.root / "face0.bmp")
    store.scan()
    store.fill_details()
    kept, changed = store.find("face0.bmp"), store.find("face3.bmp")
    assert kept.model_version == result.model_id and kept.hash_before is None
    assert changed.model_version is None and changed.hash_before is None and changed.status == "predicted"


def test_touched_twice_before_hashing_still_compares_with_the_first_hash(store, model):
    result = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    original = store.find("face1.bmp").content_hash
    touch(store.root / "face1.bmp", 5)
    store.scan()
    touch(store.root / "face1.bmp", 10)
    store.scan()
    assert store.find("face1.bmp").hash_before == original
    store.settle_touched()
    assert store.find("face1.bmp").model_version == result.model_id


def test_a_new_byte_size_forgets_the_prediction_at_once(store, model):
    PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    path = store.root / "face0.bmp"
    Image.fromarray(draw_face(999, SIZE + 8, background="none")[0]).save(path)
    touch(path)
    store.scan()
    rec = store.find("face0.bmp")
    assert rec.model_version is None and rec.hash_before is None


def test_an_unreadable_touched_photo_loses_its_prediction(store, model):
    PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    path = store.root / "face0.bmp"
    size = path.stat().st_size
    path.write_bytes(b"\0" * size)
    touch(path)
    store.scan()
    store.settle_touched()
    rec = store.find("face0.bmp")
    assert rec.error is not None and rec.model_version is None


def test_an_older_project_gains_the_column(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    Image.fromarray(draw_face(1, SIZE, background="none")[0]).save(root / "a.bmp")
    with ProjectStore.create(root) as s:
        s.scan()
        db = s.db_path
    import sqlite3

    with sqlite3.connect(db) as c:
        c.execute("ALTER TABLE images DROP COLUMN hash_before")
    with ProjectStore.open(root) as s:
        assert s.find("a.bmp").hash_before is None
        touch(root / "a.bmp")
        s.scan()
        assert s.settle_touched() == 0  # never hashed: nothing to compare with, so the old rule applies


def test_export_of_predictions_leaves_out_a_touched_photo_with_other_bytes(store, model, tmp_path):
    from faceparse.core.export import export_dataset

    PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    same_size_other_bytes(store.root / "face1.bmp")
    touch(store.root / "face1.bmp")
    touch(store.root / "face2.bmp")
    store.scan()
    result = export_dataset(store, tmp_path / "out", "index-png", only="all")
    assert result.count == COUNT - 1
    assert [s.split(":")[0] for s in result.skipped] == ["face1.bmp"]


def test_a_photo_deleted_and_put_back_with_a_new_time_keeps_its_prediction_if_its_bytes_are_the_same(store, model):
    first = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    kept, other = store.images()[:2]
    saved = {rec.relpath: (store.root / rec.relpath).read_bytes() for rec in (kept, other)}
    for rec in (kept, other):
        (store.root / rec.relpath).unlink()
    store.scan()
    assert {r.relpath for r in store.missing_photos()} >= {kept.relpath, other.relpath}
    for rec in (kept, other):
        (store.root / rec.relpath).write_bytes(saved[rec.relpath])  # a new time, as a restore gives
    same_size_other_bytes(store.root / other.relpath)
    store.scan()
    store.settle_touched()
    assert store.get(kept.id).model_version == first.model_id
    assert store.get(other.id).model_version is None
    again = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
    assert again.predicted == 1
