"""LabelMe layout: each photo with a LabelMe JSON beside it, every region of every class a polygon.

    <split>/<path>.<ext>    the photo, unchanged
    <split>/<path>.json     LabelMe file: imagePath, imageHeight, imageWidth, shapes (imageData left empty)
    schema.json             class names, indices and colours

Each connected region of a class is one polygon shape (label = class name) for its outer boundary. A region with
holes (skin around the eyes, a ring of hair) also gets one shape per hole, with the same label, `flags: {"hole":
true}` and a `group_id` shared with its outer boundary. Background that a region encloses (every background
component not touching the image border) is written the same way, as a region labeled "_background_" (the label
LabelMe's own converters keep for class 0, whatever the schema calls it), with its own holes. The boundaries are pixel coordinates of the region's border pixels (x, y),
as OpenCV traces them, and shapes are written largest outer area first.

Reading back (this importer): the shapes of one (label, group_id) that holds a hole shape are one region, the outer
shapes united and the hole interiors removed; every other shape is a region of its own, as LabelMe paints it;
regions are painted in file order, which gives back the mask exactly. Readers that ignore
the hole flag and paint every shape in file order (LabelMe's own label export, cv2.fillPoly or PIL's polygon fill
of each shape) get the mask back too: a hole shape repaints its hole with the region's class, but whatever lies in
the hole, background included, is a smaller region and is painted after it. The exception is two regions of
different classes that cross each other, each continuing through the other only diagonally at one corner: neither
can be painted after the other, so no file order is exact there (a pixel checkerboard, rare in real masks).

Import also accepts rectangle, circle and oriented rectangle shapes, LabelMe's mask shapes (a base64 PNG placed at
the box of their two points) and the labels "_background_"/"background" for class 0. Vertices are floored to whole
pixels, as LabelMe's own converter (PIL's polygon fill) places them. Shapes that describe no area (point, points,
line, linestrip, landmarks) are left out and reported; so is a file holding nothing else, which would otherwise
come in as all background.

Round trip: see the tolerance in polygons.py (exact in practice).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from faceparse.core.formats.base import (
    METADATA_FILES,
    SPLIT_NAMES,
    Exporter,
    ExportItem,
    LabelFormatError,
    LabelItem,
    LabelSet,
    copy_image,
    relative_name,
    strip_split,
    visible_files,
)
from faceparse.core.formats.polygons import (
    Region,
    enclosed_background,
    hole_interior,
    largest_first,
    mask_regions,
    padded,
    region_pixels,
)
from faceparse.core.schemas import LabelSchema
from PIL import Image

LABELME_VERSION = "5.4.1"
HOLE_FLAG = "hole"
BACKGROUND_LABEL = "_background_"
"""LabelMe's own converters keep this label, and only this one, for class 0."""
POLYGON_SHAPES = ("polygon", "rectangle", "circle", "oriented_rectangle")
MASK_SHAPE = "mask"
SHAPE_TYPES = (*POLYGON_SHAPES, MASK_SHAPE)
NO_AREA_SHAPES = ("point", "points", "line", "linestrip")
"""Landmarks and strokes: LabelMe draws them with a made-up width, so they hold no pixels of a face part."""


def painted_regions(mask: np.ndarray) -> list[Region]:
    """The regions of every class and the background they enclose, in the order a painter must draw them."""
    return largest_first([*mask_regions(mask), *enclosed_background(mask)])


def mask_to_shapes(mask: np.ndarray, schema: LabelSchema) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    group = 0
    for region in painted_regions(mask):
        label = BACKGROUND_LABEL if region.class_index == 0 else schema.classes[region.class_index]
        group_id = None
        if region.holes:
            group += 1
            group_id = group
        for points, is_hole in ((region.outer, False), *((h, True) for h in region.holes)):
            shapes.append({"label": label, "points": padded(points).tolist(), "group_id": group_id,
                           "description": "", "shape_type": "polygon", "flags": {HOLE_FLAG: is_hole}})
    return shapes


class LabelmeExporter(Exporter):
    layout = ("- `<split>/<path>`: the photos, unchanged\n"
              "- `<split>/<path>.json`: LabelMe JSON beside each photo; one polygon per connected region (label = "
              "class name), largest first; each hole of a region is a further polygon with the same label, "
              "`flags.hole = true` and the region's `group_id`; background enclosed by a region is a region "
              "labeled `_background_`, so painting every shape in file order, hole flags ignored, gives "
              "back the mask\n"
              "- `schema.json`: class names, indices and colours")
    stem_label_suffix = ".json"
    top_level = SPLIT_NAMES

    def add(self, item: ExportItem) -> None:
        image = self.root / item.split / f"{item.name}{item.image_suffix}"
        copy_image(item.image_path, image)
        height, width = item.mask.shape
        document = {"version": LABELME_VERSION, "flags": {}, "shapes": mask_to_shapes(item.mask, self.schema),
                    "imagePath": image.name, "imageData": None, "imageHeight": height, "imageWidth": width}
        image.with_suffix(".json").write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")


