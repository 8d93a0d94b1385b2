"""Faces in photos: finding them, framing each as the model saw faces in training, and putting the masks back.

The parser was trained on face-centred crops, so a photo is parsed face by face: each detected face becomes a crop
with a fixed margin, shaped like the model's input (square for the starter models) and resized to it, and each
predicted mask is mapped back through the same geometry into one mask for the whole photo. Folders of aligned face crops (CelebAMask-HQ style) skip detection and
use the whole picture as the one crop ("whole image" mode).

Geometry uses continuous pixel coordinates (pixel i spans [i, i+1)), so a crop box may be fractional and may extend
past the image edge; the part outside is filled with black. Detection is behind the `FaceDetector` protocol so a
better detector, or a test's known boxes, can replace the Haar cascades.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

Box = tuple[int, int, int, int]
"""A face in image pixels: (x0, y0, x1, y1), x1 and y1 exclusive."""

FACES = "faces"
WHOLE_IMAGE = "whole_image"
MODES = (FACES, WHOLE_IMAGE)
DEFAULT_MARGIN = 0.5
"""Crop side = face side × (1 + 2·margin): the face with its hair, ears and neck, as in aligned training crops."""


class FaceDetector(Protocol):
    """Anything that finds faces in an H×W×3 uint8 RGB image; boxes in that image's pixels, largest first."""

    def detect(self, image: np.ndarray) -> list[Box]: ...


