"""Measure a model on labeled faces: the numbers that decide whether a new model replaces the active one.

A model is a checkpoint directory (PyTorch) or an `.onnx` file (ONNX Runtime); both predict the same way: the
face is resized to the model's input size, normalised with the recorded mean/std, and the class probabilities are
resized back to the mask's resolution before the argmax, so every model is scored against the same pixels
whatever its input size. One confusion matrix is accumulated over all images (core/metrics.py). For a binary
(face-mask) model the per-image salient-object scores are added: MAE, Fβ (β² = 0.3) and the S-measure.

    metrics = evaluate(open_predictor("…/models/parser/v0003"), samples, task="parser")

`samples` is any sequence of (image, target) pairs whose targets use the model's class indices (255 = ignore);
`project_samples` and `folder_samples` build them from a project or from a folder of images and index masks.
Masks of another schema than the model's are converted through the schema's declared mapping (CelebAMask-HQ masks
for a LaPa model); without one they are refused, since scoring one schema's indices as another's means nothing.

A project that pre-labels face by face is scored on the masks pre-labeling gives its photos (`FramedPhoto`): each
photo is framed by the pre-labeling code itself (faces found, cropped at the model's input size, with the wider
views around faces, or taken whole when no face is found), the crops are predicted, and their masks pasted back
into one mask for the photo, which is compared with the photo's mask. The score is then what an annotator gets,
on the same pixels as a whole-photo score, and the metrics say so (`framing`: "faces").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
import torch
from faceparse.core.augment import to_tensor_array
from faceparse.core.checkpoint import META_NAME, WEIGHTS_NAME, load_checkpoint, validate_meta
from faceparse.core.datasets import (
    IGNORE_INDEX,
    TRAINABLE_STATUSES,
    DatasetError,
    image_split,
    project_framing,
    snapshot_project,
    task_target,
)
from faceparse.core.faces import FACES
from faceparse.core.imageio import IMAGE_EXTENSIONS, ImageLoadError, load_mask, load_rgb
from faceparse.core.metrics import BinaryScores, confusion_matrix, scores_from_confusion
from faceparse.core.schemas import (
    LabelSchema,
    SchemaError,
    builtin_schema_names,
    get_schema,
    mapping_matrix,
    resolve_schema,
)
from faceparse.core.store import ProjectStore
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from faceparse.core.framing import Framing, ImagePrediction

ONNX_NAME = "model.onnx"
EVAL_BATCH = 8

Progress = Callable[[int, int], object]


class EvaluationError(ValueError):
    """The model and the data do not fit together, or one of them cannot be read."""


class Predictor(Protocol):
    meta: dict[str, Any]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """N×3×H×W normalised float32 → N×C×H×W logits."""


class TorchPredictor:
    def __init__(self, model: nn.Module, meta: dict[str, Any]):
        self.model = model
        self.meta = meta
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def logits(self, batch: np.ndarray) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        try:
            out = self.model(torch.from_numpy(batch).to(self.device))
        finally:
            self.model.train(was_training)
        return out.float().cpu().numpy()


class OnnxPredictor:
    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort
        from faceparse.core.onnx_export import INPUT_NAME, OnnxExportError, read_onnx_meta

        try:
            self.meta = read_onnx_meta(path)
            validate_meta(self.meta, str(path))
        except (OnnxExportError, ValueError) as e:
            raise EvaluationError(str(e)) from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = INPUT_NAME

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})[0]


class MappedPredictor:
    """A model of another schema seen through a class mapping (as pre-labeling runs it): each of its classes'
    probability goes to the class `lut` maps it to, so it can be measured on masks of the target's classes."""

    def __init__(self, inner: Predictor, lut: np.ndarray, target: LabelSchema):
        self.inner = inner
        classes = list(inner.meta["schema"]["classes"])
        self._to_target = mapping_matrix(lut, len(classes), target.num_classes)
        self.meta = {**inner.meta, "schema": {"name": target.name, "classes": list(target.classes)}}

    def logits(self, batch: np.ndarray) -> np.ndarray:
        logits = torch.from_numpy(self.inner.logits(batch)).float()
        probs = torch.einsum("tc,nchw->nthw", torch.from_numpy(self._to_target), logits.softmax(1))
        return probs.clamp_min(1e-12).log().numpy()


