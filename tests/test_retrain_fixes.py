"""A retrain on masks with classes outside the schema, masked pre-training kept off the validation images, and an
impossible `--pretrain yes` refused before a job exists."""

import json
import re

import numpy as np
import pytest
from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.core.datasets import snapshot_project
from faceparse.core.jobs import JobReporter
from faceparse.core.recipes import TrainConfig
from faceparse.core.store import PRETRAINED_ON_SETTING, ProjectStore
from faceparse.core.train_worker import run_retrain
from faceparse.core.trainer import TrainingCancelled
from PIL import Image

pytestmark = pytest.mark.usefixtures("torch_one_thread")

OUTSIDE = "mask has classes [40] outside the project's schema 'lapa' (0..10)"


def _spoil_masks(store):
    """Rewrite one training and one validation corrected mask so that class 1 becomes 40, as a hand edit or
    another tool might; returns their relpaths."""
    spoiled = []
    for split in ("train", "val"):
        rec = next(r for r in store.images(status="corrected") if r.split == split)
        path = store.mask_path("corrected", rec.id)
        mask = np.array(Image.open(path))
        mask[mask == 1] = 40
        Image.fromarray(mask.astype(np.uint8), mode="L").save(path)
        spoiled.append(rec.relpath)
    return spoiled


def _tiny(**overrides):
    options = dict(input_size=64, batch_size=2, epochs=1, max_steps=1, threads=1, export_onnx=False,
                   repredict=False, time_limit_s=None, promote="force")
    return TrainConfig.for_task("parser", **{**options, **overrides})


def test_the_snapshot_leaves_out_masks_with_classes_outside_the_schema(tmp_path):
    store, _ = make_project(tmp_path / "p", count=10, corrected=8)
    spoiled = _spoil_masks(store)
    snap = snapshot_project(store, "parser")
    assert sorted(snap.skipped) == sorted((relpath, OUTSIDE) for relpath in spoiled)
    taken = {s.relpath for s in snap.train + snap.val}
    assert len(taken) == 6 and not taken & set(spoiled)
    assert snap.val and snap.train


def test_a_retrain_goes_on_past_masks_with_classes_outside_the_schema(tmp_path):
    store, _ = make_project(tmp_path / "p", count=10, corrected=8)
    spoiled = _spoil_masks(store)
    job = store.add_job("retrain", {})
    result = run_retrain(store, _tiny(pretrain=False), JobReporter(store, job), tmp_path / "work")
    assert result["version"] == "v0001"
    log = "\n".join(store.job_log(job))
    for relpath in spoiled:
        assert f"skipped {relpath}: {OUTSIDE}" in log


def _all_corrected(root, count=12):
    store, _ = make_project(root, count=count, corrected=count)
    val = {r.id for r in store.images() if r.split == "val"}
    assert val and len(val) < count
    return store, val


def test_auto_pretraining_counts_only_the_images_it_may_use(tmp_path):
    from types import SimpleNamespace

    from faceparse.core.pretrain import pretrain_wanted
    from faceparse.models.registry import build_model

    store, val = _all_corrected(tmp_path / "p")
    usable = store.count() - len(val)
    model = build_model("deeplabv3plus_mobilenetv2", classes=11)

    def wanted(needed):
        config = TrainConfig.for_task("parser", extra={"pretrain_min_images": needed})
        return pretrain_wanted(SimpleNamespace(config=config, start=SimpleNamespace(kind="imagenet"), model=model,
                                               store=store))

    assert wanted(usable)
    assert not wanted(usable + 1)


def test_masked_pretraining_never_sees_the_validation_images(tmp_path, monkeypatch):
    import faceparse.core.imageio as imageio
    import faceparse.core.pretrain as pretrain

    store, val = _all_corrected(tmp_path / "p")
    original_load, original_phase = imageio.load_rgb, pretrain.pretrain_phase
    read, job_val = [], []

    def recording(path, *args, **kwargs):
        read.append(str(path))
        return original_load(path, *args, **kwargs)

    def phase(ctx):
        job_val.append({s.image_id for s in ctx.snapshot.val})
        with monkeypatch.context() as m:
            m.setattr(imageio, "load_rgb", recording)
            original_phase(ctx)

    monkeypatch.setattr(pretrain, "pretrain_phase", phase)
    job = store.add_job("retrain", {})
    config = _tiny(init="scratch", pretrain=True, extra={"pretrain_steps": 1, "pretrain_min_images": 4})
    run_retrain(store, config, JobReporter(store, job), tmp_path / "work")
    assert job_val == [val]
    usable = store.count() - len(val)
    assert len(read) == usable and not set(read) & {str(store.image_path(i)) for i in val}
    assert f"on {usable} images" in "\n".join(store.job_log(job))
    pretrained = store.get_setting(PRETRAINED_ON_SETTING)
    assert {str(store.image_path(i)) for i in pretrained} == set(read)


