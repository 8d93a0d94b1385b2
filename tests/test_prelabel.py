"""Pre-label job over a project: labels everything that needs it, keeps human work, survives bad files, cancels
within a batch and resumes without redoing work, overlaps decoding with the model."""

import os
import threading
import time

import cv2
import numpy as np
import pytest
from faceparse.core.faces import FACES, WHOLE_IMAGE
from faceparse.core.model_resolver import ModelNotFoundError, file_model_id, find_model, resolve_model
from faceparse.core.predictor import CPU, ModelError
from faceparse.core.prelabel import MODE_SETTING, PrelabelJob, PrelabelProgress, prediction_settings
from faceparse.core.store import ProjectError, ProjectStore
from faceparse.core.synthetic import draw_face, draw_scene
from onnx_models import foreground_model
from PIL import Image

COUNT = 6
SIZE = 96


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("prelabel_models")
    return {"face": foreground_model(root / "face.onnx"),
            "scene": foreground_model(root / "scene.onnx", threshold=0.01),  # scenes have pure black around faces
            "other": foreground_model(root / "other.onnx", seed=3),
            "mask": foreground_model(root / "mask.onnx", schema_name="face-mask")}


def make_folder(root, count=COUNT):
    root.mkdir(parents=True, exist_ok=True)
    truths = {}
    for i in range(count):
        picture, mask = draw_face(100 + i, SIZE, background="none")
        Image.fromarray(picture).save(root / f"face{i:02d}.png")
        truths[f"face{i:02d}.png"] = mask
    return truths


@pytest.fixture
def project(tmp_path):
    truths = make_folder(tmp_path / "photos")
    store = ProjectStore.create(tmp_path / "photos")
    store.scan()
    yield store, truths
    store.close()


def predicted_masks(store):
    return {rec.relpath: store.predicted_mask(rec.id) for rec in store.images()}


def mask_times(store):
    return {rec.relpath: store.mask_path("predicted", rec.id).stat().st_mtime_ns
            for rec in store.images() if store.mask_path("predicted", rec.id).exists()}


def test_every_image_gets_a_mask(project, models):
    store, truths = project
    seen: list[PrelabelProgress] = []
    result = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, batch_size=4).run(seen.append)
    assert result.state == "done" and result.predicted == COUNT and result.failed == []
    assert result.provider == CPU and result.model_id == file_model_id(models["face"])
    assert store.counts()["predicted"] == COUNT
    for relpath, mask in predicted_masks(store).items():
        truth = truths[relpath]
        assert mask.shape == truth.shape
        assert ((mask != 0) == (truth != 0)).mean() > 0.97
        assert set(np.unique(mask)) <= {0, 1}
    for rec in store.images():
        assert rec.model_version == result.model_id
        assert rec.uncertainty is not None and 0.0 <= rec.uncertainty <= 1.0
    assert seen[-1].done == seen[-1].total == COUNT and seen[-1].images_per_second > 0
    assert seen[-1].eta_seconds == 0
    job = store.job(result.job_id)
    assert job["state"] == "done" and job["progress"] == 1.0 and job["kind"] == "prelabel"


def test_a_second_run_skips_current_predictions_and_redoes_changed_images(project, models):
    store, _ = project
    PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    before = mask_times(store)
    again = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert again.predicted == 0 and again.skipped_current == COUNT and mask_times(store) == before

    changed = store.root / "face03.png"
    time.sleep(0.01)
    Image.fromarray(draw_face(999, SIZE, background="none")[0]).save(changed)
    store.scan()
    third = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert third.predicted == 1 and third.skipped_current == COUNT - 1
    after = mask_times(store)
    assert [name for name in after if after[name] != before[name]] == ["face03.png"]


@pytest.mark.parametrize("stamp", ["older", "future"])
def test_a_photo_replaced_with_any_timestamp_is_predicted_once_again(project, models, stamp):
    store, _ = project
    PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    replaced = store.root / "face02.png"
    old = replaced.stat().st_mtime_ns
    Image.fromarray(draw_face(777, SIZE, background="none")[0]).save(replaced)
    when = old - 10**12 if stamp == "older" else time.time_ns() + 10**13
    os.utime(replaced, ns=(when, when))
    store.scan()
    first = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert first.predicted == 1 and first.skipped_current == COUNT - 1
    second = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert second.predicted == 0 and second.skipped_current == COUNT


