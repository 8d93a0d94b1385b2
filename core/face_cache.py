"""The faces of a project's photos, found once: a photo whose file has not changed is not searched again.

A project that pre-labels face by face frames its photos by the faces a detector finds in them, at every
pre-labeling run, every retrain's snapshot, every masked pre-training and every `faceparse eval`, and the Haar
cascades cost more than decoding the photo. `CachedFaceDetector` keeps what its detector found in the project's
database (`ProjectStore.face_boxes`), under the image, a digest of the picture's decoded pixels and the detector's
`signature()`. The digest is of what was searched, not of the file: a photo replaced or turned (EXIF) while it was
read is never given another picture's faces, and one whose time alone changed is not searched again. Other detector
settings search again. One entry per image is kept. A detector that has no signature is never cached: nothing would
tell when its settings changed.

A detector's `detect(image)` is given only the pixels, so the photo is named by `detect_for(image_id, image)`;
`framing.prepare_array` calls it with its `key`, which is then the project's image id. Each thread reads and
writes through its own connection to the store, so the prediction pipeline's readers may share one cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from typing import Any

import numpy as np
from faceparse.core.faces import Box, FaceDetector
from faceparse.core.store import ProjectError, ProjectStore


def _plain(value: Any) -> Any:
    """A box coordinate JSON can hold (numpy scalars become Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


class CachedFaceDetector:
    """`detector` with what it found remembered in `store`, per photo (see the module docstring)."""

    def __init__(self, store: ProjectStore, detector: FaceDetector):
        self.store = store
        self.detector = detector
        signature = getattr(detector, "signature", None)
        self.signature: str | None = signature() if callable(signature) else None

    def detect(self, image: np.ndarray) -> list[Box]:
        """The detector's faces, not remembered: nothing says which photo this is."""
        return self.detector.detect(image)

    def detect_for(self, image_id: int | None, image: np.ndarray) -> list[Box]:
        """The faces of the project's image `image_id`, decoded as `image`: the ones found before in this very
        picture, else found now and remembered. A database that cannot be read or written just now only costs
        the search."""
        if image_id is None or self.signature is None:
            return self.detector.detect(image)
        pixels = pixels_digest(image)
        boxes = None
        with contextlib.suppress(ProjectError, sqlite3.Error):
            boxes = self.store.face_boxes(image_id, self.signature, pixels)
        if boxes is not None:
            return [tuple(box) for box in boxes]
        faces = self.detector.detect(image)
        with contextlib.suppress(ProjectError, sqlite3.Error):
            self.store.save_face_boxes(image_id, self.signature, pixels, [[_plain(v) for v in face] for face in faces])
        return faces


def pixels_digest(image: np.ndarray) -> str:
    """What identifies a decoded picture: its shape and every pixel (hashing is a few milliseconds per photo, the
    search about a second)."""
    digest = hashlib.blake2b(repr((image.shape, image.dtype.str)).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()
