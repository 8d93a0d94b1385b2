"""The training loop, the training data taken from a project, and the recipes (in this process, tiny sizes)."""

import math
import time

import numpy as np
import pytest
import torch
from drawn_projects import make_project
from faceparse.core.augment import AugmentConfig, augment_pair
from faceparse.core.checkpoint import load_checkpoint
from faceparse.core.datasets import (
    DatasetError,
    DatasetSnapshot,
    augmented_batches,
    class_weights,
    snapshot_project,
    steps_per_epoch,
    task_target,
)
from faceparse.core.jobs import JobReporter
from faceparse.core.recipes import ConfigError, TrainConfig, get_recipe
from faceparse.core.schemas import get_schema
from faceparse.core.train_worker import run_retrain
from faceparse.core.trainer import CosineSchedule, FitConfig, TrainingCancelled, TrainingDiverged, fit
from faceparse.models.losses import HybridMaskLoss, ParsingLoss
from torch import nn

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# --- the loop ------------------------------------------------------------------------------------------------------

def colour_task(n=16, size=16, seed=0):
    """Images whose class is where the red channel is high: learnable by one convolution in a few steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, size, size)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return x, y


def batches_of(x, y, batch=4):
    def batches(epoch):
        for i in range(0, len(x), batch):
            yield x[i:i + batch], y[i:i + batch]
    return batches


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def test_fit_learns_and_reports_progress():
    torch.manual_seed(0)
    x, y = colour_task()
    model = nn.Conv2d(3, 2, 1)
    before = accuracy(model, x, y)
    events = []
    result = fit(model, nn.CrossEntropyLoss(), batches_of(x, y), lambda m: (accuracy(m, x, y), {"acc": 1}),
                 FitConfig(epochs=10, steps_per_epoch=4, lr=0.1), on_event=events.append)
    assert accuracy(model, x, y) > max(before, 0.9)
    assert result.steps == 40 and result.epochs == 10 and result.stop_reason == "completed"
    steps = [e for e in events if e["phase"] == "train" and e["step"]]
    assert [e["step"] for e in steps] == list(range(1, 41))
    assert all(e["total"] == 40 and e["loss"] > 0 and e["eta_s"] >= 0 for e in steps)
    assert steps[-1]["loss"] < steps[0]["loss"]
    validations = [e for e in events if e["phase"] == "validate"]
    assert len(validations) == 10 and validations[0]["metrics"] == {"acc": 1}
    assert set(events[0]) == {"phase", "step", "total", "loss", "metrics", "eta_s", "message"}


def test_fit_restores_the_best_epoch_and_stops_early():
    x, y = colour_task()
    model = nn.Conv2d(3, 2, 1)
    scores = iter([0.2, 0.9, 0.5, 0.4, 0.3, 0.1])
    states = []

    def val(m):
        states.append({k: v.clone() for k, v in m.state_dict().items()})
        return next(scores), {}

    result = fit(model, nn.CrossEntropyLoss(), batches_of(x, y), val,
                 FitConfig(epochs=6, steps_per_epoch=4, lr=0.1, patience=2))
    assert result.stop_reason == "early_stopping"
    assert result.epochs == 4 and result.best_epoch == 2 and result.best_score == 0.9
    assert all(torch.equal(model.state_dict()[k], states[1][k]) for k in states[1])
    assert not torch.equal(model.weight, states[-1]["weight"])


def test_a_nan_score_nothing_to_count_and_nothing_found_outranks_every_number():
    """Validation faces without a face mask: an epoch that paints a false mask scores 0, one that paints none NaN
    (an IoU of nothing). The NaN epoch is the better one, kept and restored, as promotion also ranks it."""
    x, y = colour_task()
    model = nn.Conv2d(3, 2, 1)
    scores = iter([0.0, math.nan, math.nan, math.nan, 0.5, 0.6])
    states = []

    def val(m):
        states.append({k: v.clone() for k, v in m.state_dict().items()})
        return next(scores), None

    result = fit(model, nn.CrossEntropyLoss(), batches_of(x, y), val,
                 FitConfig(epochs=6, steps_per_epoch=4, lr=0.1, patience=2))
    assert result.stop_reason == "early_stopping" and result.epochs == 4
    assert result.best_epoch == 2 and math.isnan(result.best_score)
    assert all(torch.equal(model.state_dict()[k], states[1][k]) for k in states[1])


def test_cancel_is_checked_before_every_step():
    x, y = colour_task()
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3

    events = []
    with pytest.raises(TrainingCancelled):
        fit(nn.Conv2d(3, 2, 1), nn.CrossEntropyLoss(), batches_of(x, y), None,
            FitConfig(epochs=5, steps_per_epoch=4, lr=0.1), on_event=events.append, cancelled=cancelled)
    assert max(e["step"] for e in events) == 3


def test_time_limit_shortens_the_schedule_so_it_still_anneals(monkeypatch):
    x, y = colour_task()
    seen = []
    original = CosineSchedule.__call__

    def recording(self, step):
        value = original(self, step)
        seen.append((value, self.total))
        return value

    def slow_loss(out, target):
        time.sleep(0.02)
        return nn.functional.cross_entropy(out, target)

    monkeypatch.setattr(CosineSchedule, "__call__", recording)
    result = fit(nn.Conv2d(3, 2, 1), slow_loss, batches_of(x, y), None,
                 FitConfig(epochs=200, steps_per_epoch=4, lr=0.1, time_limit_s=0.6))
    assert result.stop_reason == "time_limit"
    assert 4 < result.steps < 200
    assert seen[-1][1] < 800  # recomputed for the steps that fit in the limit
    assert seen[-1][0] < 0.5 * max(lr for lr, _ in seen)


def test_max_steps_and_divergence():
    x, y = colour_task()
    result = fit(nn.Conv2d(3, 2, 1), nn.CrossEntropyLoss(), batches_of(x, y), None,
                 FitConfig(epochs=10, steps_per_epoch=4, lr=0.1, max_steps=6))
    assert result.steps == 6 and result.stop_reason == "max_steps"
    with pytest.raises(TrainingDiverged, match="lower learning rate"):
        fit(nn.Conv2d(3, 2, 1), lambda out, t: out.sum() * float("nan"), batches_of(x, y), None,
            FitConfig(epochs=1, steps_per_epoch=4, lr=0.1))


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    schedule = CosineSchedule(1.0, 100, warmup=10, min_ratio=0.01)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(9) == pytest.approx(1.0)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(55) == pytest.approx(0.505)
    assert schedule(100) == pytest.approx(0.01)
    values = [schedule(s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


# --- data from a project -------------------------------------------------------------------------------------------

def test_snapshot_takes_human_masks_only_with_the_stored_split(tmp_path):
    store, masks = make_project(tmp_path / "p", count=8, corrected=5)
    recs = store.images()
    store.save_predicted(recs[5].id, masks[recs[5].relpath], "v1")  # a prediction nobody checked
    store.save_predicted(recs[6].id, masks[recs[6].relpath], "v1")
    store.set_status(recs[6].id, "reviewed")  # a prediction a human approved
    snap = snapshot_project(store, "parser")
    taken = {s.image_id: s for s in snap.train + snap.val}
    assert set(taken) == {r.id for r in recs[:5]} | {recs[6].id}
    for rec in store.images():
        if rec.id in taken:
            assert taken[rec.id].split == rec.split
            assert np.array_equal(taken[rec.id].mask, masks[rec.relpath])
    assert snap.unlabeled == 2
    summary = snap.summary()
    assert summary["train"] + summary["val"] == 6
    assert summary["val_ids"] == sorted(s.image_id for s in snap.val)
    assert sum(summary["class_pixels"].values()) == sum(s.mask.size for s in snap.train)
    store.save_corrected(recs[0].id, np.zeros_like(masks[recs[0].relpath]))
    assert snapshot_project(store, "parser").digest() != snap.digest()
    assert np.array_equal(taken[recs[0].id].mask, masks[recs[0].relpath])  # the snapshot keeps what it read


def test_snapshot_skips_unusable_faces_and_downscales(tmp_path):
    store, masks = make_project(tmp_path / "p", count=4, corrected=4, size=96)
    bad = store.images()[0]
    (store.root / bad.relpath).write_bytes(b"not a picture")
    snap = snapshot_project(store, "parser", max_side=48)
    assert [path for path, _ in snap.skipped] == [bad.relpath]
    assert all(s.image.shape == (48, 48, 3) and s.mask.shape == (48, 48) for s in snap.train + snap.val)


def test_snapshot_round_trips_through_files(tmp_path):
    store, _ = make_project(tmp_path / "p", count=5, corrected=5)
    snap = snapshot_project(store, "parser")
    snap.save(tmp_path / "snap")
    back = DatasetSnapshot.load(tmp_path / "snap")
    assert back.digest() == snap.digest() and back.classes == snap.classes
    for a, b in zip(snap.train + snap.val, back.train + back.val, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


def test_mask_task_learns_the_face_mask_class_only(tmp_path):
    target = task_target(get_schema("masked-faces"), "mask")
    assert target.classes == ("background", "face_mask")
    assert list(target.convert(np.array([0, 1, 2, 255], np.uint8))) == [0, 0, 1, 255]
    with pytest.raises(DatasetError, match="face_mask"):
        task_target(get_schema("lapa"), "mask")


def test_flip_swaps_left_and_right_classes():
    schema = get_schema("celebamask-hq")
    l_eye, r_eye = schema.index("l_eye"), schema.index("r_eye")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 2:14], mask[8:24, 18:30] = l_eye, r_eye  # mirror-symmetric layout: a correct flip changes nothing
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16] = 200
    config = AugmentConfig(rotation_deg=0, scale=(1, 1), shift=0, shear=0, flip=True, color_jitter=0)
    flipped = 0
    for seed in range(12):
        out_image, out_mask = augment_pair(image, mask, (32, 32), np.random.default_rng(seed), config,
                                           schema.flip_lut())
        assert np.array_equal(out_mask, mask)
        flipped += int(out_image[0, 0, 0] == 0)
    assert 0 < flipped < 12


def test_augmented_batches_cover_the_data_and_share_it_between_processes(tmp_path):
    store, _ = make_project(tmp_path / "p", count=7, corrected=7)
    snap = snapshot_project(store, "parser")
    samples = snap.train + snap.val
    batches = list(augmented_batches(samples, 32, 2, seed=1, epoch=0, augment=AugmentConfig.finetune(),
                                     flip_lut=snap.target.flip_lut()))
    assert len(batches) == steps_per_epoch(7, 2) == 4
    assert all(x.shape == (2, 3, 32, 32) and x.dtype == np.float32 and y.shape == (2, 32, 32) for x, y in batches)
    assert set(np.unique(np.concatenate([y.ravel() for _, y in batches]))) <= set(range(11)) | {255}
    ranks = [list(augmented_batches(samples, 32, 2, 1, 0, AugmentConfig.none(), None, rank=r, world=2))
             for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == steps_per_epoch(7, 2, 2) == 2
    assert not np.array_equal(ranks[0][0][0], ranks[1][0][0])


def test_class_weights_favour_rare_classes():
    weights = class_weights(np.array([1_000_000, 50_000, 200, 0]))
    assert weights[2] > weights[1] > weights[0]
    assert weights.min() >= 0.5 and weights.max() <= 10.0
    assert np.allclose(class_weights(np.zeros(3)), 1.0)


# --- recipes -------------------------------------------------------------------------------------------------------

def test_configs_take_task_defaults_and_refuse_mistakes():
    parser, mask = TrainConfig.for_task("parser"), TrainConfig.for_task("mask", epochs=2)
    assert parser.network == "deeplabv3plus_mobilenetv2" and parser.input_size is None  # the start model's
    assert mask.network == "abanet" and mask.input_size is None and mask.epochs == 2
    assert get_recipe("parser").input_size == 256 and get_recipe("mask").input_size == 192
    assert TrainConfig.from_dict({"task": "mask"}).batch_size == 8
    assert TrainConfig.from_dict(parser.to_dict()) == parser
    for bad, match in [({"epochs": 0}, "epochs"), ({"input_size": 100}, "multiple of 32"), ({"batch_size": 1}, "batch"),
                       ({"epoch": 3}, "unknown training option"), ({"architecture": "abanet"}, "mask network"),
                       ({"promote": "maybe"}, "promote"), ({"pretrain": "sometimes"}, "pretrain")]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig.for_task("parser", **bad)


@pytest.mark.parametrize("bad, match", [
    ({"epochs": "5"}, "epochs must be a whole number, got '5'"), ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"device": 5}, "device must be a text"), ({"lr": "x"}, "lr must be a number or null"),
    ({"export_onnx": "yes"}, "export_onnx must be true or false"), ({"batch_size": True}, "batch_size"),
    ({"arch_args": [1]}, "arch_args must be an object or null"),
])
def test_config_values_of_the_wrong_type_are_refused_by_name(bad, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict({"task": "parser", **bad})
    assert TrainConfig.from_dict({"lr": 1, "time_limit_s": 60, "threads": None}).lr == 1


def test_pretraining_options_are_taken_as_the_help_gives_them_and_checked():
    assert TrainConfig.from_dict({"pretrain_steps": 40}).extra == {"pretrain_steps": 40}
    both = TrainConfig.from_dict({"pretrain_steps": 40, "extra": {"pretrain_images": 500}})
    assert both.extra == {"pretrain_images": 500, "pretrain_steps": 40}
    assert TrainConfig.from_dict(both.to_dict()) == both
    for bad, match in [({"extra": {"pretrain_stpes": 40}}, "unknown option.*pretrain_stpes.*pretrain_steps"),
                       ({"pretrain_steps": "ten"}, "pretrain_steps must be a whole number"),
                       ({"extra": {"pretrain_min_images": 0}}, "pretrain_min_images must be a whole number"),
                       ({"pretrain_stpes": 40}, "unknown training option.*known:.*pretrain_steps")]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig.from_dict(bad)


def test_recipes_use_the_papers_losses(tmp_path):
    store, _ = make_project(tmp_path / "p", count=4, corrected=4)
    snap = snapshot_project(store, "parser")
    loss = get_recipe("parser").loss(TrainConfig.for_task("parser"), snap)
    assert isinstance(loss, ParsingLoss) and loss.class_weights.shape == (11,)
    assert isinstance(get_recipe("mask").loss(TrainConfig.for_task("mask"), snap), HybridMaskLoss)
    assert get_recipe("parser").score({"miou_no_bg": 0.4}) == 0.4
    assert math.isnan(get_recipe("mask").score(None))


def test_mask_recipe_trains_abanet_over_its_side_outputs(tmp_path):
    store, _ = make_project(tmp_path / "m", count=6, corrected=6, size=32, schema="face-mask", face_mask=True)
    job = store.add_job("retrain", {})
    config = TrainConfig.for_task("mask", input_size=32, batch_size=2, epochs=2, max_steps=2, threads=1,
                                  export_onnx=False, repredict=False, time_limit_s=None, promote="force")
    result = run_retrain(store, config, JobReporter(store, job), tmp_path / "work")
    assert result["version"] == "v0001" and result["metric"] == "iou"
    assert result["fit"]["steps"] == 2 and result["fit"]["last_loss"] > 0
    splits = store.split_counts()
    assert result["data"]["val"] == splits["val"] >= 1 and result["metrics"]["images"] == splits["val"]
    assert {"iou", "precision", "recall", "mae", "fbeta", "smeasure"} <= set(result["metrics"])
    assert result["start"] == "the shipped starter model" and result["baseline_score"] is not None
    assert store.active_model("mask")["version"] == "v0001"
    meta = load_checkpoint(store.active_model("mask")["path"])[1]
    assert meta["architecture"] == "abanet" and meta["arch_args"] == {"width": 0.25, "classes": 2}


def test_plain_augmentation_is_an_exact_resize():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, (40, 40), dtype=np.uint8)
    out_image, out_mask = augment_pair(image, mask, (40, 40), rng, AugmentConfig.none())
    assert np.array_equal(out_image, image) and np.array_equal(out_mask, mask)
    _, small = augment_pair(image, mask, (20, 20), rng, AugmentConfig.none())
    assert 255 not in small


def test_mask_task_batches_have_no_ignored_pixels(tmp_path):
    store, _ = make_project(tmp_path / "m", count=4, corrected=4, size=32, schema="face-mask", face_mask=True)
    snap = snapshot_project(store, "mask")
    config = TrainConfig.for_task("mask", input_size=32, augment="pretrain")
    targets = np.concatenate([y for _, y in augmented_batches(snap.train + snap.val, 32, 2, 0, 0,
                                                               config.augmentation(), None)])
    assert set(np.unique(targets)) == {0, 1}


def test_an_epoch_cut_off_before_its_first_step_is_not_counted():
    x, y = colour_task()
    calls = [0]

    def loss(out, target):
        calls[0] += 1
        if calls[0] == 8:
            time.sleep(1.0)
        return nn.functional.cross_entropy(out, target)

    result = fit(nn.Conv2d(3, 2, 1), loss, batches_of(x, y), lambda m: (0.5, {}),
                 FitConfig(epochs=10, steps_per_epoch=4, lr=0.1, time_limit_s=0.8))
    assert result.stop_reason == "time_limit"
    assert (result.epochs, result.steps) == (2, 8)
    assert [h["epoch"] for h in result.history] == [1, 2] and all(h["loss"] is not None for h in result.history)


def test_the_eta_counts_the_time_spent_making_batches():
    x, y = colour_task()

    def slow_batches(epoch):
        for i in range(0, len(x), 4):
            time.sleep(0.05)
            yield x[i:i + 4], y[i:i + 4]

    events = []
    fit(nn.Conv2d(3, 2, 1), nn.CrossEntropyLoss(), slow_batches, None,
        FitConfig(epochs=3, steps_per_epoch=4, lr=0.1), on_event=lambda e: events.append((time.perf_counter(), e)))
    end = time.perf_counter()
    at_step_4 = next((t, e) for t, e in events if e.get("step") == 4)
    assert at_step_4[1]["eta_s"] >= 0.6 * (end - at_step_4[0])
