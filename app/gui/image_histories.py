"""The undo histories of the images visited lately, so going back to an image brings its Ctrl+Z back too.

Each image has its own `BoundedUndoStack` in one QUndoGroup; the group's active stack is the open image's, and the
window follows the group's signals, so Undo and Redo always act on what is on screen. Leaving an image parks its
stack with a fingerprint of the mask it left (the one just saved). Coming back resumes the stack only when the mask
that opens is that same mask: if anything changed it meanwhile (a new prediction, an import, a photo scaled), the
old steps would paint onto pixels they never saw, so the image starts a new history instead.

Parked histories cost memory, so only the last few images keep one, each trimmed to a smaller cap than the open
image's (its oldest steps go first, as when the open image's history passes its own cap).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoGroup

from .undo import BoundedUndoStack

PARKED_IMAGES = 8
PARKED_BYTES = 32 * 1024 * 1024


def mask_fingerprint(mask: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    return mask.shape, hashlib.blake2b(np.ascontiguousarray(mask).tobytes(), digest_size=16).digest()


@dataclass
class ParkedHistory:
    stack: BoundedUndoStack
    fingerprint: tuple[tuple[int, ...], bytes]
    untouched: np.ndarray | None
    """The mask the image had before anyone corrected it, as the session knew it (see `AnnotationSession.save`)."""


class ImageHistories(QObject):
    def __init__(self, history_bytes: int, parked_images: int = PARKED_IMAGES, parked_bytes: int = PARKED_BYTES,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.history_bytes = history_bytes
        self.parked_images = parked_images
        self.parked_bytes = parked_bytes
        self.group = QUndoGroup(self)
        self._parked: OrderedDict[int, ParkedHistory] = OrderedDict()
        self._evicted: set[int] = set()
        self.dropped_because: str | None = None
        """Why the last `resume` found no history for an image that had one (None when it had none)."""
        self.active = self._new_stack()
        self.group.setActiveStack(self.active)

    def _new_stack(self) -> BoundedUndoStack:
        stack = BoundedUndoStack(self.history_bytes, self)
        self.group.addStack(stack)
        return stack

    def _activate(self, stack: BoundedUndoStack) -> None:
        self.active = stack
        self.group.setActiveStack(stack)

    def _drop(self, stack: BoundedUndoStack) -> None:
        self.group.removeStack(stack)
        stack.deleteLater()

    def park(self, image_id: int, mask: np.ndarray, untouched: np.ndarray | None) -> None:
        """Keep the active history as `image_id`'s, left with `mask` on screen; a new empty history is active."""
        stack = self.active
        self._activate(self._new_stack())
        if not stack.count():
            self._drop(stack)
            return
        stack.trim(self.parked_bytes)
        old = self._parked.pop(image_id, None)
        if old is not None:
            self._drop(old.stack)
        self._parked[image_id] = ParkedHistory(stack, mask_fingerprint(mask),
                                               None if untouched is None else untouched.copy())
        self._evicted.discard(image_id)
        while len(self._parked) > self.parked_images:
            evicted_id, evicted = self._parked.popitem(last=False)
            self._drop(evicted.stack)
            self._evicted.add(evicted_id)

    def resume(self, image_id: int, mask: np.ndarray) -> ParkedHistory | None:
        """Make `image_id`'s parked history the active one if `mask` is the mask it was left with; otherwise the
        active history is emptied (and any parked one forgotten). Returns what was resumed, or None."""
        parked = self._parked.pop(image_id, None)
        self.dropped_because = None
        if image_id in self._evicted:
            self._evicted.discard(image_id)
            self.dropped_because = f"only the last {self.parked_images} images visited keep theirs"
        if parked is None or parked.fingerprint != mask_fingerprint(mask):
            if parked is not None:
                self._drop(parked.stack)
                self.dropped_because = "its mask was changed meanwhile"
            self.active.clear()
            return None
        previous = self.active
        self._activate(parked.stack)
        self._drop(previous)
        return parked

    def parked(self) -> list[int]:
        """The images with a parked history, the oldest first."""
        return list(self._parked)

    def forget(self) -> None:
        """Drop every parked history and empty the active one (the project is closing)."""
        for parked in self._parked.values():
            self._drop(parked.stack)
        self._parked.clear()
        self._evicted.clear()
        self.active.clear()
