"""Deleting and pruning model versions, trimming the jobs table, and the `models delete|prune` and `jobs --prune`
commands."""

import os
import subprocess
import sys

import pytest
from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.core import store as store_module
from faceparse.core.store import ProjectError
from faceparse.core.versions import (
    STARTER,
    activate,
    activation_history,
    delete_version,
    list_versions,
    prune_versions,
    rollback,
    rollback_candidates,
    version_dir,
    versions_to_prune,
)
from test_versions import fake_version

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def store(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    yield store
    store.close()


def made(store, count, **options):
    return [fake_version(store, **options)["version"] for _ in range(count)]


def names(store):
    return [row["version"] for row in list_versions(store, "parser")]


def on_disk(store):
    return sorted(p.name for p in (store.models_dir / "parser").iterdir())


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- delete_version --------------------------------------------------------------------------------------------------

def test_deleting_a_version_removes_its_folder_and_row_and_reports_its_size(store):
    v1, v2 = made(store, 2)
    activate(store, "parser", v2, export_missing_onnx=False)
    size = sum(p.stat().st_size for p in version_dir(store, "parser", v1).iterdir())
    deleted = delete_version(store, "parser", v1)
    assert (deleted.task, deleted.version, deleted.files_kept) == ("parser", v1, None)
    assert deleted.size_bytes == size > 1_000_000
    assert names(store) == [v2] and on_disk(store) == [v2]
    assert store.model_version("parser", v1) is None


def test_the_active_version_is_never_deleted(store):
    v1, v2 = made(store, 2)
    activate(store, "parser", v1, export_missing_onnx=False)
    with pytest.raises(ProjectError, match="parser v0001 is the active model.*activate another version"):
        delete_version(store, "parser", v1)
    with pytest.raises(ProjectError, match="active model"):
        store.delete_model_version("parser", v1)
    assert names(store) == [v1, v2] and on_disk(store) == [v1, v2]
    assert store.active_model("parser")["version"] == v1


def test_a_version_that_does_not_exist_is_a_clear_error(store):
    made(store, 1)
    with pytest.raises(ProjectError, match=r"no model version 'v0042' for task 'parser' \(known: v0001\)"):
        delete_version(store, "parser", "v0042")


def test_a_version_whose_files_are_gone_can_still_be_deleted(store):
    v1, v2 = made(store, 2)
    (version_dir(store, "parser", v1) / "model.safetensors").unlink()
    assert delete_version(store, "parser", v1).size_bytes > 0  # the rest of its folder
    assert names(store) == [v2] and on_disk(store) == [v2]


def test_files_outside_the_project_are_left_alone(store, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "model.safetensors").write_bytes(b"weights")
    store.add_model_version("parser", "v0007", outside, {})
    deleted = delete_version(store, "parser", "v0007")
    assert deleted.files_kept == str(outside.resolve()) and deleted.size_bytes == 0
    assert (outside / "model.safetensors").read_bytes() == b"weights"
    assert store.model_version("parser", "v0007") is None


def test_a_deleted_versions_name_is_never_given_to_a_new_version(store):
    v1, v2, v3 = made(store, 3)
    delete_version(store, "parser", v3)
    delete_version(store, "parser", v1)
    assert made(store, 1) == ["v0004"]
    assert names(store) == [v2, "v0004"]


def test_rollback_never_returns_to_a_deleted_version(store):
    v1, v2 = made(store, 2)
    v3 = fake_version(store, parent=v2)["version"]
    for version in (v1, v2, v3):
        activate(store, "parser", version, export_missing_onnx=False)
    delete_version(store, "parser", v2)
    assert activation_history(store, "parser") == [STARTER, v1, v3]
    assert rollback_candidates(store, "parser")[0] == v1
    assert rollback(store, "parser", export_missing_onnx=False)["version"] == v1
    with pytest.raises(ProjectError, match="no model version 'v0002'"):
        rollback(store, "parser", v2, export_missing_onnx=False)


def test_a_failure_before_the_row_is_removed_puts_the_folder_back(store, monkeypatch):
    v1, v2 = made(store, 2)

    def locked(*_args):
        raise ProjectError("the project is busy")

    monkeypatch.setattr(store, "delete_model_version", locked)
    with pytest.raises(ProjectError, match="busy"):
        delete_version(store, "parser", v1)
    monkeypatch.undo()
    assert names(store) == [v1, v2] and on_disk(store) == [v1, v2]


def test_a_crash_between_hiding_the_folder_and_removing_the_row_is_undone_by_the_next_deletion(store):
    v1, v2, v3 = made(store, 3)
    hidden = version_dir(store, "parser", v1).with_name(f".{v1}.deleting-{dead_pid()}")
    os.replace(version_dir(store, "parser", v1), hidden)
    assert names(store) == [v1, v2, v3]  # the hidden folder does not upset the list
    assert [row["version"] for row in store.model_versions("parser")] == [v1, v2, v3]
    delete_version(store, "parser", v3)
    assert on_disk(store) == [v1, v2]
    activate(store, "parser", v1, export_missing_onnx=False)  # complete again


def test_a_crash_after_the_row_was_removed_leaves_a_folder_the_next_deletion_removes(store):
    v1, v2, v3 = made(store, 3)
    store.delete_model_version("parser", v1)
    os.replace(version_dir(store, "parser", v1), version_dir(store, "parser", v1).with_name(f".{v1}.deleting-1"))
    assert names(store) == [v2, v3]
    assert made(store, 1) == ["v0004"]
    delete_version(store, "parser", v2)
    assert on_disk(store) == [v3, "v0004"]


def test_the_version_a_running_training_job_starts_from_is_kept(store):
    v1, v2 = made(store, 2)
    job = store.add_job("retrain", {"task": "parser", "init": v1})
    store.update_job(job, state="running", pid=os.getpid())
    with pytest.raises(ProjectError, match=f"parser v0001 is what training job {job} starts from"):
        delete_version(store, "parser", v1)
    store.update_job(job, state="done")
    delete_version(store, "parser", v1)
    assert names(store) == [v2]


# --- prune_versions --------------------------------------------------------------------------------------------------

def test_prune_keeps_the_active_version_and_the_newest_others(store):
    versions = made(store, 5)
    activate(store, "parser", versions[1], export_missing_onnx=False)
    assert [row["version"] for row in versions_to_prune(store, "parser", keep=2)] == ["v0001", "v0003"]
    planned = prune_versions(store, "parser", keep=2, dry_run=True)
    assert planned.dry_run and [d.version for d in planned.deleted] == ["v0001", "v0003"]
    assert names(store) == versions and on_disk(store) == versions
    done = prune_versions(store, "parser", keep=2)
    assert [d.version for d in done.deleted] == ["v0001", "v0003"] and not done.refused
    assert done.bytes_freed == planned.bytes_freed == sum(d.size_bytes for d in done.deleted) > 2_000_000
    assert names(store) == ["v0002", "v0004", "v0005"] and on_disk(store) == ["v0002", "v0004", "v0005"]
    assert prune_versions(store, "parser", keep=0).deleted[-1].version == "v0005"
    assert names(store) == ["v0002"]
    with pytest.raises(ProjectError, match="cannot be negative"):
        prune_versions(store, "parser", keep=-1)


def test_prune_without_an_active_version_keeps_only_the_newest(store):
    made(store, 3)
    assert [d.version for d in prune_versions(store, "parser", keep=1).deleted] == ["v0001", "v0002"]
    assert names(store) == ["v0003"]


def test_prune_goes_on_past_a_version_it_may_not_delete(store):
    made(store, 3)
    job = store.add_job("retrain", {"task": "parser", "init": "v0001"})
    store.update_job(job, state="running", pid=os.getpid())
    result = prune_versions(store, "parser", keep=1)
    assert [d.version for d in result.deleted] == ["v0002"]
    assert [version for version, _ in result.refused] == ["v0001"] and "training job" in result.refused[0][1]
    assert names(store) == ["v0001", "v0003"]


# --- jobs ------------------------------------------------------------------------------------------------------------

def jobs_with_logs(store, states):
    ids = []
    for state in states:
        job = store.add_job("retrain")
        store.append_job_log(job, f"line of job {job}")
        if state != "queued":
            store.update_job(job, state=state)
        ids.append(job)
    return ids


def orphan_log_rows(store):
    return store._conn().execute("SELECT count(*) FROM job_log WHERE job_id NOT IN (SELECT id FROM jobs)").fetchone()[0]


def test_prune_jobs_keeps_the_newest_finished_and_every_unfinished_job(store):
    ids = jobs_with_logs(store, ["done", "running", "failed", "queued", "cancelled", "done", "done"])
    store._conn().execute("PRAGMA foreign_keys=OFF")  # the logs must go without relying on ON DELETE CASCADE
    assert store.prune_jobs(keep=2) == 3
    kept = [job["id"] for job in store.jobs()]
    assert kept == [ids[6], ids[5], ids[3], ids[1]]
    assert orphan_log_rows(store) == 0 and store.job_log(ids[6]) == [f"line of job {ids[6]}"]
    assert store.prune_jobs(keep=0) == 2 and [job["state"] for job in store.jobs()] == ["queued", "running"]
    with pytest.raises(ProjectError, match="cannot be negative"):
        store.prune_jobs(keep=-1)


def test_adding_a_job_trims_the_finished_ones(store, monkeypatch):
    monkeypatch.setattr(store_module, "JOBS_KEPT", 2)
    ids = jobs_with_logs(store, ["done", "running", "failed", "done", "cancelled"])
    newest = store.add_job("retrain")
    assert [job["id"] for job in store.jobs()] == [newest, ids[4], ids[3], ids[1]]
    assert orphan_log_rows(store) == 0


# --- command line ----------------------------------------------------------------------------------------------------

def test_models_delete_prints_what_it_freed_and_refuses_the_active_version(store, capsys):
    v1, v2, _ = made(store, 3)
    activate(store, "parser", v2, export_missing_onnx=False)
    folder = store.root
    code, out, _ = run(capsys, "models", folder, "delete", v1)
    assert code == 0 and out.startswith("deleted parser v0001 (") and " MB freed)" in out
    code, out, err = run(capsys, "models", folder, "delete", v2)
    assert code == 2 and out == ""
    assert "faceparse models: error: parser v0002 is the active model" in err and "activate another" in err
    code, _, err = run(capsys, "models", folder, "delete", "v0042")
    assert code == 2 and "no model version 'v0042'" in err
    code, _, err = run(capsys, "models", folder, "delete")
    assert code == 2 and "needs a VERSION" in err
    assert names(store) == ["v0002", "v0003"]


def test_models_prune_dry_run_then_prune(store, capsys):
    made(store, 4)
    activate(store, "parser", "v0001", export_missing_onnx=False)
    folder = store.root
    code, out, _ = run(capsys, "models", folder, "prune", "--keep", "1", "--dry-run")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("would delete parser v0002 (") and lines[0].endswith(" MB)")
    assert lines[1].startswith("would delete parser v0003 (") and "v0004" not in out
    assert "2 versions would be deleted" in out and "dry run: nothing was deleted" in out
    assert names(store) == ["v0001", "v0002", "v0003", "v0004"]
    code, out, _ = run(capsys, "models", folder, "prune", "--task", "parser", "--keep", "1")
    assert code == 0 and "deleted parser v0002" in out and "2 versions deleted" in out and " MB freed" in out
    assert names(store) == ["v0001", "v0004"]
    code, out, _ = run(capsys, "models", folder, "prune", "--keep", "1")
    assert code == 0 and out.startswith("Nothing to prune")
    code, _, err = run(capsys, "models", folder, "list", "--keep", "1")
    assert code == 2 and "--keep and --dry-run go with models prune" in err
    code, _, err = run(capsys, "models", folder, "prune", "--keep", "-1")
    assert code == 2 and "must be at least 0" in err


def test_jobs_prune_on_the_command_line(store, capsys):
    jobs_with_logs(store, ["done", "running", "failed", "done"])
    code, out, _ = run(capsys, "jobs", store.root, "--prune", "1")
    assert code == 0 and out.strip() == "deleted 2 finished jobs"
    assert sorted(job["state"] for job in store.jobs()) == ["done", "running"]


# --- found in review -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep", [2, 3, 10])
def test_prune_keeps_everything_when_asked_to_keep_at_least_as_many_as_there_are(store, keep):
    versions = made(store, 3)
    activate(store, "parser", versions[1], export_missing_onnx=False)
    assert versions_to_prune(store, "parser", keep=keep) == []
    assert prune_versions(store, "parser", keep=keep).deleted == ()
    assert names(store) == versions


def test_models_prune_with_the_default_keep_on_three_versions_deletes_nothing(store, capsys):
    versions = made(store, 3)
    activate(store, "parser", versions[2], export_missing_onnx=False)
    code, out, _ = run(capsys, "models", store.root, "prune")
    assert code == 0 and "Nothing to prune" in out
    assert names(store) == versions


def test_prune_says_when_there_is_nothing_trained(store, capsys):
    code, out, _ = run(capsys, "models", store.root, "prune")
    assert code == 0 and "no trained model versions" in out


def test_the_starter_model_cannot_be_deleted(store, capsys):
    code, _, err = run(capsys, "models", store.root, "delete", "starter")
    assert code == 2 and "ships with the application and cannot be deleted" in err


def test_the_version_an_automatic_retrain_settled_on_is_kept(store):
    v1, v2 = made(store, 2)
    job = store.add_job("retrain", {"task": "parser", "init": "auto"})
    store.update_job(job, state="running", pid=os.getpid())
    store.add_job_params(job, start_version=v1)
    assert store.job(job)["params"] == {"task": "parser", "init": "auto", "start_version": v1}
    activate(store, "parser", v2, export_missing_onnx=False)
    with pytest.raises(ProjectError, match=f"parser v0001 is what training job {job} starts from"):
        delete_version(store, "parser", v1)
    assert names(store) == [v1, v2]


def test_a_refused_deletion_keeps_the_activation_history(store, monkeypatch):
    v1, v2 = made(store, 2)
    activate(store, "parser", v1, export_missing_onnx=False)
    activate(store, "parser", v2, export_missing_onnx=False)

    def activated_meanwhile(task, version):
        raise ProjectError(f"{task} {version} is the active model; activate another version first")

    monkeypatch.setattr(store, "delete_model_version", activated_meanwhile)
    with pytest.raises(ProjectError):
        delete_version(store, "parser", v1)
    assert activation_history(store, "parser") == [STARTER, v1, v2]
    assert on_disk(store) == [v1, v2]


def test_listing_the_versions_settles_a_deletion_a_crash_interrupted(store):
    v1, v2, v3 = made(store, 3)
    hidden = version_dir(store, "parser", v1).with_name(f".{v1}.deleting-{dead_pid()}")
    os.replace(version_dir(store, "parser", v1), hidden)
    store.delete_model_version("parser", v2)
    leftover = version_dir(store, "parser", v2).with_name(f".{v2}.deleting-{dead_pid()}")
    os.replace(version_dir(store, "parser", v2), leftover)
    assert [row["version"] for row in list_versions(store)] == [v1, v3]
    assert on_disk(store) == [v1, v3] and not hidden.exists() and not leftover.exists()
    activate(store, "parser", v1, export_missing_onnx=False)  # its files are whole again


def test_a_deletion_still_running_in_another_process_is_left_alone(store):
    v1, _ = made(store, 2)
    hidden = version_dir(store, "parser", v1).with_name(f".{v1}.deleting-{os.getpid()}")
    os.replace(version_dir(store, "parser", v1), hidden)
    list_versions(store, "parser")
    assert hidden.exists() and not version_dir(store, "parser", v1).exists()


def test_a_dry_run_refuses_what_the_real_prune_refuses(store, monkeypatch):
    from faceparse.core import versions

    v1, v2, v3 = made(store, 3)
    activate(store, "parser", v3, export_missing_onnx=False)
    monkeypatch.setattr(versions, "_training_job_starting_from",
                        lambda store, task, version: {"id": 9} if version == v1 else None)
    dry = prune_versions(store, "parser", keep=0, dry_run=True)
    assert [d.version for d in dry.deleted] == [v2]
    assert [version for version, _ in dry.refused] == [v1] and "training job 9" in dry.refused[0][1]
    real = prune_versions(store, "parser", keep=0)
    assert [d.version for d in real.deleted] == [d.version for d in dry.deleted]
    assert real.refused == dry.refused
