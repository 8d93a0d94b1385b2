"""A retrain carries on at the input size of the model it starts from unless a size is asked for; training from
no trained model uses the recipe's size; the before-training score is measured at the training size."""

import dataclasses
import json

import pytest
import torch
from drawn_projects import make_project
from faceparse.core import recipes
from faceparse.core.checkpoint import load_checkpoint
from faceparse.core.datasets import snapshot_project
from faceparse.core.evaluate import TorchPredictor, evaluate
from faceparse.core.jobs import JobReporter
from faceparse.core.recipes import TrainConfig, get_recipe
from faceparse.core.train_worker import run_retrain
from faceparse.core.versions import activate, create_version, starter_checkpoint, version_dir
from faceparse.models import build_model

pytestmark = pytest.mark.usefixtures("torch_one_thread")

START_SIZE = 96


def _tiny(**overrides):
    """One step of batch 2, no ONNX export, no re-prediction; no input size unless given. Contiguous tensors,
    so the job measures a model exactly as the test does."""
    options = dict(batch_size=2, epochs=1, max_steps=1, threads=1, export_onnx=False, repredict=False,
                   time_limit_s=None, promote="never", pretrain=False, patience=0, channels_last=False)
    return TrainConfig.for_task("parser", **{**options, **overrides})


def _start_version(store, size=START_SIZE):
    """An active version whose meta.json says it works at `size` px (random but seeded weights)."""
    torch.manual_seed(0)
    classes = store.schema.num_classes
    model = build_model("deeplabv3plus_mobilenetv2", classes=classes)
    meta = {"task": "parser", "architecture": "deeplabv3plus_mobilenetv2", "arch_args": {"classes": classes},
            "schema": {"name": store.schema.name, "classes": list(store.schema.classes)},
            "input_size": [size, size],
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
    row = create_version(store, "parser", model, meta, {"score": 0.1}, None, {}, export_onnx=False)
    activate(store, "parser", row["version"], export_missing_onnx=False)
    return row


def _retrain(store, tmp_path, config):
    job = store.add_job("retrain", config.to_dict())
    result = run_retrain(store, config, JobReporter(store, job), tmp_path / f"work{job}")
    return result, "\n".join(store.job_log(job))


def _saved_meta(store, result):
    return json.loads((version_dir(store, "parser", result["version"]) / "meta.json").read_text())


@pytest.fixture
def project(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=10, corrected=8)
    yield store
    store.close()


def test_a_retrain_without_a_size_carries_on_at_the_start_models_size(project, tmp_path):
    _start_version(project)
    result, log = _retrain(project, tmp_path, _tiny())
    assert result["start"] == "version v0001"
    meta = _saved_meta(project, result)
    assert meta["input_size"] == [START_SIZE, START_SIZE]
    assert meta["training_data"]["training"]["config"]["input_size"] == START_SIZE
    assert f"fine-tuning deeplabv3plus_mobilenetv2 at {START_SIZE} px" in log
    assert f"training at {START_SIZE} px, the input size of version v0001" in log
    assert result["initial_score"] == pytest.approx(result["baseline_score"])


def test_an_automatic_retrain_records_the_version_it_starts_from_on_its_job(project, tmp_path):
    start = _start_version(project)
    config = _tiny()
    job = project.add_job("retrain", config.to_dict())
    run_retrain(project, config, JobReporter(project, job), tmp_path / "work")
    assert project.job(job)["params"]["init"] == "auto"
    assert project.job(job)["params"]["start_version"] == start["version"]


def test_a_size_asked_for_wins_and_the_start_model_is_measured_at_it(project, tmp_path):
    _start_version(project)  # so the first retrain is measured against it, not the starter model at 512 px
    first, _ = _retrain(project, tmp_path, _tiny(input_size=START_SIZE, init="scratch", max_steps=6, epochs=2))
    activate(project, "parser", first["version"], export_missing_onnx=False)
    result, log = _retrain(project, tmp_path, _tiny(input_size=64))
    assert _saved_meta(project, result)["input_size"] == [64, 64]
    assert "fine-tuning deeplabv3plus_mobilenetv2 at 64 px" in log

    model, meta = load_checkpoint(project.active_model("parser")["path"])
    val = [(s.image, s.mask) for s in snapshot_project(project, "parser", max_side=2 * 64).val]
    at_64 = evaluate(TorchPredictor(model, {**meta, "input_size": [64, 64]}), val, "parser")["miou_no_bg"]
    at_own = evaluate(TorchPredictor(model, meta), val, "parser")["miou_no_bg"]
    assert at_64 != pytest.approx(at_own), "the test needs a start model that scores differently at 64 px"
    assert result["baseline_score"] == pytest.approx(at_own)
    assert result["initial_score"] == pytest.approx(at_64)
    assert f"training at 64 px as asked, while version {first['version']} works at {START_SIZE} px" in log


def test_training_from_no_trained_model_uses_the_recipes_size(project, tmp_path, monkeypatch):
    _start_version(project)
    small = dataclasses.replace(get_recipe("parser"), input_size=64)  # the recipe's size, kept tiny for the test
    monkeypatch.setitem(recipes.RECIPES, "parser", small)
    result, log = _retrain(project, tmp_path, _tiny(init="scratch"))
    assert result["start"] == "random weights"
    assert _saved_meta(project, result)["input_size"] == [64, 64]
    assert "fine-tuning deeplabv3plus_mobilenetv2 at 64 px" in log


def test_the_starter_models_own_size_is_what_an_automatic_retrain_uses(project):
    from faceparse.core.train_worker import auto_start_size

    shipped = json.loads((starter_checkpoint("parser") / "meta.json").read_text())["input_size"][0]
    assert auto_start_size(project, "parser") == shipped == 512
    _start_version(project)
    assert auto_start_size(project, "parser") == START_SIZE


def test_a_settled_size_is_checked_like_one_asked_for():
    config = TrainConfig.for_task("mask")
    config.settle_input_size(None)
    assert config.input_size == get_recipe("mask").input_size
    config = TrainConfig.for_task("parser", input_size=128)
    config.settle_input_size(512)
    assert config.input_size == 128
    config = TrainConfig.for_task("parser")
    config.settle_input_size(512)
    assert config.input_size == 512


def test_the_studio_retrain_panel_defaults_to_the_active_models_size(qtbot, tmp_path):
    from faceparse.app.gui.models_panel import ModelsPanel
    from faceparse.app.gui.workers import TaskRunner

    store, _ = make_project(tmp_path / "faces", count=4, corrected=2)
    try:
        panel = ModelsPanel(store, TaskRunner())
        qtbot.addWidget(panel)
        assert panel.input_size.currentData() is None
        assert panel.input_size.currentText() == "Auto: model's own, 512 px"
        assert panel.retrain_config()["input_size"] is None
        _start_version(store)
        panel.refresh_versions()
        assert panel.input_size.currentText() == f"Auto: model's own, {START_SIZE} px"
        panel.input_size.setCurrentIndex(panel.input_size.findData(256))
        assert panel.retrain_config()["input_size"] == 256
        assert f"works at {START_SIZE} px: at 256 px it starts from a lower score" in panel.retrain_phase.text()
        panel.input_size.setCurrentIndex(0)
        assert "works at" not in panel.retrain_phase.text()
        panel.close_jobs()
    finally:
        store.close()
