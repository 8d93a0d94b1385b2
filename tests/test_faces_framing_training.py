"""A project that pre-labels face by face trains, validates and is scored on the view pre-labeling gives the
model: the same face crops (same detector output, margin and geometry) at the input size, one sample per face, the
whole photo where no face is found. Whole-image projects are read as before."""

import numpy as np
import pytest
from drawn_projects import KnownFaces, draw_scenes, haar_reports, scene_project
from faceparse.core.datasets import (
    IGNORE_INDEX,
    DatasetSnapshot,
    augmented_batches,
    project_framing,
    snapshot_project,
)
from faceparse.core.evaluate import FramedPhoto, evaluate, project_samples
from faceparse.core.face_cache import CachedFaceDetector
from faceparse.core.faces import FACES, WHOLE_IMAGE, HaarFaceDetector, face_crop_box, whole_image_box
from faceparse.core.framing import Framing, prepare_array

SIZE = 64
SCENE = (160, 120)
FACES_PER_PHOTO = (3, 2, 1, 0)  # the last photo: a scene whose faces the detector does not find


@pytest.fixture
def scenes():
    return draw_scenes(FACES_PER_PHOTO, size=SCENE)


@pytest.fixture
def project(tmp_path, scenes):
    store = scene_project(tmp_path / "group", scenes)
    yield store
    store.close()


def samples_by_photo(snapshot):
    out = {}
    for sample in snapshot.train + snapshot.val:
        out.setdefault(sample.relpath, []).append(sample)
    return out


def nearest_labels(mask, box, size):
    """The label under each crop pixel's centre, worked out pixel by pixel (ignored past the photo's edge)."""
    h, w = mask.shape
    centres = (np.arange(size) + 0.5) / size
    xs = np.floor(box.x0 + centres * box.width).astype(int)
    ys = np.floor(box.y0 + centres * box.height).astype(int)
    inside = (ys[:, None] >= 0) & (ys[:, None] < h) & (xs[None, :] >= 0) & (xs[None, :] < w)
    labels = mask[np.clip(ys, 0, h - 1)[:, None], np.clip(xs, 0, w - 1)[None, :]]
    return np.where(inside, labels, IGNORE_INDEX)


def test_face_crops_are_the_crops_pre_labelling_feeds_the_model(project, scenes):
    detector = KnownFaces(scenes)
    snapshot = snapshot_project(project, "parser", framing=Framing(FACES, detector), input_size=SIZE)
    assert snapshot.framing == FACES
    by_photo = samples_by_photo(snapshot)
    for name, (picture, mask, faces) in scenes.items():
        if not faces:
            continue
        prelabel = prepare_array(None, picture, Framing(FACES, detector), (SIZE, SIZE))  # as PrelabelJob frames
        samples = by_photo[name]
        assert [s.box for s in samples] == prelabel.boxes[:prelabel.faces] == [face_crop_box(f) for f in faces]
        for sample, crop in zip(samples, prelabel.crops[:prelabel.faces], strict=True):
            assert np.array_equal(sample.image, crop)
            assert sample.mask.shape == (SIZE, SIZE)
            expected = nearest_labels(mask, sample.box, SIZE)
            assert (sample.mask == expected).mean() > 0.99
            assert (sample.mask == 1).mean() > 0.1  # the face's skin fills a good part of its crop


def test_a_photo_with_several_faces_gives_several_samples_and_one_without_is_taken_whole(project, scenes):
    snapshot = snapshot_project(project, "parser", framing=Framing(FACES, KnownFaces(scenes)), input_size=SIZE)
    by_photo = samples_by_photo(snapshot)
    assert {name: len(by_photo[name]) for name in scenes} == dict(zip(scenes, (3, 2, 1, 1), strict=True))
    assert snapshot.faceless == 1
    (whole,) = by_photo["scene3.png"]
    picture, mask, _ = scenes["scene3.png"]
    assert whole.box == whole_image_box(SCENE)
    fallback = prepare_array(None, picture, Framing(FACES, KnownFaces({})), (SIZE, SIZE))
    assert fallback.whole_image and np.array_equal(whole.image, fallback.crops[0])
    assert (whole.mask == nearest_labels(mask, whole.box, SIZE)).mean() > 0.99
    summary = snapshot.summary()
    assert summary["framing"] == FACES and summary["photos_without_faces"] == 1
    assert summary["train"] + summary["val"] == 7
    assert summary["train_photos"] + summary["val_photos"] == 4
    assert summary["train_ids"] == sorted(set(summary["train_ids"]))


def test_faces_are_found_once_per_photo_not_once_per_epoch(project, scenes):
    detector = KnownFaces(scenes)
    snapshot = snapshot_project(project, "parser", framing=Framing(FACES, detector), input_size=SIZE)
    assert detector.calls == len(scenes)
    for epoch in range(2):
        for images, targets in augmented_batches(snapshot.train, SIZE, 2, 0, epoch, _no_augmentation(), None):
            assert images.shape[1:] == (3, SIZE, SIZE) and targets.shape[1:] == (SIZE, SIZE)
    assert detector.calls == len(scenes)


def _no_augmentation():
    from faceparse.core.augment import AugmentConfig

    return AugmentConfig.none()


def test_the_crops_and_their_boxes_travel_to_the_other_training_processes(project, scenes, tmp_path):
    snapshot = snapshot_project(project, "parser", framing=Framing(FACES, KnownFaces(scenes)), input_size=SIZE)
    snapshot.save(tmp_path / "shared")
    back = DatasetSnapshot.load(tmp_path / "shared")
    assert back.framing == FACES and back.faceless == 1 and back.digest() == snapshot.digest()
    assert [s.box for s in back.train + back.val] == [s.box for s in snapshot.train + snapshot.val]


