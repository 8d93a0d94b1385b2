"""Checkpoints: exact round trips, fp16 storage, and clear refusals of checkpoints made for something else."""

import copy
import json

import pytest
import torch
from faceparse.core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights_file,
    read_checkpoint_meta,
    save_checkpoint,
)
from faceparse.models import build_model
from safetensors.torch import load_file, save_file

CLASSES = ["background", "skin", "hair"]


def make_meta(architecture="deeplabv3plus_mobilenetv2", classes=CLASSES, **extra):
    meta = {
        "task": "mask" if architecture == "abanet" else "parser",
        "architecture": architecture,
        "arch_args": {"classes": len(classes)},
        "schema": {"name": "tiny", "classes": list(classes), "flip_pairs": []},
        "input_size": [256, 256],
        "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "training_data": {"images": 12},
        "metrics": {"miou": 0.5},
        "version": "v0002",
        "parent": "v0001",
    }
    meta.update(extra)
    return meta


@pytest.fixture(scope="module")
def trained_model():
    torch.manual_seed(0)
    model = build_model("deeplabv3plus_mobilenetv2", classes=len(CLASSES))
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))  # moves BatchNorm statistics away from their initial values
    return model.eval()


def test_round_trip_is_exact(tmp_path, trained_model):
    written = save_checkpoint(tmp_path / "v0002", trained_model, make_meta())
    assert (tmp_path / "v0002" / "model.safetensors").is_file()
    assert written["format"] == 1 and written["created"].endswith("Z")
    model, meta = load_checkpoint(
        tmp_path / "v0002", expect_architecture="deeplabv3plus_mobilenetv2", expect_classes=CLASSES
    )
    assert meta == written == read_checkpoint_meta(tmp_path / "v0002")
    assert not model.training
    original, loaded = trained_model.state_dict(), model.state_dict()
    assert original.keys() == loaded.keys()
    assert all(torch.equal(original[k], loaded[k]) for k in original)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(trained_model(x), model(x))


def test_float16_storage_is_smaller_and_loads_as_float32(tmp_path, trained_model):
    save_checkpoint(tmp_path / "full", trained_model, make_meta())
    save_checkpoint(tmp_path / "half", trained_model, make_meta(), dtype="float16")
    full_size = (tmp_path / "full" / "model.safetensors").stat().st_size
    half_size = (tmp_path / "half" / "model.safetensors").stat().st_size
    assert half_size < 0.6 * full_size
    model, _ = load_checkpoint(tmp_path / "half")
    for key, value in model.state_dict().items():
        reference = trained_model.state_dict()[key]
        assert value.dtype == reference.dtype
        if value.is_floating_point():
            assert torch.allclose(value, reference, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="dtype"):
        save_checkpoint(tmp_path / "bad", trained_model, make_meta(), dtype="int8")
    too_large = copy.deepcopy(trained_model)
    with torch.no_grad():
        too_large.segmentation_head[0].bias[0] = 1e6
    with pytest.raises(CheckpointError, match="does not fit in float16"):
        save_checkpoint(tmp_path / "overflow", too_large, make_meta(), dtype="float16")
    with torch.no_grad():
        too_large.segmentation_head[0].bias[0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or infinity"):
        save_checkpoint(tmp_path / "diverged", too_large, make_meta())
    assert not (tmp_path / "overflow").exists() and not (tmp_path / "diverged").exists()


def test_checkpoint_for_another_schema_is_refused(tmp_path, trained_model):
    save_checkpoint(tmp_path / "ckpt", trained_model, make_meta())
    with pytest.raises(CheckpointError, match="another label schema.*class 2 is 'hair', expected 'eyes'"):
        load_checkpoint(tmp_path / "ckpt", expect_classes=["background", "skin", "eyes"])
    with pytest.raises(CheckpointError, match="3 classes, expected 19"):
        load_checkpoint(tmp_path / "ckpt", expect_classes=19)
    with pytest.raises(CheckpointError, match="holds a 'deeplabv3plus_mobilenetv2' model, expected 'abanet'"):
        load_checkpoint(tmp_path / "ckpt", expect_architecture="abanet")


def test_weights_that_do_not_fit_are_refused(tmp_path, trained_model):
    directory = tmp_path / "ckpt"
    save_checkpoint(directory, trained_model, make_meta())
    weights = load_file(directory / "model.safetensors")
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, directory / "model.safetensors")
    with pytest.raises(CheckpointError, match=f"1 tensors missing \\({dropped}\\)"):
        load_checkpoint(directory)

    meta = json.loads((directory / "meta.json").read_text())
    meta["architecture"] = "deeplabv3plus_mobilenetv3"
    (directory / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="weights do not fit architecture 'deeplabv3plus_mobilenetv3'"):
        load_checkpoint(directory)


