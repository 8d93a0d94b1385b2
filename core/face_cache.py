"""The faces of a project's photos, found once: a photo whose file has not changed is not searched again.

A project that pre-labels face by face frames its photos by the faces a detector finds in them, at every
pre-labelling run, every retrain's snapshot, every masked pre-training and every `faceparse eval`, and the Haar
cascades cost more than decoding the photo. `CachedFaceDetector` keeps what its detector found in the project's
database (`ProjectStore.face_boxes`), under the image, the photo's content hash (a replaced photo is searched again,
one whose time alone changed is not) and the detector's `signature()` (other settings search again). A detector
that has no signature is never cached: nothing would tell when its settings changed.

A detector's `detect(image)` is given only the pixels, so the photo is named by `detect_for(image_id, image)`;
`framing.prepare_array` calls it with its `key`, which is then the project's image id. Each thread reads and
writes through its own connection to the store, so the prediction pipeline's readers may share one cache.
"""

from __future__ import annotations

import contextlib
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
        """The faces of the project's image `image_id`, decoded whole as `image`: the ones found before in this
        photo, else found now and remembered. A database that cannot be read or written just now only costs
        the search."""
        if image_id is None or self.signature is None:
            return self.detector.detect(image)
        size = (image.shape[1], image.shape[0])
        photo = boxes = None
        with contextlib.suppress(ProjectError, sqlite3.Error):
            photo = self.store.photo_hash(image_id)
            if photo is not None:
                boxes = self.store.face_boxes(image_id, self.signature, photo, size)
        if boxes is not None:
            return [tuple(box) for box in boxes]
        faces = self.detector.detect(image)
        if photo is not None:
            with contextlib.suppress(ProjectError, sqlite3.Error):
                self.store.save_face_boxes(image_id, self.signature, photo, size,
                                           [[_plain(v) for v in face] for face in faces])
        return faces
