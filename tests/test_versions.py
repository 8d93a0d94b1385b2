"""Retraining a project in this process: versions, honest promotion on a fixed validation set, rollback."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from drawn_projects import make_project
from faceparse.core.checkpoint import load_checkpoint
from faceparse.core.datasets import DatasetError, mask_hash
from faceparse.core.evaluate import OnnxPredictor, TorchPredictor, evaluate, project_samples
from faceparse.core.jobs import JobReporter
from faceparse.core.model_resolver import find_model
from faceparse.core.recipes import TrainConfig
from faceparse.core.store import ProjectError
from faceparse.core.train_worker import RETRAIN_PHASES, run_retrain
from faceparse.core.versions import (
    STARTER,
    activate,
    activation_history,
    create_version,
    decide_promotion,
    ensure_onnx,
    list_versions,
    rollback,
    rollback_candidates,
    version_dir,
)
from faceparse.models import build_model
from PIL import Image

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny(**overrides):
    options = dict(input_size=64, batch_size=4, epochs=3, threads=1, export_onnx=False, repredict=False,
                   time_limit_s=None, patience=0)
    options.update(overrides)
    return TrainConfig.for_task("parser", **options)


def retrain(store, tmp_path, config, phases=None):
    job = store.add_job("retrain", config.to_dict())
    return run_retrain(store, config, JobReporter(store, job), tmp_path / f"work{job}", phases=phases)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project after its first retrain (from ImageNet weights), shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("trained")
    store, masks = make_project(tmp / "faces", count=14, corrected=12)
    result = retrain(store, tmp, tiny(epochs=4, init="imagenet", promote="force"))
    yield store, masks, result, tmp
    store.close()


def test_first_retrain_improves_on_the_untrained_model_and_is_promoted_on_request(trained):
    store, _, result, _ = trained
    assert result["start"] == "ImageNet-initialised weights"
    assert result["metric"] == "miou_no_bg"
    assert result["score"] > result["initial_score"] + 0.01
    assert result["promoted"] and "on request" in result["reason"]
    assert result["baseline_score"] is not None  # the starter model, measured as it pre-labels this LaPa project
    active = store.active_model("parser")
    assert active["version"] == result["version"] == "v0001"
    assert active["metrics"]["score"] == pytest.approx(result["score"])
    assert active["data_summary"]["val_ids"] == result["val_ids"]
    model, meta = load_checkpoint(active["path"], expect_classes=store.schema)
    assert meta["version"] == "v0001" and meta["parent"] is None and meta["input_size"] == [64, 64]
    assert meta["training_data"]["train"] + meta["training_data"]["val"] == 12
    honest = evaluate(TorchPredictor(model, meta), project_samples(store, "parser"), "parser")
    assert honest["miou_no_bg"] == pytest.approx(result["score"], abs=1e-6)


def test_while_the_starter_model_is_in_use_a_new_model_must_beat_it(tmp_path):
    """The CelebAMask-HQ starter pre-labels a LaPa project through the class mapping, so that is how it is
    measured; a first model that does worse stays inactive whatever it started from."""
    store, _ = make_project(tmp_path / "faces", count=8, corrected=8)
    result = retrain(store, tmp_path, tiny(init="imagenet", max_steps=1, epochs=1))
    assert result["baseline_score"] is not None and result["score"] < result["baseline_score"]
    assert not result["promoted"] and "does not beat the starter model's" in result["reason"]
    assert store.active_model("parser") is None
    assert store.model_version("parser", result["version"])["metrics"]["baseline"]["source"] == "starter"
    store.close()


def test_when_every_corrected_face_is_left_out_the_error_says_why(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=3, corrected=3)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    for rec in store.images():
        Image.fromarray(noise).save(store.root / rec.relpath)
    with pytest.raises(DatasetError, match=r"every corrected face was left out \(3\).*photo changed after its mask"):
        retrain(store, tmp_path, tiny(epochs=1, max_steps=1))
    store.close()


def test_a_model_activated_during_training_is_not_overridden(trained, tmp_path):
    store, _, first, _ = trained
    assert store.active_model("parser")["version"] == "v0001"
    phases = list(RETRAIN_PHASES)
    at = [name for name, _ in phases].index("promote")
    phases.insert(at, ("user switches model", lambda ctx: activate(store, "parser", STARTER)))
    result = retrain(store, tmp_path, tiny(epochs=1, min_improvement=-1.0), phases=phases)
    try:
        assert not result["promoted"] and "was made the active model in its place" in result["reason"]
        assert store.active_model("parser") is None
    finally:
        activate(store, "parser", "v0001", export_missing_onnx=False)


def test_the_refined_parser_starts_from_the_trained_default_parser(trained, tmp_path):
    """Its network is the default's plus a head: a retrain of it from the active default loads every tensor the
    default has, instead of starting over from ImageNet weights."""
    store, _, first, _ = trained
    seen = {}

    class Looked(Exception):
        pass

    def look(ctx):
        seen.update(start=ctx.start, model=ctx.model, notes=list(ctx.notes))
        raise Looked

    phases = [p for p in RETRAIN_PHASES if p[0] in ("snapshot", "prepare")] + [("look", look)]
    with pytest.raises(Looked):
        retrain(store, tmp_path, tiny(epochs=1, architecture="deeplabv3plus_mobilenetv2_refined"), phases=phases)
    default, _ = load_checkpoint(store.active_model("parser")["path"], expect_classes=store.schema)
    assert seen["start"].kind == "version" and seen["start"].version == "v0001"
    assert seen["start"].loaded == len(default.state_dict())
    refined = seen["model"].state_dict()
    assert all(torch.equal(refined[k], v) for k, v in default.state_dict().items())
    assert any("starts from the trained weights of version v0001" in line for line in seen["notes"])


def test_the_validation_set_is_the_same_across_retrains(trained, tmp_path):
    store, masks, first, _ = trained
    second = retrain(store, tmp_path, tiny(epochs=1, promote="never"))
    assert second["val_ids"] == first["val_ids"] and second["val_ids"]
    assert second["start"] == "version v0001"
    assert second["baseline_score"] == pytest.approx(first["score"], abs=1e-6)
    earlier = {rec.id: rec.split for rec in store.images(status="corrected")}
    for rec in store.images(status="new"):
        store.save_corrected(rec.id, masks[rec.relpath])
    third = retrain(store, tmp_path, tiny(epochs=1, promote="never"))
    now = {rec.id: rec.split for rec in store.images(status="corrected")}
    assert all(now[i] == split for i, split in earlier.items())
    assert set(first["val_ids"]) <= set(third["val_ids"])
    assert set(third["val_ids"]) == {i for i, split in now.items() if split == "val"}
    assert store.active_model("parser")["version"] == "v0001"


def test_a_worse_model_is_not_promoted(trained, tmp_path):
    store, _, first, _ = trained
    before = {m["version"] for m in store.model_versions("parser")}
    result = retrain(store, tmp_path, tiny(init="scratch", max_steps=1, lr=1e-6, epochs=1))
    assert result["score"] < result["baseline_score"]
    assert not result["promoted"] and "does not beat" in result["reason"]
    assert store.active_model("parser")["version"] == "v0001"
    new = store.model_version("parser", result["version"])
    assert new is not None and result["version"] not in before
    assert new["metrics"]["baseline"]["version"] == "v0001"


def test_edits_made_while_training_are_not_used(tmp_path):
    store, masks = make_project(tmp_path / "faces", count=10, corrected=8)
    recs = store.images()
    originals = {r.id: mask_hash(masks[r.relpath]) for r in recs[:8]}

    def annotator_edits(ctx):
        store.save_corrected(recs[0].id, np.zeros_like(masks[recs[0].relpath]))
        store.save_corrected(recs[9].id, masks[recs[9].relpath])

    phases = list(RETRAIN_PHASES)
    phases.insert(1, ("edit", annotator_edits))
    result = retrain(store, tmp_path, tiny(epochs=1, max_steps=1), phases=phases)
    assert result["start"].startswith("the shipped starter model")  # no active model: the starter's face body
    assert result["baseline_score"] is not None  # the starter, measured through its mapping to LaPa
    meta = json.loads((version_dir(store, "parser", result["version"]) / "meta.json").read_text())
    hashes = {int(k): v for k, v in meta["training_data"]["mask_hashes"].items()}
    assert hashes == originals
    assert recs[9].id not in meta["training_data"]["train_ids"] + meta["training_data"]["val_ids"]


def test_promotion_rules():
    assert decide_promotion(0.6, 0.5).promote
    assert not decide_promotion(0.5, 0.5).promote
    assert not decide_promotion(0.55, 0.5, min_improvement=0.1).promote
    assert decide_promotion(0.1, None).promote
    refused = decide_promotion(0.0, math.nan, baseline_name="the starter model")
    assert not refused.promote and "the starter model has no measurable score" in refused.reason
    assert not decide_promotion(math.nan, None).promote
    assert not decide_promotion(math.nan, 0.5).promote
    assert decide_promotion(0.1, 0.9, mode="force").promote
    assert not decide_promotion(0.9, 0.1, mode="never").promote



def test_a_model_not_promoted_on_few_validation_faces_is_told_what_to_do():
    few = decide_promotion(0.96, 0.9998, baseline_name="the starter model", faces=1)
    assert not few.promote and "on 1 validation face;" in few.reason and "activate it yourself" in few.reason
    many = decide_promotion(0.5, 0.6, faces=40)
    assert not many.promote and many.reason.endswith("0.6000 on 40 validation faces")
    assert decide_promotion(0.5, 0.6).reason == "not promoted: 0.5000 does not beat the active model's 0.6000"


def fake_version(store, task="parser", parent=None, score=0.5):
    model = build_model("deeplabv3plus_mobilenetv2", classes=store.schema.num_classes)
    meta = {"task": task, "architecture": "deeplabv3plus_mobilenetv2",
            "arch_args": {"classes": store.schema.num_classes},
            "schema": {"name": store.schema.name, "classes": list(store.schema.classes)}, "input_size": [64, 64],
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
    return create_version(store, task, model, meta, {"score": score}, parent, {}, export_onnx=False)


def test_activate_and_roll_back(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    v1, v2, v3 = (fake_version(store)["version"] for _ in range(3))
    assert (v1, v2, v3) == ("v0001", "v0002", "v0003")
    with pytest.raises(ProjectError, match="no active"):
        rollback(store, "parser")
    for version in (v1, v3, v2):
        activate(store, "parser", version, export_missing_onnx=False)
    assert activation_history(store, "parser") == [STARTER, v1, v3, v2]
    assert rollback(store, "parser", export_missing_onnx=False)["version"] == v3
    assert store.active_model("parser")["version"] == v3
    assert rollback(store, "parser", export_missing_onnx=False)["version"] == v1
    assert rollback(store, "parser", export_missing_onnx=False)["version"] == STARTER
    with pytest.raises(ProjectError, match="no active"):
        rollback(store, "parser", export_missing_onnx=False)
    assert rollback(store, "parser", v2, export_missing_onnx=False)["version"] == v2
    flags = {row["version"]: row["active"] for row in list_versions(store, "parser")}
    assert flags == {v1: False, v2: True, v3: False}
    with pytest.raises(ProjectError, match="no model version"):
        activate(store, "parser", "v0042")


def test_a_damaged_checkpoint_is_a_clear_error_and_rollback_moves_past_it(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    v1, v2, v3 = (fake_version(store) for _ in range(3))
    for row in (v1, v3, v2):
        activate(store, "parser", row["version"], export_missing_onnx=False)
    (Path(v1["path"]) / "model.onnx").write_bytes(b"exported earlier")
    (Path(v3["path"]) / "meta.json").write_text('{"task": "par')
    with pytest.raises(ProjectError, match="parser/v0003 cannot be used"):
        activate(store, "parser", v3["version"])
    assert store.active_model("parser")["version"] == v2["version"]
    assert rollback(store, "parser")["version"] == v1["version"]
    assert store.active_model("parser")["version"] == v1["version"]
    from faceparse.core.predictor import read_model_info

    assert read_model_info(Path(v1["path"]) / "model.onnx").classes == tuple(store.schema.classes)


def test_a_crash_while_saving_leaves_no_half_version(tmp_path, monkeypatch):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    fake_version(store)
    import faceparse.core.checkpoint as checkpoint

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_checkpoint", crash)
    with pytest.raises(OSError):
        fake_version(store)
    monkeypatch.undo()
    assert [m["version"] for m in store.model_versions("parser")] == ["v0001"]
    leftovers = [p.name for p in (store.models_dir / "parser").iterdir()]
    assert leftovers == ["v0001"]
    (store.models_dir / "parser" / "v0002").mkdir()  # a directory renamed into place just before a crash
    (store.models_dir / "parser" / ".v0002.partial-1").mkdir()
    assert fake_version(store)["version"] == "v0002"
    assert load_checkpoint(store.model_version("parser", "v0002")["path"])[1]["version"] == "v0002"
    assert sorted(p.name for p in (store.models_dir / "parser").iterdir()) == ["v0001", "v0002"]


@pytest.mark.slow
def test_an_onnx_file_that_cannot_be_written_leaves_the_active_model_and_says_why(tmp_path, monkeypatch):
    from faceparse.core import onnx_export

    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    v1, v2 = (fake_version(store)["version"] for _ in range(2))
    activate(store, "parser", v1, export_missing_onnx=False)

    def read_only(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(onnx_export, "export_onnx", read_only)
    with pytest.raises(ProjectError, match="parser/v0002 has no ONNX file yet and it cannot be written"):
        activate(store, "parser", v2)
    assert store.active_model("parser")["version"] == v1


def test_activation_exports_onnx_that_predicts_like_the_checkpoint(trained):
    store, _, result, _ = trained
    directory = version_dir(store, "parser", result["version"])
    assert (directory / "model.onnx").is_file(), "a promoted version is exported even when the job skips ONNX"
    (directory / "model.onnx").unlink()
    activate(store, "parser", result["version"])
    assert (directory / "model.onnx").is_file() and ensure_onnx(store, "parser", result["version"]).is_file()
    samples = project_samples(store, "parser")
    model, meta = load_checkpoint(directory)
    from_torch = evaluate(TorchPredictor(model, meta), samples)
    from_onnx = evaluate(OnnxPredictor(directory / "model.onnx"), samples)
    assert from_onnx["pixel_accuracy"] == pytest.approx(from_torch["pixel_accuracy"], abs=2e-3)
    assert from_onnx["miou_no_bg"] == pytest.approx(from_torch["miou_no_bg"], abs=2e-2)


def test_rollback_candidates_are_the_versions_a_rollback_could_activate(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    v1 = fake_version(store)["version"]
    assert rollback_candidates(store, "parser") == []
    activate(store, "parser", v1, export_missing_onnx=False)
    assert rollback_candidates(store, "parser") == [STARTER]
    v2 = fake_version(store, parent=v1)["version"]
    activate(store, "parser", v2, export_missing_onnx=False)
    assert rollback_candidates(store, "parser") == [v1, STARTER]
    (version_dir(store, "parser", v1) / "model.safetensors").unlink()
    assert rollback_candidates(store, "parser") == [STARTER]
    store.close()


def test_a_rollback_whose_earlier_versions_all_fail_says_why_instead_of_taking_the_starter(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    v1, v2 = (fake_version(store)["version"] for _ in range(2))
    for version in (v1, v2):
        activate(store, "parser", version, export_missing_onnx=False)
    (version_dir(store, "parser", v1) / "meta.json").write_text('{"task": "par')
    with pytest.raises(ProjectError, match="no earlier parser version could be activated .*v0001 cannot be used"):
        rollback(store, "parser")
    assert store.active_model("parser")["version"] == v2
    store.close()


def test_the_last_rollback_returns_to_the_starter_model_and_keeps_every_version(tmp_path, monkeypatch):
    from faceparse.core import model_resolver, versions

    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    v1 = fake_version(store)["version"]
    activate(store, "parser", v1, export_missing_onnx=False)
    row = rollback(store, "parser")
    assert row["version"] == STARTER and store.active_model("parser") is None
    assert find_model(store, None, "parser").source == "starter"
    assert [m["version"] for m in store.model_versions("parser")] == [v1]
    assert rollback_candidates(store, "parser") == []
    activate(store, "parser", v1, export_missing_onnx=False)
    assert activate(store, "parser", STARTER)["version"] == STARTER and store.active_model("parser") is None
    activate(store, "parser", v1, export_missing_onnx=False)
    monkeypatch.setattr(model_resolver, "starter_model_path", lambda task: tmp_path / "none.onnx")
    assert versions.rollback_candidates(store, "parser") == []
    with pytest.raises(ProjectError, match="no earlier version"):
        rollback(store, "parser")
    with pytest.raises(ProjectError, match="no starter parser model"):
        activate(store, "parser", STARTER)
    store.close()


def test_rolling_back_from_the_first_version_activated_returns_to_the_starter_not_its_parent(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    v1 = fake_version(store)["version"]
    v2 = fake_version(store, parent=v1)["version"]
    activate(store, "parser", v2, export_missing_onnx=False)
    assert rollback_candidates(store, "parser")[0] == STARTER
    assert rollback(store, "parser", export_missing_onnx=False)["version"] == STARTER
    assert store.active_model("parser") is None


def test_a_version_folder_the_database_does_not_know_is_never_replaced(tmp_path):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    fake_version(store)
    second = fake_version(store)
    weights = (Path(second["path"]) / "model.safetensors").read_bytes()
    with store._write() as c:  # a database restored from a backup made before the second version
        c.execute("DELETE FROM model_versions WHERE version = ?", (second["version"],))
    third = fake_version(store)
    assert third["version"] == "v0003"
    assert (Path(second["path"]) / "model.safetensors").read_bytes() == weights
