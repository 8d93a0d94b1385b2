"""`faceparse prelabel` and `faceparse predict` from the command line."""

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.imageio import load_mask
from faceparse.core.prelabel import MODE_SETTING
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from onnx_models import foreground_model
from PIL import Image

SIZE = 80


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("cli_models") / "face.onnx")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3):
        Image.fromarray(draw_face(40 + i, SIZE, background="none")[0]).save(root / f"p{i}.jpg")
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_prelabel_creates_the_project_and_labels_it(capsys, folder, model):
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 0, err
    assert "Created project" in out and "Predicted 3 of 3 images" in out and "on CPU" in out
    with ProjectStore.open(folder) as store:
        assert store.counts()["predicted"] == 3
        assert store.get_setting(MODE_SETTING) == "whole_image"
        for rec in store.images():
            assert store.predicted_mask(rec.id).shape == (SIZE, SIZE)

    code, out, err = run(capsys, "prelabel", folder, "--model", model)
    assert code == 0 and "Nothing to predict" in out and "3 already current" in out
    assert "0img" not in err and "Predicted" not in out


def test_changed_settings_predict_again_and_redo_forces_it(capsys, folder, model):
    assert run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")[0] == 0
    with ProjectStore.open(folder) as store:
        corrected = store.images()[0]
        store.save_corrected(corrected.id, np.zeros((SIZE, SIZE), np.uint8))

    def mask_times():
        with ProjectStore.open(folder) as store:
            return {rec.relpath: store.mask_path("predicted", rec.id).stat().st_mtime_ns for rec in store.images()
                    if rec.id != corrected.id}

    first = mask_times()
    code, out, _ = run(capsys, "prelabel", folder, "--model", model, "--tta")
    assert code == 0 and "Predicted 2 of 2 images" in out and "1 corrected/reviewed kept" in out
    with_tta = mask_times()
    assert all(with_tta[name] > first[name] for name in first)
    with ProjectStore.open(folder) as store:
        assert {rec.predicted_with for rec in store.images() if rec.id != corrected.id} == {"whole image, flip TTA"}

    code, out, _ = run(capsys, "prelabel", folder, "--model", model)  # the project remembers --tta
    assert code == 0 and "flip TTA" in out and "Nothing to predict" in out and "add --redo" in out
    assert mask_times() == with_tta

    code, out, _ = run(capsys, "prelabel", folder, "--model", model, "--tta", "--redo")
    assert code == 0 and "Predicted 2 of 2 images" in out
    redone = mask_times()
    assert all(t > with_tta[name] for name, t in redone.items())

    code, out, _ = run(capsys, "prelabel", folder, "--model", model, "--no-tta")
    assert code == 0 and "flip TTA" not in out and "Predicted 2 of 2 images" in out
    assert all(t > redone[name] for name, t in mask_times().items())
    with ProjectStore.open(folder) as store:
        assert (store.corrected_mask(corrected.id) == 0).all()


def test_prelabel_on_cuda_without_cuda_says_it_ran_on_cpu(capsys, folder, model):
    code, out, err = run(capsys, "prelabel", folder, "--model", model, "--device", "cuda", "--mode", "whole-image",
                         "--tta")
    assert code == 0
    assert "CUDA was requested" in err and "running on CPU" in err and "on CPU" in out


def test_prelabel_reports_bad_images_and_labels_the_rest(capsys, folder, model):
    (folder / "bad.png").write_text("not a picture")
    code, out, _ = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 1  # a partial run is told apart from a complete one
    assert "Predicted 3 of 4 images" in out and "Could not pre-label 1 image:" in out and "bad.png" in out


def test_a_second_prelabel_still_names_the_bad_image_and_exits_1(capsys, folder, model):
    (folder / "bad.png").write_text("not a picture")
    run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    code, out, _ = run(capsys, "prelabel", folder, "--model", model, "--mode", "whole-image")
    assert code == 1
    assert "Could not read 1 image (as when the folder was scanned):" in out and "bad.png" in out


def test_prelabel_without_a_model_is_a_clear_error(capsys, folder, monkeypatch, tmp_path):
    from faceparse.core import model_resolver

    monkeypatch.setattr(model_resolver, "starter_model_path", lambda task: tmp_path / "none" / f"{task}.onnx")
    code, _, err = run(capsys, "prelabel", folder)
    assert code == 2
    assert "no model available: train one or pass --model" in err
    assert not ProjectStore.is_project(folder)


