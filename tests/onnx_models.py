"""Small ONNX models built node by node, with FaceParse metadata, for tests that need a model file."""

import json

import numpy as np
import onnx
from faceparse.core.schemas import get_schema
from onnx import TensorProto, helper, numpy_helper

SIZE = 64


def model_meta(schema_name="celebamask-hq", size=SIZE, flip_pairs=None, **extra):
    schema = get_schema(schema_name)
    pairs = [list(p) for p in schema.flip_pairs] if flip_pairs is None else flip_pairs
    meta = {"format": 1, "task": "mask" if schema_name == "face-mask" else "parser",
            "architecture": "test-graph", "arch_args": {"classes": schema.num_classes},
            "schema": {"name": schema.name, "classes": list(schema.classes), "flip_pairs": pairs},
            "input_size": [size, size], "normalization": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}}
    meta.update(extra)
    return meta


def save_graph(path, nodes, initializers, classes, meta, input_name="input", output_name="logits"):
    image = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 3, "height", "width"])
    logits = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", classes, "height", "width"])
    graph = helper.make_graph(nodes, "test", [image], [logits], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "faceparse", json.dumps(meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def foreground_model(path, schema_name="celebamask-hq", face_class=1, threshold=0.06, size=SIZE, seed=None):
    """A 1×1 convolution: class `face_class` where the pixel is not near-black, background elsewhere.

    With `seed`, small random weights are added so the output is not trivially confident (and the file differs).
    """
    classes = get_schema(schema_name).num_classes
    weight = np.zeros((classes, 3, 1, 1), np.float32)
    bias = np.full(classes, -20.0, np.float32)
    weight[0], bias[0] = -20.0, 20.0 * threshold * 3
    weight[face_class], bias[face_class] = 20.0, -20.0 * threshold * 3
    if seed is not None:
        rng = np.random.default_rng(seed)
        weight += rng.normal(0, 3, weight.shape).astype(np.float32)
        bias += rng.normal(0, 1, bias.shape).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["logits"])]
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")]
    return save_graph(path, nodes, inits, classes, model_meta(schema_name, size))


def side_model(path, flip_pairs=None):
    """Bright pixels in the right half of the picture are `l_eye`, in the left half `r_eye` (the person's left
    eye is on the viewer's right); dark pixels are background. Mirroring the picture turns one into the other."""
    schema = get_schema("celebamask-hq")
    c = lambda name, value: numpy_helper.from_array(np.asarray(value, np.float32), name)  # noqa: E731
    i64 = lambda name, value: numpy_helper.from_array(np.asarray(value, np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("ReduceMean", ["input", "axis1"], ["bright"], keepdims=1),
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "three"], ["width"], axis=0),
        helper.make_node("Range", ["zero", "width", "one"], ["columns"]),
        helper.make_node("Cast", ["columns"], ["columns_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["width"], ["width_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["columns_f", "half"], ["centres"]),
        helper.make_node("Div", ["centres", "width_f"], ["x"]),
        helper.make_node("Sub", ["x", "half"], ["from_middle"]),
        helper.make_node("Mul", ["from_middle", "steep"], ["steep_x"]),
        helper.make_node("Sigmoid", ["steep_x"], ["right"]),
        helper.make_node("Sub", ["one_f", "right"], ["left"]),
        helper.make_node("Mul", ["bright", "ten"], ["bright10"]),
        helper.make_node("Mul", ["bright10", "right"], ["l_eye"]),
        helper.make_node("Mul", ["bright10", "left"], ["r_eye"]),
        helper.make_node("Sub", ["five", "bright10"], ["background"]),
        helper.make_node("Mul", ["bright", "zero_f"], ["zeros"]),
        helper.make_node("Sub", ["zeros", "twenty"], ["other"]),
    ]
    channels = ["other"] * schema.num_classes
    channels[0], channels[schema.index("l_eye")], channels[schema.index("r_eye")] = "background", "l_eye", "r_eye"
    nodes.append(helper.make_node("Concat", channels, ["logits"], axis=1))
    inits = [i64("axis1", [1]), i64("three", 3), i64("zero", 0), i64("one", 1), c("half", 0.5), c("steep", 60.0),
             c("one_f", 1.0), c("ten", 10.0), c("five", 5.0), c("zero_f", 0.0), c("twenty", 20.0)]
    return save_graph(path, nodes, inits, schema.num_classes, model_meta(flip_pairs=flip_pairs))
