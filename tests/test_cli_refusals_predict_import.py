"""`prelabel` and `predict` finding out before the model runs that their masks cannot be written, and saying so
with the real file names; `predict` keeping files already in its output folder unless told to replace them; and
`import --ignore-unmatched` failing when no label matched."""

import errno
import os
import types

import pytest
from drawn_projects import draw_folder, make_project
from faceparse.core import atomic as atomic_module
from faceparse.core import store as store_module
from faceparse.core.export import export_dataset
from faceparse.core.prelabel import PrelabelJob
from faceparse.core.store import ProjectStore
from onnx_models import foreground_model
from PIL import Image
from test_cli_fixes_prelabel import photos, run

SIZE = 48


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("refusal_models") / "face.onnx")


def refuse_to_load(monkeypatch):
    """Make loading a model fail the test: a refusal must come before it."""
    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr("faceparse.app.commands.prelabel.Predictor", loaded)
    monkeypatch.setattr(PrelabelJob, "_load_predictor", loaded)


def permission_denied(path):
    def fail(*args, **kwargs):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    return fail


# --- prelabel --------------------------------------------------------------------------------------------------------

def test_prelabel_refuses_a_masks_folder_it_cannot_use_before_loading_the_model(tmp_path, capsys, model,
                                                                                monkeypatch):
    folder = photos(tmp_path / "photos")
    with ProjectStore.create(folder) as store:
        store.scan()
        predicted = store.masks_dir / "predicted"
    predicted.rmdir()
    predicted.write_text("in the way")
    refuse_to_load(monkeypatch)
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 2, err
    assert f"the masks folder {predicted} is a file, not a folder; nothing was pre-labeled" in err
    assert "Errno" not in out + err


def test_prelabel_says_which_mask_could_not_be_saved_without_its_temporary_name(tmp_path, model, monkeypatch):
    folder = photos(tmp_path / "photos")
    store = ProjectStore.create(folder)
    store.scan()
    monkeypatch.setattr(store_module, "save_mask",
                        permission_denied(store.masks_dir / "predicted" / ".1.x8k2.tmp.png"))
    result = PrelabelJob(store, model, mode="whole_image").run()
    assert len(result.failed) == 3
    for record, (relpath, reason) in zip(store.images(), sorted(result.failed), strict=True):
        assert relpath == record.relpath
        assert reason == f"cannot save its mask {store.mask_path('predicted', record.id)}: Permission denied"
    store.close()


# --- predict: writable output -----------------------------------------------------------------------------------

def test_predict_refuses_an_output_folder_it_cannot_write_before_loading_the_model(tmp_path, capsys, model,
                                                                                   monkeypatch):
    folder = photos(tmp_path / "photos")
    out_dir = tmp_path / "masks"
    out_dir.mkdir()
    monkeypatch.setattr(atomic_module, "tempfile",
                        types.SimpleNamespace(mkstemp=permission_denied(out_dir / ".write-check.abc")))
    refuse_to_load(monkeypatch)
    code, out, err = run(capsys, "predict", folder, "--out", out_dir, "--model", model, "--whole-image")
    assert code == 2
    assert err == f"faceparse predict: error: cannot write in the output folder {out_dir}: Permission denied\n"


def test_predict_says_an_output_folder_cannot_be_created_before_loading_the_model(tmp_path, capsys, model,
                                                                                  monkeypatch):
    folder = photos(tmp_path / "photos")
    (tmp_path / "afile").write_text("a file")
    refuse_to_load(monkeypatch)
    code, _, err = run(capsys, "predict", folder / "p0.jpg", "--out", f"{tmp_path / 'afile' / 'sub'}/",
                       "--model", model, "--whole-image")
    assert code == 2
    assert f"cannot create the output folder {tmp_path / 'afile' / 'sub'}: Not a directory" in err


def test_a_mask_predict_cannot_write_is_named_by_its_own_path(tmp_path, capsys, model, monkeypatch):
    folder = photos(tmp_path / "photos")
    out_dir = tmp_path / "masks"
    monkeypatch.setattr("faceparse.app.commands.prelabel.save_mask", permission_denied(out_dir / ".p0.k3j.tmp.png"))
    code, _, err = run(capsys, "predict", folder / "p0.jpg", "--out", f"{out_dir}/", "--model", model,
                       "--whole-image")
    assert code == 2
    assert err == f"faceparse predict: error: cannot write the mask {out_dir / 'p0.png'}: Permission denied\n"
    assert ".tmp" not in err and "Errno" not in err