# --- import --------------------------------------------------------------------------------------------------------

@dataclass
class _Patch:
    """A mask shape: `on` placed with its top-left pixel at (x, y)."""
    x: int
    y: int
    on: np.ndarray


@dataclass
class _Region:
    label: str
    outers: list[np.ndarray] = field(default_factory=list)
    holes: list[np.ndarray] = field(default_factory=list)
    patches: list[_Patch] = field(default_factory=list)

    def pixels(self, size: tuple[int, int]) -> np.ndarray:
        """The outer shapes and mask shapes united, the hole interiors removed."""
        pixels = region_pixels(size, self.outers)
        for patch in self.patches:
            _paste(pixels, patch)
        for hole in self.holes:
            pixels &= ~hole_interior(size, hole)
        return pixels


def _paste(pixels: np.ndarray, patch: _Patch) -> None:
    """Where a box reaches past the image, only its part inside the image counts."""
    height, width = pixels.shape
    x0, y0 = max(patch.x, 0), max(patch.y, 0)
    x1, y1 = min(patch.x + patch.on.shape[1], width), min(patch.y + patch.on.shape[0], height)
    if x0 < x1 and y0 < y1:
        pixels[y0:y1, x0:x1] |= patch.on[y0 - patch.y:y1 - patch.y, x0 - patch.x:x1 - patch.x]


def _raw_points(shape: dict, path: Path, number: int) -> np.ndarray:
    try:
        points = np.asarray(shape.get("points"), dtype=np.float64)
    except (TypeError, ValueError):
        points = np.empty((0,))
    if points.ndim != 2 or points.shape[1] != 2 or not len(points) or not np.isfinite(points).all():
        raise LabelFormatError(path, f"shape {number} ({shape.get('label')!r}) has no valid list of [x, y] points")
    return points


def _points(shape: dict, path: Path, number: int) -> np.ndarray:
    """The shape's boundary as a polygon. Vertices are floored, as PIL's polygon fill in LabelMe places them."""
    points = _raw_points(shape, path, number)
    kind = shape.get("shape_type") or "polygon"
    if kind == "rectangle":
        if len(points) != 2:
            raise LabelFormatError(path, f"rectangle shape {number} needs two corner points")
        (x0, y0), (x1, y1) = np.floor(points)
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if kind == "circle":
        if len(points) != 2:
            raise LabelFormatError(path, f"circle shape {number} needs a centre and a point on the circle")
        radius = float(np.hypot(*(points[1] - points[0])))
        return cv2.ellipse2Poly(tuple(int(round(v)) for v in points[0]), (int(round(radius)),) * 2, 0, 0, 360,
                                5).astype(np.float64)
    return np.floor(points)


def _patch(shape: dict, path: Path, number: int) -> _Patch:
    """A LabelMe mask shape: a PNG (nonzero = on) whose top-left and bottom-right pixels are its two points,
    truncated to whole pixels as LabelMe does."""
    points = _raw_points(shape, path, number)
    what = f"mask shape {number} ({shape['label']!r})"
    if len(points) != 2:
        raise LabelFormatError(path, f"{what} needs two corner points")
    on = _decoded_mask(shape.get("mask"), path, what)
    (x0, y0), (x1, y1) = points.astype(np.int64)
    if on.shape != (y1 - y0 + 1, x1 - x0 + 1):
        raise LabelFormatError(path, f"{what}: its PNG is {on.shape[1]}x{on.shape[0]}, but its points span "
                                     f"{x1 - x0 + 1}x{y1 - y0 + 1} pixels")
    return _Patch(int(x0), int(y0), on)


def _decoded_mask(data: Any, path: Path, what: str) -> np.ndarray:
    if not isinstance(data, str) or not data:
        raise LabelFormatError(path, f"{what} has no base64 PNG in 'mask'")
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as img:
            on = np.asarray(img)
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError) as e:
        raise LabelFormatError(path, f"{what}: 'mask' is not a base64 PNG ({e})") from None
    if on.ndim != 2:
        raise LabelFormatError(path, f"{what}: 'mask' must be a one-channel PNG, not {on.shape[2]} channels")
    return on != 0


def _read_document(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise LabelFormatError(path, f"cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise LabelFormatError(path, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise LabelFormatError(path, "not a LabelMe file (no 'shapes' list)")
    for key in ("imageHeight", "imageWidth"):
        value = document.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise LabelFormatError(path, f"{key} must be a positive integer, got {value!r}")
    return document


def _group_key(shape: dict, path: Path, number: int) -> tuple:
    group_id = shape.get("group_id")
    if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int | str)):
        raise LabelFormatError(path, f"shape {number} ({shape['label']!r}) has group_id {group_id!r}; it must be "
                                     "a number, a text or null")
    return (shape["label"], group_id) if group_id is not None else ("", number)