def test_predict_one_image(capsys, folder, model, tmp_path):
    out_png = tmp_path / "mask.png"
    code, out, err = run(capsys, "predict", folder / "p0.jpg", "--out", out_png, "--model", model, "--whole-image")
    assert code == 0, err
    mask = load_mask(out_png)
    assert mask.shape == (SIZE, SIZE) and set(np.unique(mask)) <= {0, 1} and (mask == 1).any()
    assert Image.open(out_png).mode == "P"  # carries the schema's colours


def test_predict_a_folder_and_several_images(capsys, folder, model, tmp_path):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff nothing")
    code, _, err = run(capsys, "predict", folder, "--out", tmp_path / "masks", "--model", model, "--whole-image")
    assert code == 1  # one image could not be read
    assert "broken.jpg" in err
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["p0.png", "p1.png", "p2.png"]

    code, _, err = run(capsys, "predict", folder / "p1.jpg", folder / "p2.jpg", "--out", tmp_path / "two",
                       "--model", model, "--whole-image")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["p1.png", "p2.png"]


def test_predict_out_ending_in_a_slash_is_a_folder_and_a_png_name_is_refused_for_several(capsys, folder, model,
                                                                                          tmp_path):
    code, _, err = run(capsys, "predict", folder / "p0.jpg", "--out", f"{tmp_path / 'new'}/", "--model", model,
                       "--whole-image")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["p0.png"]
    code, _, err = run(capsys, "predict", folder / "p1.jpg", folder / "p2.jpg", "--out", tmp_path / "two.png",
                       "--model", model, "--whole-image")
    assert code == 2 and "names a PNG file, but 2 images need an output folder" in err
    assert not (tmp_path / "two.png").exists()


def test_predict_recursive_keeps_the_subfolders_and_skips_hidden_ones_and_its_own_output(capsys, folder, model):
    for sub in ("2024/a", ".hidden"):
        (folder / sub).mkdir(parents=True)
    Image.open(folder / "p1.jpg").save(folder / "2024" / "a" / "p1.jpg")
    Image.open(folder / "p2.jpg").save(folder / ".hidden" / "p2.jpg")
    out = folder / "masks"
    code, _, err = run(capsys, "predict", folder, "--out", out, "--model", model, "--whole-image", "-r")
    assert code == 0, err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["2024/a/p1.png", "p0.png", "p1.png", "p2.png"]
    code, _, err = run(capsys, "predict", folder, "--out", out, "--model", model, "--whole-image", "-r", "--overwrite")
    assert code == 0, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == written


def test_predict_a_folder_with_images_only_in_subfolders_suggests_recursive(capsys, tmp_path, folder, model):
    (tmp_path / "top" / "sub").mkdir(parents=True)
    Image.open(folder / "p0.jpg").save(tmp_path / "top" / "sub" / "p0.jpg")
    code, _, err = run(capsys, "predict", tmp_path / "top", "--out", tmp_path / "m", "--model", model)
    assert code == 2 and "add --recursive" in err


def test_predict_mistakes(capsys, folder, model, tmp_path):
    Image.new("RGB", (SIZE, SIZE)).save(folder / "p0.png")
    code, _, err = run(capsys, "predict", folder, "--out", tmp_path / "m", "--model", model)
    assert code == 2 and "p0.jpg and p0.png would both be written" in err
    code, _, err = run(capsys, "predict", folder / "p0.png", "--out", folder / "p0.png", "--model", model)
    assert code == 2 and "refusing to overwrite the input image" in err
    code, _, err = run(capsys, "predict", tmp_path / "nothing.jpg", "--out", tmp_path / "x.png", "--model", model)
    assert code == 2 and "no such image or folder" in err
    code, _, err = run(capsys, "predict", folder / "p1.jpg", "--out", tmp_path / "x.png", "--model",
                       tmp_path / "missing.onnx")
    assert code == 2 and "model file not found" in err
    for option, value in (("--batch-size", "-2"), ("--threads", "0"), ("--batch-size", "two")):
        code, _, err = run(capsys, "predict", folder / "p1.jpg", "--out", tmp_path / "x.png", "--model", model,
                           option, value)
        assert code == 2 and f"argument {option}:" in err and "Traceback" not in err
    code, _, err = run(capsys, "prelabel", folder, "--model", model, "--batch-size", "0")
    assert code == 2 and "--batch-size: must be at least 1, got 0" in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "m").exists()
