"""COCO layout: photos per split and one instances JSON per split, every mask run-length encoded by pycocotools.

    images/<split>/<path>.<ext>        the photo, unchanged
    annotations/instances_<split>.json images, annotations, categories
    schema.json                        the full schema (colours, left/right pairs)

Semantic masks become COCO annotations the way COCO-Stuff stores them: one annotation per class present in an
image, holding all of that class's pixels as one compressed RLE (`iscrowd` 0). Category ids are the class indices
of the target schema (background has none), so decoding every annotation of an image and painting its category id
gives back the index mask exactly.

Import reads every JSON under `annotations/` (or a JSON file given directly). It accepts compressed and
uncompressed RLE and polygon segmentations; categories are matched to the project's classes by name; where
annotations overlap the later one wins; an image listed without annotations is all background.
"""

from __future__ import annotations

import json
from collections import defaultdict
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
    visible_files,
)
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
        for class_index, rle in encode_classes(item.mask):
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            writer.add_annotation({"id": self._next_annotation, "image_id": image_id, "category_id": class_index,
                                   "segmentation": rle, "area": int(mask_utils.area(rle)),
                                   "bbox": [x, y, w, h], "iscrowd": 0})
            self._next_annotation += 1

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


def _decode(segmentation: Any, height: int, width: int) -> np.ndarray:
    """One annotation's pixels; raises ValueError/TypeError for shapes pycocotools cannot read."""
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if isinstance(p, list) and len(p) >= 6]
        if not polygons or len(polygons) != len(segmentation):
            raise ValueError("a polygon segmentation needs lists of at least three x, y pairs")
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size = list(segmentation["size"])
        if size != [height, width]:
            raise ValueError(f"RLE size {size[1] if len(size) > 1 else '?'}x{size[0] if size else '?'} differs "
                             f"from the image's {width}x{height}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        elif isinstance(counts, str):
            rle = {"size": size, "counts": counts.encode("ascii")}
        else:
            raise ValueError("RLE counts must be a string or a list of run lengths")
    else:
        raise ValueError("segmentation must be a list of polygons or an RLE object with size and counts")
    decoded = mask_utils.decode(rle)
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


def _read_file(path: Path, found: LabelSet) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        found.problems.append(f"{path}: cannot read ({e})")
        return
    except json.JSONDecodeError as e:
        found.problems.append(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})")
        return
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        found.problems.append(f"{path}: not a COCO file (needs lists 'images', 'annotations' and 'categories')")
        return
    problems = len(found.problems)
    names: list[str] = ["background"]
    position: dict[int, int] = {}
    for cat in data["categories"]:
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            found.problems.append(f"{path}: category {cat!r} needs an integer 'id' and a 'name'")
            continue
        position[cat["id"]] = len(names)
        names.append(cat["name"])
    if len(names) > 256:
        found.problems.append(f"{path}: has {len(names) - 1} categories; a mask holds at most 255 classes")
        return
    images: dict[int, dict] = {}
    for image in data["images"]:
        if (not isinstance(image, dict) or not _is_int(image.get("id")) or not isinstance(image.get("file_name"), str)
                or not all(_is_int(image.get(k)) and image[k] > 0 for k in ("width", "height"))):
            found.problems.append(f"{path}: image entry {str(image)[:120]} needs 'id', 'file_name', "
                                  "'width' and 'height'")
            continue
        images[image["id"]] = image
    by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or "segmentation" not in ann:
            found.problems.append(f"{path}: annotation {str(ann)[:120]} has no segmentation")
        elif not _is_int(ann.get("image_id")) or ann["image_id"] not in images:
            found.problems.append(f"{path}: annotation {ann.get('id')} refers to image {ann.get('image_id')!r}, "
                                  "which is not in 'images'")
        elif not _is_int(ann.get("category_id")) or ann["category_id"] not in position:
            found.problems.append(f"{path}: annotation {ann.get('id')} has category {ann.get('category_id')!r}, "
                                  "which is not in 'categories'")
        else:
            by_image[ann["image_id"]].append(ann)
    if len(found.problems) > problems:
        return
    classes = tuple(names)
    for image_id, image in images.items():
        name = PurePosixPath(image["file_name"]).with_suffix("").as_posix()  # a project path: no split folder
        found.items.append(LabelItem(name, f"{path} ({image['file_name']})", classes,
                                     _loader(path, image, by_image.get(image_id, []), position),
                                     size=(image["height"], image["width"])))


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    found = LabelSet()
    files = _json_files(source)
    if not files:
        found.problems.append(f"no COCO JSON found in {source} (expected {ANNOTATION_DIR}/instances_<split>.json)")
    for path in files:
        _read_file(path, found)
    return found
