"""How unsure the model was about an image: one number per image, used to order the annotator's work.

Images the model is least sure about are the ones a correction teaches it most, so the queue can put them first.
The score is the mean per-pixel uncertainty over the faces: normalised entropy of the class probabilities (0 = one
class certain, 1 = all classes equally likely) or one minus the margin between the two most likely classes. Only
pixels the model labeled as some part of a face count, so a small face in a large crop is not drowned out by easy
background; a face where nothing was found counts all its pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

METHODS = ("entropy", "margin")
FACELESS_UNCERTAINTY = 1.0
"""The uncertainty of a photo framed face by face in which no face was found (the top of the 0-1 scale)."""
_EPS = 1e-12


def pixel_uncertainty(probs: np.ndarray, method: str = "entropy") -> np.ndarray:
    """Per-pixel uncertainty in [0, 1] from C×H×W class probabilities."""
    if method not in METHODS:
        raise ValueError(f"uncertainty method must be one of {', '.join(METHODS)}, got {method!r}")
    p = np.asarray(probs, dtype=np.float32)
    classes = p.shape[0]
    if method == "entropy":
        entropy = -(p * np.log(np.maximum(p, _EPS))).sum(axis=0)
        return np.clip(entropy / np.log(classes), 0.0, 1.0)
    top2 = np.partition(p, classes - 2, axis=0)[classes - 2:]
    return np.clip(1.0 - (top2[1] - top2[0]), 0.0, 1.0)


@dataclass(frozen=True)
class FaceUncertainty:
    """A face's mean uncertainty and how many image pixels it stands for (its weight in the image's mean)."""

    mean: float
    weight: float


def face_uncertainty(probs: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None,
                     pixel_area: float = 1.0, method: str = "entropy") -> FaceUncertainty:
    """Mean uncertainty over the pixels labeled as face parts (all valid pixels if there are none).

    probs: C×h×w probabilities; labels: h×w predicted classes at the same pixels; valid: h×w, False where the crop
    showed padding rather than the picture; pixel_area: image pixels per probability pixel.
    """
    values = pixel_uncertainty(probs, method)
    inside = np.ones(values.shape, bool) if valid is None else np.asarray(valid, bool)
    face = inside & (np.asarray(labels) != 0)
    chosen = face if face.any() else inside
    count = int(chosen.sum())
    if count == 0:
        return FaceUncertainty(0.0, 0.0)
    return FaceUncertainty(float(values[chosen].mean()), count * float(pixel_area))


def image_uncertainty(faces: Iterable[FaceUncertainty]) -> float | None:
    """Pixel-weighted mean over an image's faces; None when nothing was scored."""
    total = weighted = 0.0
    for face in faces:
        total += face.weight
        weighted += face.weight * face.mean
    return weighted / total if total > 0 else None


def uncertainty_words(value: float | None, predicted_with: str | None) -> str:
    """An image's uncertainty as the studio shows it; a photo framed face by face where no face was found says so,
    since its mask is the whole photo parsed as one face."""
    if value is None:
        return ""
    if value >= FACELESS_UNCERTAINTY and (predicted_with or "").startswith("faces"):
        return f"uncertainty {value:.3f}: no face found, the whole photo parsed as one"
    return f"uncertainty {value:.3f}"
