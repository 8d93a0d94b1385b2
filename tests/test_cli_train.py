"""`faceparse train`, `models`, `eval` and `jobs` on a drawn-face project."""

import json
from pathlib import Path

import pytest
from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.core.imageio import save_mask
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from PIL import Image

TINY = ["--size", "64", "--batch", "4", "--threads", "1", "--config", '{"time_limit_s": null, "patience": 0}']


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path):
    """Ten drawn faces, eight of them corrected."""
    root = tmp_path / "faces"
    make_project(root, count=10, corrected=8)[0].close()
    return root


def labelled_folder(tmp_path, schema="lapa", count=3):
    """Drawn faces x0.png, x1.png, ... with index masks of `schema` in masks/."""
    data = tmp_path / "heldout"
    (data / "masks").mkdir(parents=True)
    for i in range(count):
        image, mask = draw_face(100 + i, size=64, schema=schema)
        Image.fromarray(image).save(data / f"x{i}.png")
        save_mask(data / "masks" / f"x{i}.png", mask, get_schema(schema))
    return data


def test_train_shows_live_loss_then_models_eval_and_jobs(folder, tmp_path, capsys):
    code, out, err = run(capsys, "train", folder, "--epochs", "2", "--no-onnx", "--no-repredict", "--force", *TINY)
    assert code == 0, err
    assert "train:" in err and "loss=" in err and "step" in err
    assert "[snapshot]" in err and "epoch 1: score" in err
    assert "done: parser v0001 is now active" in out and "miou_no_bg" in out

    code, out, _ = run(capsys, "jobs", folder)
    assert code == 0 and "retrain" in out and "done" in out
    assert out.split()[:2] == ["id", "kind"]
    job_id = int(out.splitlines()[1].split()[0])
    code, out, _ = run(capsys, "jobs", folder, "--log", job_id)
    assert code == 0 and "snapshot" in out and "train" in out and out.strip().splitlines()[-1].startswith("result ")

    code, out, _ = run(capsys, "models", folder)
    assert code == 0 and "* parser v0001" in out
    code, out, _ = run(capsys, "models", folder, "--json")
    rows = json.loads(out)
    assert [(r["version"], r["active"]) for r in rows] == [("v0001", True)]
    assert (Path(rows[0]["path"]) / "model.onnx").is_file(), "--no-onnx still exports the version it activates"
    code, out, _ = run(capsys, "models", folder, "rollback")
    assert code == 0 and "starter" in out
    code, _, err = run(capsys, "models", folder, "rollback")
    assert code == 2 and "no active" in err

    code, out, _ = run(capsys, "eval", "--model", "v0001", folder, "--json")
    metrics = json.loads(out)
    assert code == 0 and metrics["miou_no_bg"] == pytest.approx(rows[0]["metrics"]["score"], abs=1e-6)
    assert set(metrics["per_class_iou"]) == set(get_schema("lapa").classes)
    data = labelled_folder(tmp_path)
    code, out, _ = run(capsys, "eval", "--model", rows[0]["path"], data)
    assert code == 0 and "on 3 faces" in out and "mIoU" in out and "skin" in out


def test_train_refuses_what_cannot_work(folder, tmp_path, capsys):
    code, _, err = run(capsys, "train", folder, "--size", "100")
    assert code == 2 and "multiple of 32" in err
    code, _, err = run(capsys, "train", folder, "--task", "mask")
    assert code == 2 and "face_mask" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    Image.new("RGB", (8, 8)).save(empty / "a.png")
    with ProjectStore.create(empty, "lapa") as store:
        store.scan()
    code, _, err = run(capsys, "train", empty)
    assert code == 2 and "no corrected or reviewed faces" in err
    code, _, err = run(capsys, "eval", "--model", "v0009", folder)
    assert code == 2 and "no model version" in err


@pytest.mark.slow
def test_the_whole_loop_exports_onnx_and_repredicts_what_nobody_corrected(folder, capsys):
    code, out, err = run(capsys, "train", folder, "--epochs", "1", "--force", *TINY)
    assert code == 0, err
    with ProjectStore.open(folder) as store:
        active = store.active_model("parser")
        assert active["version"] == "v0001"
        uncorrected = store.images(status=("new", "predicted"))
        assert len(uncorrected) == 2
        assert all(rec.status == "predicted" and rec.model_version == "v0001" for rec in uncorrected)
        assert all(store.predicted_mask(rec.id) is not None for rec in uncorrected)
    code, out, _ = run(capsys, "eval", "--model", "v0001", folder, "--onnx", "--json")
    assert code == 0 and json.loads(out)["miou_no_bg"] == pytest.approx(active["metrics"]["score"], abs=0.02)


