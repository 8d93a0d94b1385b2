"""Pre-labeling keeps imported predictions (as does a retrain's re-prediction), a user's schema with a mapping to the
starter parser's schema is pre-labeled through it, and `models`, `jobs` and `train --from` say what is true."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.imageio import save_mask
from faceparse.core.predictor import ModelError
from faceparse.core.prelabel import MODE_SETTING, class_mapping, describe_starter
from faceparse.core.schemas import LabelSchema, get_schema
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from onnx_models import foreground_model
from PIL import Image

SIZE = 64
CELEB = get_schema("celebamask-hq")
OWN = {"name": "myfaces", "classes": ["background", "face", "hair"], "colors": [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
       "flip_pairs": [], "mappings": {"celebamask-hq": {"background": "background", "face": "skin", "hair": "hair"}}}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("fix_models") / "face.onnx")


def photos(root, count=3, schema="celebamask-hq"):
    """Drawn faces p0.png, ... in `root`, and their true masks by stem."""
    root.mkdir(parents=True)
    masks = {}
    for i in range(count):
        image, mask = draw_face(200 + i, SIZE, background="none", schema=schema)
        Image.fromarray(image).save(root / f"p{i}.png")
        masks[f"p{i}"] = mask
    return masks


def schema_file(tmp_path, schema):
    path = tmp_path / f"{schema['name']}.json"
    path.write_text(json.dumps(schema))
    return path


# --- #2: imported predictions -----------------------------------------------------------------------------------

@pytest.fixture
def imported(tmp_path, capsys):
    """A celebamask-hq project whose three photos got their true masks through `import --as predicted`."""
    folder = tmp_path / "photos"
    masks = photos(folder)
    source = tmp_path / "labels"
    (source / "masks").mkdir(parents=True)
    for stem, mask in masks.items():
        save_mask(source / "masks" / f"{stem}.png", mask, CELEB)
    assert run(capsys, "scan", folder)[0] == 0
    code, out, err = run(capsys, "import", folder, source, "-f", "index-png", "--as", "predicted")
    assert code == 0, err
    return folder, masks


def predictions(folder):
    with ProjectStore.open(folder) as store:
        return {rec.relpath: (rec.model_version, store.predicted_mask(rec.id)) for rec in store.images()}


def test_prelabel_keeps_imported_predictions_and_says_so_until_redo(imported, model, capsys):
    folder, masks = imported
    before = predictions(folder)
    assert {version for version, _ in before.values()} == {"import:index-png"}
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 0, err
    assert "Nothing to predict" in out and "3 imported predictions kept; --redo replaces them" in out
    after = predictions(folder)
    for relpath, (version, mask) in after.items():
        assert version == "import:index-png" and np.array_equal(mask, masks[relpath[:-4]])
    with ProjectStore.open(folder) as store:
        assert "3 imported kept" in store.jobs("prelabel")[0]["message"]

    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--redo")
    assert code == 0, err
    assert "Predicted 3 of 3 images" in out and "imported" not in out
    assert not any(version.startswith("import:") for version, _ in predictions(folder).values())


def test_a_retrains_re_prediction_keeps_imported_predictions(imported, model):
    """The retrain's last phase re-predicts with the newly active version through the same plan as prelabel."""
    from faceparse.core.train_worker import phase_repredict

    folder, masks = imported
    with ProjectStore.open(folder) as store:
        version_dir = store.models_dir / "parser" / "v0001"
        version_dir.mkdir(parents=True)
        (version_dir / "model.onnx").write_bytes(model.read_bytes())
        store.add_model_version("parser", "v0001", version_dir, {})
        store.set_active_model("parser", "v0001")
        store.set_setting(MODE_SETTING, WHOLE_IMAGE)
        notes = []
        ctx = SimpleNamespace(decision=SimpleNamespace(promote=True),
                              config=SimpleNamespace(repredict=True, task="parser", threads=1), store=store,
                              version={"version": "v0001", "path": str(version_dir)},
                              device=SimpleNamespace(type="cpu"), emit=lambda *a, **k: None, note=notes.append,
                              cancelled=lambda: False, cancel_event=None, repredict=None)
        phase_repredict(ctx)
        assert ctx.repredict["state"] == "done" and ctx.repredict["predicted"] == 0, (ctx.repredict, notes)
    for relpath, (version, mask) in predictions(folder).items():
        assert version == "import:index-png" and np.array_equal(mask, masks[relpath[:-4]])


# --- #5: the user's own schema with a mapping ----------------------------------------------------------------------

