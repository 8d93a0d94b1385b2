"""Index PNG layout: the photos, one 8-bit index PNG per photo, and a colour picture of each mask.

    images/<split>/<path>.<ext>     the photo, unchanged
    masks/<split>/<path>.png        class index per pixel; a palette PNG, so viewers show the class colours
    previews/<split>/<path>.png     the mask in the class colours as plain RGB, for tools that drop palettes
    schema.json                     which class each index means

The palette is kept so that the masks show in colour: PIL (np.array(Image.open(p))) reads the class indices, but
OpenCV expands a palette, so cv2.imread(p, IMREAD_GRAYSCALE) gives the colours' brightness. The layouts that
OpenCV-based readers expect (LaPa, CelebAMask-HQ's combined masks) are written as plain grayscale instead.

<path> is the image's path inside the project folder, so subfolders are kept. Import reads `masks/` (or, when
there is none, every PNG under the source folder) and interprets the indices with schema.json, or with the schema
given on import, or else with the project's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from faceparse.core.formats.base import (
    Exporter,
    ExportItem,
    LabelFormatError,
    LabelItem,
    LabelSet,
    copy_image,
    relative_name,
    visible_files,
    write_index_png,
)
from faceparse.core.imageio import ImageLoadError, colorize, load_mask
from faceparse.core.schemas import LabelSchema
from PIL import Image

SKIPPED_FOLDERS = ("images", "previews")


class IndexPngExporter(Exporter):
    layout = ("- `images/<split>/<path>`: the photos, unchanged\n"
              "- `masks/<split>/<path>.png`: 8-bit index masks (palette PNG: the value is the class index, "
              "viewers show the class colour)\n"
              "- `previews/<split>/<path>.png`: the masks in the class colours as RGB\n"
              "- `schema.json`: class names, indices and colours")
    top_level = ("images", "masks", "previews")

    def add(self, item: ExportItem) -> None:
        copy_image(item.image_path, self.root / "images" / item.split / f"{item.name}{item.image_suffix}")
        write_index_png(self.root / "masks" / item.split / f"{item.name}.png", item.mask, self.schema)
        preview = self.root / "previews" / item.split / f"{item.name}.png"
        preview.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(colorize(item.mask, self.schema)).save(preview, format="PNG", compress_level=3)


def index_mask_loader(path: Path):
    def load(_size: tuple[int, int]) -> np.ndarray:
        try:
            return load_mask(path)
        except ImageLoadError as e:
            raise LabelFormatError(path, e.reason) from None
    return load


MASK_FOLDERS = ("masks", "ann_dir")
"""Where a dataset keeps its masks beside the photos: this layout's own, and MMSegmentation's (img_dir/ann_dir)."""


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    masks = next((source / name for name in MASK_FOLDERS if (source / name).is_dir()), None)
    found = LabelSet()
    if masks is not None:
        files = visible_files(masks, "*.png")
        base = masks
    else:
        base = source
        files = [p for p in visible_files(source, "*.png") if p.relative_to(source).parts[0] not in SKIPPED_FOLDERS]
    if not files:
        found.problems.append(f"no index PNG masks found in {source} (expected masks/<split>/<name>.png)")
    for path in files:
        found.items.append(LabelItem(relative_name(path, base), str(path), schema.classes, index_mask_loader(path),
                                     stem_named=True))
    return found
