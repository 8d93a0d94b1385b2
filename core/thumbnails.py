"""Thumbnail cache under `.faceparse/thumbs`: small upright JPEGs made on demand and kept across sessions.

The image grid must scroll through 100k photos without decoding full-size files, and a folder must open before any
thumbnail exists. So thumbnails are made lazily (by the grid as it scrolls, or by a background pass), written
atomically, and named after the file's path, size and mtime: an edited photo gets a fresh thumbnail and the stale
one is simply never asked for again (`prune` removes those). Files are spread over 256 subfolders so no folder
holds 100k entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from faceparse.core.atomic import atomic_write_bytes
from faceparse.core.imageio import ImageLoadError, load_rgb
from faceparse.core.store import ImageRecord, ProjectStore
from PIL import Image

THUMB_SIZE = 256
JPEG_QUALITY = 85


class ThumbnailCache:
    def __init__(self, store: ProjectStore, max_side: int = THUMB_SIZE):
        self.store = store
        self.folder = store.thumbs_dir
        self.max_side = int(max_side)

    def key(self, record: ImageRecord) -> str:
        text = f"{record.relpath}\0{record.size_bytes}\0{record.mtime_ns}\0{self.max_side}"
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def path_for(self, record: ImageRecord) -> Path:
        key = self.key(record)
        return self.folder / key[:2] / f"{key}.jpg"

    def cached(self, record: ImageRecord) -> Path | None:
        """The thumbnail if it is already made; never decodes anything (safe to call while painting)."""
        path = self.path_for(record)
        return path if path.is_file() else None

    def get(self, record: ImageRecord) -> Path:
        """The thumbnail's path, making it first if needed. Raises ImageLoadError for a bad image."""
        path = self.path_for(record)
        if path.is_file():
            return path
        pixels = load_rgb(self.store.root / record.relpath, max_side=self.max_side)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=JPEG_QUALITY)
        atomic_write_bytes(path, buf.getvalue(), durable=False)
        return path

    def load(self, record: ImageRecord) -> np.ndarray:
        """The thumbnail's pixels. A read-only project's thumbnails are made in memory each time, as nothing
        can be kept beside it."""
        if self.store.read_only and self.cached(record) is None:
            return load_rgb(self.store.root / record.relpath, max_side=self.max_side)
        with Image.open(self.get(record)) as img:
            return np.asarray(img.convert("RGB"))

    def generate(self, records: Iterable[ImageRecord] | None = None,
                 progress: Callable[[int, int], bool | None] | None = None) -> tuple[int, int]:
        """Make missing thumbnails (a background pass); a file that fails to decode gets its error recorded
        (one that only could not be read just now does not).

        Returns (made, failed). `progress(done, total)` returning False stops early.
        """
        todo = [r for r in (records if records is not None else self.store.images()) if self.cached(r) is None]
        made = failed = 0
        for done, record in enumerate(todo, 1):
            try:
                self.get(record)
                made += 1
            except ImageLoadError as e:
                failed += 1
                self.store.note_load_error(record.id, e)
            if progress is not None and progress(done, len(todo)) is False:
                break
        return made, failed

    def prune(self) -> int:
        """Delete thumbnails that no current image asks for (edited, removed or renamed files)."""
        wanted = {f"{self.key(r)}.jpg" for r in self.store.images()}
        removed = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as shards:
            for shard in shards:
                if not shard.is_dir():
                    continue
                with os.scandir(shard.path) as files:
                    for f in files:
                        if f.name not in wanted:
                            with contextlib.suppress(OSError):
                                os.unlink(f.path)
                                removed += 1
        return removed

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