def test_the_projects_own_mapping_is_read_backwards():
    own = LabelSchema.from_dict(OWN)
    lut = class_mapping(CELEB.classes, CELEB.name, own)
    assert lut[CELEB.index("skin")] == own.index("face") and lut[CELEB.index("hair")] == own.index("hair")
    unmapped = [i for i, c in enumerate(CELEB.classes) if c not in ("skin", "hair")]
    assert not lut[unmapped].any()  # nose, eyes, cloth, ...: background


def test_two_project_classes_on_one_model_class_are_refused_clearly():
    own = LabelSchema.from_dict({**OWN, "mappings": {"celebamask-hq": {"background": "background", "face": "skin",
                                                                       "hair": "skin"}}})
    with pytest.raises(ModelError, match=r"face and hair both to 'skin'"):
        class_mapping(CELEB.classes, CELEB.name, own)


def test_a_project_of_the_users_schema_is_pre_labelled_through_its_mapping(tmp_path, model, capsys):
    folder = tmp_path / "own"
    photos(folder)
    assert run(capsys, "scan", folder, "--schema", schema_file(tmp_path, OWN))[0] == 0
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 0, err
    with ProjectStore.open(folder) as store:
        for rec in store.images():
            assert set(np.unique(store.predicted_mask(rec.id))) == {0, store.schema.index("face")}


def test_info_and_models_claim_the_starter_parser_only_where_a_mapping_lets_it_label(tmp_path, capsys):
    plain = {key: value for key, value in OWN.items() if key != "mappings"} | {"name": "plain"}
    for schema, fits in ((OWN, True), (plain, False)):
        folder = tmp_path / schema["name"]
        photos(folder, count=1)
        assert run(capsys, "scan", folder, "--schema", schema_file(tmp_path, schema))[0] == 0
        _, out, _ = run(capsys, "info", folder)
        assert ("parser: pre-labels with the starter parser model" in out) == fits
        assert ("no model can pre-label this project yet" in out) == (not fits)
        _, out, _ = run(capsys, "info", folder, "--json")
        summary = json.loads(out)
        assert (summary["active_models"] == {"parser": "starter"}) == fits
        assert (summary["starter_models"] is None) == (not fits)
        _, out, _ = run(capsys, "models", folder)
        assert ("the project pre-labels with the starter parser model" in out) == fits
    assert describe_starter(LabelSchema.from_dict(plain), "parser") is None


# --- #13: messages -------------------------------------------------------------------------------------------------

def test_models_for_the_mask_task_of_a_parser_project_does_not_claim_the_starter_mask_model(tmp_path, capsys):
    root = tmp_path / "celeb"
    make_project(root, count=2, corrected=0, schema="celebamask-hq")[0].close()
    code, out, _ = run(capsys, "models", root, "--task", "mask")
    assert code == 0 and "starter mask model" not in out
    code, out, _ = run(capsys, "models", root)
    assert "the project pre-labels with the starter parser model" in out


def test_a_killed_prelabel_job_does_not_speak_of_the_active_model(tmp_path, capsys):
    root = tmp_path / "faces"
    make_project(root, count=2, corrected=0)[0].close()
    code, out, _ = run(capsys, "jobs", root)
    assert code == 0 and out == "No jobs yet.\n"
    with ProjectStore.open(root) as store:
        prelabel = store.add_job("prelabel", {})
        store.update_job(prelabel, state="running", pid=2**22 + 12345)
        retrain = store.add_job("retrain", {})
        store.update_job(retrain, state="running", pid=2**22 + 12346)
    code, out, _ = run(capsys, "jobs", root)
    lines = {line.split()[1]: line for line in out.splitlines()}
    assert lines["prelabel"].endswith("the job's process ended without finishing (crashed or killed)")
    assert "active" not in lines["prelabel"] and "active" in lines["retrain"]


def test_train_from_an_unknown_version_is_refused_before_a_job_exists(tmp_path, capsys):
    root = tmp_path / "faces"
    make_project(root, count=3, corrected=3)[0].close()
    code, out, err = run(capsys, "train", root, "--from", "v0009", "--epochs", "1")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--from v0009: no model version 'v0009'" in err
    with ProjectStore.open(root) as store:
        assert store.jobs() == []


def test_prelabel_says_which_folder_entries_its_scan_left_out(tmp_path, capsys, model):
    folder = tmp_path / "photos"
    photos(folder, count=2)
    outside = tmp_path / "elsewhere"
    photos(outside, count=1)
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    code, out, err = run(capsys, "prelabel", folder, "--model", model)
    assert code == 0, err
    assert "Scanned 2 images" in out
    assert "Skipped 1 entry that could not be read or is a folder link" in out
