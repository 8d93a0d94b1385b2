"""Keeping the checked masks of photos that changed after they were checked, all at once.

A folder retouched, re-encoded or downscaled as a whole flags every checked mask in it ("photo changed"), and
reviewing each again is the slow way to say "the pictures are the same". A mask whose photo has its size is kept
as it is; one whose photo was scaled (the same shape, another size) is scaled with it, label by label; a photo
cropped or turned to another shape keeps its flag, since its mask no longer lines up.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import numpy as np
from faceparse.core.imageio import ImageLoadError, read_size
from faceparse.core.store import MaskError, ProjectError, ProjectStore, content_hash, write_failure_text
from PIL import Image


@dataclass
class KeptMasks:
    kept: list = field(default_factory=list)
    """The records whose masks were kept, scaled ones included."""
    scaled: list = field(default_factory=list)
    """The records among `kept` whose masks were scaled to their photo's new size."""
    refused: list = field(default_factory=list)
    """(record, reason) for each photo whose flag stays."""


def same_shape(photo: tuple[int, int], mask: tuple[int, int]) -> bool:
    """Whether (width, height) `photo` is `mask` scaled, within the pixel a rounded size can differ by."""
    (pw, ph), (mw, mh) = photo, mask
    return abs(pw * mh - ph * mw) <= max(pw, ph, mw, mh)


def scaled_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An index mask at (width, height) `size`, each pixel the label of the nearest one (no label is invented)."""
    return np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))


def _unchanged_since(path, rec) -> bool:
    """Whether the photo is still the file the last scan saw (its hash is the one the index holds)."""
    return rec.scanned(path.stat())


def keep_changed_masks(store: ProjectStore) -> KeptMasks:
    if store.read_only:
        raise ProjectError(f"the project in {store.root} is read-only here, so its masks cannot be kept for changed "
                           "photos: make the folder writable, or copy it somewhere writable")
    out = KeptMasks()
    for rec in store.changed_photos():
        try:
            reason = _keep_one(store, rec, out)
        except ImageLoadError as e:
            reason = e.reason
        except ProjectError as e:
            reason = str(e)
        except sqlite3.Error as e:
            reason = f"the project index could not record it: {write_failure_text(e, store.root)}"
        except OSError as e:
            reason = f"the photo cannot be read: {e.strerror or e}"
        if reason is not None:
            out.refused.append((rec, reason))
    return out


def _keep_one(store: ProjectStore, rec, out: KeptMasks) -> str | None:
    """Keep one photo's mask (adding it to `out`); the reason when it cannot be kept."""
    path = store.root / rec.relpath
    if not _unchanged_since(path, rec):
        return "the photo changed again since the last scan; scan the folder first"
    photo = read_size(path)
    digest = content_hash(path)
    owners = [other.relpath for other in store.checked_on(digest, rec.id)]
    if owners:
        return (f"the photo is now the picture the mask of {', '.join(owners[:3])} was checked on (photos renamed "
                "or renumbered?), so its own mask belongs to another picture: check it in the studio")
    try:
        mask = store.corrected_mask(rec.id)
    except MaskError:
        mask = None
    if mask is None:
        return "its checked mask cannot be read"
    size = (mask.shape[1], mask.shape[0])
    if photo == size:
        kept = store.accept_photo(rec, digest)
        if kept is None:
            return "the project changed it meanwhile; try again"
        out.kept.append(kept)
        return None
    if not same_shape(photo, size):
        return f"the photo is now {photo[0]}x{photo[1]} but its mask is {size[0]}x{size[1]}, another shape: check it in " \
               "the studio"
    scaled = scaled_mask(mask, photo)
    if not _unchanged_since(path, rec):
        return "the photo changed again since the last scan; scan the folder first"
    try:
        store.save_corrected(rec.id, scaled, imported=rec.mask_source == "imported", keep_effort=True)
    except (OSError, sqlite3.Error) as e:
        return f"its scaled mask could not be saved: {write_failure_text(e, store.root)}"
    updated = store.get(rec.id) or rec
    out.kept.append(updated)
    out.scaled.append(updated)
    return None
