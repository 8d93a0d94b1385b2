"""Masked self-supervised pre-training on unlabeled faces (seeds 000 and 001).

Random square patches are blanked inside the central region of each face (the middle two thirds, where the
facial parts are), and the parser's body learns to paint them back through a one-convolution reconstruction head;
the loss counts only the central region. The papers mask 128 patches of 32-64 px per 480-512 px image; at other
input sizes the patch size scales with the image, so the same fraction of the face is hidden. The learned body then
starts fine-tuning with a fresh face-parsing head (`MaskedPretrainNet.make_parser`).

Use `masked_pretrain(...)` directly, or as the optional phase of a retrain job: `pretrain_wanted(ctx)` says whether
"auto" should run it (a parser that starts from ImageNet or random weights, and enough unlabeled faces in the
project), `pretrain_phase(ctx)` pre-trains the start network's body on every image of the project, corrected or not,
except the validation split's (`pretrain_records`), and puts it back before fine-tuning; `pretrain_problem` says
before a job starts why an asked-for pre-training cannot run. Options come from the job's `extra`: `pretrain_steps`,
`pretrain_images`, `pretrain_min_images`.

Which view of a photo: the one pre-labeling gives the model, as for fine-tuning (see `datasets`). In a project that
pre-labels face by face (`datasets.project_framing`), pre-training learns from every face crop of each photo, cut by
pre-labeling's detector with its margin and geometry (`framing.prepare_array`) at the input size, and from the
whole photo where no face is found; faces are found once, before the first step, and not at all in a photo
pre-labeling or a snapshot searched before (`face_cache`). Elsewhere it learns from whole photos, downscaled.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from faceparse.core.augment import AugmentConfig, augment_pair, to_tensor_array
from faceparse.core.faces import FACES, WHOLE_IMAGE
from faceparse.core.wording import counted
from faceparse.models.heads import MaskedPretrainNet, transfer_pretrained_body
from faceparse.models.losses import central_reconstruction_loss

if TYPE_CHECKING:
    from faceparse.core.framing import Framing

PAPER_SIZE = 512


@dataclass(frozen=True)
class PretrainConfig:
    architecture: str = "deeplabv3plus_mobilenetv2"
    input_size: int = 256
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    patches: int = 128
    patch_range: tuple[int, int] = (32, 64)
    imagenet_init: bool = True
    seed: int = 0
    min_images: int = 16
    time_limit_s: float | None = None  # stop early (after at least one step) once this much time has passed


def central_patch_mask(height: int, width: int, rng: np.random.Generator, patches: int = 128,
                       patch_range: tuple[int, int] = (32, 64), reference: int = PAPER_SIZE) -> np.ndarray:
    """Boolean H×W map of hidden pixels: `patches` squares, each wholly inside the central region."""
    scale = min(height, width) / reference
    lo = max(1, round(patch_range[0] * scale))
    hi = max(lo, round(patch_range[1] * scale))
    top, bottom = height // 6, (5 * height) // 6
    left, right = width // 6, (5 * width) // 6
    hidden = np.zeros((height, width), dtype=bool)
    for _ in range(patches):
        size = int(rng.integers(lo, hi + 1))
        size = min(size, bottom - top, right - left)
        y = int(rng.integers(top, bottom - size + 1))
        x = int(rng.integers(left, right - size + 1))
        hidden[y:y + size, x:x + size] = True
    return hidden


def masked_batch(images: Sequence[np.ndarray], rng: np.random.Generator, config: PretrainConfig
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input, original) normalised tensors for one batch; hidden pixels are set to the mean colour (0)."""
    size = (config.input_size, config.input_size)
    originals, inputs = [], []
    for image in images:
        img, _ = augment_pair(image, None, size, rng, AugmentConfig.pretrain())
        x = to_tensor_array(img)
        hidden = central_patch_mask(config.input_size, config.input_size, rng, config.patches, config.patch_range)
        masked = x.copy()
        masked[:, hidden] = 0.0
        originals.append(x)
        inputs.append(masked)
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(originals))


