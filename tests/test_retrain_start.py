"""Where a retrain starts: it fine-tunes the active version whatever its network, and an active version whose
checkpoint is incomplete gives way to the starter model with a note instead of stopping every retrain."""

import json
from pathlib import Path

import pytest
from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.core.store import ProjectStore

TINY = ["--epochs", "1", "--size", "64", "--batch", "2", "--threads", "1", "--no-onnx", "--no-repredict"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "faces"
    make_project(root, count=10, corrected=8)[0].close()
    return root


def _job_log(capsys, folder) -> str:
    code, out, _ = run(capsys, "jobs", folder, "--json")
    last = max(json.loads(out), key=lambda job: job["id"])["id"]
    return run(capsys, "jobs", folder, "--log", last)[1]


def test_a_plain_retrain_fine_tunes_an_active_version_of_another_network(folder, capsys):
    config = '{"architecture": "deeplabv3plus_mobilenetv3", "init": "imagenet", "patience": 0}'
    code, _, err = run(capsys, "train", folder, *TINY, "--force", "--pretrain", "no", "--config", config)
    assert code == 0, err
    code, _, err = run(capsys, "train", folder, *TINY, "--no-promote", "--config", '{"patience": 0}')
    assert code == 0, err
    assert "ImageNet" not in _job_log(capsys, folder)
    with ProjectStore.open(folder) as store:
        second = store.model_version("parser", "v0002")
        meta = json.loads((Path(second["path"]) / "meta.json").read_text())
    assert meta["architecture"] == "deeplabv3plus_mobilenetv3"
    assert second["parent"] == "v0001"


def test_an_active_version_without_its_weights_gives_way_to_the_starter_with_a_note(folder, capsys):
    code, _, err = run(capsys, "train", folder, *TINY, "--force", "--pretrain", "no", "--config",
                       '{"patience": 0}')
    assert code == 0, err
    with ProjectStore.open(folder) as store:
        (Path(store.active_model("parser")["path"]) / "model.safetensors").unlink()
    code, _, err = run(capsys, "train", folder, *TINY, "--no-promote", "--pretrain", "no", "--config",
                       '{"patience": 0}')
    assert code == 0, err
    assert "v0001 has no complete checkpoint" in _job_log(capsys, folder)