def _train(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_an_impossible_pretrain_yes_is_refused_before_a_job_exists(tmp_path, capsys):
    few = tmp_path / "few"
    store, _ = make_project(few, count=6, corrected=4)
    usable = store.count() - sum(r.split == "val" for r in store.images())
    store.close()
    code, err = _train(capsys, "train", few, "--pretrain", "yes", "--size", "64", "--threads", "1")
    assert code == 2
    assert f"needs at least 8 images outside the validation split, and {few} has {usable}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

    code, err = _train(capsys, "train", few, "--pretrain", "yes", "--config",
                       json.dumps({"extra": {"pretrain_min_images": 5}}))
    assert code == 2 and "needs at least 5 images" in err

    masks = tmp_path / "masks"
    make_project(masks, count=10, corrected=8, schema="face-mask", face_mask=True)[0].close()
    code, err = _train(capsys, "train", masks, "--pretrain", "yes")
    assert code == 2 and "'abanet'" in err and "face parser" in err
    assert len(err.strip().splitlines()) == 1

    for folder in (few, masks):
        with ProjectStore.open(folder) as store:
            assert store.jobs() == []


def test_a_retrain_whose_training_faces_cannot_be_read_names_them(tmp_path):
    from faceparse.core.datasets import DatasetError

    store, _ = make_project(tmp_path / "p", count=6, corrected=6)
    train = [r for r in store.images(status="corrected") if r.split == "train"]
    assert train and any(r.split == "val" for r in store.images(status="corrected"))
    for rec in train:
        (store.root / rec.relpath).write_bytes(b"not a photo any more")
    job = store.add_job("retrain", {})
    with pytest.raises(DatasetError, match=re.escape(f"{len(train)} were left out ({train[0].relpath}")):
        run_retrain(store, _tiny(pretrain=False), JobReporter(store, job), tmp_path / "work")


@pytest.mark.parametrize("option, value, words", [
    ("max_side", -5, "max_side must be null or at least"),
    ("seed", -1, "seed must be 0 or more"),
    ("weight_decay", -1.0, "weight_decay must be a finite number of 0 or more"),
    ("min_improvement", float("nan"), "min_improvement must be a finite number"),
    ("arch_args", {"width": 2}, "arch_args width is not an option of the network"),
    ("device", "cuda:7", "finds no CUDA GPU"),
])
def test_options_a_job_cannot_use_are_refused_before_it_starts(option, value, words, monkeypatch):
    import torch
    from faceparse.core.recipes import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without a GPU
    with pytest.raises(ConfigError, match=words):
        TrainConfig.from_dict({"task": "parser", option: value})


def test_a_retrain_cancelled_after_its_version_was_saved_says_so(tmp_path, monkeypatch):
    from faceparse.core import versions

    store, _ = make_project(tmp_path / "p", count=6, corrected=6)
    reporter = JobReporter(store, store.add_job("retrain", {}))
    original = versions.create_version

    def saved_then_cancelled(*args, **kwargs):
        row = original(*args, **kwargs)
        reporter.request_cancel()
        return row

    monkeypatch.setattr(versions, "create_version", saved_then_cancelled)
    with pytest.raises(TrainingCancelled):
        run_retrain(store, _tiny(pretrain=False, promote="auto"), reporter, tmp_path / "work")
    assert "parser v0001 was saved but not activated" in reporter.cancel_message()
    assert store.active_model("parser") is None


def test_the_command_line_result_names_the_starter_model_it_was_measured_against(capsys):
    from types import SimpleNamespace

    from faceparse.app.commands.train import print_result

    result = {"metric": "miou_no_bg", "score": 0.3, "baseline_score": 0.25, "baseline_source": "starter",
              "initial_score": None, "metrics": {"images": 3}}
    print_result(SimpleNamespace(job_id=2, state="done", message="ok"), result)
    assert "(starter model before: 25" in capsys.readouterr().out