def test_other_settings_predict_again_and_unrecorded_ones_count_as_current(project, models):
    store, _ = project
    PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert {rec.predicted_with for rec in store.images()} == {prediction_settings(WHOLE_IMAGE, False)}
    before = mask_times(store)
    flipped = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, tta=True).run()
    assert flipped.predicted == COUNT and flipped.skipped_current == 0
    after_tta = mask_times(store)
    assert all(after_tta[name] > before[name] for name in before)
    assert {rec.predicted_with for rec in store.images()} == {prediction_settings(WHOLE_IMAGE, True)}

    first = store.images()[0]
    store.save_predicted(first.id, store.predicted_mask(first.id), first.model_version, first.uncertainty, None)
    remembered = PrelabelJob(store, models["face"]).run()  # mode and TTA as the project last chose them
    assert remembered.tta and remembered.predicted == 0 and remembered.skipped_current == COUNT

def test_a_chosen_image_only(project, models):
    store, _ = project
    chosen = store.images()[2]
    result = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, image_ids=[chosen.id]).run()
    assert result.total == result.predicted == 1
    assert [rec.id for rec in store.images() if rec.status == "predicted"] == [chosen.id]


def test_another_model_repredicts(project, models):
    store, _ = project
    PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    result = PrelabelJob(store, models["other"], mode=WHOLE_IMAGE).run()
    assert result.predicted == COUNT and result.model_id != file_model_id(models["face"])
    assert {rec.model_version for rec in store.images()} == {result.model_id}


def test_cancel_stops_within_a_batch_and_resume_finishes_the_rest(project, models):
    store, _ = project
    cancel = threading.Event()
    batches = []

    def on_progress(progress):
        batches.append(progress)
        if len(batches) == 2:  # the first report after a batch ran
            cancel.set()

    first = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, batch_size=2).run(on_progress, cancel)
    assert first.state == "cancelled"
    assert 1 <= first.predicted <= 2  # one batch: up to two images, fewer if the model did not wait for a full one
    assert store.job(first.job_id)["state"] == "cancelled"
    done_first = mask_times(store)
    assert len(done_first) == first.predicted

    second = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, batch_size=2).run()
    assert second.state == "done"
    assert second.skipped_current == first.predicted and second.predicted == COUNT - first.predicted
    after = mask_times(store)
    assert len(after) == COUNT and all(after[name] == t for name, t in done_first.items())


def test_cancel_requested_through_the_store(project, models):
    store, _ = project
    job = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, batch_size=1)

    def on_progress(progress):
        if job.job_id is not None:
            store.request_cancel(job.job_id)

    result = job.run(on_progress)
    assert result.state == "cancelled" and result.predicted < COUNT


def test_corrected_and_reviewed_masks_are_untouched(project, models):
    store, truths = project
    first, second = store.images()[:2]
    store.save_corrected(first.id, truths[first.relpath])
    corrected_bytes = store.mask_path("corrected", first.id).read_bytes()
    PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    store.set_status(second.id, "reviewed")
    reviewed_bytes = store.mask_path("predicted", second.id).read_bytes()

    result = PrelabelJob(store, models["other"], mode=WHOLE_IMAGE).run()
    assert result.skipped_checked == 2 and result.predicted == COUNT - 2
    assert store.mask_path("corrected", first.id).read_bytes() == corrected_bytes
    assert not store.mask_path("predicted", first.id).exists()
    assert store.get(first.id).status == "corrected"
    assert store.mask_path("predicted", second.id).read_bytes() == reviewed_bytes
    assert store.get(second.id).status == "reviewed"


