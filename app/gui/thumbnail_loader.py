"""Thumbnails for the image list, made on a background thread only for the rows the list actually draws.

The list asks for a thumbnail while painting a row; a miss queues the record and returns None, and `ready` fires
when the picture exists. Requests are served newest first and the queue is short, so flinging the scroll bar through
100,000 images never builds a backlog of rows that are already off screen. Decoded thumbnails stay in a small LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from faceparse.core.imageio import ImageLoadError
from faceparse.core.store import ImageRecord
from faceparse.core.thumbnails import ThumbnailCache
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

MAX_PENDING = 128
MAX_CACHED = 2000
FAILED = QImage()


def _to_qimage(rgb: np.ndarray, side: int) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def _photo_key(record: ImageRecord) -> tuple:
    return record.id, record.relpath, record.size_bytes, record.mtime_ns


class _Drain(QRunnable):
    def __init__(self, loader: ThumbnailLoader):
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        self.loader._drain()


class ThumbnailLoader(QObject):
    """`broken` carries the updated record of a photo found not to decode, whose error is now in the index.

    The worker's results reach the public signals through this object's own slots, on the GUI thread, and are
    dropped once `stop` has been called: a result queued just before a project closed must not reach a list whose
    store is already closed."""

    ready = Signal(int)  # image id
    broken = Signal(object)
    _made = Signal(int)
    _found_broken = Signal(object)

    def __init__(self, cache: ThumbnailCache, side: int = 56, parent: QObject | None = None):
        super().__init__(parent)
        self.cache = cache
        self.side = side
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, ImageRecord] = OrderedDict()
        self._images: OrderedDict[tuple, QImage] = OrderedDict()
        """By the photo as its record describes it, so a photo replaced on disk (rescanned) is drawn anew."""
        self._running = False
        self._stopped = False
        self._made.connect(self._relay_ready, Qt.ConnectionType.QueuedConnection)
        self._found_broken.connect(self._relay_broken, Qt.ConnectionType.QueuedConnection)

    @Slot(int)
    def _relay_ready(self, image_id: int) -> None:
        if not self._stopped:
            self.ready.emit(image_id)

    @Slot(object)
    def _relay_broken(self, record: ImageRecord) -> None:
        if not self._stopped:
            self.broken.emit(record)

    def get(self, record: ImageRecord) -> QImage | None:
        """The thumbnail if it is ready (a null QImage for a file that cannot be read), else None and a request."""
        key = _photo_key(record)
        with self._lock:
            image = self._images.get(key)
            if image is not None:
                self._images.move_to_end(key)
                return image
            if self._stopped:
                return None
            self._pending[record.id] = record
            self._pending.move_to_end(record.id)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            if not self._running:
                self._running = True
                self.pool.start(_Drain(self))
        return None

    def forget(self, image_id: int) -> None:
        with self._lock:
            for key in [key for key in self._images if key[0] == image_id]:
                del self._images[key]

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending or self._stopped:
                    self._running = False
                    return
                image_id, record = self._pending.popitem(last=True)
            image = self._thumbnail(image_id, record)
            with self._lock:
                self._images[_photo_key(record)] = image
                while len(self._images) > MAX_CACHED:
                    self._images.popitem(last=False)
            self._made.emit(image_id)

    def _thumbnail(self, image_id: int, record: ImageRecord) -> QImage:
        """The row's picture, or FAILED. Whatever goes wrong with one photo (or with recording its error in a busy
        index) leaves the thread serving the rows after it: a drain that died would leave every later row blank."""
        try:
            return _to_qimage(self.cache.load(record), self.side)
        except ImageLoadError as e:
            try:
                updated = self.cache.store.note_load_error(image_id, e)
            except Exception:  # the badge waits for the next rescan; the thumbnail still says "cannot be read"
                updated = None
            if updated is not None:
                self._found_broken.emit(updated)
        except Exception:  # an unreadable file, or a picture no decoder expected
            pass
        return FAILED

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._pending.clear()
        self.pool.waitForDone()
