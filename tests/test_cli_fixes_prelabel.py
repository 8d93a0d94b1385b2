"""The command line's last-resort error handling, and `prelabel` / `predict` refusing or surviving what used to end
in a traceback, a polluted photo folder or a changed project setting."""

import errno
import os
import sqlite3
import subprocess
import sys

import pytest
from faceparse.app import cli
from faceparse.app.cli import main
from faceparse.core.faces import FACES, WHOLE_IMAGE
from faceparse.core.prelabel import MODE_SETTING, TTA_SETTING, PrelabelJob
from faceparse.core.store import ProjectError, ProjectStore
from faceparse.core.synthetic import draw_face
from onnx_models import foreground_model
from PIL import Image

SIZE = 48


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("fix_models") / "face.onnx")


def photos(root, count=3):
    root.mkdir()
    for i in range(count):
        Image.fromarray(draw_face(60 + i, SIZE, background="none")[0]).save(root / f"p{i}.jpg")
    return root


@pytest.fixture
def folder(tmp_path):
    return photos(tmp_path / "photos")


@pytest.fixture
def project(folder):
    with ProjectStore.create(folder) as store:
        store.scan()
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fail_with(error):
    def fail(*args, **kwargs):
        raise error
    return fail


# --- cli.main ------------------------------------------------------------------------------------------------------

