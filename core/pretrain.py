"""Masked self-supervised pre-training on unlabeled faces (seeds 000 and 001).

Random square patches are blanked inside the central region of each face (the middle two thirds, where the
facial parts are), and the parser's body learns to paint them back through a one-convolution reconstruction head;
the loss counts only the central region. The papers mask 128 patches of 32-64 px per 480-512 px image; at other
input sizes the patch size scales with the image, so the same fraction of the face is hidden. The learned body then
starts fine-tuning with a fresh face-parsing head (`MaskedPretrainNet.make_parser`).

Use `masked_pretrain(...)` directly, or as the optional first phase of a retrain job.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from faceparse.core.augment import AugmentConfig, augment_pair, to_tensor_array
from faceparse.models.heads import MaskedPretrainNet
from faceparse.models.losses import central_reconstruction_loss

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
                    cancel: threading.Event | None = None, **arch_args) -> MaskedPretrainNet:
    """Pre-train a parser body on unlabeled RGB images; returns the network (body + reconstruction head).

    Raises ValueError when there are too few images to be worth it, and InterruptedError when cancelled.
    """
    if len(images) < config.min_images:
        raise ValueError(f"masked pre-training needs at least {config.min_images} images, got {len(images)}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = MaskedPretrainNet(config.architecture, pretrained=config.imagenet_init, **arch_args)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    warmup = max(1, config.steps // 20)
    started = time.monotonic()
    for step in range(config.steps):
        if cancel is not None and cancel.is_set():
            raise InterruptedError("masked pre-training cancelled")
        lr = config.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        pick = rng.integers(0, len(images), config.batch_size)
        masked, original = masked_batch([images[i] for i in pick], rng, config)
        loss = central_reconstruction_loss(net(masked), original)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_event is not None:
            elapsed = time.monotonic() - started
            on_event({"phase": "pretrain", "step": step + 1, "total": config.steps, "loss": float(loss.item()),
                      "eta_s": elapsed / (step + 1) * (config.steps - step - 1), "metrics": None, "message": None})
    net.eval()
    return net
