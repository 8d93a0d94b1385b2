"""Model checkpoints: weights in `model.safetensors`, everything needed to use them in `meta.json` beside it.

A checkpoint must be usable on its own and must never be misused: loading rebuilds the network from the recorded
architecture, refuses a checkpoint made for another label schema or architecture, and refuses weights that do not
fill the network exactly. Weights are only ever read from safetensors (or, for foreign state-dict files, with
`torch.load(weights_only=True)`), so opening a checkpoint cannot run code.

The two files are each replaced atomically, weights first. The safetensors header repeats the structural part of
the metadata (architecture, arch_args, class names), so a directory whose meta.json belongs to other weights, as
after a crash between the two writes, is refused rather than loaded wrongly. The metadata format is in
docs/architecture.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from faceparse.core.atomic import atomic_path, atomic_write_text
from faceparse.core.checkpoint_layout import META_NAME, WEIGHTS_NAME
from faceparse.models import build_model
from faceparse.models.registry import UnknownArchitectureError, get_architecture
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

META_FORMAT = 1
STRUCTURE_KEY = "faceparse_structure"
DTYPE_KEY = "faceparse_dtype"
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, or made for something else; the message says which and why."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fail(source: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{source}: {problem}")


def validate_meta(meta: Mapping[str, Any], source: str = "checkpoint metadata") -> None:
    """Raise CheckpointError unless `meta` describes a usable model (see docs/architecture.md)."""
    if not isinstance(meta, Mapping):
        raise _fail(source, "metadata is not a JSON object")
    missing = [
        k
        for k in ("task", "architecture", "arch_args", "schema", "input_size", "normalization")
        if k not in meta
    ]
    if missing:
        raise _fail(source, f"metadata lacks {', '.join(missing)}")
    if meta.get("format", META_FORMAT) != META_FORMAT:
        raise _fail(
            source,
            f"metadata format {meta.get('format')!r} is not supported (this version reads {META_FORMAT})",
        )
    try:
        spec = get_architecture(meta["architecture"])
    except UnknownArchitectureError as error:
        raise _fail(source, str(error)) from None
    if meta["task"] != spec.task:
        raise _fail(source, f"task {meta['task']!r} does not match architecture {spec.name!r} ({spec.task})")
    arch_args = meta["arch_args"]
    if not isinstance(arch_args, Mapping) or not isinstance(arch_args.get("classes"), int):
        raise _fail(source, "arch_args must be an object with an integer 'classes'")
    schema = meta["schema"]
    if not isinstance(schema, Mapping) or not isinstance(schema.get("name"), str):
        raise _fail(source, "schema must be an object with a 'name'")
    classes = schema.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _fail(source, "schema.classes must be a non-empty list of class names")
    if arch_args["classes"] != len(classes):
        raise _fail(
            source,
            f"the network has {arch_args['classes']} outputs but schema {schema['name']!r} has {len(classes)} classes",
        )
    size = meta["input_size"]
    if not (
        isinstance(size, Sequence) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
    ):
        raise _fail(source, f"input_size must be [height, width], got {size!r}")
    norm = meta["normalization"]
    for key in ("mean", "std"):
        values = norm.get(key) if isinstance(norm, Mapping) else None
        if not (
            isinstance(values, Sequence)
            and len(values) == 3
            and all(isinstance(v, (int, float)) for v in values)
        ):
            raise _fail(source, f"normalization.{key} must be three numbers")
    if any(v <= 0 for v in norm["std"]):
        raise _fail(source, "normalization.std must be positive")


def complete_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata as it is written: defaults filled in for the optional fields."""
    full = {
        "format": META_FORMAT,
        "training_data": {},
        "metrics": {},
        "version": None,
        "parent": None,
        "created": utc_now(),
    }
    full.update(meta)
    full["format"] = META_FORMAT
    return full


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _structure(meta: Mapping[str, Any]) -> str:
    arch_args = {k: v for k, v in meta["arch_args"].items() if k != "pretrained"}
    return json.dumps(
        {
            "architecture": meta["architecture"],
            "arch_args": arch_args,
            "classes": list(meta["schema"]["classes"]),
        },
        sort_keys=True,
    )


def _check_tensors(
    source: str, expected: Mapping[str, torch.Tensor], found: Mapping[str, Sequence[int]], architecture: str
) -> None:
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [k for k in expected if k in found and tuple(found[k]) != tuple(expected[k].shape)]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)):
        if keys:
            shown = ", ".join(keys[:4]) + (" …" if len(keys) > 4 else "")
            parts.append(f"{len(keys)} tensors {label} ({shown})")
    raise _fail(source, f"weights do not fit architecture {architecture!r}: " + "; ".join(parts))


def _all_finite(tensor: torch.Tensor) -> bool:
    """A NaN or infinity anywhere makes the float64 sum non-finite: one cheap reduction instead of a mask."""
    return bool(torch.isfinite(tensor.sum(dtype=torch.float64)))


def _build(meta: Mapping[str, Any], device: str | torch.device = "cpu", source: str = "checkpoint") -> nn.Module:
    """The network `meta` describes; options this version's builder does not take (a checkpoint written by a newer
    version, or edited by hand) are a CheckpointError naming them."""
    arch_args = {k: v for k, v in meta["arch_args"].items() if k != "pretrained"}
    try:
        with torch.device(device):
            return build_model(meta["architecture"], pretrained=False, **arch_args)
    except (TypeError, ValueError) as error:
        raise _fail(source, f"cannot build its {meta['architecture']!r} network with the options it records "
                            f"({error}); was it made by a newer version?") from None


