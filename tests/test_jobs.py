"""Training jobs in their own process: events, the job log, one training job per project, cancel, crashes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from drawn_projects import make_project
from faceparse.core import jobs as jobs_module
from faceparse.core import train_worker
from faceparse.core.jobs import (
    CANCEL_GRACE_S,
    CANCELLED_EXIT,
    KILL_GRACE_S,
    REMOTE_SILENCE_S,
    JobConflict,
    JobEvent,
    JobHandle,
    JobRunner,
    reap_stale_jobs,
    running_training_job,
    training_lock,
)
from faceparse.core.store import ProjectStore
from faceparse.core.versions import activate, create_version
from faceparse.models import build_model

LONG_JOB = {"input_size": 64, "batch_size": 4, "epochs": 500, "threads": 1, "time_limit_s": None,
            "export_onnx": False, "repredict": False, "patience": 0}


@pytest.fixture
def project(tmp_path):
    """Eight corrected drawn faces and an active (untrained) parser version v0001."""
    store, _ = make_project(tmp_path / "faces", count=8, corrected=8)
    torch.manual_seed(0)
    model = build_model("deeplabv3plus_mobilenetv2", classes=11)
    meta = {"task": "parser", "architecture": "deeplabv3plus_mobilenetv2", "arch_args": {"classes": 11},
            "schema": {"name": "lapa", "classes": list(store.schema.classes)}, "input_size": [64, 64],
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
    create_version(store, "parser", model, meta, {"score": 0.0}, None, {}, export_onnx=False)
    activate(store, "parser", "v0001", export_missing_onnx=False)
    yield store
    store.close()


def until_training(handle, steps=2, timeout=600):
    events = []
    for event in handle.events(timeout=timeout):
        events.append(event)
        assert not event.final, f"job ended early: {event.message}"
        if event.phase == "train" and (event.step or 0) >= steps:
            return events
    raise AssertionError(f"no training step within {timeout} s; events: {[e.phase for e in events]}")


def test_job_streams_progress_refuses_a_second_training_and_cancels(project):
    runner = JobRunner(project)
    heard = []
    handle = runner.start_retrain(LONG_JOB, on_event=heard.append)
    events = until_training(handle)
    phases = [e.phase for e in events]
    assert phases[0] == "start" and "snapshot" in phases and "prepare" in phases
    step = [e for e in events if e.phase == "train" and e.step][-1]
    assert step.loss > 0 and step.total > step.step and step.eta_s is not None and step.job_id == handle.job_id
    with pytest.raises(JobConflict, match="already running"):
        runner.start_retrain(LONG_JOB)
    asked = time.monotonic()
    handle.cancel()
    outcome = handle.wait(timeout=120)
    took = time.monotonic() - asked
    assert outcome.state == "cancelled" and "previous model is still active" in outcome.message
    assert took < CANCEL_GRACE_S + KILL_GRACE_S + 5
    assert heard[-1].final and heard[-1].phase == "cancelled"
    assert [e.phase for e in heard[:len(events)]] == phases
    assert project.active_model("parser")["version"] == "v0001"
    assert [m["version"] for m in project.model_versions("parser")] == ["v0001"]
    job = project.job(handle.job_id)
    assert job["state"] == "cancelled" and job["params"]["epochs"] == 500
    log = project.job_log(handle.job_id)
    assert any(line.startswith("snapshot") for line in log) and any(line.startswith("train") for line in log)
    assert log[-1].startswith("cancelled")
    assert running_training_job(project) is None and training_lock(project).is_free()


def test_a_killed_job_leaves_the_project_readable_and_the_previous_model_active(project):
    handle = JobRunner(project).start_retrain(LONG_JOB)
    until_training(handle, steps=1)
    os.kill(handle.process.pid, signal.SIGKILL)
    outcome = handle.wait(timeout=60)
    assert outcome.state == "failed"
    assert "ended unexpectedly" in outcome.message and "SIGKILL" in outcome.message
    with ProjectStore.open(project.root) as reopened:
        assert reopened.active_model("parser")["version"] == "v0001"
        assert [m["version"] for m in reopened.model_versions()] == ["v0001"]
        assert reopened.count("corrected") == 8
        assert all(reopened.corrected_mask(r.id) is not None for r in reopened.images())
        assert reopened.job(handle.job_id)["state"] == "failed"
        assert running_training_job(reopened) is None and training_lock(reopened).is_free()


@pytest.mark.parametrize("error, expected", [
    (MemoryError(), "out of memory while training"),
    (RuntimeError("boom"), "training failed: RuntimeError: boom"),
])
def test_a_crash_ends_the_job_with_a_clear_message(project, monkeypatch, error, expected):
    def explode(ctx):
        ctx.emit("train", "starting", step=0, total=10)
        raise error

    monkeypatch.setattr(train_worker, "RETRAIN_PHASES", [("snapshot", train_worker.phase_snapshot),
                                                         ("train", explode)])
    code = train_worker.main(["--project", str(project.root), "--config", json.dumps(LONG_JOB), "--events", "text"])
    assert code == 1
    job = project.jobs(kind="retrain")[0]
    assert job["state"] == "failed"
    assert expected in job["message"] and "previous model is still active" in job["message"]
    assert any("Traceback" in line for line in project.job_log(job["id"]))
    assert training_lock(project).is_free()


def test_the_worker_refuses_to_train_while_another_holds_the_project(project):
    lock = training_lock(project)
    assert lock.acquire()
    try:
        job_id = project.add_job("retrain", LONG_JOB)
        started = time.monotonic()
        assert train_worker.main(["--project", str(project.root), "--job-id", str(job_id), "--events", "text"]) == 1
        assert time.monotonic() - started < 30
    finally:
        lock.release()
    job = project.job(job_id)
    assert job["state"] == "failed" and "another training job" in job["message"]


def test_stale_jobs_are_marked_failed(project):
    job_id = project.add_job("retrain", {})
    project.update_job(job_id, state="running", pid=2**22 + 12345)
    young = project.add_job("retrain", {})
    assert reap_stale_jobs(project) == [job_id]
    assert project.job(job_id)["state"] == "failed"
    assert project.job(young)["state"] == "queued"
    assert running_training_job(project)["id"] == young


def test_a_job_another_machine_runs_is_judged_by_its_silence_not_by_a_local_process_id(project, monkeypatch):
    """A project on a shared disk: the other machine's process ids mean nothing here."""
    monkeypatch.setattr(socket, "gethostname", lambda: "other-machine")
    job_id = project.add_job("prelabel", {})
    project.update_job(job_id, state="running", pid=2**22 + 12345)
    monkeypatch.undo()
    assert project.job(job_id)["host"] == "other-machine"
    assert reap_stale_jobs(project) == []
    assert project.job(job_id)["state"] == "running"
    later = time.time() + REMOTE_SILENCE_S + 1
    monkeypatch.setattr(jobs_module.time, "time", lambda: later)
    project.request_cancel(job_id)  # a request from here, after the silence, is no sign of the job's life
    assert reap_stale_jobs(project) == [job_id]
    assert project.job(job_id)["state"] == "failed"