@dataclass(frozen=True)
class CropBox:
    """The region of an image (continuous coordinates, may extend outside it) that fills one model input."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    def scale(self, out_size: tuple[int, int]) -> tuple[float, float]:
        """(sx, sy): crop pixels per image pixel for an output of `out_size` = (height, width)."""
        return out_size[1] / self.width, out_size[0] / self.height

    def image_to_crop(self, out_size: tuple[int, int]) -> np.ndarray:
        """2×3 affine taking image pixel indices to crop pixel indices (pixel centres to pixel centres)."""
        sx, sy = self.scale(out_size)
        return np.array([[sx, 0.0, 0.5 * sx - 0.5 - self.x0 * sx],
                         [0.0, sy, 0.5 * sy - 0.5 - self.y0 * sy]], dtype=np.float64)

    def covered_pixels(self, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the image pixels whose centres fall inside the box; image_size = (width, height)."""
        w, h = image_size
        x0 = min(max(math.ceil(self.x0 - 0.5), 0), w)
        y0 = min(max(math.ceil(self.y0 - 0.5), 0), h)
        x1 = min(max(math.ceil(self.x1 - 0.5), x0), w)
        y1 = min(max(math.ceil(self.y1 - 0.5), y0), h)
        return x0, y0, x1, y1

    def inside_image(self, image_size: tuple[int, int], out_size: tuple[int, int], stride: int = 1
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Which crop rows and columns (every `stride`-th) show the image rather than the black border."""
        sx, sy = self.scale(out_size)
        cols = self.x0 + (np.arange(0, out_size[1], stride) + 0.5) / sx
        rows = self.y0 + (np.arange(0, out_size[0], stride) + 0.5) / sy
        return (rows >= 0) & (rows < image_size[1]), (cols >= 0) & (cols < image_size[0])


def face_crop_box(face: Box, margin: float = DEFAULT_MARGIN, aspect: float = 1.0) -> CropBox:
    """A box centred on the face whose shorter side is the face's longer side plus `margin` of it on every side.

    `aspect` (width / height) is the model input's: a square for square inputs, and for a model that takes, say,
    384×512 portraits a box of that shape widened or heightened around the face, so the crop's resize scales
    both axes alike and the face is never stretched."""
    if not aspect > 0:
        raise ValueError(f"aspect must be positive, got {aspect!r}")
    x0, y0, x1, y1 = face
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    half_w, half_h = (side * aspect / 2.0, side / 2.0) if aspect >= 1.0 else (side / 2.0, side / aspect / 2.0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return CropBox(cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def whole_image_box(image_size: tuple[int, int]) -> CropBox:
    """The whole picture as one crop (stretched to the model's input if it is not square)."""
    return CropBox(0.0, 0.0, float(image_size[0]), float(image_size[1]))


def crop(image: np.ndarray, box: CropBox, out_size: tuple[int, int]) -> np.ndarray:
    """The box resampled to `out_size` (height, width); strong reductions are area-averaged first, not aliased.

    The whole picture is resized exactly as training resizes it, so its edges carry no fringe from outside it."""
    h, w = image.shape[:2]
    if box == whole_image_box((w, h)):
        if (h, w) == tuple(out_size):
            return image.copy()
        shrinking = out_size[0] < h and out_size[1] < w
        return cv2.resize(image, (out_size[1], out_size[0]),
                          interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    matrix = box.image_to_crop(out_size)
    sx, sy = box.scale(out_size)
    k = int(math.floor(min(1.0 / sx, 1.0 / sy)))
    if k >= 2:
        # the reduced region reaches two blocks past the box, so every sample point has picture on both sides;
        # a last partial block at the picture's edge is completed by repeating the edge, not by black
        x0, y0, x1, y1 = box.covered_pixels((w, h))
        x0, y0 = max(0, x0 - 2 * k), max(0, y0 - 2 * k)
        x1, y1 = min(w, x1 + 2 * k), min(h, y1 + 2 * k)
        if x1 > x0 and y1 > y0:
            region = image[y0:y1, x0:x1]
            pad_x, pad_y = -(x1 - x0) % k, -(y1 - y0) % k
            if pad_x or pad_y:
                region = cv2.copyMakeBorder(region, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
            image = cv2.resize(region, (region.shape[1] // k, region.shape[0] // k), interpolation=cv2.INTER_AREA)
            # a reduced pixel j stands for image pixels x0 + k·j … x0 + k·j + k − 1
            matrix = matrix @ np.array([[k, 0.0, x0 + (k - 1) / 2.0], [0.0, k, y0 + (k - 1) / 2.0], [0, 0, 1]])
    else:
        # warp from the part of the picture around the box: OpenCV's warp refuses sides of 32767 px and more
        x0, y0, x1, y1 = box.covered_pixels((w, h))
        x0, y0, x1, y1 = max(0, x0 - 2), max(0, y0 - 2), min(w, x1 + 2), min(h, y1 + 2)
        if x1 > x0 and y1 > y0:
            image = image[y0:y1, x0:x1]
            matrix = matrix @ np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0, 0, 1]])
    return cv2.warpAffine(image, matrix, (out_size[1], out_size[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _resample(values: np.ndarray, box: CropBox, image_size: tuple[int, int], region: tuple[int, int, int, int],
              interpolation: int) -> np.ndarray:
    """A crop-sized map brought back onto the image pixels of `region`."""
    x0, y0, x1, y1 = region
    if box == whole_image_box(image_size):  # the common whole-image case: a plain resize, several times faster
        exact = cv2.INTER_NEAREST_EXACT if interpolation == cv2.INTER_NEAREST else interpolation
        return cv2.resize(values, (x1 - x0, y1 - y0), interpolation=exact)
    matrix = box.image_to_crop(values.shape[:2])
    matrix[:, 2] += matrix[:, 0] * x0 + matrix[:, 1] * y0
    return cv2.warpAffine(values, matrix, (x1 - x0, y1 - y0), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def paste_masks(image_size: tuple[int, int], boxes: Sequence[CropBox], indices: Sequence[np.ndarray],
                confidences: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One H×W mask from per-crop masks (and, if given, one confidence map).

    Where crops overlap, a pixel takes the label of the crop it lies most centrally in (its distance from the
    crop's centre over the crop's size): each face keeps its own features against a neighbour's crop, which
    reaches over it with the neighbour's hair or collar, and a face inside a bigger one's crop keeps its own. A
    crop's background never erases another face. Pixels no crop covers are background with confidence 1.
    """
    w, h = image_size
    mask = np.zeros((h, w), np.uint8)
    conf = None if confidences is None else np.ones((h, w), np.float32)
    labelled_at = np.full((h, w), np.inf, np.float32)  # centrality of the crop each label came from
    seen_at = np.full((h, w), np.inf, np.float32)  # of the most central crop covering the pixel at all
    for i, (box, index) in enumerate(zip(boxes, indices, strict=True)):
        x0, y0, x1, y1 = box.covered_pixels(image_size)
        if x1 <= x0 or y1 <= y0:
            continue
        part = _resample(index, box, image_size, (x0, y0, x1, y1), cv2.INTER_NEAREST)
        here = _centrality(box, (x0, y0, x1, y1))
        label_d, seen_d = labelled_at[y0:y1, x0:x1], seen_at[y0:y1, x0:x1]
        takes = (part != 0) & (here < label_d)
        if conf is not None and confidences is not None:
            part_conf = _resample(confidences[i].astype(np.float32, copy=False), box, image_size, (x0, y0, x1, y1),
                                  cv2.INTER_LINEAR)
            np.copyto(conf[y0:y1, x0:x1], part_conf, where=takes | (np.isinf(label_d) & (part == 0) & (here < seen_d)))
        np.copyto(mask[y0:y1, x0:x1], part, where=takes)
        np.copyto(label_d, here, where=takes)
        np.minimum(seen_d, here, out=seen_d)
    return mask, conf


def _centrality(box: CropBox, region: tuple[int, int, int, int]) -> np.ndarray:
    """For the image pixels of `region`: how far each lies from the crop's centre, in halves of the crop's side
    (0 at the centre, 1 on its edge), the larger of the two axes."""
    x0, y0, x1, y1 = region
    cx, cy = (box.x0 + box.x1) / 2.0, (box.y0 + box.y1) / 2.0
    dx = np.abs(np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) / max(box.width / 2.0, 1e-6)
    dy = np.abs(np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) / max(box.height / 2.0, 1e-6)
    return np.maximum(dy[:, None], dx[None, :])


# --- detection -------------------------------------------------------------------------------------------------

def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: 1 when one box holds the other."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def merge_boxes(boxes: Iterable[Box], overlap: float = 0.4) -> list[Box]:
    """Drop boxes that overlap an earlier one (the same face found twice); earlier boxes have priority."""
    kept: list[Box] = []
    for box in boxes:
        if all(_overlap(box, other) <= overlap for other in kept):
            kept.append(box)
    return kept


def _by_area(boxes: Iterable[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


class HaarFaceDetector:
    """OpenCV's frontal and profile Haar cascades (shipped with OpenCV, so detection works offline).

    The picture is shrunk to `max_side` first: cascades cost grows with the pixel count and faces worth parsing
    are large. Profiles are searched in the picture and its mirror (the cascade only knows one side). Each thread
    gets its own cascades, since a cascade object must not be used by two threads at once.
    """

    FRONTAL = "haarcascade_frontalface_alt2.xml"
    PROFILE = "haarcascade_profileface.xml"
    DETECTION_VERSION = 2
    """Raise it with any change to what `detect` does with the cascades' hits (merging, equalising, the mirrored
    profile pass): projects remember faces under the `signature`, and the old ones must not be served."""

    def __init__(self, max_side: int = 800, min_face: int = 24, scale_factor: float = 1.1, min_neighbors: int = 4,
                 profile: bool = True, cascade_dir: str | os.PathLike | None = None):
        self.max_side = int(max_side)
        self.min_face = int(min_face)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.profile = bool(profile)
        self.cascade_dir = Path(cascade_dir) if cascade_dir is not None else Path(cv2.data.haarcascades)
        self._local = threading.local()
        self._cascades()  # fail now, not in a worker thread, if the files are missing

    def signature(self) -> str:
        """Everything the boxes depend on, in words: faces found with another setting, other cascade files or
        another OpenCV are not the faces this detector finds (see `face_cache`)."""
        cascades = "opencv" if self.cascade_dir == Path(cv2.data.haarcascades) else str(self.cascade_dir)
        return (f"{type(self).__name__}/{self.DETECTION_VERSION}(max_side={self.max_side}, "
                f"min_face={self.min_face}, scale_factor={self.scale_factor!r}, min_neighbors={self.min_neighbors}, "
                f"profile={self.profile}, cascades={cascades}:{self.FRONTAL},{self.PROFILE}, "
                f"opencv={cv2.__version__})")

    def _cascades(self) -> tuple[cv2.CascadeClassifier, cv2.CascadeClassifier | None]:
        cascades = getattr(self._local, "cascades", None)
        if cascades is None:
            loaded = []
            for name in (self.FRONTAL, self.PROFILE if self.profile else None):
                if name is None:
                    loaded.append(None)
                    continue
                path = self.cascade_dir / name
                cascade = cv2.CascadeClassifier(str(path))
                if cascade.empty():
                    raise RuntimeError(f"cannot load the face detector cascade {path}")
                loaded.append(cascade)
            cascades = self._local.cascades = tuple(loaded)
        return cascades  # type: ignore[return-value]

    def _find(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> list[Box]:
        found = cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                         minSize=(self.min_face, self.min_face))
        return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)]

    def detect(self, image: np.ndarray) -> list[Box]:
        """The faces, largest first. A large photo where none is found at `max_side` is searched again at twice
        that size: a face a few percent of a big photo's width is below the cascade's smallest window once the
        photo is shrunk, and a photo without faces is parsed whole, as if it were one."""
        h, w = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        factor = min(1.0, self.max_side / max(h, w))
        found = self._detect_at(gray, factor)
        if not found and factor < 1.0:
            found = self._detect_at(gray, min(1.0, 2 * factor))
        return found

    def _detect_at(self, gray: np.ndarray, factor: float) -> list[Box]:
        h, w = gray.shape[:2]
        if factor < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * factor)), max(1, round(h * factor))),
                              interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        frontal, profile = self._cascades()
        boxes = self._find(frontal, gray)
        if profile is not None:
            boxes += self._find(profile, gray)
            gw = gray.shape[1]
            boxes += [(gw - x1, y0, gw - x0, y1) for x0, y0, x1, y1 in self._find(profile, gray[:, ::-1].copy())]
        merged = merge_boxes(boxes)
        scaled = [(min(w, max(0, round(x0 / factor))), min(h, max(0, round(y0 / factor))),
                   min(w, max(0, round(x1 / factor))), min(h, max(0, round(y1 / factor)))) for x0, y0, x1, y1 in merged]
        return _by_area(b for b in scaled if b[2] > b[0] and b[3] > b[1])


def is_centred_portrait(face: Box, image_size: tuple[int, int], offset: float = 0.15, min_side: float = 0.2) -> bool:
    """One face near the middle, filling a fair part of the picture: what an aligned face crop looks like."""
    w, h = image_size
    cx, cy = (face[0] + face[2]) / 2.0, (face[1] + face[3]) / 2.0
    side = max(face[2] - face[0], face[3] - face[1])
    return abs(cx - w / 2.0) <= offset * w and abs(cy - h / 2.0) <= offset * h and side >= min_side * min(w, h)


def suggest_mode(images: Iterable[np.ndarray], detector: FaceDetector) -> tuple[str, str]:
    """(mode, reason) for a folder, from a sample of its pictures.

    Aligned crops show one centred face, or none the detector recognises (tight crops cut off the context Haar
    needs); anything else — several faces, off-centre or small faces — means photos to be parsed face by face.
    One such photo is enough: faces mode costs crops little, and parsing a group photo whole costs it most of its
    faces. Faces much smaller than the largest in a picture are left out of the count: a detector's false find in
    a crop's background looks so, and a portrait with a small face far behind it parses well whole.
    """
    seen = faceless = centred = 0
    for image in images:
        seen += 1
        faces = _comparable(detector.detect(image))
        if not faces:
            faceless += 1
        elif len(faces) == 1 and is_centred_portrait(faces[0], (image.shape[1], image.shape[0])):
            centred += 1
        else:
            what = "a face off-centre or small in the picture" if len(faces) == 1 else f"{len(faces)} faces"
            return FACES, (f"image {seen} of the sample has {what}, not one face filling the frame as an aligned crop "
                           "does; parsing face by face")
    if seen == 0:
        return FACES, "no readable images to judge by; parsing face by face"
    return WHOLE_IMAGE, (f"{seen} sampled images show one centred face ({centred}) or none found ({faceless}); "
                         "treating the folder as aligned face crops")


COMPARABLE_FACE = 1 / 3
"""A face whose side is under this share of the largest face's in the same picture is not counted when judging
whether the folder holds photos or aligned crops."""


def _comparable(faces: list[Box]) -> list[Box]:
    if len(faces) < 2:
        return list(faces)
    sides = [max(f[2] - f[0], f[3] - f[1]) for f in faces]
    largest = max(sides)
    return [f for f, side in zip(faces, sides, strict=True) if side >= COMPARABLE_FACE * largest]
