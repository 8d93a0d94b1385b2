"""Masked pre-training in a project that pre-labels face by face learns from the view pre-labeling gives the model:
every face crop of each photo, cut by the same detector with the same margin and geometry at the input size, the
whole photo where no face is found; faces are found once per run. Whole-image projects pre-train as before."""

import numpy as np
import pytest
from drawn_projects import KnownFaces, draw_scenes, haar_reports, scene_project
from faceparse.core import pretrain
from faceparse.core.datasets import project_framing
from faceparse.core.faces import FACES, WHOLE_IMAGE
from faceparse.core.framing import Framing, prepare_file
from faceparse.core.imageio import load_rgb
from faceparse.core.pretrain import pretrain_images, pretrain_records

pytestmark = pytest.mark.usefixtures("unchecked_photos_train")

SIZE = 64
SCENE = (160, 120)
FACES_PER_PHOTO = (3, 2, 1, 0)  # the last photo: a scene whose faces the detector does not find
UNLABELLED_FACES = (2, 1)  # photos nobody has corrected yet: pre-training learns from them too


@pytest.fixture
def scenes():
    return draw_scenes(FACES_PER_PHOTO)


@pytest.fixture
def detector(scenes, monkeypatch):
    return haar_reports(scenes, monkeypatch)


def prelabel_crops(store, record, detector):
    """The crops pre-labeling feeds the model for one photo: each face's crop, or the whole photo."""
    prepared = prepare_file(None, store.image_path(record.id), Framing(FACES, detector), (SIZE, SIZE))
    return list(prepared.crops[:prepared.faces] if prepared.faces else prepared.crops)


def test_faces_mode_pretrains_on_every_face_crop_pre_labelling_cuts(tmp_path, scenes, detector):
    store = scene_project(tmp_path / "group", scenes, corrected=())
    records = pretrain_records(store)
    pictures = pretrain_images(store, records, SIZE, project_framing(store))
    assert pictures.framing == FACES
    assert len(pictures.images) == 3 + 2 + 1 + 1 and pictures.photos == 4 and pictures.faceless == 1
    expected = [crop for record in records for crop in prelabel_crops(store, record, KnownFaces(scenes))]
    assert len(expected) == len(pictures.images)
    for image, crop in zip(pictures.images, expected, strict=True):
        assert image.shape == (SIZE, SIZE, 3) and np.array_equal(image, crop)
    assert pictures.describe() == "7 face crops from 4 photos (1 with no face found, taken whole)"
    store.close()


def test_a_photo_without_faces_is_pretrained_on_whole(tmp_path, scenes, detector):
    store = scene_project(tmp_path / "group", scenes, corrected=())
    (faceless,) = [r for r in store.images() if r.relpath == "scene3.png"]
    pictures = pretrain_images(store, [faceless], SIZE, project_framing(store))
    assert pictures.faceless == 1 and pictures.photos == 1
    (image,) = pictures.images
    whole = prepare_file(None, store.image_path(faceless.id), Framing(FACES, KnownFaces({})), (SIZE, SIZE))
    assert whole.whole_image and np.array_equal(image, whole.crops[0])
    store.close()


def test_whole_image_projects_pretrain_on_whole_photos_as_before(tmp_path, scenes, detector):
    for mode in (None, WHOLE_IMAGE):
        store = scene_project(tmp_path / f"whole-{mode}", scenes, mode, corrected=())
        records = pretrain_records(store)
        pictures = pretrain_images(store, records, SIZE, project_framing(store))
        assert pictures.framing == WHOLE_IMAGE and pictures.photos == len(scenes) and pictures.faceless == 0
        for image, record in zip(pictures.images, records, strict=True):
            assert np.array_equal(image, load_rgb(store.image_path(record.id), max_side=2 * SIZE))
        assert pictures.images[0].shape == (96, 128, 3)
        assert pictures.describe() == f"{len(scenes)} images"
        store.close()
    assert detector.calls == 0