def test_a_corrupt_image_is_reported_and_the_rest_are_labeled(project, models):
    store, _ = project
    (store.root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    good = store.root / "face00.png"
    (store.root / "truncated.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    store.scan()
    result = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, batch_size=3).run()
    assert result.state == "done" and result.predicted == COUNT
    failed = dict(result.failed)
    assert set(failed) == {"broken.jpg", "truncated.png"}
    assert "truncated" in failed["truncated.png"]
    log = store.job_log(result.job_id)
    assert any("broken.jpg" in line for line in log) and any("truncated.png" in line for line in log)
    assert store.find("broken.jpg").error is not None and store.find("broken.jpg").status == "new"
    again = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert again.skipped_unreadable == 2 and again.failed == [] and again.predicted == 0


def failure_is_tried_again(store, models, name, reason, repair):
    """A run fails on `name` for `reason`; the photo is not marked unreadable, and after `repair` the next run
    predicts it."""
    result = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert dict(result.failed) == {name: reason}
    assert store.find(name).error is None
    repair()
    again = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    assert again.predicted == 1 and again.skipped_unreadable == 0
    assert store.predicted_mask(store.find(name).id) is not None


def test_a_mask_that_cannot_be_saved_does_not_mark_the_photo_unreadable(project, models, monkeypatch):
    store, _ = project
    save = store.save_predicted

    def disk_full_for_face01(image_id, *args, **kwargs):
        if store.get(image_id).relpath == "face01.png":
            raise ProjectError("cannot write the mask: No space left on device")
        return save(image_id, *args, **kwargs)

    monkeypatch.setattr(store, "save_predicted", disk_full_for_face01)
    failure_is_tried_again(store, models, "face01.png", "cannot write the mask: No space left on device",
                           lambda: monkeypatch.setattr(store, "save_predicted", save))


def test_a_photo_that_could_not_be_read_for_now_is_tried_again(project, models, monkeypatch):
    store, _ = project
    path = store.root / "face02.png"
    real_open = Image.open

    def locked(fp, *args, **kwargs):
        if str(fp) == str(path):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", locked)
    failure_is_tried_again(store, models, "face02.png", "permission denied",
                           lambda: monkeypatch.setattr(Image, "open", real_open))


def test_cancel_is_seen_during_a_run_of_unreadable_files(tmp_path, models):
    root = tmp_path / "photos"
    make_folder(root, 1)
    good = (root / "face00.png").read_bytes()
    for i in range(40):
        (root / f"half{i:02d}.png").write_bytes(good[: len(good) // 2])
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.done)
        if p.failed:
            cancel.set()

    with ProjectStore.create(root) as store:
        store.scan()
        result = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, batch_size=2).run(progress, cancel)
    assert result.state == "cancelled"
    assert 1 <= len(result.failed) < 40
    assert max(seen) >= 1, "the progress moved while only failures arrived"


def test_a_mode_guessed_from_no_readable_picture_is_not_remembered(tmp_path, models):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with ProjectStore.create(root) as store:
        store.scan()
        PrelabelJob(store, models["face"]).run()
        assert store.get_setting(MODE_SETTING) is None
        make_folder(root, 2)
        store.scan()
        result = PrelabelJob(store, models["face"]).run()
        assert result.predicted == 2
        assert store.get_setting(MODE_SETTING) in (FACES, WHOLE_IMAGE)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_repeated_runs_do_not_leak_database_connections(project, models):
    store, _ = project
    PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
    before = len(os.listdir("/proc/self/fd"))
    for k in range(4):  # another model each time, so the image is predicted and saved again
        model = models["other" if k % 2 == 0 else "face"]
        assert PrelabelJob(store, model, image_ids=[store.images()[0].id], mode=WHOLE_IMAGE).run().predicted == 1
    assert len(os.listdir("/proc/self/fd")) <= before + 1


def test_a_job_whose_progress_callback_fails_is_marked_failed(project, models):
    store, _ = project

    def broken(progress):
        raise RuntimeError("the window went away")

    job = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE)
    with pytest.raises(RuntimeError):
        job.run(broken)
    assert store.job(job.job_id)["state"] == "failed"
    assert "the window went away" in store.job(job.job_id)["message"]


def test_without_cuda_the_job_runs_on_cpu_and_says_so(project, models):
    store, _ = project
    result = PrelabelJob(store, models["face"], device="cuda", mode=WHOLE_IMAGE).run()
    assert result.provider == CPU and result.predicted == COUNT
    assert any("CUDA" in n and "CPU" in n for n in result.notices)
    assert any("CUDA" in line for line in store.job_log(result.job_id))


class SceneDetector:
    """Knows where the faces of each drawn scene are (Haar does not reliably fire on drawn faces)."""

    def __init__(self, boxes_by_shape):
        self.boxes_by_shape = boxes_by_shape
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return list(self.boxes_by_shape.get(image.shape[:2], []))


