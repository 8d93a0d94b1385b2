"""Command-line details a reviewer found wrong: an empty field in --split, a file swapped into an earlier export
with an old time, eval's advice for a face-mask model on a parser project, and predict's output folders."""

import os

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.export import ExportError, export_dataset, parse_split
from faceparse.core.model_resolver import starter_model_path
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from onnx_models import foreground_model
from PIL import Image


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("text", ["0.5,,0.5", ",0.5,0.5", "0.5,0.5,,"])
def test_an_empty_split_field_is_refused_not_shifted(text):
    with pytest.raises(ValueError, match="empty"):
        parse_split(text)


def test_a_trailing_comma_in_the_split_is_still_read():
    assert parse_split("0.8,0.2,") == (0.8, 0.2, 0.0)


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(draw_face(i, 32)[0]).save(folder / f"face{i}.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, draw_face(int(rec.name[4]), 32)[1])
        yield store


def test_a_file_swapped_in_for_a_deleted_one_with_an_old_time_refuses_the_replace(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "index-png", split=(1, 0, 0))
    previews = sorted((out / "previews").rglob("*.png"))
    previews[0].unlink()
    notes = previews[0].parent / "notes.txt"
    notes.write_text("mine")
    os.utime(notes, ns=(1_577_836_800_000_000_000, 1_577_836_800_000_000_000))
    with pytest.raises(ExportError, match="other than the ones it wrote"):
        export_dataset(store, out, "index-png", split=(1, 0, 0), overwrite=True)
    assert notes.read_text() == "mine"
    notes.unlink()
    export_dataset(store, out, "index-png", split=(1, 0, 0), overwrite=True)
    assert len(list((out / "previews").rglob("*.png"))) == 3


def test_eval_of_a_mask_model_on_a_parser_project_gives_eval_advice(capsys, store):
    model = starter_model_path("mask")
    for extra in ([], ["--task", "parser"]):
        code, _, err = run(capsys, "eval", "--model", model, store.root, *extra)
        assert code == 2
        assert "cannot score the face-mask segmenter" in err and "--model parser" in err


def test_predict_that_cannot_load_its_model_leaves_no_empty_folders(capsys, tmp_path):
    source = tmp_path / "in" / "a" / "b"
    source.mkdir(parents=True)
    Image.fromarray(draw_face(1, 32)[0]).save(source / "p.png")
    code, _, err = run(capsys, "predict", tmp_path / "in", "-r", "--out", f"{tmp_path / 'masks'}/", "--model",
                       "typo")
    assert code == 2 and "typo" in err
    assert not (tmp_path / "masks").exists()


def test_predict_a_folder_of_one_photo_to_a_named_png(capsys, tmp_path):
    model = foreground_model(tmp_path / "face.onnx")
    (tmp_path / "single").mkdir()
    Image.fromarray(draw_face(2, 32)[0]).save(tmp_path / "single" / "p.png")
    code, _, err = run(capsys, "predict", tmp_path / "single", "--out", tmp_path / "m.png", "--model", model,
                       "--whole-image")
    assert code == 0, err
    assert np.asarray(Image.open(tmp_path / "m.png")).shape == (32, 32)


def test_a_second_train_names_the_command_that_lists_and_cancels_the_first(capsys, store, monkeypatch):
    from faceparse.core import jobs

    def busy(self, config):
        raise jobs.JobConflict(f"a training job is already running on {store.root} (job 7, running); "
                               "wait for it or cancel it first")

    monkeypatch.setattr(jobs.JobRunner, "start_retrain", busy)
    code, _, err = run(capsys, "train", store.root, "--epochs", "1")
    assert code == 2
    assert "job 7" in err and f"faceparse jobs {store.root}" in err and "--cancel ID" in err


def test_prelabel_speaks_of_one_image_in_the_singular(capsys, tmp_path):
    model = foreground_model(tmp_path / "face.onnx")
    folder = tmp_path / "one"
    folder.mkdir()
    Image.fromarray(draw_face(3, 32)[0]).save(folder / "p.png")
    assert run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")[0] == 0
    code, out, _ = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 0
    assert "The image this model already predicted with these settings kept its mask" in out


def test_jobs_answers_in_json_when_asked_whatever_it_does(capsys, store):
    import json

    job = store.add_job("prelabel", {})
    store.append_job_log(job, "a line")
    store.update_job(job, state="done", message="ok")
    code, out, _ = run(capsys, "jobs", store.root, "--log", job, "--json")
    assert code == 0 and json.loads(out) == {"job": job, "log": ["a line"]}
    code, out, _ = run(capsys, "jobs", store.root, "--prune", 0, "--json")
    assert code == 0 and json.loads(out) == {"deleted": 1}


@pytest.mark.parametrize("writing_already", [False, True])
def test_a_terminated_import_stops_where_it_is_safe(writing_already):
    import signal
    import threading

    from faceparse.app.commands.export import _import_interrupts, _ProgressLine

    cancel, writing, stop = threading.Event(), threading.Event(), threading.Event()
    if writing_already:
        writing.set()
    before = signal.getsignal(signal.SIGTERM)
    with _import_interrupts(_ProgressLine("Importing"), cancel, writing, stop):
        os.kill(os.getpid(), signal.SIGTERM)
    assert stop.is_set() and cancel.is_set() != writing_already
    assert signal.getsignal(signal.SIGTERM) is before
