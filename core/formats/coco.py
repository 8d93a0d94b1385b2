"""COCO layout: photos per split and one instances JSON per split, masks as pycocotools RLE or as polygons.

    images/<split>/<path>.<ext>        the photo, unchanged
    annotations/instances_<split>.json images, annotations, categories
    schema.json                        the full schema (colours, left/right pairs)

Semantic masks become COCO annotations the way COCO-Stuff stores them: one annotation per class present in an
image, holding all of that class's pixels (`iscrowd` 0). Category ids are the class indices of the target schema
(background has none), so decoding every annotation of an image and painting its category id gives back the index
mask exactly.

`coco` stores each class as one compressed RLE. `coco-polygons` stores it as polygons, for pipelines that read only
polygon segmentations. A polygon there runs around the class's pixels a quarter of a pixel outside their centres
(traced on the mask at twice its size, in COCO's continuous coordinates where pixel x spans [x, x + 1)), each hole
joined to its boundary by a zero-width cut: pycocotools then rasterises exactly the class's pixels, holes included,
so this layout is exact too.

Import reads every JSON under `annotations/` (or a JSON file given directly). It accepts compressed and
uncompressed RLE and polygon segmentations, checked before decoding (RLE runs must cover the image exactly, polygon
coordinates be finite and near the image); categories are matched to the project's classes by name; where
annotations overlap the later one wins; an image listed without annotations is all background; an image or
annotation id listed twice is a problem. Box-only annotations (an empty segmentation, as detection tools write them)
hold no pixels: they are left out and reported, and so is an image that has only such annotations.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

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
    empty_label_notes,
    visible_files,
)
from faceparse.core.formats.polygons import bridged, mask_regions, padded
from faceparse.core.schemas import LabelSchema
from pycocotools import mask as mask_utils

ANNOTATION_DIR = "annotations"
SUPERCATEGORY = "face"


def encode_classes(mask: np.ndarray) -> list[tuple[int, dict[str, Any]]]:
    """(class index, compressed RLE with `counts` as text) for every non-background class in the mask."""
    present = [int(c) for c in np.unique(mask) if c != 0]
    if not present:
        return []
    stack = np.asfortranarray(np.stack([mask == c for c in present], axis=2).astype(np.uint8))
    rles = mask_utils.encode(stack)
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return list(zip(present, rles, strict=True))


def polygon_classes(mask: np.ndarray) -> list[tuple[int, list[list[float]]]]:
    """(class index, polygons as flat [x0, y0, x1, y1, ...] lists) for every non-background class in the mask,
    each region one polygon with its holes cut open (see the module docstring)."""
    doubled = np.repeat(np.repeat(np.ascontiguousarray(mask, np.uint8), 2, axis=0), 2, axis=1)
    polygons: dict[int, list[list[float]]] = defaultdict(list)
    for region in mask_regions(doubled):
        points = (padded(bridged(region)).astype(np.float64) + 0.5) / 2
        polygons[region.class_index].append(points.ravel().tolist())
    return sorted(polygons.items())


class _SplitWriter:
    """Streams one split's images and annotations to scratch files, so memory stays flat for any dataset size."""

    def __init__(self, folder: Path, split: str):
        self.images_path = folder / f".images-{split}.part"
        self.annotations_path = folder / f".annotations-{split}.part"
        self.images = open(self.images_path, "w", encoding="utf-8")
        self.annotations = open(self.annotations_path, "w", encoding="utf-8")
        self.image_count = 0
        self.annotation_count = 0

    def add_image(self, entry: dict) -> None:
        self.images.write(("," if self.image_count else "") + json.dumps(entry) + "\n")
        self.image_count += 1

    def add_annotation(self, entry: dict) -> None:
        self.annotations.write(("," if self.annotation_count else "") + json.dumps(entry) + "\n")
        self.annotation_count += 1

    def write(self, target: Path, header: dict, categories: list[dict]) -> None:
        self.images.close()
        self.annotations.close()
        with open(target, "w", encoding="utf-8") as out:
            out.write("{" + json.dumps(header)[1:-1] + ',\n"images": [\n')
            _append(out, self.images_path)
            out.write('],\n"annotations": [\n')
            _append(out, self.annotations_path)
            out.write('],\n"categories": ' + json.dumps(categories) + "}\n")
        self.images_path.unlink()
        self.annotations_path.unlink()

    def close(self) -> None:
        self.images.close()
        self.annotations.close()


