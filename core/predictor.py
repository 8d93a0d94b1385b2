"""Running a face-parsing ONNX model on face crops with ONNX Runtime.

A model file exported by FaceParse Studio describes itself (schema, input size, normalisation; see
docs/architecture.md), so a `Predictor` needs nothing but the file. Around the exported graph it adds, once at load
time, the steps every caller would otherwise repeat in NumPy on one core: uint8 HWC → normalised NCHW on the way in;
softmax, arg-max, confidence and (optionally) the mirrored test-time pass on the way out. ONNX Runtime runs those
with the model's own thread pool. On the CPU, a network that ends by enlarging its scores bilinearly (DeepLabV3+
does, 4×) is stopped before that step and the mask is made by `resize_argmax`, which interpolates only at class
boundaries: the mask is the same, and pre-labeling costs little more than the network itself.

Providers are chosen explicitly (CUDA, then CPU) and the one that actually ran is reported, because ONNX Runtime
falls back to the CPU silently when the CUDA libraries are missing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from faceparse.core import resize_argmax
from faceparse.core.schemas import MAX_CLASSES
from onnx import TensorProto, compose, helper, numpy_helper

META_KEY = "faceparse"
DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
IMAGE_INPUT = "image"
NETWORK_PREFIX = "net/"  # every name of the network's own graph gets it, so none can clash with the wrapper's
UNCERTAINTY_STRIDE = 8
"""Class probabilities for the uncertainty score are kept at every 8th pixel: the score is an average, and 1/64 of
the pixels (4,096 on a 512 px face) estimate it well while costing 1/64 of the work."""
DEFAULT_BATCH = {"cpu": 4, "cuda": 16}
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class ModelError(ValueError):
    """A model file that cannot be used for prediction; the message names the file and says why."""


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself: enough to feed it and to read its output."""

    path: Path
    meta: dict[str, Any]
    task: str
    schema_name: str
    classes: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def flip_permutation(self) -> np.ndarray:
        """Channel order of a mirrored prediction: left and right classes trade places."""
        perm = np.arange(self.num_classes, dtype=np.int64)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


def _meta_from_proto(proto: onnx.ModelProto, path: Path) -> dict[str, Any]:
    for entry in proto.metadata_props:
        if entry.key == META_KEY:
            try:
                meta = json.loads(entry.value)
            except json.JSONDecodeError as error:
                raise ModelError(f"{path}: damaged {META_KEY!r} metadata ({error})") from None
            if not isinstance(meta, dict):
                raise ModelError(f"{path}: {META_KEY!r} metadata is not a JSON object")
            return meta
    raise ModelError(f"{path}: no {META_KEY!r} metadata (schema, input size, normalisation); "
                     "export the model with FaceParse Studio")