def test_config_nulls_clear_a_default_and_flags_override_the_config(folder):
    from faceparse.app.cli import build_parser
    from faceparse.app.commands.train import train_config

    def config(*argv):
        args = build_parser().parse_args(["train", str(folder), *argv])
        with ProjectStore.open(folder) as store:
            return train_config(args, store)

    assert config().time_limit_s == 1800
    assert config("--config", '{"time_limit_s": null}').time_limit_s is None
    assert config("--config", '{"time_limit_s": null}', "--time-limit", "5").time_limit_s == 300
    assert config("--config", '{"epochs": 3}', "--epochs", "4").epochs == 4
    assert config("--config", '{"task": "parser", "lr": 0.01}').lr == 0.01


def test_cancelling_a_job_whose_process_is_gone_says_it_has_ended(folder, capsys):
    with ProjectStore.open(folder) as store:
        job_id = store.add_job("retrain", {})
        store.update_job(job_id, state="running", pid=2**22 + 12345)
    code, _, err = run(capsys, "jobs", folder, "--cancel", job_id)
    assert code == 2 and f"job {job_id} has already ended (failed)" in err
    code, _, err = run(capsys, "jobs", folder, "--cancel", 999)
    assert code == 2 and "no job 999" in err


def test_active_means_the_starter_model_while_no_version_is_active(tmp_path, capsys):
    root = tmp_path / "celeb"
    make_project(root, count=4, corrected=4, schema="celebamask-hq")[0].close()
    code, out, _ = run(capsys, "models", root)
    assert code == 0 and "No parser version is active: the project pre-labels with the starter parser model" in out
    code, out, _ = run(capsys, "info", root)
    assert "parser: pre-labels with the starter parser model\n" in out
    scores = []
    for name in ("active", "starter"):
        code, out, err = run(capsys, "eval", "--model", name, root, "--split", "all", "--json")
        assert code == 0, err
        scores.append(json.loads(out)["miou_no_bg"])
    assert scores[0] == scores[1]


@pytest.mark.parametrize("schema", ["lapa", "masked-faces"])
def test_the_starter_model_is_measured_as_it_pre_labels_projects_of_other_schemas(tmp_path, capsys, schema):
    root = tmp_path / schema
    make_project(root, count=3, corrected=3, schema=schema)[0].close()
    code, out, err = run(capsys, "eval", "--model", "starter", root, "--split", "all", "--json")
    assert code == 0, err
    assert set(json.loads(out)["per_class_iou"]) == set(get_schema(schema).classes)
    code, out, _ = run(capsys, "models", root)
    assert code == 0 and ("with the starter face-mask segmenter for face_mask" in out) == (schema == "masked-faces")


# --- where a retrain starts: the active version whatever its network; the starter when its checkpoint is gone ---

START_TINY = ["--epochs", "1", "--size", "64", "--batch", "2", "--threads", "1", "--no-onnx", "--no-repredict"]


def _job_log(capsys, folder) -> str:
    code, out, _ = run(capsys, "jobs", folder, "--json")
    last = max(json.loads(out), key=lambda job: job["id"])["id"]
    return run(capsys, "jobs", folder, "--log", last)[1]


def test_a_plain_retrain_fine_tunes_an_active_version_of_another_network(folder, capsys):
    config = '{"architecture": "deeplabv3plus_mobilenetv3", "init": "imagenet", "patience": 0}'
    code, _, err = run(capsys, "train", folder, *START_TINY, "--force", "--pretrain", "no", "--config", config)
    assert code == 0, err
    code, _, err = run(capsys, "train", folder, *START_TINY, "--no-promote", "--config", '{"patience": 0}')
    assert code == 0, err
    assert "ImageNet" not in _job_log(capsys, folder)
    with ProjectStore.open(folder) as store:
        second = store.model_version("parser", "v0002")
        meta = json.loads((Path(second["path"]) / "meta.json").read_text())
    assert meta["architecture"] == "deeplabv3plus_mobilenetv3"
    assert second["parent"] == "v0001"


def test_an_active_version_without_its_weights_gives_way_to_the_starter_with_a_note(folder, capsys):
    code, _, err = run(capsys, "train", folder, *START_TINY, "--force", "--pretrain", "no", "--config",
                       '{"patience": 0}')
    assert code == 0, err
    with ProjectStore.open(folder) as store:
        (Path(store.active_model("parser")["path"]) / "model.safetensors").unlink()
    code, _, err = run(capsys, "train", folder, *START_TINY, "--no-promote", "--pretrain", "no", "--config",
                       '{"patience": 0}')
    assert code == 0, err
    assert "v0001 has no complete checkpoint" in _job_log(capsys, folder)
