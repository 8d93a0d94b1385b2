"""Reading an image and its masks ahead of time, so moving to the next image does not wait for the decoder.

Decoding a large JPEG and two PNG masks is most of the cost of switching images. While the annotator works on one
image, the neighbours in the list are read on a background thread into a small cache. A cached mask is used only if
its file is still the one that was read (same inode, mtime and size), and likewise the photo, so a save, a prediction,
an edit or a retouched photo made elsewhere is never hidden by a stale copy.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from faceparse.core.imageio import ImageLoadError, load_rgb
from faceparse.core.store import ImageRecord, ProjectError, ProjectStore
from PySide6.QtGui import QImage

from .workers import TaskRunner

MAX_CACHED = 4
Stamp = tuple[int, int, int] | None


@dataclass
class ImageBundle:
    record: ImageRecord
    photo: QImage  # RGB32, ready to become a pixmap without conversion
    shape: tuple[int, int]
    corrected: np.ndarray | None
    predicted: np.ndarray | None
    stamps: tuple[Stamp, Stamp]
    photo_seen: tuple[int, int] | None = None
    """The photo file's (byte size, time) when it was read: a save tells the store which photo the mask is for."""
    photo_stamp: Stamp = None
    """The photo file's stamp when it was read: a photo retouched since is read again, not shown as it was."""


def _stamp(path: os.PathLike) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def mask_stamps(store: ProjectStore, image_id: int) -> tuple[Stamp, Stamp]:
    return _stamp(store.mask_path("corrected", image_id)), _stamp(store.mask_path("predicted", image_id))


def photo_image(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)


def read_bundle(store: ProjectStore, image_id: int) -> ImageBundle:
    """Everything needed to show an image; raises ImageLoadError/ProjectError like the calls it makes."""
    record = store.get(image_id)
    if record is None:
        raise ProjectError(f"image {image_id} is no longer in the project")
    stamps = mask_stamps(store, image_id)
    photo = _stamp(store.root / record.relpath)
    rgb = load_rgb(store.root / record.relpath)
    corrected = store.corrected_mask(image_id)
    predicted = store.predicted_mask(image_id)
    return ImageBundle(record, photo_image(rgb), rgb.shape[:2], corrected, predicted, stamps,
                       None if photo is None else (photo[2], photo[1]), photo)


@dataclass
class BrokenPhoto:
    """A prefetch that found the photo does not decode; `record` carries the error now in the index."""

    image_id: int
    record: ImageRecord | None


def read_ahead(store: ProjectStore, image_id: int) -> ImageBundle | BrokenPhoto:
    """`read_bundle` for a neighbour nobody has asked to see yet: a photo that fails to decode is an expected
    outcome (its error is recorded for the list's badge), not a failure of the background task."""
    try:
        return read_bundle(store, image_id)
    except ImageLoadError as e:
        return BrokenPhoto(image_id, store.note_load_error(image_id, e))


class PrefetchCache:
    """`on_broken(record)` hears of photos the read-ahead found broken, with their updated records."""

    def __init__(self, store: ProjectStore, runner: TaskRunner,
                 on_broken: Callable[[ImageRecord], None] | None = None):
        self.store = store
        self.runner = runner
        self.on_broken = on_broken
        self._bundles: OrderedDict[int, ImageBundle] = OrderedDict()
        self._loading: set[int] = set()

    def prefetch(self, image_ids: list[int]) -> None:
        for image_id in image_ids:
            if image_id in self._bundles or image_id in self._loading:
                continue
            self._loading.add(image_id)
            self.runner.start(lambda _r, _c, i=image_id, store=self.store: read_ahead(store, i), self._loaded,
                              lambda _msg, i=image_id: self._loading.discard(i))

    def _loaded(self, bundle: ImageBundle | BrokenPhoto) -> None:
        if isinstance(bundle, BrokenPhoto):
            self._loading.discard(bundle.image_id)
            if bundle.record is not None and self.on_broken is not None:
                self.on_broken(bundle.record)
            return
        self._loading.discard(bundle.record.id)
        self._bundles[bundle.record.id] = bundle
        while len(self._bundles) > MAX_CACHED:
            self._bundles.popitem(last=False)

    def take(self, image_id: int) -> ImageBundle | None:
        """The cached bundle if its photo and masks are still the files on disk; it leaves the cache either way.

        The record is read again (before the stamps, as a save writes its file before its record): a status change
        such as a review touches no mask file, so the stamps cannot see it."""
        bundle = self._bundles.pop(image_id, None)
        if bundle is None:
            return None
        record = self.store.get(image_id)
        if (record is None or bundle.stamps != mask_stamps(self.store, image_id)
                or bundle.photo_stamp != _stamp(self.store.root / record.relpath)):
            return None
        return replace(bundle, record=record)

    def forget(self, image_id: int) -> None:
        self._bundles.pop(image_id, None)

    def clear(self) -> None:
        self._bundles.clear()