def _groups_with_holes(shapes: list) -> set[tuple]:
    """The groups that hold a hole shape: only those are one region with holes, painted where the group starts.
    LabelMe itself uses group_id for parts of one object and paints every shape in file order, so the shapes of
    any other group keep their own places."""
    return {(shape["label"], shape["group_id"]) for shape in shapes
            if isinstance(shape, dict) and shape.get("group_id") is not None and isinstance(shape.get("label"), str)
            and isinstance(shape.get("flags"), dict) and shape["flags"].get(HOLE_FLAG)
            and isinstance(shape["group_id"], int | str) and not isinstance(shape["group_id"], bool)}


def _is_hole(shape: dict, path: Path, number: int) -> bool:
    flags = shape.get("flags") or {}
    is_hole = isinstance(flags, dict) and bool(flags.get(HOLE_FLAG))
    if is_hole and shape.get("group_id") is None:
        raise LabelFormatError(path, f"hole shape {number} ({shape['label']!r}) has no group_id linking it to "
                                     "its region")
    return is_hole


def _parse(path: Path) -> tuple[dict, list[_Region], Counter]:
    """The document, its regions in painting order, and how many shapes of each kind without area were left out."""
    document = _read_document(path)
    groups: dict[tuple, _Region] = {}
    left_out: Counter = Counter()
    with_holes = _groups_with_holes(document["shapes"])
    for number, shape in enumerate(document["shapes"]):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not shape["label"]:
            raise LabelFormatError(path, f"shape {number} has no label")
        kind = shape.get("shape_type") or "polygon"
        if kind in NO_AREA_SHAPES:
            left_out[kind] += 1
            continue
        if kind not in SHAPE_TYPES:
            raise LabelFormatError(path, f"shape {number} ({shape['label']!r}) is a {kind!r}; only "
                                         f"{', '.join(SHAPE_TYPES)} shapes describe areas")
        key = _group_key(shape, path, number)
        region = groups.setdefault(key if key in with_holes else ("", number), _Region(shape["label"]))
        if kind == MASK_SHAPE:
            region.patches.append(_patch(shape, path, number))
        elif _is_hole(shape, path, number):
            region.holes.append(_points(shape, path, number))
        else:
            region.outers.append(_points(shape, path, number))
    regions = list(groups.values())
    for region in regions:
        if region.holes and not (region.outers or region.patches):
            raise LabelFormatError(path, f"holes of {region.label!r} without the region they belong to")
    return document, regions, left_out


def _loader(path: Path, classes: tuple[str, ...]):
    def load(size: tuple[int, int]) -> np.ndarray:
        _, regions, _ = _parse(path)
        mask = np.zeros(size, np.uint8)
        for region in regions:
            mask[region.pixels(size)] = classes.index(region.label)
        return mask
    return load


def _image_name(path: Path, document: dict, source: Path) -> str:
    """The photo `imagePath` names, relative to the dataset. A backslash is a folder separator in files written on
    Windows, but a legal character of a Linux file name: the path as written is taken when that photo is there."""
    image_path = document.get("imagePath")
    if isinstance(image_path, str) and image_path:
        as_written = path.parent / image_path
        target = (as_written if _is_file(as_written) else path.parent / image_path.replace("\\", "/")).resolve()
        if target.is_relative_to(source.resolve()):
            return "/".join(strip_split(target.relative_to(source.resolve()).parts))  # with the photo's extension
    return relative_name(path, source)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system
        return False


def _left_out_notes(shapes: Counter, files: int, only_such: list[Path]) -> list[str]:
    notes = []
    if shapes:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(shapes.items()))
        notes.append(f"{sum(shapes.values())} LabelMe shapes without an area left out ({kinds}, in {files} "
                     f"file{'s' if files != 1 else ''}): points and lines hold no pixels")
    if only_such:
        examples = ", ".join(str(p) for p in only_such[:3]) + (", ..." if len(only_such) > 3 else "")
        notes.append(f"{len(only_such)} LabelMe file{'s' if len(only_such) != 1 else ''} holding only such shapes "
                     f"left out, rather than imported as all background: {examples}")
    return notes


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    found = LabelSet()
    files = [p for p in visible_files(source, "*.json") if not (p.parent == source and p.name in METADATA_FILES)]
    if not files:
        found.problems.append(f"no LabelMe JSON files found in {source}")
    left_out: Counter = Counter()
    files_with_left_out = 0
    only_left_out: list[Path] = []
    for path in files:
        try:
            document, regions, dropped = _parse(path)
        except LabelFormatError as e:
            found.problems.append(str(e))
            continue
        left_out += dropped
        if dropped:
            files_with_left_out += 1
            if not regions:
                only_left_out.append(path)
                continue
        labels = {region.label for region in regions}
        classes = ("background", *sorted(labels - {"background"}))
        size = None
        if document.get("imageHeight") and document.get("imageWidth"):
            size = (document["imageHeight"], document["imageWidth"])
        found.items.append(LabelItem(_image_name(path, document, source), str(path), classes,
                                     _loader(path, classes), size))
    found.notes += _left_out_notes(left_out, files_with_left_out, only_left_out)
    return found
