"""Putting images back as they were before a batch of mask saves failed part-way.

An import promises all or nothing, but a disk can fill up or a file can be in the way after the first masks were
written. Before each image is saved, its index row and its mask files are kept: the files as hard links (no copy;
the save replaces the name, the kept link still holds the old content), or as copies where the file system has no
links. The kept files are named like the store's temporary files, so a crash leaves nothing the next open does not
clear away.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from faceparse.core.store import MASK_KINDS, ProjectStore


class MaskRollback:
    def __init__(self, store: ProjectStore):
        self.store = store
        self.rows: dict[int, dict[str, Any]] = {}
        self.files: list[tuple[Path, Path | None]] = []

    def keep(self, image_id: int) -> None:
        """Remember the image as it is now (once; later calls for it change nothing)."""
        if image_id in self.rows:
            return
        self.rows[image_id] = self.store.image_row(image_id)
        for kind in MASK_KINDS:
            path = self.store.mask_path(kind, image_id)
            self.files.append((path, _keep_file(path)))

    def restore(self) -> None:
        """Put every kept image back: its files (a file it did not have goes) and then its row."""
        for path, kept in self.files:
            if kept is None:
                path.unlink(missing_ok=True)
            else:
                os.replace(kept, path)
                kept.unlink(missing_ok=True)  # a rename onto another link of the same file does nothing
        self.files = [(path, None) for path, _ in self.files]
        self.store.restore_image_rows(list(self.rows.values()))

    def discard(self) -> None:
        """Forget the kept state (the saves went through)."""
        for _, kept in self.files:
            if kept is not None:
                with contextlib.suppress(OSError):
                    kept.unlink()
        self.files = []
        self.rows = {}


def _keep_file(path: Path) -> Path | None:
    """A name of its own (two imports into one project each keep their own copy, and neither removes the other's)."""
    kept = path.with_name(f".{path.stem}.kept-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        os.link(path, kept)
    except FileNotFoundError:
        return None
    except OSError:
        if not path.exists():
            return None
        shutil.copy2(path, kept)
    os.utime(kept)  # a link or copy keeps the mask's old time, which the next open would take for a dead writer's
    return kept