def test_events_are_small_json_objects():
    event = JobEvent("train", step=3, total=10, loss=0.5, eta_s=12.0, message="epoch 1/2", job_id=7)
    data = json.loads(json.dumps(event.to_dict()))
    assert {"phase", "step", "total", "loss", "metrics", "eta_s", "message"} <= set(data)
    assert JobEvent.from_dict({**data, "unknown": 1}) == event
    assert event.fraction == 0.3 and not event.final and JobEvent("done").final


def test_a_step_that_ignores_cancel_is_cut_short(project):
    """A worker stuck in one long step still ends soon after a cancel, and says so in the project."""
    job_id = project.add_job("retrain", {})
    script = (
        "import sys, time\n"
        "from faceparse.core.jobs import JobReporter\n"
        "from faceparse.core.store import ProjectStore\n"
        "store = ProjectStore.open(sys.argv[1])\n"
        "reporter = JobReporter(store, int(sys.argv[2]), sys.stdout)\n"
        "reporter.start()\n"
        "reporter.start_watching()\n"
        "reporter.emit({'phase': 'train', 'step': 1, 'total': 9, 'message': 'a very long step'})\n"
        "time.sleep(300)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(project.root), str(job_id)],
                               stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while project.job(job_id)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = time.monotonic()
    project.request_cancel(job_id)
    assert process.wait(timeout=CANCEL_GRACE_S + 30) == CANCELLED_EXIT
    assert time.monotonic() - asked < CANCEL_GRACE_S + 10
    job = project.job(job_id)
    assert job["state"] == "cancelled" and "during train" in job["message"]
    events = [json.loads(line) for line in process.stdout.read().splitlines()]
    assert events[-1]["phase"] == "cancelled"


def test_a_finished_job_closes_its_pipes(tmp_path):
    (tmp_path / "empty").mkdir()
    with ProjectStore.create(tmp_path / "empty", "lapa") as store:
        job_id = store.add_job("retrain", {})
        script = ("import json, sys\n"
                  "print('a warning', file=sys.stderr)\n"
                  "print(json.dumps({'phase': 'done', 'message': 'finished'}), flush=True)\n")
        process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        handle = JobHandle(store, job_id, "retrain", process)
        handle.wait(timeout=60)
        for thread in handle._threads:
            thread.join(timeout=30)
        assert process.stdout.closed and process.stderr.closed
        assert any("a warning" in line for line in store.job_log(job_id))


def _killed_worker(store, job_id, then_activate=None):
    """A worker that dies without a final event; `then_activate` (a version) is made active before it dies, as a
    retrain killed during re-prediction has already promoted its model."""
    script = ("import sys\n"
              "from faceparse.core.store import ProjectStore\n"
              "if len(sys.argv) > 2:\n"
              "    with ProjectStore.open(sys.argv[1]) as s:\n"
              "        s.set_active_model('parser', sys.argv[2])\n"
              "sys.exit(9)\n")
    argv = [sys.executable, "-c", script, str(store.root)] + ([then_activate] if then_activate else [])
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    handle = JobHandle(store, job_id, "retrain", process)
    return handle.wait(timeout=120)


def test_a_job_that_dies_says_which_model_is_active_afterwards(project):
    project.add_model_version("parser", "v0002", None, {"score": 0.5}, parent="v0001")
    kept = _killed_worker(project, project.add_job("retrain", {}))
    assert kept.state == "failed" and "the previous model is still active" in kept.message
    promoted = _killed_worker(project, project.add_job("retrain", {}), then_activate="v0002")
    assert promoted.state == "failed" and "parser v0002 is now active" in promoted.message
    assert "previous model is still active" not in promoted.message


def test_a_prelabel_job_whose_process_is_gone_is_marked_failed(project):
    job_id = project.add_job("prelabel", {})
    project.update_job(job_id, state="running", pid=2**22 + 12345)
    alive = project.add_job("prelabel", {})
    project.update_job(alive, state="running", pid=os.getpid())
    assert reap_stale_jobs(project) == [job_id]
    assert project.job(job_id)["state"] == "failed" and "crashed or killed" in project.job(job_id)["message"]
    assert "active" not in project.job(job_id)["message"]  # a pre-labeling run never changes the active model
    assert project.job(alive)["state"] == "running"
