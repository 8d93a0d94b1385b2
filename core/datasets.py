"""Training data from a project: the human-checked masks, read into memory once, when a training job starts.

Why a snapshot: an annotator keeps correcting while a model trains. Reading every corrected image and mask at the
start (and never again) means an edit made during training cannot leak into it, half of it into one epoch and half
into the next, and the version records exactly what it learned from (`summary()`: ids, mask hashes, a digest).

Why the split is read, never drawn: the train/validation assignment belongs to the image (the store fixes it the
first time the image is corrected, from its content hash). A later retrain therefore validates on the same images,
plus new ones, and a new model can honestly be compared with the active one. Redrawing the split per run is the
bug MONAI Label issue #1752 describes: a model then "improves" by being validated on its own training images.

Which masks: images whose status is `corrected` (the corrected mask) or `reviewed` (the corrected mask if there is
one, else the prediction the human approved). Predictions nobody looked at never train a model.

Targets per task: the `parser` task learns the project's schema as it is; the `mask` task learns one binary class,
the schema's `face_mask` class (1) against everything else (0).

Which view of a photo: the one pre-labeling gives the model. A project that pre-labels face by face (group photos,
small faces in large photos) trains on the same face crops, cut by the same detector with the same margin and
geometry (`framing.prepare_array`), each crop of photo and mask at the input size; a network trained on whole
photos resized to its input would learn tiny faces it never sees at that scale. Faces are found when the
snapshot is read, once per photo rather than once per retrain (the project remembers them: `face_cache`), and each
sample keeps the box it was cut from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from faceparse.core.atomic import atomic_write_text
from faceparse.core.augment import AugmentConfig, augment_pair, to_tensor_array
from faceparse.core.faces import FACES, WHOLE_IMAGE, CropBox, HaarFaceDetector, whole_image_box
from faceparse.core.imageio import ImageLoadError, load_rgb
from faceparse.core.schemas import LabelSchema
from faceparse.core.store import HUMAN_STATUSES, ImageRecord, MaskError, ProjectStore, split_for

if TYPE_CHECKING:
    from faceparse.core.framing import Framing

TASKS = ("parser", "mask")
TRAINABLE_STATUSES = HUMAN_STATUSES
MASK_CLASS = "face_mask"
IGNORE_INDEX = 255
SNAPSHOT_INDEX = "snapshot.json"
SNAPSHOT_ARRAYS = "snapshot.npz"


class DatasetError(ValueError):
    """The project cannot give training data for this task; the message says what the user can do."""


@dataclass(frozen=True)
class TaskTarget:
    """What a task learns from the project's masks: its class names and the table from schema index to target."""

    task: str
    classes: tuple[str, ...]
    lut: np.ndarray = field(repr=False, compare=False)
    flip_pairs: tuple[tuple[int, int], ...] = ()

    def convert(self, mask: np.ndarray) -> np.ndarray:
        return self.lut[mask]

    def flip_lut(self) -> np.ndarray:
        lut = np.arange(256, dtype=np.uint8)
        for a, b in self.flip_pairs:
            lut[a], lut[b] = b, a
        return lut

    def schema_json(self, schema: LabelSchema) -> dict:
        """The `schema` entry of a checkpoint trained for this target."""
        if self.task == "parser":
            return {"name": schema.name, "classes": list(schema.classes),
                    "flip_pairs": [list(p) for p in schema.flip_pairs]}
        return {"name": "face-mask", "classes": list(self.classes), "flip_pairs": [],
                "source_class": {"schema": schema.name, "class": MASK_CLASS, "index": schema.index(MASK_CLASS)}}


def task_target(schema: LabelSchema, task: str) -> TaskTarget:
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if task == "parser":
        lut = np.arange(256, dtype=np.uint8)
        return TaskTarget(task, tuple(schema.classes), lut, tuple(schema.flip_pairs))
    if MASK_CLASS not in schema.classes:
        raise DatasetError(f"the project's schema {schema.name!r} has no {MASK_CLASS!r} class, so there is nothing "
                           "for the face-mask segmenter to learn; use --task parser, or a project created with the "
                           "face-mask or masked-faces schema")
    lut = np.zeros(256, dtype=np.uint8)
    lut[schema.index(MASK_CLASS)] = 1
    lut[IGNORE_INDEX] = IGNORE_INDEX
    return TaskTarget(task, ("background", MASK_CLASS), lut)


@dataclass(frozen=True)
class Sample:
    """One training or validation view of a photo: the whole photo (downscaled; `box` None) or, in faces framing,
    the crop of `box` (in the photo's pixels) at the input size. `mask_hash` is the hash of the photo's mask."""

    image_id: int
    relpath: str
    split: str
    image: np.ndarray = field(repr=False, compare=False)
    mask: np.ndarray = field(repr=False, compare=False)
    mask_hash: str = ""
    box: CropBox | None = None


