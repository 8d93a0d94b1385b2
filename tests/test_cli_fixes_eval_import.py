"""Fixes around `import`, `eval`, `train --time-limit` and `export`: Ctrl-C never leaves an import partly written
without saying so, progress ends at its total, eval maps the masks' schema onto the model's and shows progress,
a time limit must be a finite number, and an export schema must fit the mapping found by its name."""

import json
import math
import os
import shutil
import signal
import sys

import numpy as np
import onnx
import pytest
from drawn_projects import make_project
from faceparse.app.cli import build_parser, main
from faceparse.core import importer
from faceparse.core.evaluate import OnnxPredictor, evaluate, folder_samples
from faceparse.core.export import ExportError, export_dataset, parse_split
from faceparse.core.importer import import_dataset
from faceparse.core.recipes import ConfigError, TrainConfig
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from faceparse.core.trainer import Distributed, _steps_within_limit
from onnx_models import foreground_model
from PIL import Image
from test_cli_train import labelled_folder

FACES = 3


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- import: Ctrl-C and progress ------------------------------------------------------------------------------------

@pytest.fixture
def dataset(tmp_path):
    """(an index-png export of three drawn lapa faces, a fresh lapa project on copies of their pictures)."""
    store, _ = make_project(tmp_path / "faces", count=FACES, corrected=FACES, size=32)
    with store:
        export_dataset(store, tmp_path / "export", "index-png", split=(1, 0, 0))
    shutil.copytree(tmp_path / "faces", tmp_path / "target", ignore=shutil.ignore_patterns(".faceparse"))
    ProjectStore.create(tmp_path / "target", "lapa").close()
    with ProjectStore.open(tmp_path / "target") as target:
        target.scan()
    return tmp_path / "export", tmp_path / "target"


def corrected_count(folder):
    with ProjectStore.open(folder) as store:
        return store.count("corrected")


def ctrl_c_on_call(monkeypatch, owner, name, call, presses=1):
    """Press Ctrl-C (a real SIGINT to this process) `presses` times when `owner.name` is called the `call`th time."""
    original = getattr(owner, name)
    calls = [0]

    def pressing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, pressing)


def test_ctrl_c_while_checking_imports_nothing(dataset, monkeypatch, capsys):
    source, target = dataset
    ctrl_c_on_call(monkeypatch, importer._Checker, "check", call=2)
    code, _, err = run(capsys, "import", target, source, "--format", "index-png")
    assert code == 130 and "nothing was imported" in err and "Traceback" not in err
    assert corrected_count(target) == 0


def test_ctrl_c_while_writing_finishes_the_import(dataset, monkeypatch, capsys):
    source, target = dataset
    ctrl_c_on_call(monkeypatch, ProjectStore, "save_corrected", call=1)
    code, out, err = run(capsys, "import", target, source, "--format", "index-png")
    assert code == 0, err
    assert "finishing so the import is complete" in err and f"Imported {FACES} corrected masks" in out
    assert corrected_count(target) == FACES


def test_a_second_ctrl_c_while_writing_stops_and_says_how_many(dataset, monkeypatch, capsys):
    source, target = dataset
    ctrl_c_on_call(monkeypatch, ProjectStore, "save_corrected", call=1, presses=2)
    code, _, err = run(capsys, "import", target, source, "--format", "index-png")
    assert code == 130 and f"imported 1 of {FACES} corrected masks" in err and "Traceback" not in err
    assert corrected_count(target) == 1


def test_stop_event_stops_writing_between_masks(dataset):
    source, target = dataset
    stop = importer.threading.Event()
    with ProjectStore.open(target) as store:
        with pytest.raises(importer.ImportStopped, match=f"imported 2 of {FACES} corrected masks"):
            import_dataset(store, source, "index-png", stop=stop,
                           progress=lambda done, total: done > FACES + 1 and stop.set())
        assert store.count("corrected") == 2


@pytest.mark.parametrize("second_run", [False, True], ids=["dry-run", "all-identical"])
def test_import_progress_ends_at_its_total(dataset, second_run):
    source, target = dataset
    reports = []
    with ProjectStore.open(target) as store:
        if second_run:
            import_dataset(store, source, "index-png")
        import_dataset(store, source, "index-png", dry_run=not second_run,
                       progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (FACES, FACES)


def test_import_progress_line_ends_before_the_summary(dataset, monkeypatch, capsys):
    source, target = dataset
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, "import", target, source, "--format", "index-png", "--dry-run")
    assert code == 0 and out.startswith("Would import")
    assert err.endswith(f"Checking {FACES}/{FACES}\n")


# --- eval: the masks' schema and progress ---------------------------------------------------------------------------

@pytest.fixture
def celeba_faces(tmp_path):
    return labelled_folder(tmp_path, schema="celebamask-hq", count=2)


