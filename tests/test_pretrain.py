import threading

import numpy as np
import pytest
import torch
from faceparse.core.pretrain import PretrainConfig, central_patch_mask, masked_batch, masked_pretrain
from faceparse.core.synthetic import draw_face

pytestmark = pytest.mark.usefixtures("unchecked_photos_train")


def test_patches_stay_inside_the_central_region():
    rng = np.random.default_rng(3)
    hidden = central_patch_mask(96, 120, rng, patches=200)
    assert hidden.any()
    ys, xs = np.nonzero(hidden)
    assert ys.min() >= 96 // 6 and ys.max() < 5 * 96 // 6
    assert xs.min() >= 120 // 6 and xs.max() < 5 * 120 // 6


def test_patch_size_scales_with_the_image():
    rng = np.random.default_rng(0)
    small = central_patch_mask(128, 128, rng, patches=1, patch_range=(32, 64))
    side = int(np.sqrt(small.sum()))
    assert 8 <= side <= 16  # 32-64 px at 512 becomes 8-16 px at 128


def test_masked_batch_hides_pixels_only_in_the_input():
    config = PretrainConfig(input_size=64, patches=20)
    images = [draw_face(i, 96)[0] for i in range(2)]
    masked, original = masked_batch(images, np.random.default_rng(0), config)
    assert masked.shape == original.shape == (2, 3, 64, 64)
    differs = (masked != original).any(dim=1)
    assert differs.any()
    border = torch.ones(64, 64, dtype=torch.bool)
    border[64 // 6:5 * 64 // 6, 64 // 6:5 * 64 // 6] = False
    assert not differs[:, border].any()


def test_pretraining_lowers_the_reconstruction_loss_and_transfers_to_a_parser():
    images = [draw_face(i, 96)[0] for i in range(16)]
    losses = []
    config = PretrainConfig(input_size=64, steps=30, batch_size=4, lr=3e-3, imagenet_init=False, patches=16)
    net = masked_pretrain(images, config, on_event=lambda e: losses.append(e["loss"]))
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    parser = net.make_parser(classes=19)
    assert torch.equal(parser.encoder.state_dict()["features.0.0.weight"],
                       net.encoder.state_dict()["features.0.0.weight"])
    parser.eval()
    with torch.no_grad():
        assert parser(torch.zeros(1, 3, 64, 64)).shape == (1, 19, 64, 64)


def test_pretraining_refuses_too_few_images_and_can_be_cancelled():
    images = [draw_face(i, 64)[0] for i in range(16)]
    with pytest.raises(ValueError, match="at least"):
        masked_pretrain(images[:3], PretrainConfig(input_size=64))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InterruptedError):
        masked_pretrain(images, PretrainConfig(input_size=64, imagenet_init=False), cancel=cancel)


def test_pretraining_stops_at_its_time_limit_after_at_least_one_step():
    images = [draw_face(i, 64)[0] for i in range(16)]
    steps = []
    masked_pretrain(images, PretrainConfig(input_size=64, imagenet_init=False, batch_size=2, steps=50,
                                           min_images=4, time_limit_s=0.0),
                    on_event=lambda event: steps.append(event["step"]))
    assert steps == [1]


def test_a_time_limit_shortens_the_schedule_so_it_ends_as_planned(monkeypatch):
    """The learning rate comes down within the limit: the schedule is re-planned to the steps that fit, and
    the run ends at the end of that schedule, not cut off at its peak."""
    from faceparse.core import pretrain

    clock = iter(range(10_000))
    monkeypatch.setattr(pretrain.time, "monotonic", lambda: float(next(clock)))
    images = [draw_face(i, 64)[0] for i in range(8)]
    events = []
    masked_pretrain(images, PretrainConfig(input_size=64, imagenet_init=False, batch_size=2, steps=100,
                                           min_images=4, time_limit_s=60.0), on_event=events.append)
    assert events[0]["total"] == 100 and events[-1]["total"] < 40
    assert events[-1]["step"] == events[-1]["total"]


