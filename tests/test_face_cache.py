"""A faces-mode project searches each photo for faces once: pre-labeling, a retrain's snapshot, masked
pre-training and evaluation reuse the faces found in a photo whose decoded picture has not changed, with the same
detector settings; a replaced photo or other settings search again, and a removed photo's faces are forgotten."""

import contextlib
import os
import sqlite3

import numpy as np
import pytest
from drawn_projects import KnownFaces, draw_scenes, haar_reports, scene_project
from faceparse.core.datasets import project_framing, snapshot_project
from faceparse.core.evaluate import evaluate, project_samples
from faceparse.core.face_cache import CachedFaceDetector
from faceparse.core.faces import FACES, HaarFaceDetector
from faceparse.core.framing import Framing
from faceparse.core.prelabel import PrelabelJob
from faceparse.core.pretrain import pretrain_images, pretrain_records
from faceparse.core.store import ProjectStore
from onnx_models import foreground_model
from PIL import Image

pytestmark = pytest.mark.usefixtures("unchecked_photos_train")

SIZE = 64
FACES_PER_PHOTO = (3, 2, 1, 0)  # the last photo: a scene whose faces the detector does not find


class SetFaces(KnownFaces):
    """The scenes' true faces from a detector with a setting, so that its faces can be remembered."""

    def __init__(self, scenes, setting=1):
        super().__init__(scenes)
        self.setting = setting

    def signature(self):
        return f"SetFaces(setting={self.setting})"


class SkinEverywhere:
    """A model that calls every pixel skin."""

    def __init__(self, store):
        classes = list(store.schema.classes)
        self.meta = {"task": "parser", "input_size": [32, 32], "schema": {"name": "lapa", "classes": classes},
                     "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3}}

    def logits(self, batch):
        out = np.zeros((len(batch), len(self.meta["schema"]["classes"]), *batch.shape[2:]), np.float32)
        out[:, 1] = 10.0
        return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("face_cache_model") / "scene.onnx", threshold=0.01)


@pytest.fixture
def scenes():
    return draw_scenes(FACES_PER_PHOTO)


@pytest.fixture
def haar(scenes, monkeypatch):
    return haar_reports(scenes, monkeypatch)


def snapshot(store):
    return snapshot_project(store, "parser", framing=project_framing(store), input_size=SIZE)


def crops(snap):
    return [(s.relpath, s.box, s.image) for s in snap.train + snap.val]


def same_crops(a, b):
    return len(a) == len(b) and all(x[:2] == y[:2] and np.array_equal(x[2], y[2]) for x, y in zip(a, b, strict=True))


def remembered(store, image_id=None):
    """Rows of the project's face table (of one image), read past the store."""
    with contextlib.closing(sqlite3.connect(store.db_path)) as conn:
        if image_id is None:
            return conn.execute("SELECT COUNT(*) FROM face_boxes").fetchone()[0]
        return conn.execute("SELECT COUNT(*) FROM face_boxes WHERE image_id = ?", (image_id,)).fetchone()[0]


def predicted(store):
    return {rec.relpath: store.predicted_mask(rec.id) for rec in store.images()}


def test_a_second_snapshot_searches_no_photo_again(tmp_path, scenes, haar):
    store = scene_project(tmp_path / "group", scenes)
    first = snapshot(store)
    assert haar.calls == len(scenes)
    second = snapshot(store)
    assert haar.calls == len(scenes)
    assert same_crops(crops(first), crops(second)) and second.faceless == first.faceless == 1
    store.close()


def test_a_project_from_before_the_face_table_gains_it_on_opening(tmp_path, scenes, haar):
    scene_project(tmp_path / "group", scenes).close()
    with contextlib.closing(sqlite3.connect(tmp_path / "group" / ".faceparse" / "project.db")) as conn:
        conn.execute("DROP TABLE face_boxes")
        conn.commit()
    store = ProjectStore.open(tmp_path / "group")
    snapshot(store)
    snapshot(store)
    assert haar.calls == len(scenes) and remembered(store) == len(scenes)
    store.close()


