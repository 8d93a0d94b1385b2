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
    half = export_onnx(model, meta, tmp_path / "half.onnx", weights="float16")
    float32_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert half.stat().st_size < 0.6 * float32_bytes
    assert read_onnx_meta(half)["schema"] == meta["schema"]

    proto = onnx.load(str(half))
    big = [t for t in proto.graph.initializer if int(np.prod(t.dims)) >= 1000]
    assert big and all(t.data_type == onnx.TensorProto.FLOAT16 for t in big)
    assert half_weights(proto) == 0  # already halved

    x = torch.randn((2, 3, 64, 96), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(x).numpy()
    got = session(half).run(None, {"input": x.numpy()})[0]
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
    assert (got.argmax(1) == expected.argmax(1)).mean() > 0.99

    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    masks = [f.index for f in Predictor(half, device="cpu").predict(images)]
    assert [m.shape for m in masks] == [(64, 64), (64, 64)]


def test_half_weights_leaves_fed_and_out_of_range_tensors_in_float32():
    from faceparse.core.onnx_export import half_weights
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "w")
    huge = numpy_helper.from_array(np.full((8,), 1e6, np.float32), "huge")
    fed = numpy_helper.from_array(rng.standard_normal((8,)).astype(np.float32), "fed")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["a"]), helper.make_node("Add", ["a", "huge"], ["b"]),
         helper.make_node("Add", ["b", "fed"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
              helper.make_tensor_value_info("fed", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializer=[w, huge, fed])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((1, 4)).astype(np.float32)
    before = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    assert half_weights(proto) == 1
    onnx.checker.check_model(proto)
    types = {t.name: t.data_type for t in proto.graph.initializer}
    assert types == {"w__float16": TensorProto.FLOAT16, "huge": TensorProto.FLOAT, "fed": TensorProto.FLOAT}
    after = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.isfinite(after).all() and np.allclose(after, before, rtol=1e-3, atol=1e-2)
    assert half_weights(proto) == 0


def test_export_refuses_an_unknown_weight_type(tmp_path):
    meta = meta_for("deeplabv3plus_mobilenetv2")
    model = build_model("deeplabv3plus_mobilenetv2", **meta["arch_args"]).eval()
    with pytest.raises(ValueError, match="float16"):
        export_onnx(model, meta, tmp_path / "x.onnx", weights="int4")
    assert not (tmp_path / "x.onnx").exists()