def test_whole_image_projects_are_read_as_before(tmp_path, scenes):
    for mode in (None, WHOLE_IMAGE):
        store = scene_project(tmp_path / f"whole-{mode}", scenes, mode)
        assert project_framing(store) is None
        snapshot = snapshot_project(store, "parser", max_side=80, framing=project_framing(store), input_size=SIZE)
        plain = snapshot_project(store, "parser", max_side=80)
        assert snapshot.framing == plain.framing == WHOLE_IMAGE and snapshot.digest() == plain.digest()
        samples = snapshot.train + snapshot.val
        assert len(samples) == len(scenes)
        assert all(s.box is None and s.image.shape == (60, 80, 3) and s.mask.shape == (60, 80) for s in samples)
        assert "train_photos" not in snapshot.summary()
        pairs = project_samples(store, "parser", "all")
        assert all(isinstance(pair, tuple) and pair[0].shape == (*SCENE[::-1], 3) for pair in pairs)
        store.close()


def test_the_project_setting_decides_the_framing(project):
    framing = project_framing(project)
    assert framing is not None and framing.mode == FACES and framing == Framing(FACES, framing.detector)
    assert isinstance(framing.detector, CachedFaceDetector) and isinstance(framing.detector.detector, HaarFaceDetector)


class OneClass:
    """A model that calls every pixel skin, at a small input size."""

    def __init__(self, classes, size=32):
        self.classes = classes
        self.meta = {"task": "parser", "input_size": [size, size], "schema": {"name": "lapa", "classes": classes},
                     "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3}}

    def logits(self, batch):
        out = np.zeros((len(batch), len(self.classes), *batch.shape[2:]), np.float32)
        out[:, 1] = 10.0
        return out


def pasted_skin(picture, detector):
    """Where pre-labeling's crops (face crops and the wider views around them) reach, and below each wider view
    (by its height, down to where another view begins): there a model that calls everything skin paints skin;
    everywhere else the mask stays background."""
    size = (picture.shape[1], picture.shape[0])
    prepared = prepare_array(None, picture, Framing(FACES, detector), (32, 32))
    covered = np.zeros(picture.shape[:2], bool)
    for box in prepared.boxes:
        x0, y0, x1, y1 = box.covered_pixels(size)
        covered[y0:y1, x0:x1] = True
    painted = covered.copy()
    for box in prepared.boxes[prepared.faces:]:
        x0, y0, x1, y1 = box.covered_pixels(size)
        for x in range(x0, x1):
            for y in range(y1, min(size[1], 2 * y1 - y0)):
                if covered[y, x]:
                    break
                painted[y, x] = True
    return painted


def test_eval_scores_a_faces_project_on_the_mask_pre_labelling_pastes_back(project, scenes, monkeypatch):
    detector = haar_reports(scenes, monkeypatch)
    samples = project_samples(project, "parser", "all")
    assert all(isinstance(s, FramedPhoto) for s in samples) and len(samples) == len(scenes)
    model = OneClass(list(project.schema.classes))
    metrics = evaluate(model, samples, "parser")
    assert metrics["framing"] == FACES
    assert metrics["faces_found"] == 6 and metrics["whole_image_fallbacks"] == 1
    assert metrics["images"] == 4 and metrics["pixels"] == 4 * SCENE[0] * SCENE[1]  # the photos' own pixels
    right = 0
    for picture, mask, _ in scenes.values():
        predicted = np.where(pasted_skin(picture, detector), 1, 0)
        right += int((predicted == mask).sum())
    assert metrics["pixel_accuracy"] == pytest.approx(right / metrics["pixels"])
    assert 0 < metrics["per_class_iou"]["background"] < 1


def test_eval_of_a_whole_image_project_says_nothing_of_faces(tmp_path, scenes):
    store = scene_project(tmp_path / "whole", scenes, WHOLE_IMAGE)
    metrics = evaluate(OneClass(list(store.schema.classes)), project_samples(store, "parser", "all"), "parser")
    store.close()
    assert "framing" not in metrics and "faces_found" not in metrics
    assert metrics["per_class_iou"]["background"] == 0  # every pixel called skin


def test_a_retrain_of_a_faces_project_trains_and_validates_on_face_crops(project, scenes, tmp_path, monkeypatch):
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import run_retrain

    detector = haar_reports(scenes, monkeypatch)
    monkeypatch.setattr("faceparse.core.versions.starter_checkpoint", lambda task: None)
    config = TrainConfig.for_task("parser", input_size=SIZE, batch_size=2, epochs=1, max_steps=1, threads=1,
                                  init="scratch", export_onnx=False, repredict=False, promote="never",
                                  pretrain=False, patience=0, time_limit_s=None)
    job = project.add_job("retrain", config.to_dict())
    result = run_retrain(project, config, JobReporter(project, job), tmp_path / "work")
    data = result["data"]
    assert data["framing"] == FACES and data["train"] + data["val"] == 7
    assert data["train_photos"] + data["val_photos"] == 4 and data["photos_without_faces"] == 1
    assert detector.calls == len(scenes)
    assert result["val_ids"] == sorted(set(result["val_ids"]))
    log = "\n".join(project.job_log(job))
    assert f"{data['train']} training and {data['val']} validation face crops from 4 photos" in log
    if data["val"]:
        assert result["metrics"]["pixels"] == data["val"] * SIZE * SIZE - _ignored(project, scenes, detector)


def _ignored(store, scenes, detector):
    """Crop pixels past the photos' edges in the validation crops (not scored)."""
    snapshot = snapshot_project(store, "parser", framing=Framing(FACES, detector), input_size=SIZE)
    return sum(int((s.mask == IGNORE_INDEX).sum()) for s in snapshot.val)