def test_faces_mode_pastes_each_face_back_in_place(tmp_path, models):
    folder = tmp_path / "scenes"
    folder.mkdir()
    truths, boxes = {}, {}
    for i, size in enumerate([(320, 240), (300, 260)]):
        picture, mask, faces = draw_scene(7 + i, size, faces=3, background="none")
        Image.fromarray(picture).save(folder / f"scene{i}.png")
        truths[f"scene{i}.png"], boxes[picture.shape[:2]] = mask, faces
    with ProjectStore.create(folder) as store:
        store.scan()
        result = PrelabelJob(store, models["scene"], mode=FACES, detector=SceneDetector(boxes), context=False).run()
        assert result.predicted == 2 and result.whole_image_fallbacks == 0
        ring = np.ones((3, 3), np.uint8)
        for relpath, mask in predicted_masks(store).items():
            face = (truths[relpath] != 0).astype(np.uint8)
            near_face = cv2.dilate(face, ring) > 0
            edge = near_face & ~(cv2.erode(face, ring) > 0)  # resampling may go either way on the outline
            agree = ((mask != 0) == (face != 0)) | edge
            for x0, y0, x1, y1 in boxes[face.shape]:
                assert agree[y0:y1, x0:x1].mean() > 0.995  # a 2 px misplacement fails this
            assert near_face[mask != 0].mean() > 0.995  # nothing labeled away from the faces


def test_decoding_overlaps_the_model(project, models, monkeypatch):
    """While the model runs its first batch, the reader is already decoding the images of the next one."""
    store, _ = project
    ahead = threading.Event()
    batch = 2

    class CountingDetector:
        calls = 0

        def detect(self, image):
            CountingDetector.calls += 1
            if CountingDetector.calls > batch:
                ahead.set()
            return []

    from faceparse.core import predictor as predictor_module

    real_run = predictor_module.Predictor.run
    overlapped = []

    def run(self, crops):
        if not overlapped:
            overlapped.append(ahead.wait(timeout=20))
        return real_run(self, crops)

    monkeypatch.setattr(predictor_module.Predictor, "run", run)
    result = PrelabelJob(store, models["face"], mode=FACES, detector=CountingDetector(), batch_size=batch).run()
    assert overlapped == [True]
    assert result.predicted == COUNT and result.whole_image_fallbacks == COUNT


def scheduling() -> tuple[int, int]:
    """The calling thread's (scheduling class, nice value)."""
    tid = threading.get_native_id()
    return os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler") or not hasattr(os, "SCHED_IDLE"),
                    reason="per-thread scheduling classes are a Linux feature")
def test_decoding_and_writing_run_in_the_idle_class_behind_the_model(project, models, monkeypatch):
    store, _ = project
    seen: dict[str, set[tuple[int, int]]] = {}

    def record(role: str) -> None:
        name = threading.current_thread().name
        who = "reader" if name.startswith("prelabel-reader") else "writer" if name == "prelabel-writer" else "job"
        seen.setdefault(f"{role} in {who}", set()).add(scheduling())

    class RecordingDetector:
        def detect(self, image):
            record("decode")
            return []

    from faceparse.core import prediction_pipeline as pipeline_module
    from faceparse.core import predictor as predictor_module

    real_run, real_finish = predictor_module.Predictor.run, pipeline_module.finish_image

    def run(self, crops):
        record("model")
        return real_run(self, crops)

    def finish(*args, **kwargs):
        record("finish")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(predictor_module.Predictor, "run", run)
    monkeypatch.setattr(pipeline_module, "finish_image", finish)
    own = scheduling()
    result = PrelabelJob(store, models["face"], mode=FACES, detector=RecordingDetector(), batch_size=2).run()
    assert result.predicted == COUNT and result.pipeline.helper_scheduling == "idle"
    idle = (os.SCHED_IDLE, own[1])
    assert seen["model in job"] == {own}
    helpers = {role: found for role, found in seen.items() if role in ("decode in reader", "finish in writer")}
    assert helpers and all(found == {idle} for found in helpers.values())  # a starved helper's work is taken over
    assert all(found == {own} for role, found in seen.items() if role.endswith(" in job"))