def save_checkpoint(
    directory: str | Path, model: nn.Module, meta: Mapping[str, Any], *, dtype: str = "float32"
) -> dict[str, Any]:
    """Write `model.safetensors` and `meta.json` into `directory`; returns the metadata as written.

    `dtype="float16"` halves the file for shipping; loading always gives float32 weights.
    """
    directory = Path(directory)
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(STORAGE_DTYPES)}, got {dtype!r}")
    full = complete_meta(meta)
    validate_meta(full, str(directory))
    state = model.state_dict()
    _check_tensors(
        str(directory),
        _build(full, device="meta").state_dict(),
        {k: tuple(v.shape) for k, v in state.items()},
        full["architecture"],
    )

    storage = STORAGE_DTYPES[dtype]
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        value = value.detach().to("cpu")
        if value.is_floating_point():
            if not _all_finite(value):
                raise CheckpointError(f"{directory}: tensor {key} holds NaN or infinity; training diverged")
            value = value.to(storage)
            if not _all_finite(value):
                raise CheckpointError(
                    f"{directory}: tensor {key} does not fit in {dtype}; save it as float32"
                )
        tensors[key] = value.contiguous().clone()

    header = {STRUCTURE_KEY: _structure(full), DTYPE_KEY: dtype}
    text = json.dumps(full, indent=2, default=_json_default) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    atomic_write_text(directory / META_NAME, text)
    return json.loads(text)


def read_checkpoint_meta(directory: str | Path) -> dict[str, Any]:
    """The validated metadata of a checkpoint, without touching its weights."""
    directory = Path(directory)
    meta_path = directory / META_NAME
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    if not meta_path.is_file():
        raise _fail(str(directory), f"{META_NAME} is missing, so the weights cannot be interpreted")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(str(meta_path), f"unreadable metadata ({error})") from None
    validate_meta(meta, str(meta_path))
    return meta


def _expected_class_names(expect_classes: Any) -> list[str] | int:
    if isinstance(expect_classes, int):
        return expect_classes
    names = getattr(expect_classes, "classes", expect_classes)
    return [str(name) for name in names]


def _check_classes(source: str, meta: Mapping[str, Any], expect_classes: Any) -> None:
    schema = meta["schema"]
    have = list(schema["classes"])
    want = _expected_class_names(expect_classes)
    if isinstance(want, int):
        if len(have) != want:
            raise _fail(
                source,
                f"made for schema {schema['name']!r} with {len(have)} classes, expected {want} classes",
            )
        return
    if have == want:
        return
    if len(have) != len(want):
        detail = f"{len(have)} classes, expected {len(want)}"
    else:
        index = next(i for i, (a, b) in enumerate(zip(have, want, strict=True)) if a != b)
        detail = f"class {index} is {have[index]!r}, expected {want[index]!r}"
    raise _fail(
        source, f"made for another label schema ({schema['name']!r}: {detail}); it cannot predict this one"
    )


def load_checkpoint(
    directory: str | Path,
    expect_architecture: str | None = None,
    expect_classes: Any = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network recorded in `directory`, fill it with its weights, and return (model in eval mode, meta).

    `expect_classes` is a list of class names in index order, a LabelSchema, or a class count; a checkpoint for
    another schema or architecture, or with missing, extra or misshapen tensors, raises CheckpointError.
    """
    directory = Path(directory)
    source = str(directory)
    weights_path = directory / WEIGHTS_NAME
    if directory.is_dir() and not weights_path.is_file():
        foreign = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if foreign:
            raise _fail(
                source,
                f"holds {', '.join(foreign)} but no {WEIGHTS_NAME}; pickle files are never unpickled here — "
                "convert the state dict to safetensors (core.checkpoint.load_weights_file reads it safely)",
            )
    meta = read_checkpoint_meta(directory)
    if expect_architecture is not None and meta["architecture"] != expect_architecture:
        raise _fail(source, f"holds a {meta['architecture']!r} model, expected {expect_architecture!r}")
    if expect_classes is not None:
        _check_classes(source, meta, expect_classes)
    if not weights_path.is_file():
        raise _fail(source, f"{WEIGHTS_NAME} is missing")

    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            header = handle.metadata() or {}
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise _fail(str(weights_path), f"damaged weights file ({error})") from None
    recorded = header.get(STRUCTURE_KEY)
    if recorded is not None and json.loads(recorded) != json.loads(_structure(meta)):
        raise _fail(
            source, f"{META_NAME} does not describe the weights in {WEIGHTS_NAME} (written by another save)"
        )

    model = _build(meta, source=source)
    expected = model.state_dict()
    _check_tensors(source, expected, shapes, meta["architecture"])
    tensors = load_file(str(weights_path), device="cpu")
    state = {key: value.to(expected[key].dtype) for key, value in tensors.items()}
    bad = [key for key, value in state.items() if value.is_floating_point() and not _all_finite(value)]
    if bad:
        raise _fail(source, f"weights hold non-finite values ({', '.join(bad[:4])})")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), meta


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a safetensors file, or from a PyTorch file without unpickling anything but tensors."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: damaged weights file ({error})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        Exception
    ) as error:  # weights_only raises UnpicklingError for anything beyond tensors and containers
        raise CheckpointError(
            f"{path}: refused or unreadable ({error.__class__.__name__}: {error})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    return dict(state)