def parser_model(path, schema_name):
    """A tiny ONNX parser for `schema_name` whose metadata names a real parser network, as eval requires."""
    foreground_model(path, schema_name)
    model = onnx.load(str(path))
    meta = json.loads(model.metadata_props[0].value)
    model.metadata_props[0].value = json.dumps({**meta, "architecture": "deeplabv3plus_mobilenetv2"})
    onnx.save(model, str(path))
    return path


def test_eval_maps_masks_of_another_schema_onto_the_model(celeba_faces, tmp_path, capsys):
    model = parser_model(tmp_path / "lapa.onnx", "lapa")
    code, out, err = run(capsys, "eval", "--model", model, celeba_faces, "--schema", "celebamask-hq", "--json")
    assert code == 0, err
    assert json.loads(out)["per_class_iou"].keys() == set(get_schema("lapa").classes)
    meta = OnnxPredictor(model).meta
    (_, mapped), _ = folder_samples(celeba_faces, schema="celebamask-hq", model_schema=meta["schema"])
    raw = np.asarray(Image.open(celeba_faces / "masks" / "x0.png"))
    assert np.array_equal(mapped, get_schema("celebamask-hq").map_mask(raw, "lapa"))


def test_eval_measures_a_model_through_its_mapping_onto_the_masks_schema(tmp_path, capsys):
    data = labelled_folder(tmp_path, schema="lapa", count=2)
    model = parser_model(tmp_path / "celeba.onnx", "celebamask-hq")
    code, out, err = run(capsys, "eval", "--model", model, data, "--schema", "lapa", "--json")
    assert code == 0, err
    assert sorted(json.loads(out)["per_class_iou"]) == sorted(get_schema("lapa").classes)


def test_eval_refuses_masks_of_a_schema_without_a_mapping_either_way(tmp_path, capsys):
    data = labelled_folder(tmp_path, schema="lapa", count=2)
    own = tmp_path / "own.json"
    own.write_text(json.dumps({"name": "own", "classes": ["background", "a", "b"],
                               "colors": [[0, 0, 0], [255, 0, 0], [0, 255, 0]]}))
    model = parser_model(tmp_path / "celeba.onnx", "celebamask-hq")
    code, out, err = run(capsys, "eval", "--model", model, data, "--schema", own, "--json")
    assert code == 2 and not out
    assert "declares no mapping" in err and "'celebamask-hq'" in err and "Traceback" not in err


def test_eval_reports_progress(celeba_faces, tmp_path, capsys):
    model = parser_model(tmp_path / "celeba.onnx", "celebamask-hq")
    reports = []
    samples = folder_samples(celeba_faces)
    evaluate(OnnxPredictor(model), samples, progress=lambda done, total: reports.append((done, total)))
    assert reports == [(1, 2), (2, 2)]
    code, _, err = run(capsys, "eval", "--model", model, celeba_faces, "--json")
    assert code == 0 and "eval" in err and "2/2" in err


# --- train --time-limit ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds", [math.inf, math.nan])
def test_time_limit_must_be_a_finite_number(seconds):
    with pytest.raises(ConfigError, match="time_limit_s must be a finite number"):
        TrainConfig.from_dict({"time_limit_s": seconds})


def test_steps_within_an_endless_limit_keep_the_schedule():
    assert _steps_within_limit(100, 10, 5.0, math.inf, Distributed()) == 100
    assert _steps_within_limit(100, 10, 5.0, 20.0, Distributed()) == 38


@pytest.mark.parametrize("minutes", ["inf", "nan", "0"])
def test_time_limit_flag_needs_finite_minutes(tmp_path, minutes, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", str(tmp_path), "--time-limit", minutes])
    assert "finite number of minutes" in capsys.readouterr().err


def test_time_limit_help_gives_the_default_and_how_to_turn_it_off(capsys):
    code, out, _ = run(capsys, "train", "--help")
    text = " ".join(out.split())
    assert code == 0 and "default 30" in text and "before --epochs" in text and '"time_limit_s": null' in text


# --- export ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["nan,1,0", "inf,1,0", "0.5,-inf,0.5"])
def test_split_fractions_must_be_finite(text):
    with pytest.raises(ValueError, match="split fractions must be finite numbers"):
        parse_split(text)


@pytest.mark.parametrize("project_schema", ["lapa", "celebamask-hq"])
def test_export_refuses_a_schema_that_only_shares_the_mapping_name(tmp_path, project_schema):
    fake = tmp_path / "lapa3.json"
    fake.write_text(json.dumps({"name": "lapa", "classes": ["background", "face", "hair"],
                                "colors": [[0, 0, 0], [255, 0, 0], [0, 255, 0]]}))
    store, _ = make_project(tmp_path / "faces", count=2, corrected=2, size=32, schema=project_schema)
    with store, pytest.raises(ExportError, match="'lapa', the name of a built-in schema with other classes"):
        export_dataset(store, tmp_path / "out", "index-png", target_schema=str(fake))
    assert not (tmp_path / "out").exists()
