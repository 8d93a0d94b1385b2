"""Joint image/mask augmentation for training, as the face-parsing papers use it.

One affine warp does resize, rotation, scale, shift and shear at once, so an augmented sample costs two
`cv2.warpAffine` calls whatever the source size. A horizontal flip also swaps the schema's left/right classes
(a flipped left eye is a right eye), which is what keeps flip augmentation from teaching the model to confuse them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 15.0
    scale: tuple[float, float] = (0.8, 1.2)
    shift: float = 0.1
    shear: float = 0.1
    flip: bool = True
    color_jitter: float = 0.2
    ignore_index: int = 255
    reflect_masks: bool = False  # fill the mask's border like the image's (for losses that cannot ignore pixels)

    @classmethod
    def finetune(cls) -> AugmentConfig:
        return cls()

    @classmethod
    def pretrain(cls) -> AugmentConfig:
        return cls(rotation_deg=30.0, scale=(0.75, 1.25))

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(rotation_deg=0.0, scale=(1.0, 1.0), shift=0.0, shear=0.0, flip=False, color_jitter=0.0)


def affine_matrix(src_w: int, src_h: int, out_w: int, out_h: int, angle_deg: float = 0.0, scale: float = 1.0,
                  shift: tuple[float, float] = (0.0, 0.0), shear: float = 0.0, flip: bool = False) -> np.ndarray:
    """2x3 matrix mapping source pixels to an out_w x out_h output, centred, with the given transforms.

    Pixel centres are what is transformed (the centre of a w-pixel row is at (w - 1) / 2), so a flip maps column
    x to w - 1 - x exactly and a plain resize matches cv2.resize; rotating about (w / 2) instead would shift a
    flipped mask by one pixel and push a column of "ignore" in from the border.
    """
    sx, sy = out_w / src_w, out_h / src_h
    to_origin = np.array([[1, 0, -(src_w - 1) / 2], [0, 1, -(src_h - 1) / 2], [0, 0, 1]], dtype=np.float64)
    resize = np.diag([sx * scale, sy * scale, 1.0])
    if flip:
        resize[0, 0] *= -1
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    shr = np.array([[1, shear, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, (out_w - 1) / 2 + shift[0] * out_w], [0, 1, (out_h - 1) / 2 + shift[1] * out_h],
                     [0, 0, 1]])
    return (back @ rot @ shr @ resize @ to_origin)[:2]


def augment_pair(image: np.ndarray, mask: np.ndarray | None, out_size: tuple[int, int], rng: np.random.Generator,
                 config: AugmentConfig = AugmentConfig(), flip_lut: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Warp an RGB uint8 image and its index mask to `out_size` (w, h) with random transforms."""
    h, w = image.shape[:2]
    flip = bool(config.flip and rng.random() < 0.5)
    m = affine_matrix(
        w, h, out_size[0], out_size[1],
        angle_deg=rng.uniform(-config.rotation_deg, config.rotation_deg),
        scale=rng.uniform(*config.scale),
        shift=(rng.uniform(-config.shift, config.shift), rng.uniform(-config.shift, config.shift)),
        shear=rng.uniform(-config.shear, config.shear),
        flip=flip,
    )
    out_img = cv2.warpAffine(image, m, out_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    out_mask = None
    if mask is not None:
        border = cv2.BORDER_REFLECT_101 if config.reflect_masks else cv2.BORDER_CONSTANT
        out_mask = cv2.warpAffine(mask, m, out_size, flags=cv2.INTER_NEAREST, borderMode=border,
                                  borderValue=config.ignore_index)
        if flip and flip_lut is not None:
            out_mask = flip_lut[out_mask]
    if config.color_jitter > 0:
        out_img = color_jitter(out_img, rng, config.color_jitter)
    return out_img, out_mask


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast, saturation and a small hue shift."""
    img = image.astype(np.float32)
    brightness = 1 + rng.uniform(-strength, strength)
    contrast = 1 + rng.uniform(-strength, strength)
    saturation = 1 + rng.uniform(-strength, strength)
    mean = img.mean()
    img = (img - mean) * contrast + mean
    img *= brightness
    gray = img.mean(axis=2, keepdims=True)
    img = gray + (img - gray) * saturation
    img = np.clip(img, 0, 255).astype(np.uint8)
    hue = int(rng.uniform(-strength, strength) * 10)
    if hue:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + hue) % 180).astype(np.uint8)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return img


def resize_pair(image: np.ndarray, mask: np.ndarray | None, out_size: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Deterministic resize for validation."""
    img = cv2.resize(image, out_size, interpolation=cv2.INTER_AREA if out_size[0] < image.shape[1] else cv2.INTER_LINEAR)
    msk = None if mask is None else cv2.resize(mask, out_size, interpolation=cv2.INTER_NEAREST_EXACT)
    return img, msk


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor_array(image: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xHxW float32 normalised, the layout every model and ONNX export expects."""
    x = image.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
