"""One pre-labeling run at a time per project: a second run is refused before it writes anything, naming the run
that holds the project; a crashed run never leaves it locked. `prelabel` exits with 1 when images failed."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from drawn_projects import draw_folder
from faceparse.app.cli import main
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.model_resolver import ModelNotFoundError, find_model
from faceparse.core.prelabel import JOB_KIND, PrelabelBusy, PrelabelJob, prelabel_lock
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from onnx_models import foreground_model
from PIL import Image

SIZE = 64
COUNT = 3
WAIT_S = 120


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("one_at_a_time") / "face.onnx")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    draw_folder(root, COUNT, SIZE, seed=60, background="none")
    with ProjectStore.create(root) as store:
        store.scan()
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def predicted_files(folder):
    return sorted(p.name for p in (folder / ".faceparse" / "masks" / "predicted").iterdir())


class HeldRun:
    """A pre-labeling run in a thread, held at its first save until `release`."""

    def __init__(self, folder, model, monkeypatch):
        self.store = ProjectStore.open(folder)
        self.saving = threading.Event()
        self.go_on = threading.Event()
        self.outcome = []
        save = self.store.save_predicted

        def held_save(*args, **kwargs):
            self.saving.set()
            assert self.go_on.wait(WAIT_S)
            return save(*args, **kwargs)

        monkeypatch.setattr(self.store, "save_predicted", held_save)
        self.job = PrelabelJob(self.store, model, mode=WHOLE_IMAGE)
        self.thread = threading.Thread(target=lambda: self.outcome.append(self.job.run()))
        self.thread.start()
        assert self.saving.wait(WAIT_S)

    def release(self):
        self.go_on.set()
        self.thread.join(WAIT_S)
        self.store.close()
        return self.outcome[0]


def test_a_second_run_is_refused_while_one_runs_and_writes_nothing(folder, model, monkeypatch):
    first = HeldRun(folder, model, monkeypatch)
    try:
        with ProjectStore.open(folder) as store, pytest.raises(PrelabelBusy) as refused:
            PrelabelJob(store, model, mode=WHOLE_IMAGE, redo=True).run()
        message = str(refused.value)
        job_id = first.job.job_id
        assert f"job {job_id}" in message and f"faceparse jobs {folder}" in message
        assert f"--cancel {job_id}" in message
        with ProjectStore.open(folder) as store:
            assert [job["id"] for job in store.jobs(JOB_KIND)] == [job_id]
        assert predicted_files(folder) == []
    finally:
        result = first.release()
    assert result.state == "done" and result.predicted == COUNT
    with ProjectStore.open(folder) as store:
        again = PrelabelJob(store, model, mode=WHOLE_IMAGE, redo=True).run()
    assert again.state == "done" and again.predicted == COUNT


def test_the_command_is_refused_before_its_scan_and_names_the_running_job(folder, model, capsys):
    with ProjectStore.open(folder) as store:
        lock = prelabel_lock(store)
        assert lock.acquire()
        job_id = store.add_job(JOB_KIND, {})
        store.update_job(job_id, state="running", pid=os.getpid(), progress=0.4)
    try:
        Image.fromarray(draw_face(99, SIZE, background="none")[0]).save(folder / "new.png")
        code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    finally:
        lock.release()
    assert code == 2 and "Scanned" not in out
    assert f"a pre-labeling run is already going on in {folder} (job {job_id}, 40% done)" in err
    assert f"faceparse jobs {folder} --cancel {job_id}" in err
    with ProjectStore.open(folder) as store:
        assert store.find("new.png") is None and len(store.jobs()) == 1
    assert predicted_files(folder) == []


HOLDER = textwrap.dedent("""
    import os, sys, time
    from faceparse.core.prelabel import JOB_KIND, prelabel_lock
    from faceparse.core.store import ProjectStore

    store = ProjectStore.open(sys.argv[1])
    assert prelabel_lock(store).acquire()
    job_id = store.add_job(JOB_KIND, {})
    store.update_job(job_id, state="running", pid=os.getpid())
    print(job_id, flush=True)
    time.sleep(600)
""")


def test_a_killed_run_leaves_the_project_free(folder, model, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        job_id = int(holder.stdout.readline())
        code, _, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
        assert code == 2 and f"job {job_id}" in err
    finally:
        holder.kill()
        holder.wait(WAIT_S)
        holder.stdout.close()
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 0, err
    assert f"Predicted {COUNT} of {COUNT} images" in out


def test_the_studios_all_images_is_refused_and_one_image_still_works(folder, model, monkeypatch):
    from faceparse.app.gui import model_jobs

    resolved = find_model(None, model, "parser")
    monkeypatch.setattr(model_jobs, "find_model", lambda *args: resolved)
    with ProjectStore.open(folder) as store:
        lock = prelabel_lock(store)
        assert lock.acquire()
        try:
            with pytest.raises(PrelabelBusy, match="another pre-labeling run is starting"):
                PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
            record = store.images()[0]
            store.set_setting("prelabel.mode", WHOLE_IMAGE)
            done = model_jobs.prelabel_image(store, record.id, "cpu", model_jobs.PredictorCache())
            assert done.status == "predicted"
        finally:
            lock.release()


def test_prelabel_exits_with_1_when_images_could_not_be_prelabeled(folder, model, capsys):
    (folder / "bad.png").write_text("not a picture")
    code, out, _ = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 1
    assert f"Predicted {COUNT} of {COUNT + 1} images" in out and "Could not pre-label 1 image:" in out


def test_the_prelabel_help_says_what_the_exit_status_means(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    code, out, _ = run(capsys, "prelabel", "--help")
    assert code == 0 and "1 when some could not be pre-labeled" in out and "one run at a time" in out


def test_a_run_frees_the_project_when_it_fails(folder, model, tmp_path):
    with ProjectStore.open(folder) as store:
        with pytest.raises(ModelNotFoundError, match="model file not found"):
            PrelabelJob(store, tmp_path / "missing.onnx", mode=WHOLE_IMAGE).run()
        assert prelabel_lock(store).is_free()
        assert PrelabelJob(store, model, mode=WHOLE_IMAGE).run().predicted == COUNT
        assert np.all([store.predicted_mask(rec.id) is not None for rec in store.images()])