def test_file_and_database_failures_are_one_line(capsys, monkeypatch, folder):
    disk_full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/photos/.faceparse/project.db")
    monkeypatch.setattr(ProjectStore, "scan", fail_with(disk_full))
    code, _, err = run(capsys, "scan", folder)
    assert code == 2 and err == f"faceparse scan: error: /data/photos/.faceparse/project.db: {os.strerror(errno.ENOSPC)}\n"

    monkeypatch.setattr(ProjectStore, "scan", fail_with(sqlite3.OperationalError("database is locked")))
    code, _, err = run(capsys, "scan", folder)
    assert code == 2 and err == "faceparse scan: error: database is locked\n"

    monkeypatch.setattr(ProjectStore, "scan", fail_with(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):  # programming errors keep their traceback
        main(["scan", str(folder)])


class ClosedPipe:
    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_closed_stdout_ends_quietly(capsys, monkeypatch, project):
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = main(["info", str(project), "--json"])
    assert code == cli.BROKEN_PIPE_EXIT == 141
    assert capsys.readouterr().err == ""


def test_a_reader_that_goes_away_leaves_no_traceback(project):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "faceparse.app.cli", "info", str(project), "--json"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == ""


def test_ctrl_c_while_starting_is_one_line(capsys, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        code = main(["info", "."])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while the parser was built escaped main")
    assert code == 130 and capsys.readouterr().err == "interrupted\n"


def test_the_command_line_starts_before_loading_the_core():
    """Imports before main() runs cannot be interrupted cleanly, so they are kept to the standard library."""
    script = ("import sys, faceparse.app.cli; "
              "print(sorted(m for m in ('numpy', 'faceparse.core.store') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr


# --- predict -------------------------------------------------------------------------------------------------------

def test_predict_to_an_impossible_folder_is_a_clear_error(capsys, folder, model, tmp_path):
    (tmp_path / "afile.txt").write_text("not a folder")
    code, _, err = run(capsys, "predict", folder, "--out", tmp_path / "afile.txt" / "sub", "--model", model,
                       "--whole-image")
    assert code == 2 and "faceparse predict: error: cannot create the output folder" in err
    assert "Traceback" not in err


def test_predict_refuses_to_write_into_a_project(capsys, project, model):
    for out in (project, project / "masks", project / "mask.png"):
        inputs = project if out.suffix != ".png" else project / "p0.jpg"
        code, _, err = run(capsys, "predict", inputs, "--out", out, "--model", model, "--whole-image")
        assert code == 2 and "is inside the project" in err and "Choose a folder outside it" in err
    assert sorted(p.name for p in project.iterdir() if not p.name.startswith(".")) == ["p0.jpg", "p1.jpg", "p2.jpg"]


def option_help(capsys, monkeypatch, command, option):
    monkeypatch.setenv("COLUMNS", "1000")
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    return next(line for line in out.splitlines() if line.strip().startswith(option))


def test_tta_help_says_what_each_command_does(capsys, monkeypatch):
    assert "remembered" not in option_help(capsys, monkeypatch, "predict", "--tta")
    assert "default off" in option_help(capsys, monkeypatch, "predict", "--tta")
    assert "remembered for the project" in option_help(capsys, monkeypatch, "prelabel", "--tta")


# --- prelabel ------------------------------------------------------------------------------------------------------

def test_prelabel_finishes_a_project_whose_creation_was_interrupted(capsys, folder, model):
    (folder / ".faceparse").mkdir()
    (folder / ".faceparse" / "project.db").touch()
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 0, err
    assert "Created project" in out and "Predicted 3 of 3 images" in out
    with ProjectStore.open(folder) as store:
        assert store.counts()["predicted"] == 3


def test_a_prelabel_that_cannot_start_keeps_the_project_settings(capsys, project, tmp_path):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not onnx\n")
    with ProjectStore.open(project) as store:
        store.set_setting(MODE_SETTING, WHOLE_IMAGE)
    assert run(capsys, "prelabel", project, "--model", fake, "--tta")[0] == 2
    assert run(capsys, "prelabel", project, "--model", fake, "--mode", "auto")[0] == 2
    with ProjectStore.open(project) as store:
        assert store.get_setting(TTA_SETTING) is None
        assert store.get_setting(MODE_SETTING) == WHOLE_IMAGE


class NoFaces:
    def detect(self, image):
        return []


def test_suggested_mode_replaces_the_projects_choice_once_the_model_loads(project, model):
    from faceparse.core.prelabel import SUGGESTED_MODE

    with ProjectStore.open(project) as store:
        store.set_setting(MODE_SETTING, FACES)
        result = PrelabelJob(store, model, mode=SUGGESTED_MODE, detector=NoFaces()).run()
        assert result.mode == WHOLE_IMAGE and store.get_setting(MODE_SETTING) == WHOLE_IMAGE


def failing_saves(monkeypatch, store_class_or_store, fails):
    """Make save_predicted raise a read-only-folder error for the images `fails` picks; returns the call count."""
    real = store_class_or_store.save_predicted
    calls = [0]

    def save(*args, **kwargs):
        calls[0] += 1
        image_id = args[1] if isinstance(store_class_or_store, type) else args[0]
        if fails(image_id):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), "masks/predicted/x.png")
        return real(*args, **kwargs)

    monkeypatch.setattr(store_class_or_store, "save_predicted", save)
    return calls


def test_a_mask_that_cannot_be_saved_is_skipped_not_blamed_on_the_photo(monkeypatch, project, model):
    with ProjectStore.open(project) as store:
        unlucky = store.images()[1]
        failing_saves(monkeypatch, store, lambda image_id: image_id == unlucky.id)
        result = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
        assert result.predicted == 2 and [relpath for relpath, _ in result.failed] == [unlucky.relpath]
        assert store.get(unlucky.id).error is None and store.count_errors() == 0


def test_prelabel_stops_when_no_mask_can_be_saved(capsys, monkeypatch, tmp_path, model):
    from faceparse.core.prelabel import SAVE_FAILURES_TO_STOP

    count = SAVE_FAILURES_TO_STOP + 10
    many = photos(tmp_path / "many", count=count)
    with ProjectStore.create(many) as store:
        store.scan()
        calls = failing_saves(monkeypatch, store, lambda image_id: True)
        with pytest.raises(ProjectError, match=f"{SAVE_FAILURES_TO_STOP} masks in a row could not be saved") as stop:
            PrelabelJob(store, model, mode=WHOLE_IMAGE, batch_size=1).run()
        assert SAVE_FAILURES_TO_STOP <= calls[0] < count  # a save already under way may still finish
        assert store.count_errors() == 0 and store.jobs("prelabel")[0]["state"] == "failed"
        partial = stop.value.result
        assert partial.state == "failed" and partial.total == count and partial.predicted == 0
        assert len(partial.failed) >= SAVE_FAILURES_TO_STOP

    failing_saves(monkeypatch, ProjectStore, lambda image_id: True)
    code, out, err = run(capsys, "prelabel", many, "--model", model, "--mode", "whole-image")
    assert code == 1 and "Traceback" not in err  # the documented status of a stopped run
    assert f"faceparse prelabel: stopped: {SAVE_FAILURES_TO_STOP} masks in a row could not be saved" in err
    assert f"Predicted 0 of {count} images" in out and "Could not pre-label" in out
    assert "running the command again goes on from them" in err


def test_a_save_stop_after_some_masks_reports_what_was_saved(capsys, monkeypatch, tmp_path, model):
    from faceparse.core.prelabel import SAVE_FAILURES_TO_STOP

    count = SAVE_FAILURES_TO_STOP + 8
    folder = photos(tmp_path / "some", count=count)
    saved = []

    def fails(image_id):
        if len(saved) < 3:
            saved.append(image_id)
            return False
        return True

    failing_saves(monkeypatch, ProjectStore, fails)
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image", "--batch-size", "1")
    assert code == 1 and "masks in a row could not be saved" in err
    assert f"Predicted 3 of {count} images" in out
    with ProjectStore.open(folder) as store:
        assert sum(store.mask_path("predicted", i).is_file() for i in saved) == 3


def test_a_stopped_redo_run_says_that_redo_starts_over(capsys, monkeypatch, tmp_path, model):
    from faceparse.core.prelabel import SAVE_FAILURES_TO_STOP

    many = photos(tmp_path / "many", count=SAVE_FAILURES_TO_STOP + 4)
    failing_saves(monkeypatch, ProjectStore, lambda image_id: True)
    code, _, err = run(capsys, "prelabel", many, "--model", model, "--mode", "whole-image", "--redo")
    assert code == 1
    assert "running it again without --redo goes on from them" in err