def test_faces_found_by_pre_labelling_serve_pre_training_snapshot_and_eval(tmp_path, scenes, haar, model):
    store = scene_project(tmp_path / "group", scenes, corrected=())
    result = PrelabelJob(store, model, mode=FACES, batch_size=2, readers=2).run()
    assert result.predicted == len(scenes) and haar.calls == len(scenes)
    again = PrelabelJob(store, model, mode=FACES, redo=True, batch_size=2, readers=2).run()
    assert again.predicted == len(scenes) and haar.calls == len(scenes)
    pictures = pretrain_images(store, pretrain_records(store), SIZE, project_framing(store))
    assert pictures.photos == len(scenes) and len(pictures.images) == 3 + 2 + 1 + 1
    for record in store.images():
        store.save_corrected(record.id, scenes[record.relpath][1])
    assert len(crops(snapshot(store))) == 3 + 2 + 1 + 1
    metrics = evaluate(SkinEverywhere(store), project_samples(store, "parser", "all"), "parser")
    assert metrics["faces_found"] == 6 and metrics["whole_image_fallbacks"] == 1
    assert haar.calls == len(scenes)
    store.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_pre_labelling_again_with_two_readers_searches_nothing_and_leaves_no_connection_open(tmp_path, scenes,
                                                                                              model):
    store = scene_project(tmp_path / "group", scenes, corrected=())
    detector = SetFaces(scenes)
    first = PrelabelJob(store, model, mode=FACES, detector=detector, batch_size=2, readers=2).run()
    masks = predicted(store)
    assert first.predicted == len(scenes) and detector.calls == len(scenes)
    opened = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        again = PrelabelJob(store, model, mode=FACES, detector=detector, redo=True, batch_size=2, readers=2).run()
        assert again.predicted == len(scenes)
    assert detector.calls == len(scenes)
    assert len(os.listdir("/proc/self/fd")) <= opened + 1
    assert all(np.array_equal(masks[name], mask) for name, mask in predicted(store).items())
    store.close()


def test_a_replaced_photo_is_searched_again_and_a_touched_one_is_not(tmp_path, scenes, haar):
    store = scene_project(tmp_path / "group", scenes, corrected=())
    records = pretrain_records(store)
    pretrain_images(store, records, SIZE, project_framing(store))
    assert haar.calls == len(scenes)

    touched = store.root / "scene1.png"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, another time
    pretrain_images(store, records, SIZE, project_framing(store))
    assert haar.calls == len(scenes)

    newcomer = draw_scenes((2,), first_seed=len(scenes))["scene4.png"]
    haar.scenes = {**scenes, "scene4.png": newcomer}
    Image.fromarray(newcomer[0]).save(store.root / "scene0.png")  # same name, another photo
    after = pretrain_images(store, records, SIZE, project_framing(store))
    assert haar.calls == len(scenes) + 1
    expected = pretrain_images(store, records, SIZE, Framing(FACES, KnownFaces(haar.scenes)))
    assert len(after.images) == len(expected.images) == 2 + 2 + 1 + 1
    assert all(np.array_equal(a, b) for a, b in zip(after.images, expected.images, strict=True))
    store.scan()
    pretrain_images(store, records, SIZE, project_framing(store))
    assert haar.calls == len(scenes) + 1
    store.close()


def test_other_detector_settings_search_again_and_replace_what_was_remembered(tmp_path, scenes):
    store = scene_project(tmp_path / "group", scenes)
    one, two = SetFaces(scenes, 1), SetFaces(scenes, 2)
    for detector in (one, one, two, two, one):
        snapshot_project(store, "parser", framing=Framing(FACES, CachedFaceDetector(store, detector)),
                         input_size=SIZE)
    assert one.calls == 2 * len(scenes) and two.calls == len(scenes)
    assert remembered(store) == len(scenes)  # one entry per photo, whatever the settings were before
    assert HaarFaceDetector().signature() != HaarFaceDetector(min_neighbors=5).signature()
    assert HaarFaceDetector().signature() == HaarFaceDetector().signature()
    store.close()


def test_a_removed_photo_takes_its_faces_with_it(tmp_path, scenes, haar):
    store = scene_project(tmp_path / "group", scenes, corrected=())
    records = pretrain_records(store)
    pretrain_images(store, records, SIZE, project_framing(store))
    gone = store.find("scene2.png")
    assert remembered(store) == len(scenes) and remembered(store, gone.id) == 1
    (store.root / "scene2.png").unlink()
    assert store.scan().removed == 1 and store.get(gone.id) is None
    assert remembered(store, gone.id) == 0 and remembered(store) == len(scenes) - 1
    store.close()


