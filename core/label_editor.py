"""Editing a label mask: brush, eraser, flood fill, polygon fill, class picker, undo records.

The mask is a plain HxW uint8 array of class indices and every operation here is pure numpy/OpenCV, so the whole
editing engine runs (and is tested) without a screen; the studio's canvas only turns mouse events into these calls
and repaints the rectangle an operation reports.

Every change returns an `Edit`: the bounding box it touched plus the old and the new pixels of that box and nothing
else. Undo therefore costs memory in proportion to what was painted, not to the image, which keeps a 4K image's
history small; `EditHistory` additionally caps the total and forgets the oldest steps first.

"Paint only over" (`paint_over`) restricts every operation to pixels whose current class is in a chosen set, so an
annotator can colour hair right up to the skin without touching the skin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

BACKGROUND = 0
DEFAULT_HISTORY_BYTES = 256 * 1024 * 1024
_ON_LINE = 1e-6
"""How near (in pixels) a pixel centre must be to the outline to count as on it, absorbing float rounding."""
CORNER_SNAP = 0.125
"""How near (in pixels) a polygon corner must be to a pixel centre or border to be put exactly there. A mouse
rounds to screen pixels, so at 4x zoom or more a corner clicked on a pixel centre misses it by up to this much, and
the pixel would be left out of the fill."""


@dataclass(frozen=True)
class Box:
    """A half-open pixel rectangle [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def union(self, other: Box) -> Box:
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def grown(self, pixels: int, width: int, height: int) -> Box:
        return Box(max(0, self.x0 - pixels), max(0, self.y0 - pixels),
                   min(width, self.x1 + pixels), min(height, self.y1 + pixels))


@dataclass(frozen=True)
class Edit:
    """One undoable change: the box it touched and that box's pixels before and after."""

    box: Box
    old: np.ndarray
    new: np.ndarray
    name: str = "edit"

    @property
    def nbytes(self) -> int:
        return int(self.old.nbytes + self.new.nbytes)

    def changed_pixels(self) -> int:
        return int(np.count_nonzero(self.old != self.new))


def merge_edits(edits: Sequence[Edit], mask: np.ndarray, name: str | None = None) -> Edit | None:
    """Fold consecutive edits (the dabs of one brush stroke, already applied to `mask`) into one undo step."""
    if not edits:
        return None
    box = edits[0].box
    for e in edits[1:]:
        box = box.union(e.box)
    new = mask[box.slices].copy()
    old = new.copy()
    for e in reversed(edits):
        old[e.box.y0 - box.y0:e.box.y1 - box.y0, e.box.x0 - box.x0:e.box.x1 - box.x0] = e.old
    return Edit(box, old, new, name or edits[0].name)


def _near_path(points: np.ndarray, radius: float, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (as a uint8 footprint of `shape`) whose centres lie within `radius` of the polyline through `points`.
    Each segment is measured only over its own bounding box, so a long stroke costs what it covers."""
    footprint = np.zeros(shape, np.uint8)
    limit = np.float32(radius * radius)
    reach = int(math.ceil(radius)) + 1
    segments = zip(points[:-1], points[1:], strict=True) if len(points) > 1 else [(points[0], points[0])]
    for (ax, ay), (bx, by) in segments:
        x0, x1 = max(0, int(min(ax, bx)) - reach), min(shape[1], int(max(ax, bx)) + reach + 1)
        y0, y1 = max(0, int(min(ay, by)) - reach), min(shape[0], int(max(ay, by)) + reach + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        px = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(ax)
        py = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(ay)
        dx, dy = np.float32(bx - ax), np.float32(by - ay)
        length2 = dx * dx + dy * dy
        if length2 > 0:
            t = np.clip((px * dx + py * dy) / length2, 0, 1)
            px, py = px - t * dx, py - t * dy
        footprint[y0:y1, x0:x1] |= (px * px + py * py < limit).astype(np.uint8)
    under = np.floor(points + 0.5).astype(np.int64)
    inside = (under >= 0).all(axis=1) & (under[:, 0] < shape[1]) & (under[:, 1] < shape[0])
    footprint[under[inside, 1], under[inside, 0]] = 1
    return footprint


def _outline_spans(points: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel row crosses the closed outline, paired into inside spans (rows, left x, right x) by the
    nonzero winding rule: what the outline goes round, once or twice (a lasso that overshoots its start, a star),
    is inside. An edge counts for the rows in [its low y, its high y), so a vertex between two edges is counted
    once and the crossings of every row wind back to zero."""
    a, b = points, np.roll(points, -1, axis=0)
    sloped = a[:, 1] != b[:, 1]
    a, b = a[sloped], b[sloped]
    low, high = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    first, stop = np.ceil(low).astype(np.int64), np.ceil(high).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(len(a)), counts)
    rows = np.repeat(first, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ax, ay, bx, by = a[edge, 0], a[edge, 1], b[edge, 0], b[edge, 1]
    xs = ax + (rows - ay) * (bx - ax) / (by - ay)
    turns = np.where(by > ay, 1, -1)
    keep = (rows >= 0) & (rows < height)
    rows, xs, turns = rows[keep], xs[keep], turns[keep]
    order = np.lexsort((xs, rows))
    rows, xs, turns = rows[order], xs[order], turns[order]
    inside = np.flatnonzero(np.cumsum(turns)[:-1] != 0)
    return rows[inside], xs[inside], xs[inside + 1]


def _on_outline_spans(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts of the outline the crossings miss: its horizontal edges and its vertices (as zero-length spans),
    which hold pixel centres when they lie on a pixel row."""
    a, b = points, np.roll(points, -1, axis=0)
    flat = a[:, 1] == b[:, 1]
    rows = np.concatenate([a[flat, 1], points[:, 1]])
    lefts = np.concatenate([np.minimum(a[flat, 0], b[flat, 0]), points[:, 0]])
    rights = np.concatenate([np.maximum(a[flat, 0], b[flat, 0]), points[:, 0]])
    on_row = np.abs(rows - np.round(rows)) < _ON_LINE
    return np.round(rows[on_row]).astype(np.int64), lefts[on_row], rights[on_row]


def _snapped_corners(points: np.ndarray) -> np.ndarray:
    """`points` with each coordinate within CORNER_SNAP of a pixel centre or border moved exactly onto it."""
    grid = np.floor(points * 2 + 0.5) / 2
    return np.where(np.abs(points - grid) <= CORNER_SNAP, grid, points)


def _inside_polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (as a uint8 footprint of `shape`) whose centres, at integer coordinates, lie inside the closed outline
    through `points` or on it. Exact at sub-pixel precision, so an outline drawn on pixel borders covers exactly
    the pixels within; spans are written through a running sum, so the cost follows the outline's rows."""
    height, width = shape
    spans = [_outline_spans(points, height), _on_outline_spans(points)]
    rows = np.concatenate([s[0] for s in spans])
    lefts = np.ceil(np.concatenate([s[1] for s in spans]) - _ON_LINE).astype(np.int64)
    rights = np.floor(np.concatenate([s[2] for s in spans]) + _ON_LINE).astype(np.int64)
    lefts, rights = np.maximum(lefts, 0), np.minimum(rights, width - 1)
    keep = (rows >= 0) & (rows < height) & (lefts <= rights)
    rows, lefts, rights = rows[keep], lefts[keep], rights[keep]
    edges = np.zeros((height, width + 1), np.int32)
    np.add.at(edges, (rows, lefts), 1)
    np.add.at(edges, (rows, rights + 1), -1)
    return (np.cumsum(edges[:, :width], axis=1) > 0).astype(np.uint8)


class LabelEditor:
    """Paint operations over one mask; each returns the Edit it made (None when nothing changed)."""

    def __init__(self, mask: np.ndarray, num_classes: int = 256):
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"a label mask must be 2-D, got shape {mask.shape}")
        self.mask = np.ascontiguousarray(mask, dtype=np.uint8)
        if self.mask is mask:
            self.mask = mask.copy()
        self.num_classes = int(num_classes)
        self._paint_over: frozenset[int] | None = None
        self._paint_over_lut = np.ones(256, bool)

    @property
    def height(self) -> int:
        return self.mask.shape[0]

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    # --- protection --------------------------------------------------------------------------------------------

    @property
    def paint_over(self) -> frozenset[int] | None:
        """The classes operations may overwrite; None means every class."""
        return self._paint_over

    def set_paint_over(self, classes: Iterable[int] | None) -> None:
        if classes is None:
            self._paint_over = None
            self._paint_over_lut = np.ones(256, bool)
            return
        self._paint_over = frozenset(int(c) for c in classes)
        lut = np.zeros(256, bool)
        lut[list(self._paint_over)] = True
        self._paint_over_lut = lut

    def _writable(self, patch: np.ndarray) -> np.ndarray | None:
        return None if self._paint_over is None else self._paint_over_lut[patch]

    # --- helpers -----------------------------------------------------------------------------------------------

    def _check_label(self, label: int) -> int:
        label = int(label)
        if not 0 <= label < self.num_classes:
            raise ValueError(f"class {label} is outside 0..{self.num_classes - 1}")
        return label

    def _clip(self, x0: float, y0: float, x1: float, y1: float) -> Box | None:
        box = Box(max(0, int(np.floor(x0))), max(0, int(np.floor(y0))),
                  min(self.width, int(np.ceil(x1)) + 1), min(self.height, int(np.ceil(y1)) + 1))
        return box if box.width > 0 and box.height > 0 else None

    def _commit(self, box: Box, footprint: np.ndarray, label: int, name: str) -> Edit | None:
        """Write `label` where footprint (a bool/uint8 array of box's shape) is set and the pixel is writable."""
        patch = self.mask[box.slices]
        target = footprint.astype(bool, copy=False)
        writable = self._writable(patch)
        if writable is not None:
            target = target & writable
        target &= patch != label
        if not target.any():
            return None
        ys, xs = np.nonzero(target)
        tight = Box(box.x0 + int(xs.min()), box.y0 + int(ys.min()), box.x0 + int(xs.max()) + 1,
                    box.y0 + int(ys.max()) + 1)
        local = target[tight.y0 - box.y0:tight.y1 - box.y0, tight.x0 - box.x0:tight.x1 - box.x0]
        region = self.mask[tight.slices]
        old = region.copy()
        region[local] = label
        return Edit(tight, old, region.copy(), name)

    # --- operations --------------------------------------------------------------------------------------------

    def paint_disk(self, x: float, y: float, radius: float, label: int, name: str = "brush") -> Edit | None:
        return self.stroke([(x, y)], radius, label, name)

    def stroke(self, points: Sequence[tuple[float, float]], radius: float, label: int,
               name: str = "brush") -> Edit | None:
        """A round brush dragged through `points` (image pixels): every pixel whose centre lies closer than `radius`
        to the path, plus the pixel under each point, so a dab and a stroke are both `2 * radius` pixels wide
        (the points are first put on the pixel grid that makes this exact)."""
        label = self._check_label(label)
        if not points:
            return None
        r = max(0.5, float(radius))
        # an odd width centres on a pixel and an even one on a pixel corner, wherever in the pixel the point falls
        grid = 0.0 if round(2 * r) % 2 else 0.5
        pts = np.floor(np.asarray(points, np.float64).reshape(-1, 2) - grid + 0.5) + grid
        box = self._clip(pts[:, 0].min() - r, pts[:, 1].min() - r, pts[:, 0].max() + r, pts[:, 1].max() + r)
        if box is None:
            return None
        footprint = _near_path(pts - (box.x0, box.y0), r, (box.height, box.width))
        return self._commit(box, footprint, label, name)

    def erase(self, points: Sequence[tuple[float, float]], radius: float) -> Edit | None:
        """The eraser paints background."""
        return self.stroke(points, radius, BACKGROUND, "erase")

    def flood_fill(self, x: float, y: float, label: int, connectivity: int = 4) -> Edit | None:
        """Give `label` to the connected region of the class under (x, y)."""
        label = self._check_label(label)
        xi, yi = int(np.floor(x)), int(np.floor(y))
        if not (0 <= xi < self.width and 0 <= yi < self.height):
            return None
        seed_class = int(self.mask[yi, xi])
        if seed_class == label or not self._paint_over_lut[seed_class]:
            return None
        region = np.zeros((self.height + 2, self.width + 2), np.uint8)
        flags = connectivity | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
        _, _, _, (rx, ry, rw, rh) = cv2.floodFill(self.mask, region, (xi, yi), 0, 0, 0, flags)
        box = Box(rx, ry, rx + rw, ry + rh)
        footprint = region[1 + box.y0:1 + box.y1, 1 + box.x0:1 + box.x1]
        return self._commit(box, footprint, label, "fill")

    def fill_polygon(self, points: Sequence[tuple[float, float]], label: int, name: str = "polygon") -> Edit | None:
        """Fill the inside of a closed outline (a clicked polygon or a freehand lasso): the pixels whose centres
        lie inside it or on it, so a fill ends where it was drawn. An outline too thin to hold a pixel centre still
        paints the pixels it passes through, so a quick sliver of a lasso is never silently lost."""
        label = self._check_label(label)
        pts = _snapped_corners(np.asarray(points, np.float64).reshape(-1, 2))
        if len(pts) < 3:
            return None
        box = self._clip(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
        if box is None:
            return None
        local = pts - (box.x0, box.y0)
        footprint = _inside_polygon(local, (box.height, box.width))
        if not footprint.any():
            under = np.floor(local + 0.5).astype(np.int32)
            cv2.polylines(footprint, [under.reshape(-1, 1, 2)], True, 1, thickness=1, lineType=cv2.LINE_8)
        return self._commit(box, footprint, label, name)

    def replace(self, mask: np.ndarray, name: str = "replace") -> Edit | None:
        """Turn the whole mask into `mask` (e.g. back to the prediction) as one undo step over the changed box."""
        mask = np.asarray(mask, np.uint8)
        if mask.shape != self.mask.shape:
            raise ValueError(f"replacement mask is {mask.shape}, the edited mask is {self.mask.shape}")
        diff = mask != self.mask
        if not diff.any():
            return None
        rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
        box = Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        old = self.mask[box.slices].copy()
        self.mask[box.slices] = mask[box.slices]
        return Edit(box, old, self.mask[box.slices].copy(), name)

    def pick(self, x: float, y: float) -> int | None:
        """The class under (x, y), or None outside the image."""
        xi, yi = int(np.floor(x)), int(np.floor(y))
        if 0 <= xi < self.width and 0 <= yi < self.height:
            return int(self.mask[yi, xi])
        return None

    def apply(self, edit: Edit) -> None:
        self.mask[edit.box.slices] = edit.new

    def revert(self, edit: Edit) -> None:
        self.mask[edit.box.slices] = edit.old


class EditHistory:
    """Undo/redo over Edits with a memory cap: when the stored patches exceed `max_bytes`, the oldest steps go."""

    def __init__(self, editor: LabelEditor, max_bytes: int = DEFAULT_HISTORY_BYTES):
        self.editor = editor
        self.max_bytes = int(max_bytes)
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self.nbytes = 0

    def push(self, edit: Edit | None) -> None:
        """Record an edit that is already applied to the mask."""
        if edit is None:
            return
        self.nbytes -= sum(e.nbytes for e in self._redo)
        self._redo.clear()
        self._undo.append(edit)
        self.nbytes += edit.nbytes
        while self.nbytes > self.max_bytes and len(self._undo) > 1:
            self.nbytes -= self._undo.pop(0).nbytes

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    def undo(self) -> Edit | None:
        if not self._undo:
            return None
        edit = self._undo.pop()
        self.editor.revert(edit)
        self._redo.append(edit)
        return edit

    def redo(self) -> Edit | None:
        if not self._redo:
            return None
        edit = self._redo.pop()
        self.editor.apply(edit)
        self._undo.append(edit)
        return edit


def history_steps_within(sizes: Sequence[int], max_bytes: int) -> int:
    """How many of the newest steps (sizes oldest first) fit in `max_bytes`; the newest always stays."""
    total = 0
    for kept, size in enumerate(reversed(sizes)):
        total += size
        if total > max_bytes and kept > 0:
            return kept
    return len(sizes)