def measured_in(predictor: Predictor, schema: str | LabelSchema | None, task: str) -> Predictor:
    """The parser as it is measured on masks of `schema`, in whichever schema has the coarser classes. Masks whose
    schema maps onto every class of the model's are brought to the model's classes (`mask_lut`, as before); a
    model whose built-in schema declares a mapping onto `schema` and is not reached that way (CelebAMask-HQ's 19
    classes merged into LaPa's 11; LaPa's masks have no ears to score the model's ears on) is measured through
    that mapping, as pre-labeling runs it. Anything else is returned as it is, for `mask_lut` to map or refuse."""
    if task != "parser" or schema is None:
        return predictor
    target = _masks_schema(schema)
    declared = predictor.meta.get("schema") or {}
    name, classes = str(declared.get("name")), tuple(declared.get("classes", ()))
    if name == target.name or name not in builtin_schema_names():
        return predictor
    if name in target.mappings and len(set(target.mappings[name])) == len(classes):
        return predictor
    source = get_schema(name)
    if tuple(source.classes) != classes or target.name not in source.mappings:
        return predictor
    return MappedPredictor(predictor, source.mapping_lut(target.name), target)


class FaceAndMaskScorer:
    """A parser and a face-mask segmenter measured together, as they pre-label a masked-faces project (see
    `face_and_mask`): the parser's probabilities mapped to the target's classes, then the segmenter's mask
    probability given to `face_mask` and the rest scaled to make room for it."""

    def __init__(self, parser: Predictor, mask: Predictor, lut: np.ndarray | None, target: LabelSchema):
        self.parser = parser if lut is None else MappedPredictor(parser, lut, target)
        self.mask = mask
        self.mask_index = target.index("face_mask")
        self.meta = {**parser.meta, "schema": {"name": target.name, "classes": list(target.classes)}}

    def logits(self, batch: np.ndarray) -> np.ndarray:
        probs = torch.from_numpy(self.parser.logits(batch)).float().softmax(1)
        source, wanted = self.parser.meta["normalization"], self.mask.meta["normalization"]
        pixels = torch.from_numpy(batch).float() * _column(source["std"]) + _column(source["mean"])
        pixels = F.interpolate(pixels, size=tuple(self.mask.meta["input_size"]), mode="area")
        mask_in = ((pixels - _column(wanted["mean"])) / _column(wanted["std"])).numpy()
        masked = torch.from_numpy(self.mask.logits(mask_in)).float().softmax(1)[:, 1:2]
        masked = F.interpolate(masked, size=probs.shape[-2:], mode="bilinear", align_corners=False)
        probs = probs * (1.0 - masked)
        probs[:, self.mask_index:self.mask_index + 1] += masked
        return probs.clamp_min(1e-12).log().numpy()


def _column(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


def starter_scorer(schema: LabelSchema, task: str, device: str | torch.device = "cpu",
                   notes: list[str] | None = None, prefer: str = "torch",
                   mask_partner: str | Path | None = None) -> Predictor:
    """The shipped starter model of `task` as it pre-labels a project of `schema`: through the mapping from its
    classes to the project's (the CelebAMask-HQ parser on a LaPa project), and for a masked-faces project joined
    by a face-mask segmenter: `mask_partner` (the folder of the project's active mask version), else the starter
    one. Raises EvaluationError when it is not installed or does not fit; a segmenter that cannot be read leaves
    the parser alone, with a line in `notes`. `prefer="onnx"` runs the shipped ONNX files, as pre-labeling does,
    instead of the checkpoints."""
    from faceparse.core.face_and_mask import wants_face_and_mask
    from faceparse.core.model_resolver import starter_model_path
    from faceparse.core.predictor import ModelError
    from faceparse.core.prelabel import class_mapping
    from faceparse.core.versions import starter_checkpoint

    if starter_checkpoint(task) is None:
        raise EvaluationError(f"no starter {task} model is installed")

    def load(which: str) -> Predictor:
        if which == "mask" and mask_partner is not None:
            return open_predictor(mask_partner, prefer)
        if prefer == "onnx":
            return open_predictor(starter_model_path(which))
        return TorchPredictor(*load_checkpoint(starter_checkpoint(which), device=device))

    try:
        predictor = load(task)
    except (ValueError, OSError) as e:
        raise EvaluationError(f"the starter {task} model cannot be read ({e})") from None
    meta = predictor.meta
    classes = tuple(meta["schema"]["classes"])
    if task != "parser":
        if classes != tuple(task_target(schema, task).classes):
            raise EvaluationError(f"the starter {task} model predicts {', '.join(classes)}, not this project's "
                                  "classes")
        return predictor
    try:
        lut = class_mapping(classes, meta["schema"]["name"], schema)
    except ModelError as e:
        raise EvaluationError(str(e)) from None
    if wants_face_and_mask(schema) and (mask_partner is not None or starter_checkpoint("mask") is not None):
        try:
            return FaceAndMaskScorer(predictor, load("mask"), lut, schema)
        except (ValueError, OSError, EvaluationError) as e:
            if notes is not None:
                which = "the starter face-mask segmenter" if mask_partner is None else \
                    f"the active face-mask model ({mask_partner})"
                notes.append(f"{which} cannot be read ({e}); the parser is measured alone")
    return predictor if lut is None else MappedPredictor(predictor, lut, schema)


def open_predictor(path: str | Path, prefer: str = "torch") -> Predictor:
    """A checkpoint directory or an .onnx file; for a version directory holding both, `prefer` picks one."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".onnx":
        return OnnxPredictor(path)
    if path.is_dir():
        has_ckpt = (path / WEIGHTS_NAME).is_file() and (path / META_NAME).is_file()
        if (path / ONNX_NAME).is_file() and (prefer == "onnx" or not has_ckpt):
            return OnnxPredictor(path / ONNX_NAME)
        try:
            model, meta = load_checkpoint(path)
        except ValueError as e:
            raise EvaluationError(str(e)) from None
        return TorchPredictor(model, meta)
    raise EvaluationError(f"{path}: not a checkpoint directory or an .onnx file")


def _resize_probs(probs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(probs.shape[-2:]) == size:
        return probs
    return F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]


def predict_probabilities(predictor: Predictor, images: Sequence[np.ndarray], batch_size: int = EVAL_BATCH
                          ) -> Iterator[np.ndarray]:
    """C×H×W class probabilities for each image, at the image's own resolution."""
    height, width = predictor.meta["input_size"]
    norm = predictor.meta["normalization"]
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        batch = np.stack([to_tensor_array(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA
                                                     if img.shape[1] > width else cv2.INTER_LINEAR),
                                          norm["mean"], norm["std"]) for img in chunk])
        probs = torch.from_numpy(predictor.logits(batch)).float().softmax(1)
        for img, p in zip(chunk, probs, strict=True):
            yield _resize_probs(p, img.shape[:2]).numpy()