def test_a_renamed_photo_keeps_its_faces(tmp_path, scenes, haar):
    store = scene_project(tmp_path / "group", scenes)
    snapshot(store)
    assert haar.calls == len(scenes) and remembered(store) == len(scenes)
    moved = store.find("scene1.png")
    os.rename(store.root / "scene1.png", store.root / "renamed.png")
    store.scan()
    assert store.find("renamed.png").id == moved.id
    snapshot(store)
    assert haar.calls == len(scenes) and remembered(store) == len(scenes)
    store.close()


def test_remembered_faces_give_the_very_crops_a_fresh_search_gives(tmp_path, scenes):
    store = scene_project(tmp_path / "group", scenes)
    cached = SetFaces(scenes)
    framing = Framing(FACES, CachedFaceDetector(store, cached))
    fresh = snapshot_project(store, "parser", framing=Framing(FACES, KnownFaces(scenes)), input_size=SIZE)
    first = snapshot_project(store, "parser", framing=framing, input_size=SIZE)
    second = snapshot_project(store, "parser", framing=framing, input_size=SIZE)
    assert cached.calls == len(scenes)
    assert same_crops(crops(fresh), crops(first)) and same_crops(crops(fresh), crops(second))
    assert fresh.digest() == second.digest() and fresh.faceless == second.faceless
    store.close()


def test_a_picture_of_another_size_or_without_a_photo_is_searched(tmp_path, scenes):
    """Boxes are in the pixels of the picture searched: a smaller decode of the photo, or a picture that is no
    photo of the project, is searched afresh."""
    store = scene_project(tmp_path / "group", scenes)
    record = store.find("scene0.png")
    picture = scenes["scene0.png"][0]
    half = picture[::2, ::2].copy()
    detector = SetFaces({"scene0.png": scenes["scene0.png"], "half": (half, None, [(1, 2, 3, 4)])})
    cache = CachedFaceDetector(store, detector)
    assert cache.detect_for(record.id, picture) == scenes["scene0.png"][2]
    assert cache.detect_for(record.id, picture) == scenes["scene0.png"][2] and detector.calls == 1
    assert cache.detect_for(record.id, half) == [(1, 2, 3, 4)] and detector.calls == 2
    cache.detect_for(None, picture)
    cache.detect(picture)
    assert detector.calls == 4
    store.close()


def test_the_studios_pre_label_this_image_searches_a_photo_once(tmp_path, scenes, haar, model, monkeypatch):
    from types import SimpleNamespace

    from faceparse.app.gui import model_jobs
    from faceparse.core.predictor import Predictor
    from faceparse.core.prelabel import MODE_SETTING

    store = scene_project(tmp_path / "group", scenes, corrected=())
    store.set_setting(MODE_SETTING, FACES)
    predictor = Predictor(model, device="cpu")
    monkeypatch.setattr(model_jobs, "project_predictor",
                        lambda *args: (predictor, SimpleNamespace(model_id="parser:test"), None))
    image_id = store.images()[0].id
    first = model_jobs.prelabel_image(store, image_id, "cpu", model_jobs.PredictorCache())
    mask = store.predicted_mask(image_id).copy()
    again = model_jobs.prelabel_image(store, image_id, "cpu", model_jobs.PredictorCache())
    assert haar.calls == 1 and remembered(store, image_id) == 1
    assert first.model_version == again.model_version == "parser:test"
    assert np.array_equal(store.predicted_mask(image_id), mask) and mask.any()
    store.close()


def test_faces_are_remembered_for_the_picture_searched_not_for_the_file(tmp_path, scenes):
    """A photo replaced (or turned by its EXIF tag) between the decode and the search: the faces found belong to
    the pixels that were searched, and a picture of the same size with other pixels is searched again."""
    store = scene_project(tmp_path / "group", scenes)
    detector = SetFaces(scenes, 1)
    cached = CachedFaceDetector(store, detector)
    image_id = store.find("scene0.png").id
    picture = scenes["scene0.png"][0]
    turned = np.ascontiguousarray(picture[::-1, ::-1])
    first = cached.detect_for(image_id, picture)
    assert cached.detect_for(image_id, picture.copy()) == first and detector.calls == 1
    cached.detect_for(image_id, turned)
    assert detector.calls == 2 and remembered(store, image_id) == 1
    cached.detect_for(image_id, turned)
    assert detector.calls == 2
    store.close()