def mask_hash(mask: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(np.asarray(mask.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DatasetSnapshot:
    """The training and validation samples of one job, frozen at its start."""

    target: TaskTarget
    train: list[Sample]
    val: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unlabeled: int = 0
    created: str = field(default_factory=_utc_now)
    framing: str = WHOLE_IMAGE
    faceless: int = 0
    """In faces framing, the photos where no face was found, taken whole as pre-labeling takes them."""

    @property
    def classes(self) -> tuple[str, ...]:
        return self.target.classes

    def image_ids(self, split: str) -> list[int]:
        """The photos of a split, each once (a photo with several faces gives several samples)."""
        return sorted({s.image_id for s in (self.train if split == "train" else self.val)})

    def class_pixels(self, split: str = "train") -> np.ndarray:
        counts = np.zeros(len(self.classes), dtype=np.int64)
        for sample in self.train if split == "train" else self.val:
            counts += np.bincount(sample.mask[sample.mask != IGNORE_INDEX].ravel(),
                                  minlength=len(self.classes))[: len(self.classes)]
        return counts

    def digest(self) -> str:
        """Which photos and masks were read, and in faces framing that they were cut into face crops."""
        h = hashlib.blake2b(digest_size=16)
        photos = {s.image_id: s for s in self.train + self.val}
        for s in sorted(photos.values(), key=lambda s: s.image_id):
            h.update(f"{s.image_id}:{s.split}:{s.mask_hash};".encode())
        if self.framing != WHOLE_IMAGE:
            h.update(f"framing:{self.framing};".encode())
        return h.hexdigest()

    def summary(self, with_hashes: bool = False) -> dict:
        """What a version records about its data; `with_hashes` adds every mask's hash (for meta.json)."""
        out = {
            "task": self.target.task,
            "snapshot": self.created,
            "train": len(self.train),
            "val": len(self.val),
            "train_ids": self.image_ids("train"),
            "val_ids": self.image_ids("val"),
            "digest": self.digest(),
            "class_pixels": dict(zip(self.classes, map(int, self.class_pixels()), strict=True)),
            "skipped": len(self.skipped),
            "unlabeled": self.unlabeled,
            "framing": self.framing,
        }
        if self.framing == FACES:
            out.update(train_photos=len(out["train_ids"]), val_photos=len(out["val_ids"]),
                       photos_without_faces=self.faceless)
        if with_hashes:
            out["mask_hashes"] = {str(s.image_id): s.mask_hash for s in self.train + self.val}
        return out

    # --- on disk, for the other processes of a distributed job (no pickle: arrays in .npz, the rest in JSON) ---

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        samples = self.train + self.val
        arrays = {}
        for i, s in enumerate(samples):
            arrays[f"image_{i}"] = s.image
            arrays[f"mask_{i}"] = s.mask
        np.savez(directory / SNAPSHOT_ARRAYS, **arrays)
        index = {
            "task": self.target.task, "classes": list(self.classes), "flip_pairs": [list(p) for p in
                                                                                     self.target.flip_pairs],
            "lut": self.target.lut.tolist(), "created": self.created, "skipped": self.skipped,
            "unlabeled": self.unlabeled, "framing": self.framing, "faceless": self.faceless,
            "samples": [{"image_id": s.image_id, "relpath": s.relpath, "split": s.split, "mask_hash": s.mask_hash,
                         "box": None if s.box is None else [s.box.x0, s.box.y0, s.box.x1, s.box.y1]}
                        for s in samples],
        }
        atomic_write_text(directory / SNAPSHOT_INDEX, json.dumps(index))

    @classmethod
    def load(cls, directory: str | Path) -> DatasetSnapshot:
        directory = Path(directory)
        index = json.loads((directory / SNAPSHOT_INDEX).read_text(encoding="utf-8"))
        target = TaskTarget(index["task"], tuple(index["classes"]), np.asarray(index["lut"], dtype=np.uint8),
                            tuple(tuple(p) for p in index["flip_pairs"]))
        train, val = [], []
        with np.load(directory / SNAPSHOT_ARRAYS, allow_pickle=False) as arrays:
            for i, entry in enumerate(index["samples"]):
                box = entry.get("box")
                sample = Sample(entry["image_id"], entry["relpath"], entry["split"], arrays[f"image_{i}"],
                                arrays[f"mask_{i}"], entry["mask_hash"], None if box is None else CropBox(*box))
                (val if sample.split == "val" else train).append(sample)
        return cls(target, train, val, [tuple(x) for x in index["skipped"]], index["unlabeled"], index["created"],
                   index.get("framing", WHOLE_IMAGE), index.get("faceless", 0))


def _downscale(image: np.ndarray, mask: np.ndarray, max_side: int | None) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    if max_side is None or max(h, w) <= max_side:
        return image, mask
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST_EXACT))


def _human_mask(store: ProjectStore, image_id: int, status: str) -> np.ndarray | None:
    mask = store.corrected_mask(image_id)
    if mask is None and status == "reviewed":
        mask = store.predicted_mask(image_id)
    return mask


def image_split(rec: ImageRecord) -> str | None:
    """The split training reads for an image: the one the store fixed, else, for a human-checked image saved
    before splits were stored, the one its content hash gives; None for an image nobody has checked yet."""
    if rec.split or rec.status not in TRAINABLE_STATUSES:
        return rec.split
    return split_for(rec.content_hash or f"id:{rec.id}")


def has_validation_faces(store: ProjectStore) -> bool:
    """Whether some checked image is kept for validation: without one a retrain cannot measure its new model, so it
    trains to its limit and never replaces the active model on its own merit."""
    return any(image_split(rec) == "val" for rec in store.images(status=TRAINABLE_STATUSES))


def classes_outside(mask: np.ndarray, schema: LabelSchema) -> list[int]:
    """The class indices of `mask` the schema does not have (a file edited by hand or by another tool): the
    loss would index past its last class with them."""
    if not mask.size or int(mask.max()) < schema.num_classes:
        return []
    return [int(v) for v in np.unique(mask) if v >= schema.num_classes]


def project_framing(store: ProjectStore) -> Framing | None:
    """How the project's pre-labels frame its photos: face by face as pre-labeling does it (its detector,
    margin and geometry) when the project's mode is faces, else None (whole photos, also while pre-labeling
    has not chosen a mode yet). The faces found are the ones remembered in the project (`face_cache`), so a photo
    is searched once, not at every retrain; the framing's key is then the image id."""
    from faceparse.core.face_cache import CachedFaceDetector
    from faceparse.core.framing import Framing
    from faceparse.core.prelabel import MODE_SETTING

    if store.get_setting(MODE_SETTING) != FACES:
        return None
    return Framing(FACES, CachedFaceDetector(store, HaarFaceDetector()))


def crop_mask(mask: np.ndarray, box: CropBox, out_size: tuple[int, int], fill: int) -> np.ndarray:
    """The labels under `box` at `out_size` (height, width), with the geometry `faces.crop` gives the photo: each
    crop pixel takes the label of the photo pixel nearest its centre, and `fill` where the box runs past the
    photo (black in the photo's crop)."""
    h, w = mask.shape
    if box == whole_image_box((w, h)):
        return cv2.resize(mask, (out_size[1], out_size[0]), interpolation=cv2.INTER_NEAREST_EXACT)
    x0, y0, x1, y1 = box.covered_pixels((w, h))
    x0, y0, x1, y1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
    if x1 <= x0 or y1 <= y0:
        return np.full(out_size, fill, np.uint8)
    matrix = box.image_to_crop(out_size) @ np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    return cv2.warpAffine(np.ascontiguousarray(mask[y0:y1, x0:x1]), matrix, (out_size[1], out_size[0]),
                          flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def crop_fill(task: str) -> int:
    """The target past the photo's edge in a face crop: ignored by the parser's loss; background for the mask
    task, whose loss cannot ignore pixels (the crop shows black there)."""
    return 0 if task == "mask" else IGNORE_INDEX


def _read_checked(store: ProjectStore, rec: ImageRecord) -> tuple[np.ndarray, np.ndarray] | str:
    """The photo and its human-checked mask, or why they cannot be used."""
    try:
        mask = _human_mask(store, rec.id, rec.status)
        if mask is None:
            raise MaskError("it has no mask")
        image = load_rgb(store.root / rec.relpath)
    except ImageLoadError as e:
        return e.reason
    except (MaskError, OSError) as e:
        return str(e)
    if image.shape[:2] != mask.shape:
        return (f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.shape[1]}x{image.shape[0]} "
                "(was the photo replaced?)")
    outside = classes_outside(mask, store.schema)
    if outside:
        return (f"mask has classes {outside[:10]} outside the project's schema {store.schema.name!r} "
                f"(0..{store.schema.num_classes - 1})")
    if store.photo_changed_since_checked(rec):
        return "the photo changed after its mask was checked; check the mask and save or review it again"
    return image, mask


def face_samples(sample: Sample, framing: Framing, size: int, fill: int) -> tuple[list[Sample], bool]:
    """The face crops of a whole-photo sample at size x size, cut as pre-labeling cuts them (without the wider
    views around faces), and whether no face was found, so that the photo is taken whole instead."""
    from faceparse.core.framing import prepare_array

    prepared = prepare_array(sample.image_id, sample.image, replace(framing, context=False), (size, size))
    crops = [replace(sample, image=image, mask=crop_mask(sample.mask, box, (size, size), fill), box=box)
             for box, image in zip(prepared.boxes, prepared.crops, strict=True)]
    return crops, prepared.whole_image


def snapshot_project(store: ProjectStore, task: str = "parser", max_side: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     cancelled: Callable[[], bool] | None = None, framing: Framing | None = None,
                     input_size: int | None = None, val_input_size: int | None = None,
                     val_max_side: int | None = None) -> DatasetSnapshot:
    """Read every human-checked image and mask of the project into memory (downscaled to `max_side`), or, with
    a faces `framing`, their face crops at `input_size` (see the module docstring).

    The validation images may be kept larger (`val_input_size`, `val_max_side`): a model that works at a larger
    size than the one being trained is then measured on pictures as large as pre-labeling gives it, not on
    pictures enlarged from the smaller size, which would favour the smaller model.

    Images that cannot be used (unreadable, mask of another size or with classes outside the schema, photo
    changed since its mask was checked) are skipped and listed in `skipped`, never fatal. The validation images
    are checked the same way, so the baseline measurement never reads such a mask either.
    """
    by_faces = framing is not None and framing.mode == FACES
    if by_faces and not input_size:
        raise ValueError("face crops need the input size they are cut at")
    target = task_target(store.schema, task)
    records = store.images(status=TRAINABLE_STATUSES)
    train: list[Sample] = []
    val: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    faceless = 0
    for done, rec in enumerate(records, 1):
        if cancelled is not None and cancelled():
            break
        read = _read_checked(store, rec)
        if isinstance(read, str):
            skipped.append((rec.relpath, read))
            continue
        image, mask = read
        split = image_split(rec)
        photo = Sample(rec.id, rec.relpath, split, image, target.convert(mask), mask_hash(mask))
        validating = split == "val"
        if by_faces:
            size = max(input_size, val_input_size or 0) if validating else input_size
            samples, whole = face_samples(photo, framing, size, crop_fill(task))
            faceless += int(whole)
        else:
            side = max(max_side, val_max_side) if validating and max_side and val_max_side else max_side
            small_image, small_mask = _downscale(image, photo.mask, side)
            samples = [replace(photo, image=small_image, mask=small_mask)]
        (val if split == "val" else train).extend(samples)
        if progress is not None:
            progress(done, len(records))
    unlabeled = store.count() - len(records)
    return DatasetSnapshot(target, train, val, skipped, unlabeled, framing=FACES if by_faces else WHOLE_IMAGE,
                           faceless=faceless)


def class_weights(pixels: np.ndarray, clip: tuple[float, float] = (0.5, 10.0)) -> np.ndarray:
    """Square-root inverse frequency weights normalised to the median class: rare classes (a necklace covers
    0.02% of CelebAMask-HQ pixels) count up to `clip[1]` times more, common ones no less than `clip[0]`."""
    pixels = np.asarray(pixels, dtype=np.float64)
    total = pixels.sum()
    if total <= 0:
        return np.ones(len(pixels), dtype=np.float32)
    freq = pixels / total
    median = np.median(freq[freq > 0])
    weights = np.sqrt(median / np.maximum(freq, 1e-12))
    return np.clip(weights, *clip).astype(np.float32)


def augmented_batches(samples: Sequence[Sample], input_size: int, batch_size: int, seed: int, epoch: int,
                      augment: AugmentConfig, flip_lut: np.ndarray | None, rank: int = 0, world: int = 1
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of (N×3×S×S float32 normalised images, N×S×S int64 targets), in a random order.

    The order depends only on (seed, epoch), so every process of a distributed job draws the same one and takes
    its own share of each global batch; the augmentation draws also depend on the rank. A short last batch is
    filled with random repeats so every step has full batches (batch norm needs more than one sample).
    """
    order_rng = np.random.default_rng([seed, epoch])
    augment_rng = np.random.default_rng([seed, epoch, rank, 1])
    order = order_rng.permutation(len(samples))
    global_batch = batch_size * world
    for step in range(steps_per_epoch(len(samples), batch_size, world)):
        chunk = order[step * global_batch:(step + 1) * global_batch]
        if len(chunk) < global_batch:
            chunk = np.concatenate([chunk, order_rng.choice(len(samples), global_batch - len(chunk))])
        images, masks = [], []
        for i in chunk[rank::world]:
            image, mask = augment_pair(samples[i].image, samples[i].mask, (input_size, input_size), augment_rng,
                                       augment, flip_lut)
            images.append(to_tensor_array(image))
            masks.append(mask.astype(np.int64))
        yield np.stack(images), np.stack(masks)


def steps_per_epoch(samples: int, batch_size: int, world: int = 1) -> int:
    """Full global batches in one pass over the samples (at least one)."""
    return max(-(-samples // (batch_size * world)), 1)