@dataclass(frozen=True)
class FramedPhoto:
    """A labeled photo scored on the mask pre-labeling gives it with `framing` (see the module docstring):
    the photo is read again from `path` at full size, as pre-labeling reads it, and the pasted-back mask is
    compared with `target` at the target's resolution. `image_id` is the project's id of the photo, under which
    the project's framing remembers its faces (`face_cache`)."""

    path: Path
    target: np.ndarray = field(repr=False)
    framing: Framing = field(repr=False)
    image_id: int | None = None


@dataclass
class _FacesSeen:
    photos: int = 0
    faces: int = 0
    whole: int = 0

    def metrics(self) -> dict[str, Any]:
        """What the metrics say about how the photos were framed (nothing when none was framed by faces)."""
        if not self.photos:
            return {}
        return {"framing": FACES, "faces_found": self.faces, "whole_image_fallbacks": self.whole}


def _at_size(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A photo-sized map sampled at the pixels a mask downscaled to `shape` keeps (as `snapshot_project`
    downscales masks)."""
    if values.shape[:2] == tuple(shape[:2]):
        return values
    return cv2.resize(values, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST_EXACT)


def _pasted_back(predictor: Predictor, photo: FramedPhoto, batch_size: int, binary: bool) -> ImagePrediction:
    """The photo's mask as pre-labeling makes it: the same framing code, each crop's argmax at the model's
    input size pasted back (with the predicted class's probability, for the binary scores)."""
    from faceparse.core.framing import finish_image, prepare_file
    from faceparse.core.predictor import FacePrediction

    try:
        prepared = prepare_file(photo.image_id, photo.path, photo.framing.for_model(predictor.meta["schema"]["classes"]),
                                tuple(int(v) for v in predictor.meta["input_size"]))
    except ImageLoadError as e:
        raise EvaluationError(str(e)) from None
    faces = [FacePrediction(probs.argmax(0).astype(np.uint8), probs.max(0) if binary else None, None)
             for probs in predict_probabilities(predictor, list(prepared.crops), batch_size)]
    return finish_image(prepared, faces)


def _framed_outcome(predictor: Predictor, photo: FramedPhoto, batch_size: int, binary: bool, seen: _FacesSeen
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels (and for a binary model the foreground probability) of the pasted-back mask at the target's size."""
    pasted = _pasted_back(predictor, photo, batch_size, binary)
    seen.photos += 1
    seen.faces += 0 if pasted.whole_image else len(pasted.boxes)
    seen.whole += int(pasted.whole_image)
    foreground = None
    if binary and pasted.confidence is not None:
        foreground = _at_size(np.where(pasted.mask == 1, pasted.confidence, 1.0 - pasted.confidence)
                              .astype(np.float32), photo.target.shape)
    return _at_size(pasted.mask, photo.target.shape), foreground


def _outcomes(predictor: Predictor, samples: Sequence[Any], batch_size: int, binary: bool, seen: _FacesSeen
              ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """(target, predicted labels, foreground probability for a binary model) per sample: pairs in batches,
    framed photos one at a time."""
    pairs = [s for s in samples if not isinstance(s, FramedPhoto)]
    images = [image for image, _ in pairs]
    for (_, target), probs in zip(pairs, predict_probabilities(predictor, images, batch_size), strict=True):
        yield target, probs.argmax(0), probs[1] if binary else None
    for photo in samples:
        if isinstance(photo, FramedPhoto):
            yield photo.target, *_framed_outcome(predictor, photo, batch_size, binary, seen)


def evaluate(predictor: Predictor, samples: Sequence[tuple[np.ndarray, np.ndarray] | FramedPhoto],
             task: str | None = None, batch_size: int = EVAL_BATCH, progress: Progress | None = None
             ) -> dict[str, Any]:
    """Metrics of `predictor` on (image, target) pairs or framed photos; see the module docstring. A large set
    takes minutes on a CPU, so `progress(done, total)` is told after every image."""
    classes = list(predictor.meta["schema"]["classes"])
    task = task or predictor.meta["task"]
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    binary = BinaryScores() if task == "mask" else None
    seen = _FacesSeen()
    for done, (target, labels, foreground) in enumerate(
            _outcomes(predictor, samples, batch_size, binary is not None, seen), 1):
        labeled = target[target != IGNORE_INDEX]
        if labeled.size and int(labeled.max()) >= n:
            raise EvaluationError(f"a mask has class {int(labeled.max())} but the model predicts only {n} classes "
                                  f"({', '.join(classes)}); is it a model for another schema?")
        cm += confusion_matrix(target, labels, n, IGNORE_INDEX)
        if binary is not None:
            valid = target != IGNORE_INDEX
            binary.add(foreground, target == 1, valid=valid)
        if progress is not None:
            progress(done, len(samples))
    metrics = scores_from_confusion(cm, classes)
    metrics["images"] = len(samples)
    if binary is not None:
        metrics.update(binary.summary())
    metrics.update(seen.metrics())
    return _clean(metrics)


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to floats, NaN to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def mask_lut(schema: LabelSchema, task: str, model_schema: Mapping[str, Any] | None = None) -> np.ndarray:
    """Lookup table from mask indices of `schema` to the classes the model predicts (`model_schema` is its
    checkpoint's `schema` entry; None: the model learnt `schema` itself). 255 stays ignored."""
    try:
        target = task_target(schema, task)
    except DatasetError as e:
        raise EvaluationError(str(e)) from None
    if task != "parser" or model_schema is None:
        return target.lut
    name, classes = str(model_schema.get("name")), tuple(model_schema.get("classes", ()))
    if name == schema.name and classes == schema.classes:
        return target.lut
    if name == schema.name:
        raise EvaluationError(f"the masks' schema {schema.name!r} has {schema.num_classes} classes, but the model's "
                              f"schema of that name has {len(classes)}; they are not the same schema")
    if name not in schema.mappings:
        raise EvaluationError(f"the masks are in schema {schema.name!r} ({schema.num_classes} classes) but the model "
                              f"predicts {name!r} ({len(classes)} classes), and {schema.name!r} declares no mapping "
                              f"to it; measure the model on masks of its own schema")
    if name in builtin_schema_names() and get_schema(name).classes != classes:
        raise EvaluationError(f"the mapping from {schema.name!r} is for the built-in schema {name!r}, but the "
                              f"model's {name!r} has other classes ({', '.join(classes)})")
    if max(schema.mappings[name]) >= len(classes):
        raise EvaluationError(f"the mapping from {schema.name!r} to {name!r} uses classes beyond the model's "
                              f"{len(classes)}")
    lut = schema.mapping_lut(name)
    lut[IGNORE_INDEX] = IGNORE_INDEX
    return lut


def project_samples(store: ProjectStore, task: str, split: str = "val", max_side: int | None = 1024,
                    model_schema: Mapping[str, Any] | None = None, left_out: list[str] | None = None
                    ) -> list[tuple[np.ndarray, np.ndarray]] | list[FramedPhoto]:
    """The human-checked faces of a project for `task`: its fixed validation split, "train" or "all"; with
    `model_schema`, their masks in the model's classes (`mask_lut`). A project that pre-labels face by face
    gives `FramedPhoto`s, scored as pre-labeling frames them; any other, (image, target) pairs. The images of
    the split that cannot be scored (an unreadable photo, a damaged or missing mask) are added to `left_out` as
    "relpath: reason", so that a score over fewer faces than expected says why."""
    lut = None if task != "parser" or model_schema is None else mask_lut(store.schema, task, model_schema)
    snapshot = snapshot_project(store, task, max_side=max_side)
    chosen = {"val": snapshot.val, "train": snapshot.train, "all": snapshot.train + snapshot.val}.get(split)
    if chosen is None:
        raise EvaluationError(f"split must be val, train or all, got {split!r}")
    if left_out is not None:
        left_out.extend(_skipped_in_split(store, snapshot.skipped, split))
    targets = [s.mask if lut is None else lut[s.mask] for s in chosen]
    framing = project_framing(store)
    if framing is not None:
        return [FramedPhoto(store.root / s.relpath, target, framing, s.image_id)
                for s, target in zip(chosen, targets, strict=True)]
    return [(s.image, target) for s, target in zip(chosen, targets, strict=True)]


def _skipped_in_split(store: ProjectStore, skipped: list[tuple[str, str]], split: str) -> list[str]:
    """The images a snapshot skipped that belong to `split`, as "relpath: reason"."""
    split_of = {rec.relpath: image_split(rec) for rec in store.images(status=TRAINABLE_STATUSES)}
    return [f"{relpath}: {reason}" for relpath, reason in skipped
            if split == "all" or (split_of.get(relpath) or "train") == split]


def _masks_schema(schema: str | LabelSchema) -> LabelSchema:
    try:
        return resolve_schema(schema)
    except KeyError as e:
        raise EvaluationError(str(e.args[0]) if e.args else str(e)) from None
    except SchemaError as e:
        raise EvaluationError(str(e)) from None


def _checked_mask(mask: np.ndarray, schema: LabelSchema, mask_path: Path) -> np.ndarray:
    labeled = mask[mask != IGNORE_INDEX]
    if labeled.size and int(labeled.max()) >= schema.num_classes:
        raise EvaluationError(f"{mask_path.name} has class {int(labeled.max())}, but schema {schema.name!r} has "
                              f"only {schema.num_classes} classes")
    return mask


def folder_samples(folder: str | Path, masks: str | Path | None = None, schema: str | LabelSchema | None = None,
                   task: str = "parser", model_schema: Mapping[str, Any] | None = None,
                   framing: Framing | None = None, left_out: list[str] | None = None
                   ) -> list[tuple[np.ndarray, np.ndarray]] | list[FramedPhoto]:
    """Images of `folder` (or `folder/images`) paired by file stem with index PNGs in `masks` (default
    `folder/masks`). With `schema`, masks are in that schema and converted to the task's classes, and for a parser
    to the classes of `model_schema` (`mask_lut`); without, they are taken to be in the model's classes. With a
    face-by-face `framing`, the photos are scored as pre-labeling with it would frame them (`FramedPhoto`).
    Images without a mask are added to `left_out` as "name: reason", so that they are not left out unsaid."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder} is not a folder" if folder.exists() else f"folder does not exist: {folder}")
    image_dir = folder / "images" if (folder / "images").is_dir() else folder
    mask_dir = Path(masks) if masks is not None else folder / "masks"
    if not mask_dir.is_dir():
        raise EvaluationError(f"no mask folder {mask_dir}; give one with --masks")
    mask_schema = _masks_schema(schema) if schema else None
    lut = mask_lut(mask_schema, task, model_schema) if mask_schema else None
    samples = []
    for path in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()):
        mask_path = mask_dir / f"{path.stem}.png"
        if not mask_path.is_file():
            if left_out is not None:
                left_out.append(f"{path.name}: no mask {mask_path.name} in {mask_dir}")
            continue
        try:
            image, mask = load_rgb(path), load_mask(mask_path)
        except ImageLoadError as e:
            raise EvaluationError(str(e)) from None
        if image.shape[:2] != mask.shape:
            raise EvaluationError(f"{mask_path.name} is {mask.shape[1]}x{mask.shape[0]} but {path.name} is "
                                  f"{image.shape[1]}x{image.shape[0]}")
        if mask_schema is not None:
            mask = lut[_checked_mask(mask, mask_schema, mask_path)]
        samples.append((image, mask) if framing is None else FramedPhoto(path, mask, framing))
    if not samples:
        raise EvaluationError(f"no image in {image_dir} has a mask of the same name in {mask_dir}")
    return samples
