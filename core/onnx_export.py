"""ONNX export: one self-contained `.onnx` file per model that is enough, on its own, to pre-label images.

The graph takes `input` (float32 N×3×H×W, RGB scaled to 0–1 and normalised with the recorded mean/std) and returns
`logits` (float32 N×C×H×W). Batch, height and width are dynamic; height and width must be multiples of 32, which
the exported graph expresses as 32·k so ONNX Runtime accepts any such size. The checkpoint metadata (schema,
normalisation, architecture, version…) is embedded as JSON in `metadata_props["faceparse"]`.

With `weights="float16"` the weight tensors are stored at half precision, each behind a Cast to float32: the file
is half the size, and ONNX Runtime folds the casts when it loads the model, so inference runs in float32 as fast as
before (the starter models ship this way; their checkpoints are float16 too).
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from faceparse.core.atomic import atomic_path
from faceparse.core.checkpoint import complete_meta, validate_meta
from onnx import helper, numpy_helper
from torch import nn

META_KEY = "faceparse"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
SIZE_MULTIPLE = 32
SAMPLE_SHAPE = (2, 3, 64, 64)  # batch 2 and 2·32 so no dimension is specialised to 0 or 1 while tracing
MAX_BATCH = 4096
MAX_SIDE_MULTIPLES = 1024  # 32 768 px
WEIGHT_TYPES = ("float32", "float16")
HALF_MIN_ELEMENTS = 16
"""Smaller float tensors (shape arithmetic, resize scales) stay float32: they are not weights and save nothing."""
HALF_SUFFIX = "__float16"


class OnnxExportError(RuntimeError):
    """The model could not be exported, or its export does not describe itself."""


def _dynamic_shapes() -> tuple[dict[int, Any]]:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    rows = torch.export.Dim("rows32", min=1, max=MAX_SIDE_MULTIPLES)
    cols = torch.export.Dim("cols32", min=1, max=MAX_SIDE_MULTIPLES)
    return ({0: batch, 2: SIZE_MULTIPLE * rows, 3: SIZE_MULTIPLE * cols},)


def export_onnx(model: nn.Module, meta: Mapping[str, Any], path: str | Path, weights: str = "float32") -> Path:
    """Export `model` (eval-mode forward) with `meta` embedded, its weights stored as `weights` (see the module
    docstring); the file at `path` is replaced atomically."""
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_TYPES)}, got {weights!r}")
    path = Path(path)
    full = complete_meta(meta)
    validate_meta(full, str(path))
    classes = len(full["schema"]["classes"])

    exportable = copy.deepcopy(model).to("cpu", torch.float32).eval()
    for module in exportable.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False  # the exporter functionalises in-place ops anyway; this saves a third of its time
    sample = torch.randn(SAMPLE_SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = exportable(sample)
    if not isinstance(reference, torch.Tensor) or tuple(reference.shape) != (
        SAMPLE_SHAPE[0],
        classes,
        *SAMPLE_SHAPE[2:],
    ):
        shape = tuple(reference.shape) if isinstance(reference, torch.Tensor) else type(reference).__name__
        raise OnnxExportError(
            f"model returns {shape} for input {SAMPLE_SHAPE}; expected N×{classes}×H×W logits"
        )

    try:
        with warnings.catch_warnings(), _quiet_exporter():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                exportable,
                (sample,),
                dynamo=True,
                external_data=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=_dynamic_shapes(),
                verbose=False,
            )
    except Exception as error:
        raise OnnxExportError(f"exporting {full['architecture']} failed: {error}") from error

    proto = program.model_proto
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key = META_KEY
    entry.value = json.dumps(full, default=_json_default)
    if weights == "float16":
        half_weights(proto)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


def half_weights(proto: onnx.ModelProto) -> int:
    """Store the graph's float32 weight tensors as float16, each read through a Cast back to float32 under its old
    name, so no other node changes. Returns how many tensors were halved. Left as they are: a graph already halved,
    tensors that are also graph inputs (a caller may feed them), and tensors with values float16 cannot hold."""
    graph = proto.graph
    fed = {value.name for value in graph.input}
    casts = []
    for tensor in graph.initializer:
        if (tensor.data_type != onnx.TensorProto.FLOAT or tensor.name in fed
                or int(np.prod(tensor.dims)) < HALF_MIN_ELEMENTS):
            continue
        values = numpy_helper.to_array(tensor)
        with np.errstate(over="ignore"):
            halved = values.astype(np.float16)
        if not np.isfinite(halved).all() and np.isfinite(values).all():
            continue
        name = tensor.name
        tensor.CopyFrom(numpy_helper.from_array(halved, name + HALF_SUFFIX))
        casts.append(helper.make_node("Cast", [name + HALF_SUFFIX], [name], name=name + HALF_SUFFIX,
                                      to=onnx.TensorProto.FLOAT))
    for cast in reversed(casts):
        graph.node.insert(0, cast)
    return len(casts)


def read_onnx_meta(path: str | Path) -> dict[str, Any]:
    """The metadata embedded by `export_onnx`; OnnxExportError if the file has none."""
    path = Path(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise OnnxExportError(f"{path}: not a readable ONNX model ({error})") from None
    for entry in proto.metadata_props:
        if entry.key == META_KEY:
            try:
                return json.loads(entry.value)
            except json.JSONDecodeError as error:
                raise OnnxExportError(f"{path}: damaged {META_KEY!r} metadata ({error})") from None
    raise OnnxExportError(f"{path}: no {META_KEY!r} metadata; it was not exported by FaceParse Studio")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class _quiet_exporter:
    """Silence the exporter's progress lines; errors still raise."""

    def __enter__(self) -> None:
        self._loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
        self._levels = [logger.level for logger in self._loggers]
        for logger in self._loggers:
            logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        for logger, level in zip(self._loggers, self._levels, strict=True):
            logger.setLevel(level)
