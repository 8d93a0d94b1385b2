"""Listing model versions and jobs only reads, so it works on a project that cannot be written; changing them is
still refused there."""

import json

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.store import ProjectStore
from PIL import Image
from read_only_helpers import make_read_only


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A project with one model version and two jobs (one still marked running), which this process may not
    write (root can write anything, so permissions cannot show it)."""
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(folder / "a.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        store.add_model_version("parser", "v0001", None, {"score": 0.5})
        done = store.add_job("train")
        store.update_job(done, state="done", progress=1.0, message="trained v0001")
        running = store.add_job("prelabel")
        store.update_job(running, state="running", progress=0.5, message="half way")
        store.append_job_log(done, "step 1")
    make_read_only(folder, monkeypatch)
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_works_on_a_read_only_project(read_only, capsys):
    before = _files(read_only)
    code, out, err = run(capsys, "models", read_only)
    assert code == 0, err
    assert "v0001" in out
    code, out, err = run(capsys, "models", read_only, "list", "--json")
    assert code == 0 and [row["version"] for row in json.loads(out)] == ["v0001"]
    code, _, err = run(capsys, "models", read_only, "delete", "v0001")
    assert code == 2 and "read-only" in err
    assert _files(read_only) == before


def test_jobs_and_a_job_log_are_listed_on_a_read_only_project(read_only, capsys):
    before = _files(read_only)
    code, out, err = run(capsys, "jobs", read_only)
    assert code == 0, err
    assert "trained v0001" in out and "half way" in out
    code, out, err = run(capsys, "jobs", read_only, "--log", "1")
    assert code == 0 and "step 1" in out
    code, _, err = run(capsys, "jobs", read_only, "--prune", "0")
    assert code == 2 and "read-only" in err
    assert _files(read_only) == before


def test_dry_runs_work_on_a_read_only_project(read_only, capsys, tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    Image.fromarray(np.ones((12, 10), np.uint8)).save(labels / "a.png")
    before = _files(read_only)
    code, out, err = run(capsys, "models", read_only, "prune", "--dry-run")
    assert code == 0, err
    assert "dry run" in out
    code, out, err = run(capsys, "import", read_only, "--format", "index-png", labels, "--dry-run")
    assert code == 0, err
    assert "Would import 1 corrected mask" in out
    code, _, err = run(capsys, "import", read_only, "--format", "index-png", labels)
    assert code == 2 and "read-only" in err
    assert _files(read_only) == before