def seen_by_pretraining(monkeypatch, detector):
    """Wrap masked pre-training: what it was given, and how many faces were looked for while it ran."""
    seen = {}
    original = pretrain.masked_pretrain

    def recording(images, config, **kwargs):
        seen["images"], seen["steps"], seen["batch"] = list(images), config.steps, config.batch_size
        before = detector.calls
        try:
            return original(images, config, **kwargs)
        finally:
            seen["detections"] = detector.calls - before

    monkeypatch.setattr(pretrain, "masked_pretrain", recording)
    return seen


def retrain(store, tmp_path, steps):
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import run_retrain

    config = TrainConfig.for_task("parser", input_size=SIZE, batch_size=2, epochs=1, max_steps=1, threads=1,
                                  init="scratch", export_onnx=False, repredict=False, promote="never",
                                  pretrain=True, patience=0, time_limit_s=None,
                                  extra={"pretrain_steps": steps, "pretrain_min_images": 2})
    job = store.add_job("retrain", config.to_dict())
    result = run_retrain(store, config, JobReporter(store, job), tmp_path / "work")
    return result, "\n".join(store.job_log(job))


def job_pretrain_records(store, result):
    return pretrain_records(store, exclude_ids=result["val_ids"])


@pytest.mark.usefixtures("torch_one_thread")
def test_a_retrain_of_a_faces_project_finds_the_faces_once_and_pretrains_on_the_crops(
        tmp_path, scenes, detector, monkeypatch):
    monkeypatch.setattr("faceparse.core.versions.starter_checkpoint", lambda task: None)
    photos = {**scenes, **draw_scenes(UNLABELLED_FACES, first_seed=len(scenes))}
    detector.scenes = photos
    store = scene_project(tmp_path / "group", photos, corrected=set(scenes))
    seen = seen_by_pretraining(monkeypatch, detector)
    result, log = retrain(store, tmp_path, steps=8)
    records = job_pretrain_records(store, result)
    expected = [crop for record in records for crop in prelabel_crops(store, record, KnownFaces(photos))]
    assert len(records) >= 4 and len(seen["images"]) == len(expected)
    assert all(np.array_equal(image, crop) for image, crop in zip(seen["images"], expected, strict=True))
    assert seen["steps"] * seen["batch"] >= 2 * len(expected)  # several passes over the crops
    assert seen["detections"] == 0
    # the snapshot's photos, then pre-training's, each photo once: faces found by the snapshot are remembered
    assert detector.calls == len(set(scenes) | {record.relpath for record in records})
    faceless = sum(photos[r.relpath][2] == [] for r in records)
    described = f"{len(expected)} face crops from {len(records)} photos"
    if faceless:
        described += f" ({faceless} with no face found, taken whole)"
    assert (f"masked pre-training: 8 steps on {described} at {SIZE} px; "
            "framing: faces, cropped as pre-labeling crops them") in log
    store.close()


@pytest.mark.usefixtures("torch_one_thread")
def test_a_retrain_of_a_whole_image_project_pretrains_on_whole_photos(tmp_path, scenes, detector, monkeypatch):
    monkeypatch.setattr("faceparse.core.versions.starter_checkpoint", lambda task: None)
    store = scene_project(tmp_path / "whole", scenes, WHOLE_IMAGE, corrected=set(scenes))
    seen = seen_by_pretraining(monkeypatch, detector)
    result, log = retrain(store, tmp_path, steps=2)
    records = job_pretrain_records(store, result)
    assert len(seen["images"]) == len(records)
    for image, record in zip(seen["images"], records, strict=True):
        assert np.array_equal(image, load_rgb(store.image_path(record.id), max_side=2 * SIZE))
    assert detector.calls == 0
    assert f"masked pre-training: 2 steps on {len(records)} images at {SIZE} px; framing: whole image" in log
    assert "finding the faces" not in log
    store.close()