def test_the_models_thread_decodes_when_the_reader_falls_behind(project, models, monkeypatch):
    """A reader starved of the CPU (here: one that takes a second per image) does not hold the job back: the
    model's thread decodes the images itself."""
    store, _ = project
    decoded_by: list[str] = []

    class SlowReaderDetector:
        def detect(self, image):
            name = threading.current_thread().name
            decoded_by.append(name)
            if name.startswith("prelabel-reader"):
                time.sleep(1.0)
            return []

    result = PrelabelJob(store, models["face"], mode=FACES, detector=SlowReaderDetector(), batch_size=2).run()
    assert result.state == "done" and result.predicted == COUNT and result.failed == []
    assert len(decoded_by) == COUNT
    here = [name for name in decoded_by if not name.startswith("prelabel-reader")]
    assert len(here) == result.pipeline.prepared_here >= COUNT - 2
    assert store.counts()["predicted"] == COUNT


def test_helpers_that_keep_falling_behind_are_retired(tmp_path, models):
    """When the model's thread has had to help the reader in half of the recent batches, it takes over all the
    decoding and writing for the rest of the run (threads starved by other programs only get in the way)."""
    count = 16
    make_folder(tmp_path / "photos", count)
    decoded_by: list[str] = []

    class SlowReaderDetector:
        def detect(self, image):
            decoded_by.append(threading.current_thread().name)
            if threading.current_thread().name.startswith("prelabel-reader"):
                time.sleep(0.5)
            return []

    with ProjectStore.create(tmp_path / "photos") as store:
        store.scan()
        result = PrelabelJob(store, models["face"], mode=FACES, detector=SlowReaderDetector(), batch_size=1).run()
        assert result.state == "done" and result.predicted == count and store.counts()["predicted"] == count
    assert result.pipeline.helpers_retired
    assert len(decoded_by) == count
    assert sum(name.startswith("prelabel-reader") for name in decoded_by) <= 3


def test_the_models_thread_finishes_images_when_the_writer_falls_behind(project, models, monkeypatch):
    """A writer starved of the CPU (here: one that takes half a second per image) does not hold the job back:
    the model's thread pastes back and saves images itself, and every image is saved exactly once."""
    store, _ = project
    from faceparse.core import prediction_pipeline as pipeline_module

    real_finish = pipeline_module.finish_image
    finished_by: list[str] = []

    def finish(*args, **kwargs):
        name = threading.current_thread().name
        finished_by.append(name)
        if name == "prelabel-writer":
            time.sleep(0.5)
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "finish_image", finish)
    saved: list[int] = []
    real_save = store.save_predicted

    def save_predicted(image_id, *args, **kwargs):
        saved.append(image_id)
        return real_save(image_id, *args, **kwargs)

    monkeypatch.setattr(store, "save_predicted", save_predicted)
    pipeline_prefetch = 4  # the writer's queue holds 4 images: the rest must be finished by the model's thread
    monkeypatch.setattr(pipeline_module.PredictionPipeline, "__init__", _with_prefetch(pipeline_prefetch))
    result = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE, batch_size=1).run()
    assert result.state == "done" and result.predicted == COUNT
    assert sorted(saved) == sorted(rec.id for rec in store.images())
    here = [name for name in finished_by if name != "prelabel-writer"]
    assert len(here) == result.pipeline.finished_here >= 1
    assert store.counts()["predicted"] == COUNT


def _with_prefetch(prefetch):
    from faceparse.core.prediction_pipeline import PredictionPipeline

    real_init = PredictionPipeline.__init__

    def init(self, *args, **kwargs):
        kwargs["prefetch"] = prefetch
        real_init(self, *args, **kwargs)
    return init


def test_mode_is_suggested_once_and_remembered(project, models):
    store, _ = project
    assert store.get_setting(MODE_SETTING) is None
    result = PrelabelJob(store, models["face"], detector=SceneDetector({})).run()
    assert result.mode == WHOLE_IMAGE and store.get_setting(MODE_SETTING) == WHOLE_IMAGE
    assert any("aligned face crops" in n for n in result.notices)
    store.set_setting(MODE_SETTING, FACES)
    assert PrelabelJob(store, models["other"], detector=SceneDetector({})).run().mode == FACES