def _append(out, path: Path) -> None:
    with open(path, encoding="utf-8") as f:
        while chunk := f.read(1 << 20):
            out.write(chunk)


class CocoExporter(Exporter):
    layout = ("- `images/<split>/<path>`: the photos, unchanged\n"
              "- `annotations/instances_<split>.json`: COCO JSON; one annotation per class present in an image, "
              "its pixels as one compressed RLE (pycocotools), `iscrowd` 0; category id = class index\n"
              "- `schema.json`: class names, indices and colours")
    stem_label_suffix = None  # the photos keep their suffixes, and the labels are one JSON per split
    top_level = ("images", ANNOTATION_DIR)

    def __init__(self, root: Path, schema: LabelSchema):
        super().__init__(root, schema)
        (root / ANNOTATION_DIR).mkdir(parents=True, exist_ok=True)
        self._writers: dict[str, _SplitWriter] = {}
        self._next_annotation = 1

    def _writer(self, split: str) -> _SplitWriter:
        if split not in self._writers:
            self._writers[split] = _SplitWriter(self.root / ANNOTATION_DIR, split)
        return self._writers[split]

    def add(self, item: ExportItem) -> None:
        file_name = f"{item.name}{item.image_suffix}"
        copy_image(item.image_path, self.root / "images" / item.split / file_name)
        height, width = item.mask.shape
        image_id = item.number + 1
        writer = self._writer(item.split)
        writer.add_image({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for class_index, segmentation, rle in self._segmentations(item.mask):
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            writer.add_annotation({"id": self._next_annotation, "image_id": image_id, "category_id": class_index,
                                   "segmentation": segmentation, "area": int(mask_utils.area(rle)),
                                   "bbox": [x, y, w, h], "iscrowd": 0})
            self._next_annotation += 1

    def _segmentations(self, mask: np.ndarray) -> list[tuple[int, Any, dict]]:
        """(class index, what the annotation stores, the class's RLE for its area and box) per class present."""
        return [(class_index, rle, rle) for class_index, rle in encode_classes(mask)]

    def finish(self) -> None:
        categories = [{"id": i, "name": name, "supercategory": SUPERCATEGORY}
                      for i, name in enumerate(self.schema.classes) if i > 0]
        header = {"info": {"description": f"face parsing, schema {self.schema.name}",
                           "date_created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
                  "licenses": []}
        for split in SPLIT_NAMES:
            if split in self._writers:
                self._writers.pop(split).write(self.root / ANNOTATION_DIR / f"instances_{split}.json", header,
                                               categories)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


class CocoPolygonExporter(CocoExporter):
    layout = ("- `images/<split>/<path>`: the photos, unchanged\n"
              "- `annotations/instances_<split>.json`: COCO JSON; one annotation per class present in an image, "
              "its pixels as polygons (one per region, holes cut open; pycocotools decodes them exactly), "
              "`iscrowd` 0; category id = class index\n"
              "- `schema.json`: class names, indices and colours")

    def _segmentations(self, mask: np.ndarray) -> list[tuple[int, Any, dict]]:
        rles = dict(encode_classes(mask))
        return [(class_index, polygons, rles[class_index]) for class_index, polygons in polygon_classes(mask)]


# --- import --------------------------------------------------------------------------------------------------------

def _json_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    folder = source / ANNOTATION_DIR
    if folder.is_dir():
        return visible_files(folder, "*.json")
    return [p for p in visible_files(source, "*.json") if p.parent == source and p.name not in METADATA_FILES]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


POLYGON_REACH = 4
"""How many image widths (heights) a polygon vertex may lie outside the image: pycocotools rasterises every edge at
five times the resolution, so a far-off vertex exhausts memory, and a NaN one crashes it."""
LONGEST_COUNT_CODE = 7
"""Characters of one number in a compressed RLE string: 7 x 5 bits hold any 32-bit run length and its sign."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_polygon(polygon: Any, height: int, width: int) -> None:
    if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
        raise ValueError("a polygon segmentation needs lists of at least three x, y pairs")
    if not all(_is_number(v) for v in polygon):
        raise ValueError("polygon coordinates must be finite numbers")
    reach_x, reach_y = POLYGON_REACH * width, POLYGON_REACH * height
    if max(abs(x) for x in polygon[0::2]) > reach_x or max(abs(y) for y in polygon[1::2]) > reach_y:
        raise ValueError(f"polygon coordinates lie too far outside the {width}x{height} image (x must be within "
                         f"±{reach_x}, y within ±{reach_y})")


def _polygon_pixels(segmentation: list, height: int, width: int) -> np.ndarray:
    if not segmentation:
        raise ValueError("a polygon segmentation needs lists of at least three x, y pairs")
    for polygon in segmentation:
        _check_polygon(polygon, height, width)
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width)))


def _compressed_counts(text: str) -> np.ndarray:
    """Run lengths of a compressed RLE string, decoded the way pycocotools does (5 bits a character plus a 'more'
    bit, the last character's next bit the sign, from the fourth number on a delta to the number two back), but
    checked: pycocotools reads past the end of a cut-off string and accepts any character."""
    codes = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int64) - ord("0")
    if codes.size and not 0 <= codes.min() <= codes.max() < 64:
        raise ValueError("compressed RLE counts may only hold the characters '0' to 'o'")
    ends = np.flatnonzero((codes & 0x20) == 0)
    if codes.size and (not ends.size or ends[-1] != codes.size - 1):
        raise ValueError("compressed RLE counts end in the middle of a number")
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    lengths = ends - starts + 1
    if lengths.max(initial=0) > LONGEST_COUNT_CODE:
        raise ValueError("compressed RLE counts hold a number too large for a run length")
    number = np.repeat(np.arange(ends.size), lengths)
    digits = (codes & 0x1F) << (5 * (np.arange(codes.size) - starts[number]))
    values = np.zeros(ends.size, np.int64)
    np.add.at(values, number, digits)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    values[1::2] = np.cumsum(values[1::2])
    values[2::2] = np.cumsum(values[2::2])
    return values


def _listed_counts(counts: list, pixels: int) -> np.ndarray:
    if not all(_is_number(v) and float(v).is_integer() and 0 <= v <= pixels for v in counts):
        raise ValueError(f"RLE counts must be whole numbers from 0 to the image's {pixels} pixels")
    return np.array(counts, np.int64).reshape(-1)


def _rle_pixels(segmentation: dict, height: int, width: int) -> np.ndarray:
    """The runs alternate background and foreground down each column; they must cover the image exactly, because
    pycocotools leaves uncovered pixels uninitialised (random labels) and may write past the mask."""
    size = list(segmentation["size"])
    if size != [height, width]:
        raise ValueError(f"RLE size {size[1] if len(size) > 1 else '?'}x{size[0] if size else '?'} differs "
                         f"from the image's {width}x{height}")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        runs = _listed_counts(counts, height * width)
    elif isinstance(counts, str):
        runs = _compressed_counts(counts)
    else:
        raise ValueError("RLE counts must be a string or a list of run lengths")
    if runs.size and runs.min() < 0:
        raise ValueError("RLE counts hold a negative run length")
    if runs.sum() != height * width:
        raise ValueError(f"RLE runs add up to {runs.sum()} pixels, but the image has {width}x{height} = "
                         f"{height * width}")
    on = np.repeat(np.arange(runs.size) % 2 == 1, runs)
    return on.reshape(width, height).T


def _decode(segmentation: Any, height: int, width: int) -> np.ndarray:
    """One annotation's pixels; raises ValueError/TypeError for anything pycocotools cannot read or would crash on."""
    if isinstance(segmentation, list):
        decoded = _polygon_pixels(segmentation, height, width)
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        decoded = _rle_pixels(segmentation, height, width)
    else:
        raise ValueError("segmentation must be a list of polygons or an RLE object with size and counts")
    if decoded.shape != (height, width):
        raise ValueError(f"decodes to {decoded.shape[1]}x{decoded.shape[0]}, not {width}x{height}")
    return decoded.astype(bool)


def _loader(path: Path, image: dict, annotations: list[dict], position: dict[int, int]):
    def load(_size: tuple[int, int]) -> np.ndarray:
        height, width = image["height"], image["width"]
        mask = np.zeros((height, width), np.uint8)
        for ann in annotations:
            try:
                pixels = _decode(ann["segmentation"], height, width)
            except (ValueError, TypeError, OverflowError, UnicodeEncodeError) as e:
                raise LabelFormatError(path, f"annotation {ann.get('id')} of {image['file_name']}: {e}") from None
            mask[pixels] = position[ann["category_id"]]
        return mask
    return load


def _is_box_only(segmentation: Any) -> bool:
    """An empty segmentation, as detection tools write an annotation that has only its box: it holds no pixels."""
    return isinstance(segmentation, list) and all(polygon == [] for polygon in segmentation)


def _box_only_notes(path: Path, count: int, only_boxed: list[str]) -> list[str]:
    """Box-only annotations are left out; an image that has nothing else is left out too, since importing it as
    all background would claim its face has no parts."""
    notes = []
    if count:
        notes.append(f"{path}: {count} box-only COCO annotation{'s' if count != 1 else ''} left out (no "
                     "segmentation, or an empty one: no pixels)")
    if only_boxed:
        examples = ", ".join(only_boxed[:3]) + (", ..." if len(only_boxed) > 3 else "")
        notes.append(f"{path}: {len(only_boxed)} image{'s' if len(only_boxed) != 1 else ''} with only box-only "
                     f"annotations left out rather than imported as all background: {examples}")
    return notes


def _read_file(path: Path, found: LabelSet) -> None:
    data = _coco_json(path, found.problems)
    if data is None:
        return
    problems = len(found.problems)
    position = _category_positions(path, data["categories"], found.problems)
    if position is None:
        return
    images, refused = _image_entries(path, data["images"], found.problems)
    _check_annotation_ids(path, data["annotations"], found.problems)
    by_image, boxed, box_only = _annotations_by_image(path, data["annotations"], images, refused, position,
                                                      found.problems)
    if len(found.problems) > problems:
        return
    only_boxed = [image_id for image_id in images if image_id in boxed and image_id not in by_image]
    found.notes += _box_only_notes(path, box_only, [images[i]["file_name"] for i in only_boxed])
    classes = ("background", *(cat["name"] for cat in _named_categories(data["categories"])))
    bare = [image["file_name"] for image_id, image in images.items() if image_id not in by_image
            and image_id not in only_boxed]
    found.notes += empty_label_notes(path, bare, "no annotations")
    for image_id, image in images.items():
        if image_id in only_boxed:
            continue
        name = PurePosixPath(image["file_name"]).as_posix()  # a project path (no split folder), extension kept
        found.items.append(LabelItem(name, f"{path} ({image['file_name']})", classes,
                                     _loader(path, image, by_image.get(image_id, []), position),
                                     size=(image["height"], image["width"])))


def _coco_json(path: Path, problems: list[str]) -> dict | None:
    """The file's JSON if it has COCO's three lists; otherwise None, with the reason in `problems`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{path}: not a JSON text file (COCO annotations are JSON text in UTF-8)")
        return None
    except OSError as e:
        problems.append(f"{path}: cannot read ({e.strerror or e})")
        return None
    except json.JSONDecodeError as e:
        problems.append(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})")
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        problems.append(f"{path}: not a COCO file (needs lists 'images', 'annotations' and 'categories')")
        return None
    return data


def _is_category(cat: Any) -> bool:
    return isinstance(cat, dict) and _is_int(cat.get("id")) and isinstance(cat.get("name"), str)


def _named_categories(categories: list) -> list[dict]:
    return [cat for cat in categories if _is_category(cat)]


def _category_positions(path: Path, categories: list, problems: list[str]) -> dict[int, int] | None:
    """Mask index of each category id (1 and up, in the file's order); None when there are too many for a mask."""
    for cat in categories:
        if not _is_category(cat):
            problems.append(f"{path}: category {cat!r} needs an integer 'id' and a 'name'")
    named = _named_categories(categories)
    if len(named) > 255:
        problems.append(f"{path}: has {len(named)} categories; a mask holds at most 255 classes")
        return None
    positions: dict[int, int] = {}
    for k, cat in enumerate(named, start=1):
        if cat["id"] in positions:
            problems.append(f"{path}: category id {cat['id']} is given twice ({named[positions[cat['id']] - 1]['name']!r}"
                            f" and {cat['name']!r}), so its annotations could be either")
        else:
            positions[cat["id"]] = k
    return positions


def _image_entries(path: Path, entries: list, problems: list[str]) -> tuple[dict[int, dict], set[int]]:
    """The usable image entries by id, and the ids of entries refused for a bad field: their annotations are left
    unread, since the problem is the entry, not them."""
    images: dict[int, dict] = {}
    refused: set[int] = set()
    for position, image in enumerate(entries):
        fault = _image_entry_fault(image)
        if fault is not None:
            problems.append(f"{path}: {_image_entry_name(image, position)} {fault}")
            if isinstance(image, dict) and _is_int(image.get("id")):
                refused.add(image["id"])
            continue
        if image["id"] in images:
            problems.append(f"{path}: image id {image['id']} is used by both {images[image['id']]['file_name']}"
                            f" and {image['file_name']}; every image needs its own id")
            continue
        images[image["id"]] = image
    return images, refused - images.keys()


def _image_entry_name(image: Any, position: int) -> str:
    """"image 7 (entry 3 of 'images')", counting entries from 1, or the entry alone when it has no usable id."""
    entry = f"entry {position + 1} of 'images'"
    if isinstance(image, dict) and _is_int(image.get("id")):
        return f"image {image['id']} ({entry})"
    return entry


def _image_entry_fault(image: Any) -> str | None:
    """What is wrong with an image entry, in words, or None when it is usable."""
    if not isinstance(image, dict):
        return f"is {_shown(image)}, not an object with 'id', 'file_name', 'width' and 'height'"
    if not _is_int(image.get("id")):
        return f"has {_field(image, 'id')}; it needs a whole-number 'id'"
    if not isinstance(image.get("file_name"), str):
        return f"has {_field(image, 'file_name')}; it needs the photo's path as text"
    for key in ("width", "height"):
        if not (_is_int(image.get(key)) and image[key] > 0):
            return f"has {_field(image, key)}; it needs a whole number of pixels above 0"
    return None


def _field(entry: dict, key: str) -> str:
    return f"{key!r} {_shown(entry[key])}" if key in entry else f"no {key!r}"


def _shown(value: Any) -> str:
    """A value as it reads in the JSON file, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_annotation_ids(path: Path, annotations: list, problems: list[str]) -> None:
    """An annotation id used twice is a problem: tools that look annotations up by id see only one of them."""
    uses = Counter(ann["id"] for ann in annotations if isinstance(ann, dict) and _is_int(ann.get("id")))
    repeated = [ann_id for ann_id, count in uses.items() if count > 1]
    if repeated:
        ids = ", ".join(map(str, repeated[:5])) + (f" and {len(repeated) - 5} more" if len(repeated) > 5 else "")
        problems.append(f"{path}: annotation id{'s' if len(repeated) != 1 else ''} {ids} "
                        f"{'are' if len(repeated) != 1 else 'is'} used more than once; every annotation needs its "
                        "own id")


def _annotations_by_image(path: Path, annotations: list, images: dict[int, dict], refused: set[int],
                          position: dict[int, int], problems: list[str]) -> tuple[dict[int, list[dict]], set[int], int]:
    """The usable annotations per image id, the ids of images with box-only annotations, and how many of those
    there are (a box is no mask: they are counted and left out). Annotations of the `refused` image entries are
    passed over: their entry is already reported."""
    by_image: dict[int, list[dict]] = defaultdict(list)
    boxed: set[int] = set()
    box_only = 0
    for number, ann in enumerate(annotations, start=1):
        if isinstance(ann, dict) and _is_int(ann.get("image_id")) and ann["image_id"] in refused:
            continue
        if not isinstance(ann, dict) or ("segmentation" not in ann and "bbox" not in ann):
            problems.append(f"{path}: {_annotation_name(ann, number)} has no segmentation")
        elif "segmentation" not in ann or _is_box_only(ann["segmentation"]):
            box_only += 1
            if _is_int(ann.get("image_id")):
                boxed.add(ann["image_id"])
        elif not _is_int(ann.get("image_id")) or ann["image_id"] not in images:
            problems.append(f"{path}: annotation {ann.get('id')} refers to image {ann.get('image_id')!r}, "
                            "which is not in 'images'")
        elif not _is_int(ann.get("category_id")) or ann["category_id"] not in position:
            problems.append(f"{path}: annotation {ann.get('id')} has category {ann.get('category_id')!r}, "
                            "which is not in 'categories'")
        else:
            by_image[ann["image_id"]].append(ann)
    return by_image, boxed, box_only


def _annotation_name(ann: Any, number: int) -> str:
    """"annotation 12", or "entry 3 of 'annotations'" for one without a usable id."""
    if isinstance(ann, dict) and _is_int(ann.get("id")):
        return f"annotation {ann['id']}"
    return f"entry {number} of 'annotations'"


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    found = LabelSet()
    files = _json_files(source)
    if not files:
        found.problems.append(f"no COCO JSON found in {source} (expected {ANNOTATION_DIR}/instances_<split>.json)")
    for path in files:
        _read_file(path, found)
    return found
