"""`faceparse train` refusing a project whose models folder cannot take a new version before it trains, naming
`--size` as typed, and `faceparse eval` refusing options that do not apply to its DATA and naming the images it
leaves out."""

import json

import pytest
from drawn_projects import make_project
from faceparse.core.recipes import TrainConfig
from faceparse.core.store import ProjectError, ProjectStore
from faceparse.core.train_worker import SilentReporter, run_retrain
from PIL import Image
from test_cli_fixes_eval_import import parser_model
from test_cli_train import labelled_folder
from test_train_cli_messages import TINY, run


def models_folder_taken_by_a_file(root):
    """A project whose `.faceparse/models` is a file, so `models/parser` cannot be made under it."""
    store, _ = make_project(root, count=4, corrected=4)
    models = store.models_dir
    store.close()
    models.rmdir()
    models.write_text("not a folder")
    return models


@pytest.fixture(scope="module")
def celeba_model(tmp_path_factory):
    return parser_model(tmp_path_factory.mktemp("eval_models") / "face.onnx", "celebamask-hq")


# --- train -----------------------------------------------------------------------------------------------------------

def test_train_refuses_before_training_when_the_models_folder_cannot_be_made(tmp_path, capsys):
    models = models_folder_taken_by_a_file(tmp_path / "faces")
    code, out, err = run(capsys, "train", tmp_path / "faces", *TINY)
    assert code == 2, err
    assert f"cannot create the models folder {models / 'parser'}: Not a directory" in err
    assert "training did not start" in err
    assert "Errno" not in err and "Error:" not in err and "Started" not in err
    with ProjectStore.open(tmp_path / "faces") as store:
        assert store.jobs() == []


def test_the_retrain_job_itself_refuses_an_unwritable_models_folder_before_it_reads_anything(tmp_path):
    models_folder_taken_by_a_file(tmp_path / "faces")
    config = TrainConfig.for_task("parser", init="scratch", input_size=64, threads=1)
    with ProjectStore.open(tmp_path / "faces") as store, \
            pytest.raises(ProjectError, match="cannot create the models folder .*: Not a directory; a new version "
                                              "could not be saved there, so nothing was trained"):
        run_retrain(store, config, SilentReporter(), tmp_path / "work", phases=[])


def test_a_size_that_is_not_a_multiple_of_32_is_refused_by_its_flag_name(tmp_path, capsys):
    make_project(tmp_path / "faces", count=2, corrected=2)[0].close()
    code, _, err = run(capsys, "train", tmp_path / "faces", "--size", "100")
    assert code == 2
    assert "--size must be a multiple of 32" in err and "input_size" not in err


# --- eval ------------------------------------------------------------------------------------------------------------

def test_eval_refuses_masks_on_a_project(tmp_path, capsys, celeba_model):
    make_project(tmp_path / "faces", count=2, corrected=2, schema="celebamask-hq")[0].close()
    (tmp_path / "other_masks").mkdir()
    code, out, err = run(capsys, "eval", "--model", celeba_model, tmp_path / "faces", "--masks",
                         tmp_path / "other_masks")
    assert code == 2 and out == ""
    assert "is a project" in err and "--masks" in err and "does not apply" in err


def test_eval_refuses_split_on_a_plain_folder(tmp_path, capsys, celeba_model):
    data = labelled_folder(tmp_path, schema="celebamask-hq", count=2)
    code, out, err = run(capsys, "eval", "--model", celeba_model, data, "--split", "train")
    assert code == 2 and out == ""
    assert "is not a project" in err and "--split" in err and "does not apply" in err


def test_eval_says_a_file_given_as_data_is_not_a_folder(tmp_path, capsys, celeba_model):
    (tmp_path / "afile.txt").write_text("text")
    code, _, err = run(capsys, "eval", "--model", celeba_model, tmp_path / "afile.txt")
    assert code == 2
    assert f"{tmp_path / 'afile.txt'} is not a folder" in err and "no mask folder" not in err


def test_eval_names_the_images_of_a_folder_without_a_mask_and_scores_the_rest(tmp_path, capsys, celeba_model):
    data = labelled_folder(tmp_path, schema="celebamask-hq", count=3)
    Image.open(data / "x0.png").save(data / "lonely.png")
    code, out, err = run(capsys, "eval", "--model", celeba_model, data, "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 3
    assert "left out 1 image that cannot be scored" in err
    assert f"lonely.png: no mask lonely.png in {data / 'masks'}" in err


def test_eval_names_the_project_faces_it_leaves_out_and_why(tmp_path, capsys, celeba_model):
    store, _ = make_project(tmp_path / "faces", count=4, corrected=4, schema="celebamask-hq")
    damaged, missing, photo = store.images()[:3]
    store.mask_path("corrected", damaged.id).write_bytes(b"not a png")
    store.mask_path("corrected", missing.id).unlink()
    (store.root / photo.relpath).write_bytes(b"not a picture")
    store.close()
    code, out, err = run(capsys, "eval", "--model", celeba_model, tmp_path / "faces", "--split", "all", "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 1
    assert "left out 3 images that cannot be scored" in err
    for record in (damaged, missing, photo):
        assert f"  {record.relpath}: " in err