def test_several_faces_suggest_faces_mode(tmp_path, models):
    folder = tmp_path / "groups"
    picture, _, faces = draw_scene(3, (320, 240), faces=3, background="none")
    folder.mkdir()
    Image.fromarray(picture).save(folder / "group.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        result = PrelabelJob(store, models["face"], detector=SceneDetector({picture.shape[:2]: faces})).run()
        assert result.mode == FACES and store.get_setting(MODE_SETTING) == FACES


# --- which model ---------------------------------------------------------------------------------------------------

def test_the_projects_active_version_is_used(project, models):
    store, _ = project
    version_dir = store.models_dir / "parser" / "v0001"
    version_dir.mkdir(parents=True)
    (version_dir / "model.onnx").write_bytes(models["face"].read_bytes())
    store.add_model_version("parser", "v0001", version_dir, {})
    store.set_active_model("parser", "v0001")
    assert resolve_model(store) == version_dir / "model.onnx"
    result = PrelabelJob(store, mode=WHOLE_IMAGE).run()
    assert result.model_id == "v0001" and {r.model_version for r in store.images()} == {"v0001"}
    assert find_model(store, "v0001").model_id == "v0001"
    with pytest.raises(ModelNotFoundError, match=r"no parser model version 'v0009'.*known: v0001"):
        find_model(store, "v0009")
    (version_dir / "model.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match=r"active parser model cannot be used.*Roll back"):
        find_model(store)


def test_model_resolution_errors(project, models, tmp_path, monkeypatch):
    from faceparse.core import model_resolver

    store, _ = project
    monkeypatch.setattr(model_resolver, "starter_model_path", lambda task: tmp_path / "none" / f"{task}.onnx")
    with pytest.raises(ModelNotFoundError, match="no model available: train one or pass --model"):
        resolve_model(store)
    with pytest.raises(ModelNotFoundError, match="no model available"):
        PrelabelJob(store).run()
    assert store.jobs("prelabel")[0]["state"] == "failed"
    with pytest.raises(ModelNotFoundError, match="model file not found"):
        resolve_model(None, tmp_path / "nowhere.onnx")
    with pytest.raises(ModelNotFoundError, match="need a project"):
        resolve_model(None, "v0001")
    assert resolve_model(None, models["face"]) == models["face"].resolve()
    monkeypatch.undo()
    assert resolve_model(store).name == "parser.onnx"  # the shipped starter parser
    empty = tmp_path / "empty_version"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="no ONNX export"):
        resolve_model(None, empty)


def test_a_model_for_another_schema_is_refused(project, models):
    store, _ = project
    with pytest.raises(ModelError, match="'face-mask' .*'celebamask-hq'"):
        PrelabelJob(store, models["mask"], mode=WHOLE_IMAGE).run()
    assert store.counts()["predicted"] == 0


def test_a_model_for_a_mappable_schema_is_mapped(tmp_path, models):
    make_folder(tmp_path / "lapa", count=2)
    with ProjectStore.create(tmp_path / "lapa", "lapa") as store:
        store.scan()
        result = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE).run()
        assert result.predicted == 2
        skin = store.schema.index("skin")
        for mask in predicted_masks(store).values():
            assert set(np.unique(mask)) == {0, skin}


def test_job_runs_in_a_worker_thread(project, models):
    """What the GUI does: run() on a pool thread, progress arriving on that thread, the caller free meanwhile."""
    store, _ = project
    threads = set()
    results = []
    job = PrelabelJob(store, models["face"], mode=WHOLE_IMAGE)
    worker = threading.Thread(target=lambda: results.append(job.run(lambda p: threads.add(threading.get_ident()))))
    worker.start()
    worker.join(timeout=120)
    assert results and results[0].predicted == COUNT
    assert threads == {worker.ident}
    assert os.getpid() == store.job(results[0].job_id)["pid"]


def test_running_out_of_memory_pasting_one_photo_back_fails_that_photo_not_the_run(project, models, monkeypatch):
    from faceparse.core import prediction_pipeline as pipeline_module

    store, _ = project
    real_finish = pipeline_module.finish_image
    first = store.images()[0]

    def finish(prepared, *args, **kwargs):
        if str(prepared.key) == str(first.id):
            raise MemoryError("the photo-sized maps do not fit")
        return real_finish(prepared, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "finish_image", finish)
    result = PrelabelJob(store, models["face"], batch_size=2).run()
    assert result.predicted == COUNT - 1
    assert [(name, "MemoryError" in reason) for name, reason in result.failed] == [(first.relpath, True)]
