"""What `faceparse train` says about a retrain with no validation face and about its input size, and `faceparse
eval` with the starter model on a plain labeled folder or a DATA path starting with ~."""

import json

import pytest
from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.core.model_resolver import starter_model_path
from faceparse.core.store import ProjectStore
from test_cli_train import labelled_folder

TINY = ["--size", "64", "--batch", "2", "--epochs", "1", "--max-steps", "1", "--threads", "1", "--from", "scratch",
        "--no-onnx", "--no-repredict", "--pretrain", "no", "--config", '{"patience": 0}']


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_warns_before_training_when_no_face_is_kept_for_validation(tmp_path, capsys):
    store, _ = make_project(tmp_path / "faces", count=3, corrected=1)
    assert store.split_counts()["val"] == 0
    store.close()
    code, out, err = run(capsys, "train", tmp_path / "faces", *TINY)
    assert code == 0, err
    warning = err.index("warning: none of the corrected faces is a validation face")
    assert warning < err.index("Started parser training job")
    said = " ".join(err[warning:].split())
    assert "cannot be measured" in said and "unless you add --force" in said and "Correct more images" in said
    assert "not activated" in out and "no validation faces to measure it on" in out
    assert "--force" in out and f"faceparse models {tmp_path / 'faces'} activate v0001" in out


def test_only_a_project_without_validation_faces_is_warned_about(tmp_path, capsys):
    from faceparse.app.commands.train import _warn_without_validation
    from faceparse.core.recipes import TrainConfig

    store, _ = make_project(tmp_path / "faces", count=4, corrected=2)
    assert store.split_counts() == {"train": 1, "val": 1}
    _warn_without_validation(store, TrainConfig.for_task("parser"))
    assert capsys.readouterr().err == ""
    store.close()


def test_train_help_says_what_the_default_size_is(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    text = " ".join(out.split())
    start = text.index("--size PX training input size")
    size_help = text[start:text.index("--batch N", start)]
    assert "default: the input size of the model training starts from" in size_help
    assert "512 for the shipped starter parser" in size_help
    assert "from imagenet or scratch, 256 for the parser and 192 for the mask model" in size_help


@pytest.mark.parametrize("name", ["starter", "parser", "active"])
def test_eval_with_the_starter_model_on_a_plain_folder(tmp_path, capsys, name):
    data = labelled_folder(tmp_path, schema="celebamask-hq", count=2)
    code, out, err = run(capsys, "eval", "--model", name, data, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["images"] == 2 and set(metrics["per_class_iou"]) >= {"skin", "hair"}


def test_eval_on_a_plain_folder_still_refuses_a_version_name(tmp_path, capsys):
    data = labelled_folder(tmp_path, schema="celebamask-hq", count=1)
    code, _, err = run(capsys, "eval", "--model", "v0003", data)
    assert code == 2 and "version names need DATA to be a project" in err


def test_eval_expands_a_tilde_in_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    labelled_folder(tmp_path, schema="celebamask-hq", count=2)
    code, out, err = run(capsys, "eval", "--model", starter_model_path("parser"), "~/heldout", "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 2


def test_eval_on_a_faces_mode_project_scores_it_as_it_pre_labels(tmp_path, capsys):
    store, _ = make_project(tmp_path / "faces", count=3, corrected=3, schema="celebamask-hq")
    model = starter_model_path("parser")
    store.set_setting("prelabel.mode", "faces")
    store.close()
    code, out, err = run(capsys, "eval", "--model", model, tmp_path / "faces", "--split", "all")
    assert code == 0, err
    assert "Scored as this project pre-labels:" in out and "pasted back into their photos" in out
    assert " on 3 photos, " in out
    code, out, _ = run(capsys, "eval", "--model", model, tmp_path / "faces", "--split", "all", "--json")
    assert json.loads(out)["framing"] == "faces"
    with ProjectStore.open(tmp_path / "faces") as again:
        again.set_setting("prelabel.mode", "whole_image")
    code, out, _ = run(capsys, "eval", "--model", model, tmp_path / "faces", "--split", "all")
    assert code == 0 and "Scored as this project pre-labels" not in out
    code, out, _ = run(capsys, "eval", "--model", model, tmp_path / "faces", "--split", "all", "--json")
    assert json.loads(out)["framing"] == "whole_image"


@pytest.mark.parametrize("model", [["--model", "mask"], ["--model", "starter", "--task", "mask"]])
def test_eval_of_the_mask_model_on_a_project_without_face_masks_is_a_one_line_error(tmp_path, capsys, model):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=2, schema="celebamask-hq")
    store.close()
    code, _, err = run(capsys, "eval", str(tmp_path / "faces"), *model)
    assert code == 2 and "Traceback" not in err
    assert "has no 'face_mask' class, so its masks cannot score the face-mask segmenter" in err


@pytest.mark.parametrize("action", ["list", "prune"])
def test_models_list_or_prune_with_a_version_says_it_takes_none(tmp_path, capsys, action):
    store, _ = make_project(tmp_path / "faces", count=1, corrected=1, schema="celebamask-hq")
    store.close()
    code, _, err = run(capsys, "models", tmp_path / "faces", action, "v0001")
    assert code == 2 and f"models {action} takes no VERSION (got 'v0001')" in err


def test_eval_on_a_plain_folder_can_find_the_faces_as_pre_labelling_does(tmp_path, capsys, monkeypatch):
    from drawn_projects import draw_scenes, haar_reports
    from faceparse.core.imageio import save_mask
    from faceparse.core.schemas import get_schema
    from PIL import Image

    scenes = draw_scenes([2, 1])
    known = haar_reports(scenes, monkeypatch)
    (tmp_path / "data" / "masks").mkdir(parents=True)
    for name, (picture, mask, _) in scenes.items():
        Image.fromarray(picture).save(tmp_path / "data" / name)
        save_mask(tmp_path / "data" / "masks" / name, mask, get_schema("lapa"))
    model = starter_model_path("parser")
    base = ("eval", "--model", model, tmp_path / "data", "--schema", "lapa", "--json")
    code, out, err = run(capsys, *base, "--mode", "faces")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["framing"] == "faces" and metrics["faces_found"] == 3 and known.calls >= 2
    code, out, _ = run(capsys, *base)
    assert json.loads(out)["framing"] == "whole_image"

    store, _ = make_project(tmp_path / "project", count=1, corrected=1, schema="celebamask-hq")
    store.close()
    code, _, err = run(capsys, "eval", "--model", model, tmp_path / "project", "--mode", "faces")
    assert code == 2 and "--mode (for a plain folder) does not apply" in err
