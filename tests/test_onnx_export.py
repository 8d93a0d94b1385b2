"""ONNX export: every architecture runs in ONNX Runtime at sizes other than the traced one and agrees with PyTorch,
and the file carries the metadata needed to pre-label with it alone."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from faceparse.core.onnx_export import OnnxExportError, export_onnx, read_onnx_meta
from faceparse.models import build_model, list_architectures


def meta_for(architecture: str) -> dict:
    classes = ["background", "mask"] if architecture == "abanet" else ["background", "skin", "hair", "eyes"]
    return {
        "task": "mask" if architecture == "abanet" else "parser",
        "architecture": architecture,
        "arch_args": {"classes": len(classes)},
        "schema": {"name": "test-schema", "classes": classes, "flip_pairs": []},
        "input_size": [64, 64],
        "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "version": "v0007",
    }


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("architecture", list_architectures())
def test_onnx_runtime_agrees_with_pytorch(tmp_path, architecture):
    meta = meta_for(architecture)
    torch.manual_seed(0)
    model = build_model(architecture, **meta["arch_args"]).eval()
    path = export_onnx(model, meta, tmp_path / f"{architecture}.onnx")

    embedded = read_onnx_meta(path)
    assert embedded["schema"] == meta["schema"]
    assert embedded["normalization"] == meta["normalization"]
    assert embedded["architecture"] == architecture

    proto = onnx.load(str(path))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    input_dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert (
        all(isinstance(d, str) for d in (input_dims[0], input_dims[2], input_dims[3])) and input_dims[1] == 3
    )

    runtime = session(path)
    assert json.loads(runtime.get_modelmeta().custom_metadata_map["faceparse"]) == embedded
    assert [i.name for i in runtime.get_inputs()] == ["input"]
    assert [o.name for o in runtime.get_outputs()] == ["logits"]
    generator = torch.Generator().manual_seed(1)
    for shape in [(1, 3, 96, 32), (3, 3, 32, 64)]:
        x = torch.randn(shape, generator=generator)
        with torch.no_grad():
            expected = model(x).numpy()
        (logits,) = runtime.run(["logits"], {"input": x.numpy()})
        assert logits.shape == (shape[0], len(meta["schema"]["classes"]), *shape[2:])
        agreement = (logits.argmax(1) == expected.argmax(1)).mean()
        assert agreement >= 0.999
        np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-4)


def test_export_refuses_a_model_that_does_not_match_the_schema(tmp_path):
    model = build_model("deeplabv3plus_mobilenetv2", classes=3)
    with pytest.raises(OnnxExportError, match="expected N×4×H×W"):
        export_onnx(
            model, meta_for("deeplabv3plus_mobilenetv2") | {"arch_args": {"classes": 4}}, tmp_path / "x.onnx"
        )
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_without_metadata_is_reported(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input"], ["logits"])],
        "bare",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    onnx.save_model(onnx.helper.make_model(graph), str(tmp_path / "bare.onnx"))
    with pytest.raises(OnnxExportError, match="no 'faceparse' metadata"):
        read_onnx_meta(tmp_path / "bare.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxExportError, match="not a readable ONNX model"):
        read_onnx_meta(tmp_path / "junk.onnx")


def test_half_precision_weights_halve_the_file_and_keep_the_predictions(tmp_path):
    from faceparse.core.onnx_export import half_weights
    from faceparse.core.predictor import Predictor

    meta = meta_for("deeplabv3plus_mobilenetv2")
    torch.manual_seed(0)
    model = build_model("deeplabv3plus_mobilenetv2", **meta["arch_args"]).eval()
    full = export_onnx(model, meta, tmp_path / "full.onnx")
    half = export_onnx(model, meta, tmp_path / "half.onnx", weights="float16")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert {**read_onnx_meta(half), "created": None} == {**read_onnx_meta(full), "created": None}

    proto = onnx.load(str(half))
    big = [t for t in proto.graph.initializer if int(np.prod(t.dims)) >= 1000]
    assert big and all(t.data_type == onnx.TensorProto.FLOAT16 for t in big)
    assert half_weights(proto) == 0  # already halved

    x = torch.randn((2, 3, 64, 96), generator=torch.Generator().manual_seed(3)).numpy()
    a, b = session(full).run(None, {"input": x})[0], session(half).run(None, {"input": x})[0]
    assert b.dtype == np.float32 and b.shape == a.shape
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()

    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    masks_full = [f.index for f in Predictor(full, device="cpu").predict(images)]
    masks_half = [f.index for f in Predictor(half, device="cpu").predict(images)]
    agree = np.mean([np.mean(m == n) for m, n in zip(masks_full, masks_half, strict=True)])
    assert agree > 0.99


def test_export_refuses_an_unknown_weight_type(tmp_path):
    meta = meta_for("deeplabv3plus_mobilenetv2")
    model = build_model("deeplabv3plus_mobilenetv2", **meta["arch_args"]).eval()
    with pytest.raises(ValueError, match="float16"):
        export_onnx(model, meta, tmp_path / "x.onnx", weights="int4")
    assert not (tmp_path / "x.onnx").exists()
