"""`faceparse export` and `faceparse import` from the command line."""

import json

import numpy as np
from faceparse.app.cli import main
from faceparse.core.store import ProjectStore
from test_formats_support import copy_images, make_project


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_and_import_commands(capsys, tmp_path):
    truth = make_project(tmp_path / "faces")
    code, out, err = run(capsys, "export", tmp_path / "faces", "--format", "coco", "--out", tmp_path / "ds",
                         "--split", "0.5,0.5,0", "--only", "reviewed", "--seed", "4")
    assert code == 0, err
    assert "Exported 4 images (train 2, val 2, test 0) as coco to" in out
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["split"]["seed"] == 4

    copy_images(tmp_path / "faces", tmp_path / "copy").close()
    code, out, err = run(capsys, "import", tmp_path / "copy", tmp_path / "ds", "--format", "coco", "--dry-run")
    assert code == 0 and out.startswith("Would import 4 corrected masks")
    code, out, err = run(capsys, "import", tmp_path / "copy", tmp_path / "ds", "--format", "coco",
                         "--as", "predicted")
    assert code == 0, err
    assert out.startswith("Imported 4 predicted masks")
    with ProjectStore.open(tmp_path / "copy") as store:
        assert store.counts()["predicted"] == 4
        for rec in store.images(status="predicted"):
            assert np.array_equal(store.predicted_mask(rec.id), truth[rec.relpath])


def test_user_errors_exit_2_with_the_report(capsys, tmp_path):
    make_project(tmp_path / "faces", statuses=("corrected", "corrected"))
    code, _, err = run(capsys, "export", tmp_path / "faces", "--format", "coco", "--out", tmp_path / "ds",
                       "--split", "0.9,0.9,0")
    assert code == 2 and "split fractions must add up to 1" in err
    code, _, err = run(capsys, "export", tmp_path / "faces", "--format", "coco", "--out", tmp_path / "ds",
                       "--schema", "face-mask")
    assert code == 2 and "declares no mapping to 'face-mask'" in err and "Traceback" not in err
    code, _, err = run(capsys, "export", tmp_path / "faces", "--format", "coco", "--out", tmp_path / "ds",
                       "--seed", "-1")
    assert code == 2 and "--seed: must be at least 0, got -1" in err and not (tmp_path / "ds").exists()
    code, _, err = run(capsys, "export", tmp_path / "faces", "--format", "labelme", "--out", tmp_path / "ds")
    assert code == 0
    (tmp_path / "ds" / "train" / "face00.json").write_text("{")
    copy_images(tmp_path / "faces", tmp_path / "copy").close()
    code, out, err = run(capsys, "import", tmp_path / "copy", tmp_path / "ds", "--format", "labelme")
    assert code == 2
    assert err.startswith("faceparse import: error: nothing was imported from")
    assert "face00.json: not valid JSON" in err
    with ProjectStore.open(tmp_path / "copy") as store:
        assert store.count("corrected") == 0