def test_a_retrain_time_limit_covers_pretraining_too(tmp_path):
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import _time_left, run_retrain

    assert _time_left(None, 50.0) is None and _time_left(100.0, 30.0) == 70.0 and _time_left(10.0, 30.0) == 1.0
    store = _project(tmp_path / "p")
    job = store.add_job("retrain", {})
    config = TrainConfig.for_task("parser", input_size=64, batch_size=2, epochs=1, max_steps=2, threads=1,
                                  export_onnx=False, repredict=False, time_limit_s=0.001, promote="force",
                                  init="scratch", pretrain=True,
                                  extra={"pretrain_steps": 40, "pretrain_min_images": 4})
    run_retrain(store, config, JobReporter(store, job), tmp_path / "work")
    log = "\n".join(store.job_log(job))
    assert f"masked pre-training: 1 steps of 40 (time limit) on {_outside_val(store)} images at 64 px" in log


def _project(root, count=10, corrected=4, size=64):
    from faceparse.core.imageio import load_mask
    from faceparse.core.store import ProjectStore
    from faceparse.core.synthetic import make_synthetic_folder

    masks = root.parent / f"{root.name}-masks"
    make_synthetic_folder(root, count, size=size, seed=3, schema="lapa", masks_folder=masks, ext=".png")
    store = ProjectStore.create(root, "lapa")
    store.scan()
    for record in store.images()[:corrected]:
        store.save_corrected(record.id, load_mask(masks / record.relpath))
    return store


def _outside_val(store):
    """The images pre-training learns from: all but the validation split's."""
    return sum(record.split != "val" for record in store.images())


def test_retrain_job_runs_masked_pretraining_before_fine_tuning(tmp_path):
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import run_retrain

    store = _project(tmp_path / "p")
    job = store.add_job("retrain", {})
    config = TrainConfig.for_task("parser", input_size=64, batch_size=2, epochs=1, max_steps=2, threads=1,
                                  export_onnx=False, repredict=False, time_limit_s=None, promote="force",
                                  init="scratch", pretrain=True,
                                  extra={"pretrain_steps": 3, "pretrain_min_images": 4})
    result = run_retrain(store, config, JobReporter(store, job), tmp_path / "work")
    assert result["version"] == "v0001"
    log = "\n".join(store.job_log(job))
    assert f"masked pre-training: 3 steps on {_outside_val(store)} images at 64 px" in log


def test_pretraining_builds_the_same_network_as_the_parser_it_starts_from(tmp_path):
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import run_retrain

    store = _project(tmp_path / "p")
    job = store.add_job("retrain", {})
    config = TrainConfig.from_dict(dict(
        task="parser", architecture="deeplabv3plus_mobilenetv3", arch_args={"modified_aspp": True}, init="scratch",
        input_size=64, batch_size=2, epochs=1, max_steps=1, threads=1, time_limit_s=None, export_onnx=False,
        repredict=False, promote="force", pretrain=True, extra={"pretrain_steps": 2, "pretrain_min_images": 4}))
    result = run_retrain(store, config, JobReporter(store, job), tmp_path / "work")
    assert result["version"] == "v0001"
    assert "masked pre-training: 2 steps" in "\n".join(store.job_log(job))


def test_auto_pretraining_only_for_untrained_parsers_with_enough_faces(tmp_path):
    from types import SimpleNamespace

    from faceparse.core.pretrain import pretrain_wanted
    from faceparse.core.recipes import TrainConfig
    from faceparse.models.registry import build_model

    store = _project(tmp_path / "p", count=6, corrected=2)
    model = build_model("deeplabv3plus_mobilenetv2", classes=11)

    def ctx(kind, task="parser", needed=4):
        config = TrainConfig.for_task(task, extra={"pretrain_min_images": needed})
        return SimpleNamespace(config=config, start=SimpleNamespace(kind=kind), model=model, store=store)

    assert pretrain_wanted(ctx("imagenet"))
    assert not pretrain_wanted(ctx("version"))
    assert not pretrain_wanted(ctx("starter"))
    assert not pretrain_wanted(ctx("imagenet", needed=100))
    assert not pretrain_wanted(ctx("imagenet", task="mask"))
