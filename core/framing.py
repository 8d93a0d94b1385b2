"""One picture through a face parser: framing its faces as the model saw faces in training, running the model on
the crops and pasting the masks back into one mask for the picture.

`prepare_*` (decode, detect, crop) and `finish_image` (paste back, score uncertainty) are the two halves around the
model; `predict_image` chains them for one in-memory picture, and the prediction pipeline runs them in separate
threads for a folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from faceparse.core.face_cache import CachedFaceDetector
from faceparse.core.faces import (
    DEFAULT_MARGIN,
    FACES,
    MODES,
    WHOLE_IMAGE,
    CropBox,
    FaceDetector,
    HaarFaceDetector,
    crop,
    face_crop_box,
    paste_masks,
    whole_image_box,
)
from faceparse.core.imageio import load_rgb, read_size
from faceparse.core.predictor import UNCERTAINTY_STRIDE, FacePrediction, Predictor
from faceparse.core.uncertainty import (
    FACELESS_UNCERTAINTY,
    FaceUncertainty,
    face_uncertainty,
    image_uncertainty,
)

CONTEXT_MARGIN = 1.0
"""Margin of the wider view around each face (three times the face's side): hair, neck and clothes run past the
face crop, and a mask cut off at the crop's edge would leave a straight line to repaint on nearly every portrait."""
BODY_MARGIN = 2.0
"""Margin of the widest view (five times the face's side), for the body only: broad shoulders, bulky clothes and
long hair run past the wider view's sides. At this scale the face is small and the parser mistakes parts of the
clothes for face parts, so only its `BODY_CLASSES` are taken, and only where no closer view reaches."""
BODY_CLASSES = ("hair", "cloth")


def body_labels(classes: tuple[str, ...] | list[str]) -> frozenset[int]:
    """The indices of `BODY_CLASSES` among a model's classes (none for a model without them, such as a face-mask
    segmenter, which then gets no widest view)."""
    return frozenset(i for i, name in enumerate(classes) if name in BODY_CLASSES)


@dataclass(frozen=True)
class Framing:
    """How faces are cut out of a picture. In FACES mode a picture where no face is found is parsed whole; with
    `context`, a face whose crop leaves part of the picture out is also seen in a wider crop, whose mask fills in
    only the pixels no face crop covers."""

    mode: str = FACES
    detector: FaceDetector | None = None
    margin: float = DEFAULT_MARGIN
    context: bool = True
    body: frozenset[int] = frozenset()
    """The model's labels of the body (see `body_labels`): with them and `context`, a face whose wider view leaves
    part of the picture out is also seen in the widest view, which adds those labels beyond the wider view."""

    def for_model(self, classes: tuple[str, ...] | list[str]) -> Framing:
        """This framing with the body labels of a model with these classes."""
        return replace(self, body=body_labels(classes))

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == FACES and self.detector is None:
            object.__setattr__(self, "detector", HaarFaceDetector())


@dataclass
class PreparedImage:
    """A decoded picture reduced to what the model and the paste-back need: its size, its crops and where they
    came from (in the picture's own pixels)."""

    key: Any
    size: tuple[int, int]  # (width, height) of the full picture
    boxes: list[CropBox]
    crops: np.ndarray  # K×H×W×3 uint8 at the model's input size
    whole_image: bool
    context: int = 0
    """How many of the last boxes and crops are wider and widest views around faces (see `Framing`)."""
    widest: int = 0
    """How many of those (the last ones) are the widest views, whose masks give only the `body` labels."""
    body: frozenset[int] = frozenset()
    faceless: bool = False
    """Framed face by face, but no face was found: parsed whole, as one face, which is most likely wrong. Such a
    photo scores the highest uncertainty, so a queue by uncertainty shows it first."""

    @property
    def faces(self) -> int:
        return len(self.boxes) - self.context


@dataclass
class ImagePrediction:
    mask: np.ndarray  # H×W uint8 for the full picture
    uncertainty: float | None
    boxes: list[CropBox]
    whole_image: bool
    confidence: np.ndarray | None = None


def _whole(key: Any, image: np.ndarray, size: tuple[int, int], input_size: tuple[int, int]) -> PreparedImage:
    decoded = whole_image_box((image.shape[1], image.shape[0]))
    return PreparedImage(key, size, [whole_image_box(size)], crop(image, decoded, input_size)[None], True)


def prepare_array(key: Any, image: np.ndarray, framing: Framing, input_size: tuple[int, int]) -> PreparedImage:
    """Detect and crop the faces of an in-memory RGB picture. With a `CachedFaceDetector`, `key` is the project's
    image id the picture is the photo of (None: not one of the project's photos), and its faces are found once."""
    size = (image.shape[1], image.shape[0])
    if framing.mode == WHOLE_IMAGE:
        return _whole(key, image, size, input_size)
    detector = framing.detector
    assert detector is not None
    faces = detector.detect_for(key, image) if isinstance(detector, CachedFaceDetector) else detector.detect(image)
    if not faces:
        return replace(_whole(key, image, size, input_size), faceless=True)
    aspect = input_size[1] / input_size[0]
    boxes = [face_crop_box(face, framing.margin, aspect) for face in faces]
    wider: list[CropBox] = []
    widest: list[CropBox] = []
    whole = (0, 0, *size)
    if framing.context:
        around = [(face, face_crop_box(face, max(CONTEXT_MARGIN, framing.margin), aspect))
                  for face, box in zip(faces, boxes, strict=True) if box.covered_pixels(size) != whole]
        wider = [box for _, box in around]
        if framing.body:
            widest = [face_crop_box(face, max(BODY_MARGIN, framing.margin), aspect)
                      for face, box in around if box.covered_pixels(size) != whole]
    crops = np.stack([crop(image, box, input_size) for box in boxes + wider + widest])
    return PreparedImage(key, size, boxes + wider + widest, crops, False, len(wider) + len(widest), len(widest),
                         framing.body)


def prepare_file(key: Any, path: str | os.PathLike, framing: Framing, input_size: tuple[int, int]) -> PreparedImage:
    """Decode and frame one image file. Whole-image framing decodes JPEGs at a reduced scale when the model
    input is smaller than the picture (several times cheaper than decoding and then shrinking)."""
    if framing.mode != WHOLE_IMAGE:
        return prepare_array(key, load_rgb(path), framing, input_size)
    width, height = read_size(path)
    factor = max(input_size[0] / height, input_size[1] / width)
    max_side = math.ceil(max(width, height) * factor) if factor < 1.0 else None
    return _whole(key, load_rgb(path, max_side=max_side), (width, height), input_size)


def finish_image(prepared: PreparedImage, faces: list[FacePrediction], method: str = "entropy") -> ImagePrediction:
    """Paste the faces' masks into one picture-sized mask and score the picture's uncertainty."""
    indices = [face.index for face in faces]
    confidences = [face.confidence for face in faces]
    with_confidence = all(c is not None for c in confidences)
    n = prepared.faces
    boxes = prepared.boxes[:n]
    mask, conf = paste_masks(prepared.size, boxes, indices[:n], confidences[:n] if with_confidence else None)
    if prepared.context:
        _fill_outside(prepared, indices[n:], confidences[n:] if with_confidence else None, mask, conf)
    scores: list[FaceUncertainty] = []
    for box, face in zip(boxes, faces[:n], strict=True):
        if face.probs is None:
            continue
        out_size = face.index.shape[:2]
        rows, cols = box.inside_image(prepared.size, out_size, UNCERTAINTY_STRIDE)
        labels = face.index[::UNCERTAINTY_STRIDE, ::UNCERTAINTY_STRIDE]
        sx, sy = box.scale(out_size)
        area = UNCERTAINTY_STRIDE * UNCERTAINTY_STRIDE / (sx * sy)
        scores.append(face_uncertainty(face.probs, labels, rows[:, None] & cols[None, :], area, method))
    uncertainty = FACELESS_UNCERTAINTY if prepared.faceless and scores else image_uncertainty(scores)
    return ImagePrediction(mask, uncertainty, list(boxes), prepared.whole_image, conf)


def _fill_outside(prepared: PreparedImage, indices: list[np.ndarray], confidences: list[np.ndarray] | None,
                  mask: np.ndarray, conf: np.ndarray | None) -> None:
    """Paint the wider views' masks where no face crop reaches (inside the face crops, their closer views stand),
    then the widest views' body labels where no wider view reaches either."""
    n, k = prepared.faces, prepared.widest
    near = len(indices) - k
    boxes = prepared.boxes[n:n + near]
    wide, wide_conf = paste_masks(prepared.size, boxes, indices[:near], confidences[:near] if confidences else None)
    outside = ~_covered(prepared.size, prepared.boxes[:n])
    mask[outside] = wide[outside]
    if conf is not None and wide_conf is not None:
        conf[outside] = wide_conf[outside]
    if k:
        far, far_conf = paste_masks(prepared.size, prepared.boxes[n + near:], indices[near:],
                                    confidences[near:] if confidences else None)
        beyond = ~_covered(prepared.size, prepared.boxes[:n + near]) & np.isin(far, list(prepared.body))
        mask[beyond] = far[beyond]
        if conf is not None and far_conf is not None:
            conf[beyond] = far_conf[beyond]
    _continue_downward(prepared, mask, conf)


def _continue_downward(prepared: PreparedImage, mask: np.ndarray, conf: np.ndarray | None) -> None:
    """Carry what the wider views see at their bottom edge on down, by one more view's height at most; then the
    body labels at the bottom edge of the widest views, by one more of their heights.

    Below a face the body goes on: clothes (and long hair) cut off by the edge of a view would leave a straight
    line across every portrait taller than the view. A column stops at the first pixel another view covers (that
    person's own view decides there); each painted pixel takes the label and confidence of the edge pixel above
    it. The widest views do not stop the wider views' columns: they add body labels only.
    """
    views = prepared.boxes[:len(prepared.boxes) - prepared.widest]
    _carry_down(prepared, views[prepared.faces:], _covered(prepared.size, views), mask, conf)
    if prepared.widest:
        _carry_down(prepared, prepared.boxes[len(views):], _covered(prepared.size, prepared.boxes), mask, conf,
                    prepared.body)


def _carry_down(prepared: PreparedImage, boxes: list[CropBox], covered: np.ndarray, mask: np.ndarray,
                conf: np.ndarray | None, only: frozenset[int] | None = None) -> None:
    height = prepared.size[1]
    for box in boxes:
        x0, y0, x1, y1 = box.covered_pixels(prepared.size)
        if y1 >= height or x1 <= x0 or y1 <= y0:
            continue
        below = slice(y1, min(height, y1 + (y1 - y0)))
        edge = _without_narrow_runs(mask[y1 - 1, x0:x1], max(3, (x1 - x0) // 32))
        if only is not None:
            edge = np.where(np.isin(edge, list(only)), edge, 0).astype(edge.dtype)
        reached = ~np.logical_or.accumulate(covered[below, x0:x1], axis=0)
        fill = reached & (mask[below, x0:x1] == 0) & (edge != 0)
        np.copyto(mask[below, x0:x1], np.broadcast_to(edge, fill.shape), where=fill)
        if conf is not None:
            np.copyto(conf[below, x0:x1], np.broadcast_to(conf[y1 - 1, x0:x1], fill.shape), where=fill)


def _covered(size: tuple[int, int], boxes: list[CropBox]) -> np.ndarray:
    """H×W: the picture's pixels (size = width, height) that one of `boxes` covers."""
    covered = np.zeros((size[1], size[0]), bool)
    for box in boxes:
        x0, y0, x1, y1 = box.covered_pixels(size)
        covered[y0:y1, x0:x1] = True
    return covered


def _without_narrow_runs(row: np.ndarray, min_width: int) -> np.ndarray:
    """The row with every run of one label narrower than `min_width` given the label of the runs around it (the
    wider one's, when they differ): a strand of hair or a speck at the edge would otherwise become a thin stripe
    down the picture, and a gap left in its place (or a narrow gap of background between labels) a thin
    unlabeled line through the clothes."""
    out = row.copy()
    starts = np.flatnonzero(np.diff(row, prepend=np.int64(row[0]) + 1) != 0)
    ends = np.append(starts[1:], len(row))
    widths = ends - starts
    labels = row[starts]
    for i in np.flatnonzero(widths < min_width):
        before = i - 1 if i > 0 else None
        after = i + 1 if i + 1 < len(starts) else None
        if (before is None or after is None) and labels[i] == 0:
            continue  # background at the row's end is no gap

        if before is None or (after is not None and widths[after] > widths[before]):
            before = after
        out[starts[i]:ends[i]] = labels[before]
    return out


def predict_image(image: np.ndarray, predictor: Predictor, framing: Framing | None = None,
                  method: str = "entropy", key: Any = None) -> ImagePrediction:
    """The full-picture mask of one in-memory RGB picture (synchronous: for one image, not a folder); `key` is the
    project's image id of the picture, for a framing that remembers faces (see `prepare_array`)."""
    prepared = prepare_array(key, image, (framing or Framing()).for_model(predictor.info.classes), predictor.input_size)
    return finish_image(prepared, predictor.predict(prepared.crops), method)