# --- predict: files already in the output folder ------------------------------------------------------------------

def test_predict_keeps_files_already_in_its_output_folder(tmp_path, capsys, model):
    folder = photos(tmp_path / "photos")
    out_dir = tmp_path / "masks"
    out_dir.mkdir()
    kept = out_dir / "p1.png"
    Image.open(folder / "p1.jpg").save(kept)
    before = kept.read_bytes()
    code, out, err = run(capsys, "predict", folder, "--out", out_dir, "--model", model, "--whole-image")
    assert code == 2 and out == ""
    assert f"--out {out_dir} already holds {kept}; choose another folder, or add --overwrite" in err
    assert kept.read_bytes() == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["p1.png"]

    code, out, err = run(capsys, "predict", folder, "--out", out_dir, "--model", model, "--whole-image",
                         "--overwrite")
    assert code == 0, err
    assert kept.read_bytes() != before
    assert sorted(p.name for p in out_dir.iterdir()) == ["p0.png", "p1.png", "p2.png"]


def test_a_single_image_into_a_folder_keeps_the_file_there_too(tmp_path, capsys, model):
    folder = photos(tmp_path / "photos", count=1)
    out_dir = tmp_path / "masks"
    out_dir.mkdir()
    (out_dir / "p0.png").write_bytes(b"the user's file")
    code, _, err = run(capsys, "predict", folder / "p0.jpg", "--out", f"{out_dir}/", "--model", model,
                       "--whole-image")
    assert code == 2 and "already holds" in err
    assert (out_dir / "p0.png").read_bytes() == b"the user's file"


def test_many_files_in_the_way_are_named_a_few_then_counted(tmp_path, capsys, model):
    folder = photos(tmp_path / "photos", count=7)
    out_dir = tmp_path / "masks"
    out_dir.mkdir()
    for i in range(7):
        (out_dir / f"p{i}.png").write_bytes(b"x")
    code, _, err = run(capsys, "predict", folder, "--out", out_dir, "--model", model, "--whole-image")
    assert code == 2
    assert f"{out_dir / 'p4.png'} and 2 more;" in err and "p5.png" not in err


def test_predict_help_documents_overwrite(capsys):
    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0
    assert "--overwrite" in out and "replace files of the same names already in the --out folder" in " ".join(
        out.split())


# --- import --ignore-unmatched ---------------------------------------------------------------------------------

@pytest.fixture
def unrelated(tmp_path):
    """(an index-png export of two drawn faces, a project of other photos with none of their names)."""
    store, _ = make_project(tmp_path / "faces", count=2, corrected=2, size=32)
    with store:
        export_dataset(store, tmp_path / "export", "index-png", split=(1, 0, 0))
    draw_folder(tmp_path / "other", 2, size=32, seed=50, suffix=".jpg")
    with ProjectStore.create(tmp_path / "other", "lapa") as other:
        other.scan()
    return tmp_path / "export", tmp_path / "other"


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_import_ignoring_unmatched_labels_fails_when_none_matched(unrelated, capsys, dry_run):
    source, project = unrelated
    code, out, err = run(capsys, "import", project, source, "-f", "index-png", "--ignore-unmatched", *dry_run)
    assert code == 2 and out == ""
    assert f"none of the 2 labels in {source} matches an image of the project {project}, so nothing was imported" \
        in err
    assert "face00" in err
    with ProjectStore.open(project) as store:
        assert store.count("corrected") == 0


def test_import_ignoring_unmatched_labels_still_succeeds_when_some_matched(unrelated, capsys):
    source, project = unrelated
    Image.open(source.parent / "faces" / "face00.png").save(project / "face00.png")
    with ProjectStore.open(project) as store:
        store.scan()
    code, out, err = run(capsys, "import", project, source, "-f", "index-png", "--ignore-unmatched")
    assert code == 0, err
    assert "imported 1 corrected mask" in out.lower() and "1 label without a matching image skipped" in out