def masked_pretrain(images: Sequence[np.ndarray], config: PretrainConfig = PretrainConfig(),
                    on_event: Callable[[dict], None] | None = None,
                    cancel: threading.Event | None = None, net: MaskedPretrainNet | None = None,
                    device: torch.device | str | None = None, **arch_args) -> MaskedPretrainNet:
    """Pre-train a parser body on unlabeled RGB images; returns the network (body + reconstruction head).

    `net` continues from an existing body (see `MaskedPretrainNet.from_parser`); otherwise a new one is built.
    Raises ValueError when there are too few images to be worth it, and InterruptedError when cancelled.
    With `config.time_limit_s`, the schedule is shortened after its first steps to the count that fits at the
    speed measured, so the learning rate has come down when the body is handed over; it stops at the limit in
    any case, and the last event's step says how far it got.
    """
    if len(images) < config.min_images:
        raise ValueError(f"masked pre-training needs at least {config.min_images} images, got {len(images)}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if net is None:
        net = MaskedPretrainNet(config.architecture, pretrained=config.imagenet_init, **arch_args)
    if device is not None:
        net.to(device)
    device = next(net.parameters()).device
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    warmup = max(1, config.steps // 20)
    total = config.steps
    measured_after = max(1, min(5, config.steps // 10))
    started = time.monotonic()
    step = 0
    while step < total:
        if cancel is not None and cancel.is_set():
            raise InterruptedError("masked pre-training cancelled")
        elapsed = time.monotonic() - started
        if step and config.time_limit_s is not None and elapsed >= config.time_limit_s:
            break
        if step == measured_after and config.time_limit_s is not None:
            total = min(total, step + max(1, int((config.time_limit_s - elapsed) / (elapsed / step) * 0.95)))
        lr = config.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / total))
        for group in opt.param_groups:
            group["lr"] = lr
        pick = rng.integers(0, len(images), config.batch_size)
        masked, original = masked_batch([images[i] for i in pick], rng, config)
        masked, original = masked.to(device), original.to(device)
        loss = central_reconstruction_loss(net(masked), original)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if on_event is not None:
            elapsed = time.monotonic() - started
            on_event({"phase": "pretrain", "step": step, "total": total, "loss": float(loss.item()),
                      "eta_s": elapsed / step * (total - step), "metrics": None, "message": None})
    net.eval()
    return net


DEFAULT_MIN_IMAGES = 32
"""The fewest images "auto" pre-trains on."""
ASKED_MIN_IMAGES = 8
"""The fewest images pre-training runs on when it is asked for (pretrain=True)."""
PRETRAIN_SHARE_OF_TIME_LIMIT = 0.5
"""Within a retrain's time limit, the most masked pre-training may take; fine-tuning gets what is left."""
DEFAULT_MAX_IMAGES = 2000


def min_images(config, asked: bool) -> int:
    """The fewest images pre-training needs: the job's `pretrain_min_images`, else ASKED_MIN_IMAGES when it was
    asked for and DEFAULT_MIN_IMAGES for "auto"."""
    return int(config.extra.get("pretrain_min_images", ASKED_MIN_IMAGES if asked else DEFAULT_MIN_IMAGES))


def pretrain_records(store, max_images: int = DEFAULT_MAX_IMAGES, exclude_ids=()) -> list:
    """The images masked pre-training learns from (labels are not used): every image of the project, corrected or
    not, except the validation split's, which decide whether the new model is promoted and so must stay unseen,
    `exclude_ids` (a job's validation images) and those the scan found unreadable. An image nobody has checked yet
    has no split, but its photo already decides the one it will get (`split_for`): those bound for validation are
    left out too, so a later retrain is not measured on faces an earlier model learnt from. The photos hashed for
    this keep their hashes in the project (`hash_photos`), so the next retrain does not read them again."""
    excluded = set(exclude_ids)
    candidates = [r for r in store.images() if not r.error and r.id not in excluded]
    out: list = []
    for start in range(0, len(candidates), HASH_BATCH):
        if len(out) >= max_images:
            break
        batch = candidates[start:start + HASH_BATCH]
        unhashed = [r.id for r in batch if _needs_hash(r)]
        if unhashed and store.hash_photos(unhashed):
            fresh = {r.id: r for r in (store.get(i) for i in unhashed) if r is not None}
            batch = [fresh.get(r.id, r) for r in batch]
        for record in batch:
            if len(out) >= max_images:
                break
            if not record.error and future_split(store, record) != "val":
                out.append(record)
    return out


HASH_BATCH = 256
"""How many images `pretrain_records` looks at, and hashes where needed, at a time: it stops once it has enough."""


def _needs_hash(record) -> bool:
    from faceparse.core.datasets import image_split

    return record.content_hash is None and image_split(record) is None


def future_split(store, record) -> str:
    """The split an image has, or, nobody having checked it yet, the one its photo will give it: that of a copy
    of it already split, else the one its content hash gives (a scan does not hash photos, so it is taken here
    where the index has none)."""
    from faceparse.core.datasets import image_split
    from faceparse.core.store import content_hash, split_for

    split = image_split(record)
    if split:
        return split
    digest = record.content_hash
    if digest is None:
        try:
            digest = content_hash(store.image_path(record.id))
        except OSError:
            digest = f"id:{record.id}"
    return store.split_of_copy(digest, record.id) or split_for(digest)


def _load_images(store, records, max_side: int) -> list[np.ndarray]:
    """The records' images, downscaled; a file that has become unreadable is skipped."""
    from faceparse.core.imageio import ImageLoadError, load_rgb

    out = []
    for record in records:
        try:
            out.append(load_rgb(store.image_path(record.id), max_side=max_side))
        except (ImageLoadError, OSError):
            continue
    return out


@dataclass
class PretrainImages:
    """The pictures pre-training learns from and how they were cut from the project's photos, so that the job can
    say it (a count of face crops alone would look like a miscount of the photos)."""

    images: list[np.ndarray]
    photos: int
    framing: str = WHOLE_IMAGE
    faceless: int = 0
    """In faces framing, the photos where no face was found, taken whole as pre-labeling takes them."""

    def describe(self) -> str:
        if self.framing != FACES:
            return counted(len(self.images), "image")
        described = f"{counted(len(self.images), 'face crop')} from {counted(self.photos, 'photo')}"
        if self.faceless:
            described += f" ({self.faceless} with no face found, taken whole)"
        return described

    def framing_words(self) -> str:
        if self.framing != FACES:
            return "framing: whole image"
        return "framing: faces, cropped as pre-labeling crops them"

    def summary(self) -> dict:
        return {"framing": self.framing, "images": len(self.images), "photos": self.photos,
                "photos_without_faces": self.faceless}


def face_crops(image: np.ndarray, framing: Framing, size: int, image_id: int | None = None
               ) -> tuple[list[np.ndarray], bool]:
    """The face crops pre-labeling cuts from `image` at size x size (without the wider views around faces, as
    fine-tuning's), and whether no face was found, so that the photo is taken whole instead. `image_id` names
    the project's photo `image` is, for faces the project remembers (`face_cache`)."""
    from faceparse.core.framing import prepare_array

    prepared = prepare_array(image_id, image, replace(framing, context=False), (size, size))
    return list(prepared.crops), prepared.whole_image


def _load_face_crops(store, records, framing: Framing, size: int,
                     cancelled: Callable[[], bool] | None = None) -> PretrainImages:
    """Every face crop of the records' photos, read at full size as pre-labeling reads them; a file that has
    become unreadable is skipped. Stops early when `cancelled` says so."""
    from faceparse.core.imageio import ImageLoadError, load_rgb

    images: list[np.ndarray] = []
    photos = faceless = 0
    for record in records:
        if cancelled is not None and cancelled():
            break
        try:
            photo = load_rgb(store.image_path(record.id))
        except (ImageLoadError, OSError):
            continue
        crops, whole = face_crops(photo, framing, size, record.id)
        images.extend(crops)
        photos += 1
        faceless += int(whole)
    return PretrainImages(images, photos, FACES, faceless)


def pretrain_images(store, records, size: int, framing: Framing | None = None,
                    cancelled: Callable[[], bool] | None = None) -> PretrainImages:
    """What pre-training at `size` px learns from: with a faces `framing` (`datasets.project_framing`), the
    records' face crops; else their whole photos, downscaled to twice the size."""
    if framing is not None and framing.mode == FACES:
        return _load_face_crops(store, records, framing, size, cancelled)
    images = _load_images(store, records, max_side=2 * size)
    return PretrainImages(images, len(images))


def _job_records(ctx) -> list:
    snapshot = getattr(ctx, "snapshot", None)
    val_ids = [] if snapshot is None else [s.image_id for s in snapshot.val]
    return pretrain_records(ctx.store, int(ctx.config.extra.get("pretrain_images", DEFAULT_MAX_IMAGES)), val_ids)


def pretrain_wanted(ctx) -> bool:
    """"auto" pre-trains a parser whose body has learned nothing about faces yet, when the folder has enough faces
    that pre-training may use."""
    from faceparse.models.registry import get_architecture

    if ctx.config.task != "parser" or ctx.start is None or ctx.start.kind not in ("imagenet", "scratch"):
        return False
    if not hasattr(ctx.model, "encoder") or get_architecture(ctx.config.network).task != "parser":
        return False
    return len(_job_records(ctx)) >= min_images(ctx.config, asked=False)


def pretrain_problem(store, config) -> str | None:
    """Why pre-training asked for with `config` cannot run on this project, or None; said before a job starts
    rather than after it has read every face and measured the active model."""
    from faceparse.models.registry import get_architecture

    spec = get_architecture(config.network)
    if spec.task != "parser":
        return (f"masked pre-training needs a face parser network, and {config.task} training uses {spec.name!r}, "
                f"a {spec.task} network")
    needed = min_images(config, asked=True)
    found = len(pretrain_records(store, int(config.extra.get("pretrain_images", DEFAULT_MAX_IMAGES))))
    if found < needed:
        return (f"masked pre-training needs at least {needed} images outside the validation split, and "
                f"{store.root} has {found}")
    return None


def pretrain_phase(ctx) -> None:
    """Masked pre-training of the start network's body on the project's images, inside a retrain job. Reading
    the photos and finding their faces counts against its share of the job's time limit, as the steps do."""
    extra = ctx.config.extra
    size = ctx.config.input_size
    started = time.monotonic()
    try:
        pictures = _job_images(ctx)
    finally:
        ctx.pretrain_seconds = time.monotonic() - started
    images = pictures.images
    budget = ctx.config.time_limit_s
    share = None if budget is None else max(0.0, budget * PRETRAIN_SHARE_OF_TIME_LIMIT - ctx.pretrain_seconds)
    config = PretrainConfig(architecture=ctx.config.network, input_size=size,
                            steps=int(extra.get("pretrain_steps", 300)), batch_size=ctx.config.batch_size,
                            seed=ctx.config.seed, min_images=min_images(ctx.config, asked=True),
                            time_limit_s=share)
    net = MaskedPretrainNet.from_parser(ctx.model, ctx.config.network, **ctx.arch_args)
    done = [0]

    def on_event(event: dict) -> None:
        done[0] = event["step"]
        ctx.emit("pretrain", f"masked pre-training step {event['step']}/{event['total']}",
                 step=event["step"], total=event["total"], loss=event["loss"], eta_s=event["eta_s"])
        if ctx.cancelled():
            ctx.cancel_event.set()

    try:
        masked_pretrain(images, config, on_event=on_event, cancel=ctx.cancel_event, net=net, device=ctx.device)
    except InterruptedError:
        ctx.check_cancel()
        raise
    finally:
        ctx.pretrain_seconds = time.monotonic() - started
    transfer_pretrained_body(net, ctx.model)
    cut = f" of {config.steps} (time limit)" if done[0] < config.steps else ""
    ctx.note(f"masked pre-training: {done[0]} steps{cut} on {pictures.describe()} at {size} px; "
             f"{pictures.framing_words()}")


def _job_images(ctx) -> PretrainImages:
    """The job's pre-training pictures, framed as the project pre-labels; says how many, and of what."""
    from faceparse.core.datasets import project_framing

    framing = project_framing(ctx.store)
    if framing is not None:
        ctx.emit("pretrain", "finding the faces in the photos for masked pre-training, as pre-labeling does")
    records = _job_records(ctx)
    pictures = pretrain_images(ctx.store, records, ctx.config.input_size, framing, ctx.cancelled)
    ctx.check_cancel()
    ctx.store.note_pretrained_on(record.id for record in records)
    ctx.emit("pretrain", f"masked pre-training on {pictures.describe()}; {pictures.framing_words()}",
             **pictures.summary())
    return pictures