def _model_info(meta: dict[str, Any], path: Path) -> ModelInfo:
    def bad(what: str) -> ModelError:
        return ModelError(f"{path}: metadata {what}")

    schema = meta.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("classes"), list):
        raise bad("lacks schema.classes")
    classes = tuple(schema["classes"])
    if not 2 <= len(classes) <= MAX_CLASSES or not all(isinstance(c, str) for c in classes):
        raise bad(f"has an invalid class list ({len(classes)} entries)")
    pairs = []
    for pair in schema.get("flip_pairs") or ():
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(i, int) and 0 <= i < len(classes) for i in pair)):
            raise bad(f"has an invalid flip pair {pair!r}")
        taken = {i for earlier in pairs for i in earlier}
        if pair[0] == pair[1] or pair[0] in taken or pair[1] in taken:
            raise bad(f"has the flip pair {pair!r}, whose classes are already paired (or the same class): a left "
                      "class has one right class")
        pairs.append((int(pair[0]), int(pair[1])))
    size = meta.get("input_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise bad(f"input_size must be [height, width], got {size!r}")
    norm = meta.get("normalization") or {}
    values = []
    for key in ("mean", "std"):
        v = norm.get(key) if isinstance(norm, dict) else None
        if not (isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            raise bad(f"normalization.{key} must be three numbers")
        values.append(tuple(float(x) for x in v))
    if any(s <= 0 for s in values[1]):
        raise bad("normalization.std must be positive")
    return ModelInfo(path=path, meta=meta, task=str(meta.get("task", "parser")),
                     schema_name=str(schema.get("name", "unnamed")), classes=classes, flip_pairs=tuple(pairs),
                     input_size=(int(size[0]), int(size[1])), mean=values[0], std=values[1])  # type: ignore[arg-type]


def _load_proto(path: Path) -> onnx.ModelProto:
    """The model's graph and metadata; an empty file is named as such, since ONNX reads it as a valid model with
    nothing in it."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: the model file is empty (0 bytes); copy or export the model again")
    try:
        return onnx.load(str(path))
    except Exception as error:
        raise ModelError(f"{path}: not a readable ONNX model ({error})") from None


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """The embedded description of an ONNX model file; ModelError if it has none or it is unusable."""
    path = Path(path)
    proto = _load_proto(path)
    return _model_info(_meta_from_proto(proto, path), path)


def choose_providers(device: str, available: Sequence[str] | None = None) -> tuple[list[str], str | None]:
    """ONNX Runtime providers to ask for, in order, and a notice when the request cannot be met."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    available = list(ort.get_available_providers() if available is None else available)
    if device == "cpu":
        return [CPU], None
    if CUDA in available:
        return [CUDA, CPU], None
    if device == "cuda":
        return [CPU], ("CUDA was requested but this ONNX Runtime has no CUDA provider "
                       f"(available: {', '.join(available) or 'none'}); running on CPU")
    return [CPU], None


def session_options(threads: int | None = None, spinning: bool = False) -> ort.SessionOptions:
    """One model at a time, all cores inside it; no spinning, so decoding threads get the cores between runs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads) if threads else cpu_count()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    return options


@dataclass
class FacePrediction:
    """One face at the model's input size: class per pixel, its probability, and the subsampled probabilities
    from which the uncertainty score is computed."""

    index: np.ndarray  # H×W uint8
    confidence: np.ndarray | None  # H×W float32 in [0, 1]
    probs: np.ndarray | None  # C×(H/stride)×(W/stride) float32


class _GraphBuilder:
    """Adds nodes to an ONNX graph with the operator forms its opset expects."""

    def __init__(self, graph: onnx.GraphProto, opset: int):
        self.graph = graph
        self.opset = opset
        self.pre: list[onnx.NodeProto] = []
        self.post: list[onnx.NodeProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"fp_{hint}_{self._count}"

    def const(self, value: Any, dtype: Any, hint: str = "const") -> str:
        name = self.name(hint)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, nodes: list, op_type: str, inputs: Sequence[str], hint: str, out: str | None = None,
           outputs: int = 1, **attrs: Any) -> Any:
        names = [out or self.name(hint)] if outputs == 1 else [self.name(f"{hint}{i}") for i in range(outputs)]
        nodes.append(helper.make_node(op_type, list(inputs), names, name=self.name(op_type), **attrs))
        return names[0] if outputs == 1 else names

    def reduce(self, nodes: list, op_type: str, x: str, axis: int, keepdims: int, hint: str) -> str:
        axes_as_input = self.opset >= 18 or (op_type == "ReduceSum" and self.opset >= 13)
        if axes_as_input:
            return self.op(nodes, op_type, [x, self.const([axis], np.int64, "axes")], hint, keepdims=keepdims)
        return self.op(nodes, op_type, [x], hint, axes=[axis], keepdims=keepdims)

    def slice(self, nodes: list, x: str, starts: list[int], ends: list[int], axes: list[int], steps: list[int],
              hint: str) -> str:
        args = [self.const(v, np.int64, "slice") for v in (starts, ends, axes, steps)]
        return self.op(nodes, "Slice", [x, *args], hint)

    def mirror(self, nodes: list, x: str, hint: str) -> str:
        return self.slice(nodes, x, [-1], [_INT64_MIN], [3], [-1], hint)

    def softmax(self, nodes: list, logits: str) -> str:
        """Probabilities over the class axis (1), computed stably from the largest logit."""
        top = self.reduce(nodes, "ReduceMax", logits, 1, 1, "top")
        exp = self.op(nodes, "Exp", [self.op(nodes, "Sub", [logits, top], "shifted")], "exp")
        total = self.reduce(nodes, "ReduceSum", exp, 1, 1, "total")
        return self.op(nodes, "Div", [exp, total], "probs")


@dataclass(frozen=True)
class EnlargingTail:
    """A network's final bilinear `Resize`: the scores before it, and how it maps them to the output size."""

    scores: str
    output: str
    mode: str
    scales: tuple[float, float] | None
    sizes: tuple[int, int] | None

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.sizes is not None:
            return self.sizes
        assert self.scales is not None
        return int(math.floor(height * self.scales[0])), int(math.floor(width * self.scales[1]))


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def enlarging_tail(graph: onnx.GraphProto) -> EnlargingTail | None:
    """The final Resize of a network that ends by enlarging its scores bilinearly, when `resize_argmax` can take
    its place; None for any other ending."""
    if not graph.output:
        return None
    out = graph.output[0].name
    node = next((n for n in graph.node if out in n.output), None)
    if node is None or node.op_type != "Resize":
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    mode = attrs.get("coordinate_transformation_mode", "half_pixel")
    if (attrs.get("mode") != "linear" or attrs.get("antialias", 0) or mode not in resize_argmax.MODES
            or attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch" or attrs.get("axes")):
        return None
    consts = _constants(graph)
    inputs = list(node.input) + [""] * (4 - len(node.input))
    scales, sizes = consts.get(inputs[2]) if inputs[2] else None, consts.get(inputs[3]) if inputs[3] else None
    if sizes is not None and sizes.size == 4:
        return EnlargingTail(inputs[0], out, mode, None, (int(sizes[2]), int(sizes[3])))
    if scales is not None and scales.size == 4 and scales[0] == 1 and scales[1] == 1 and min(scales[2:]) >= 1:
        return EnlargingTail(inputs[0], out, mode, (float(scales[2]), float(scales[3])), None)
    return None


def _prefix_names(graph: onnx.GraphProto) -> None:
    """Give every name of the network's graph NETWORK_PREFIX. The initializers' names are mapped before the walk,
    since `add_prefix_graph` renames the branches of If/Loop/Scan before it reaches the initializers they use."""
    outer = {t.name: NETWORK_PREFIX + t.name for t in graph.initializer}
    for sparse in graph.sparse_initializer:
        outer[sparse.values.name] = NETWORK_PREFIX + sparse.values.name
    compose.add_prefix_graph(graph, NETWORK_PREFIX, inplace=True, name_map=outer)


def _single_input(graph: onnx.GraphProto, path: Path) -> onnx.ValueInfoProto:
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one image input, the graph has {len(inputs)}")
    return inputs[0]


def build_inference_graph(proto: onnx.ModelProto, info: ModelInfo, tta: bool = False, confidence: bool = True,
                          probabilities: bool = True, tail: EnlargingTail | None = None) -> onnx.ModelProto:
    """The exported graph wrapped to take uint8 N×H×W×3 RGB and return `index` (uint8 N×H×W), optionally
    `confidence` (float32 N×H×W) and `probs` (float32 N×C×H/s×W/s at stride UNCERTAINTY_STRIDE).

    With `tta` each image also runs mirrored; the mirrored probabilities are flipped back with the schema's
    left/right classes swapped and averaged with the direct ones.

    With `tail` (see `enlarging_tail`; not with `tta` or `confidence`) the network stops before its final Resize
    and returns only `scores` (float32 N×C×h×w); `Predictor` makes the mask and probabilities from them.
    """
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 11:
        raise ModelError(f"{info.path}: ONNX opset {opset} is too old; re-export the model (opset 11 or newer)")
    image_in = _single_input(graph, info.path)
    if len(graph.output) < 1:
        raise ModelError(f"{info.path}: the graph has no output")
    logits = graph.output[0].name
    dims = graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 4 and dims[1].HasField("dim_value") and dims[1].dim_value != info.num_classes:
        raise ModelError(f"{info.path}: the network has {dims[1].dim_value} outputs but its schema "
                         f"{info.schema_name!r} has {info.num_classes} classes")

    if tail is not None and (tta or confidence):
        raise ValueError("the enlarging tail is taken off only for plain masks (no TTA, no confidence)")
    g = _GraphBuilder(graph, opset)
    pre, post = g.pre, g.post
    scale = (1.0 / (255.0 * np.asarray(info.std, np.float32))).reshape(1, 3, 1, 1)
    offset = (-np.asarray(info.mean, np.float32) / np.asarray(info.std, np.float32)).reshape(1, 3, 1, 1)
    x = g.op(pre, "Cast", [IMAGE_INPUT], "float", to=TensorProto.FLOAT)
    x = g.op(pre, "Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = g.op(pre, "Mul", [x, g.const(scale, np.float32, "scale")], "scaled")
    if tta:
        x = g.op(pre, "Add", [x, g.const(offset, np.float32, "offset")], "normalised")
        g.op(pre, "Concat", [x, g.mirror(pre, x, "mirrored")], "pair", out=image_in.name, axis=0)
    else:
        g.op(pre, "Add", [x, g.const(offset, np.float32, "offset")], "normalised", out=image_in.name)

    outputs = []
    body = list(graph.node)
    if tail is not None:
        body = [n for n in body if tail.output not in n.output]
        outputs.append(helper.make_tensor_value_info(tail.scores, TensorProto.FLOAT, ["batch", info.num_classes,
                                                                                     "score_height", "score_width"]))
        index = None
    elif tta:
        probs = g.softmax(post, logits)
        shape = g.op(post, "Shape", [probs], "shape")
        chw = g.slice(post, shape, [1], [4], [0], [1], "chw")
        split_shape = g.op(post, "Concat", [g.const([2, -1], np.int64, "two"), chw], "split_shape", axis=0)
        pair = g.op(post, "Reshape", [probs, split_shape], "pair_probs")
        direct = g.op(post, "Gather", [pair, g.const(0, np.int64, "first")], "direct", axis=0)
        mirrored = g.op(post, "Gather", [pair, g.const(1, np.int64, "second")], "mirrored_probs", axis=0)
        unmirrored = g.op(post, "Gather", [g.mirror(post, mirrored, "flipped_back"),
                                           g.const(info.flip_permutation(), np.int64, "perm")], "swapped", axis=1)
        summed = g.op(post, "Add", [direct, unmirrored], "summed")
        scores = g.op(post, "Mul", [summed, g.const(0.5, np.float32, "half")], "averaged")
        index = g.op(post, "ArgMax", [scores], "argmax", axis=1, keepdims=0)
        if confidence:
            g.op(post, "Identity", [g.reduce(post, "ReduceMax", scores, 1, 0, "top_prob")], "c", out="confidence")
        if probabilities:
            sub_probs = g.slice(post, scores, [0, 0], [_INT64_MAX, _INT64_MAX], [2, 3], [UNCERTAINTY_STRIDE] * 2,
                                "sub")
    else:
        index = g.op(post, "ArgMax", [logits], "argmax", axis=1, keepdims=0)
        if confidence:
            top = g.reduce(post, "ReduceMax", logits, 1, 1, "top")
            exp = g.op(post, "Exp", [g.op(post, "Sub", [logits, top], "shifted")], "exp")
            total = g.reduce(post, "ReduceSum", exp, 1, 0, "total")
            g.op(post, "Reciprocal", [total], "c", out="confidence")
        if probabilities:
            sub = g.slice(post, logits, [0, 0], [_INT64_MAX, _INT64_MAX], [2, 3], [UNCERTAINTY_STRIDE] * 2, "sub")
            sub_probs = g.softmax(post, sub)
    if index is not None:
        g.op(post, "Cast", [index], "index", out="index", to=TensorProto.UINT8)
        outputs.append(helper.make_tensor_value_info("index", TensorProto.UINT8, ["batch", "height", "width"]))
    if confidence:
        outputs.append(helper.make_tensor_value_info("confidence", TensorProto.FLOAT, ["batch", "height", "width"]))
    if probabilities and index is not None:
        g.op(post, "Identity", [sub_probs], "p", out="probs")
        outputs.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT,
                                                     ["batch", info.num_classes, "sub_height", "sub_width"]))

    nodes = [*pre, *body, *post]
    del graph.node[:]
    graph.node.extend(nodes)
    new_input = helper.make_tensor_value_info(IMAGE_INPUT, TensorProto.UINT8, ["batch", "height", "width", 3])
    kept_inputs = [i for i in graph.input if i.name != image_in.name]
    del graph.input[:]
    graph.input.extend([new_input, *kept_inputs])
    del graph.output[:]
    graph.output.extend(outputs)
    return model


class Predictor:
    """Face parsing with one ONNX model: uint8 RGB crops at the model's input size in, per-face masks out.

    device: "auto" (CUDA when ONNX Runtime offers it, else CPU), "cuda" (falls back to CPU with a `notice`) or
    "cpu". threads: intra-op threads, default every core this process may use. batch_size: faces per run.
    tta: also run each face mirrored and average (twice the work, steadier masks). confidence / probabilities:
    which extra outputs to compute (the mask is always computed). sparse_enlarge: on the CPU, when the network
    ends by enlarging its scores bilinearly and neither TTA nor confidence is asked for, stop it before the
    enlargement and make the same mask with `resize_argmax` (several times cheaper than enlarging C channels).
    """

    def __init__(self, model: str | os.PathLike, device: str = "auto", threads: int | None = None,
                 batch_size: int | None = None, tta: bool = False, confidence: bool = True,
                 probabilities: bool = True, spinning: bool = False, sparse_enlarge: bool = True):
        path = Path(model)
        proto = _load_proto(path)
        self.info = _model_info(_meta_from_proto(proto, path), path)
        _prefix_names(proto.graph)
        self.tta = bool(tta)
        self.threads = int(threads) if threads else cpu_count()
        providers, self.notice = choose_providers(device)
        plain = providers[0] == CPU and not self.tta and not confidence
        self.tail = enlarging_tail(proto.graph) if sparse_enlarge and plain else None
        self.probabilities = bool(probabilities)
        self._axes: dict[tuple[int, int], tuple[Any, Any, Any, Any]] = {}
        graph = build_inference_graph(proto, self.info, tta=self.tta, confidence=confidence,
                                      probabilities=probabilities, tail=self.tail)
        try:
            self.session = ort.InferenceSession(graph.SerializeToString(), session_options(self.threads, spinning),
                                                providers=providers)
        except Exception as error:
            raise ModelError(f"{path}: ONNX Runtime cannot load the model ({error})") from None
        self.provider = self.session.get_providers()[0]
        if providers[0] == CUDA and self.provider != CUDA:
            self.notice = "the CUDA provider failed to start (see the ONNX Runtime log); running on CPU"
        self.device = "cuda" if self.provider == CUDA else "cpu"
        self.batch_size = int(batch_size) if batch_size else DEFAULT_BATCH[self.device]
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._outputs = [o.name for o in self.session.get_outputs()]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model was trained at; crops are made at this size."""
        return self.info.input_size

    def describe(self) -> str:
        where = "GPU (CUDA)" if self.device == "cuda" else f"CPU, {self.threads} thread{'' if self.threads == 1 else 's'}"
        return f"{self.info.path.name} on {where}" + (", flip TTA" if self.tta else "")

    def run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """One session run over N×H×W×3 uint8 crops; the raw outputs by name."""
        batch = np.ascontiguousarray(crops, dtype=np.uint8)
        if batch.ndim != 4 or batch.shape[3] != 3:
            raise ValueError(f"crops must be N×H×W×3 uint8 RGB, got shape {batch.shape}")
        values = self.session.run(self._outputs, {IMAGE_INPUT: batch})
        out = dict(zip(self._outputs, values, strict=True))
        for name, value in out.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ModelError(f"{self.info.path.name} gives {name} that are not numbers (NaN or infinite), so "
                                 "its masks would be noise: the model is broken (a training run that diverged, or "
                                 "a damaged file); activate another version")
        if self.tail is not None:
            scores = out.pop(self.tail.scores)
            faces = [self._from_scores(s) for s in scores]
            out["index"] = np.stack([f[0] for f in faces])
            if self.probabilities:
                out["probs"] = np.stack([f[1] for f in faces])
        return out

    def _from_scores(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The mask and subsampled probabilities from one face's scores before the final enlargement."""
        assert self.tail is not None
        h, w = scores.shape[1:]
        if (h, w) not in self._axes:
            out_h, out_w = self.tail.output_size(h, w)
            scales = self.tail.scales or (None, None)
            rows = resize_argmax.source_axis(out_h, h, self.tail.mode, scales[0])
            cols = resize_argmax.source_axis(out_w, w, self.tail.mode, scales[1])
            self._axes[(h, w)] = (rows, cols, rows.every(UNCERTAINTY_STRIDE), cols.every(UNCERTAINTY_STRIDE))
        rows, cols, sub_rows, sub_cols = self._axes[(h, w)]
        index = resize_argmax.resize_argmax(scores, rows, cols)
        if not self.probabilities:
            return index, None
        sub = resize_argmax.interpolate(scores, sub_rows, sub_cols)
        sub = np.exp(sub - sub.max(axis=0, keepdims=True))
        return index, sub / sub.sum(axis=0, keepdims=True)

    def predict(self, crops: np.ndarray | Sequence[np.ndarray]) -> list[FacePrediction]:
        """Predict every crop (all at one size), `batch_size` at a time."""
        stack = np.asarray(crops) if not isinstance(crops, np.ndarray) else crops
        if stack.ndim == 3:
            stack = stack[None]
        results: list[FacePrediction] = []
        for start in range(0, len(stack), self.batch_size):
            out = self.run(stack[start:start + self.batch_size])
            for i in range(len(out["index"])):
                results.append(FacePrediction(
                    index=out["index"][i],
                    confidence=out["confidence"][i] if "confidence" in out else None,
                    probs=out["probs"][i] if "probs" in out else None))
        return results