def test_meta_from_another_save_is_detected(tmp_path, trained_model):
    save_checkpoint(tmp_path / "a", trained_model, make_meta())
    save_checkpoint(tmp_path / "b", trained_model, make_meta(classes=["background", "skin", "nose"]))
    (tmp_path / "a" / "meta.json").write_bytes((tmp_path / "b" / "meta.json").read_bytes())
    with pytest.raises(CheckpointError, match="does not describe the weights"):
        load_checkpoint(tmp_path / "a")


def test_invalid_metadata_is_refused_before_writing(tmp_path, trained_model):
    with pytest.raises(CheckpointError, match="3 outputs but schema 'tiny' has 2 classes"):
        save_checkpoint(
            tmp_path / "x", trained_model, make_meta(classes=["background", "skin"], arch_args={"classes": 3})
        )
    with pytest.raises(CheckpointError, match="unknown architecture 'resnet9000'"):
        save_checkpoint(tmp_path / "x", trained_model, make_meta(architecture="resnet9000"))
    with pytest.raises(CheckpointError, match="task 'mask' does not match"):
        save_checkpoint(tmp_path / "x", trained_model, make_meta(task="mask"))
    with pytest.raises(CheckpointError, match="weights do not fit architecture 'abanet'"):
        save_checkpoint(tmp_path / "x", trained_model, make_meta("abanet", classes=["background", "mask"]))
    assert not (tmp_path / "x").exists()


def test_missing_or_broken_files_give_clear_errors(tmp_path, trained_model):
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        load_checkpoint(tmp_path / "nothing")
    directory = tmp_path / "ckpt"
    save_checkpoint(directory, trained_model, make_meta())
    (directory / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable metadata"):
        load_checkpoint(directory)
    (directory / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="meta.json is missing"):
        load_checkpoint(directory)


def test_pickle_files_are_never_unpickled(tmp_path, trained_model):
    directory = tmp_path / "foreign"
    directory.mkdir()
    torch.save(trained_model.state_dict(), directory / "model.pth")
    (directory / "meta.json").write_text(json.dumps(make_meta()))
    with pytest.raises(CheckpointError, match="pickle files are never unpickled"):
        load_checkpoint(directory)

    state = load_weights_file(directory / "model.pth")
    assert state.keys() == trained_model.state_dict().keys()

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"weights": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused"):
        load_weights_file(tmp_path / "evil.pth")


def test_network_options_this_version_does_not_know_are_a_checkpoint_error(tmp_path, trained_model):
    from faceparse.core.checkpoint import DTYPE_KEY, STRUCTURE_KEY, _structure

    save_checkpoint(tmp_path / "c", trained_model, make_meta())
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    meta["arch_args"]["attention_heads"] = 4
    (tmp_path / "c" / "meta.json").write_text(json.dumps(meta))
    tensors = load_file(str(tmp_path / "c" / "model.safetensors"))
    save_file(tensors, str(tmp_path / "c" / "model.safetensors"),
              metadata={STRUCTURE_KEY: _structure(meta), DTYPE_KEY: "float32"})
    with pytest.raises(CheckpointError, match="attention_heads.*newer version"):
        load_checkpoint(tmp_path / "c")
