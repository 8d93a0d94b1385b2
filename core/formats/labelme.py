"""LabelMe layout: each photo with a LabelMe JSON beside it, every region of every class a polygon.

    <split>/<path>.<ext>    the photo, unchanged
    <split>/<path>.json     LabelMe file: imagePath, imageHeight, imageWidth, shapes (imageData left empty)
    schema.json             class names, indices and colours

Each connected region of a class is one polygon shape (label = class name) for its outer boundary. A region with
holes (skin around the eyes, a ring of hair) also gets one shape per hole, with the same label, `flags: {"hole":
true}` and a `group_id` shared with its outer boundary. The boundaries are pixel coordinates of the region's border
pixels (x, y), as OpenCV traces them.

Reading back (this importer): the shapes of one (label, group_id) are one region, the outer shapes united and the
hole interiors removed; regions are painted in file order, which is built to give back the mask exactly. Readers
that ignore the hole flag (LabelMe's own label export paints every polygon in file order) get everything right
except holes that contain background, because shapes are written largest first and nested regions therefore come
after the region around them.

Import also accepts rectangle and circle shapes and the labels "_background_"/"background" for class 0.

Round trip: see the tolerance in polygons.py (exact in practice).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from faceparse.core.formats.base import (
    METADATA_FILES,
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
from faceparse.core.formats.polygons import mask_regions, padded, region_pixels
from faceparse.core.schemas import LabelSchema

LABELME_VERSION = "5.4.1"
HOLE_FLAG = "hole"
SHAPE_TYPES = ("polygon", "rectangle", "circle")


def mask_to_shapes(mask: np.ndarray, schema: LabelSchema) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    group = 0
    for region in mask_regions(mask):
        label = schema.classes[region.class_index]
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
              "`flags.hole = true` and the region's `group_id`\n"
              "- `schema.json`: class names, indices and colours")
    stem_label_suffix = ".json"

    def add(self, item: ExportItem) -> None:
        image = self.root / item.split / f"{item.name}{item.image_suffix}"
        copy_image(item.image_path, image)
        height, width = item.mask.shape
        document = {"version": LABELME_VERSION, "flags": {}, "shapes": mask_to_shapes(item.mask, self.schema),
                    "imagePath": image.name, "imageData": None, "imageHeight": height, "imageWidth": width}
        image.with_suffix(".json").write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")


# --- import --------------------------------------------------------------------------------------------------------

def _points(shape: dict, path: Path, number: int) -> np.ndarray:
    raw = shape.get("points")
    try:
        points = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        points = np.empty((0,))
    if points.ndim != 2 or points.shape[1] != 2 or not len(points) or not np.isfinite(points).all():
        raise LabelFormatError(path, f"shape {number} ({shape.get('label')!r}) has no valid list of [x, y] points")
    kind = shape.get("shape_type") or "polygon"
    if kind == "rectangle":
        if len(points) != 2:
            raise LabelFormatError(path, f"rectangle shape {number} needs two corner points")
        (x0, y0), (x1, y1) = points
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if kind == "circle":
        if len(points) != 2:
            raise LabelFormatError(path, f"circle shape {number} needs a centre and a point on the circle")
        radius = float(np.hypot(*(points[1] - points[0])))
        return cv2.ellipse2Poly(tuple(int(round(v)) for v in points[0]), (int(round(radius)),) * 2, 0, 0, 360,
                                5).astype(np.float64)
    return points


def _parse(path: Path) -> tuple[dict, list[tuple[str, list[np.ndarray], list[np.ndarray]]]]:
    """The document and its regions as (label, outer boundaries, holes), in painting order."""
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
    groups: dict[Any, tuple[str, list[np.ndarray], list[np.ndarray]]] = {}
    for number, shape in enumerate(document["shapes"]):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not shape["label"]:
            raise LabelFormatError(path, f"shape {number} has no label")
        kind = shape.get("shape_type") or "polygon"
        if kind not in SHAPE_TYPES:
            raise LabelFormatError(path, f"shape {number} ({shape['label']!r}) is a {kind!r}; only "
                                         f"{', '.join(SHAPE_TYPES)} shapes describe areas")
        flags = shape.get("flags") or {}
        is_hole = isinstance(flags, dict) and bool(flags.get(HOLE_FLAG))
        group_id = shape.get("group_id")
        if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int | str)):
            raise LabelFormatError(path, f"shape {number} ({shape['label']!r}) has group_id {group_id!r}; it must be "
                                         "a number, a text or null")
        if is_hole and group_id is None:
            raise LabelFormatError(path, f"hole shape {number} ({shape['label']!r}) has no group_id linking it to "
                                         "its region")
        key = (shape["label"], group_id) if group_id is not None else ("", number)
        label, outers, holes = groups.setdefault(key, (shape["label"], [], []))
        (holes if is_hole else outers).append(_points(shape, path, number))
    regions = list(groups.values())
    for label, outers, holes in regions:
        if holes and not outers:
            raise LabelFormatError(path, f"holes of {label!r} without the region they belong to")
    return document, regions


def _loader(path: Path, classes: tuple[str, ...]):
    def load(size: tuple[int, int]) -> np.ndarray:
        _, regions = _parse(path)
        mask = np.zeros(size, np.uint8)
        for label, outers, holes in regions:
            mask[region_pixels(size, outers, holes)] = classes.index(label)
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


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    found = LabelSet()
    files = [p for p in visible_files(source, "*.json") if not (p.parent == source and p.name in METADATA_FILES)]
    if not files:
        found.problems.append(f"no LabelMe JSON files found in {source}")
    for path in files:
        try:
            document, regions = _parse(path)
        except LabelFormatError as e:
            found.problems.append(str(e))
            continue
        labels = {label for label, _, _ in regions}
        classes = ("background", *sorted(labels - {"background"}))
        size = None
        if document.get("imageHeight") and document.get("imageWidth"):
            size = (document["imageHeight"], document["imageWidth"])
        found.items.append(LabelItem(_image_name(path, document, source), str(path), classes,
                                     _loader(path, classes), size))
    return found
