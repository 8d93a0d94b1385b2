"""LaPa layout: per split, the photos and their index masks side by side, as the LaPa dataset ships.

    <split>/images/<name>.<ext>    the photo, unchanged
    <split>/labels/<name>.png      grayscale 8-bit PNG, the value is the class index
    schema.json                    which class each index means

LaPa readers take the label values as LaPa's own 11 classes, so an export writes those (through the project schema's
mapping to lapa) unless another target schema is given; a project whose schema has no such mapping must name one.

LaPa readers list a flat folder, so an image in a project subfolder is named with its folders joined by "__"
(`people/ann.jpg` becomes `people__ann.jpg`); import turns "__" back into folders when matching. Import reads
every `labels/` folder; without schema.json the indices are taken as LaPa's classes.
"""

from __future__ import annotations

from pathlib import Path

from faceparse.core.formats.base import (
    SPLIT_NAMES,
    Exporter,
    ExportError,
    ExportItem,
    LabelItem,
    LabelSet,
    copy_image,
    visible_files,
    write_index_png,
)
from faceparse.core.formats.index_png import index_mask_loader
from faceparse.core.schemas import LabelSchema

FOLDER_JOIN = "__"


class LapaExporter(Exporter):
    layout = ("- `<split>/images/<name>`: the photos, unchanged (subfolders flattened, joined by `__`)\n"
              "- `<split>/labels/<name>.png`: 8-bit grayscale index masks, the value is the class index\n"
              "- `schema.json`: class names, indices and colours")
    top_level = SPLIT_NAMES

    def __init__(self, root: Path, schema: LabelSchema):
        super().__init__(root, schema)
        self._names: dict[str, str] = {}

    @classmethod
    def label_stem(cls, name: str) -> str:
        """Folders are flattened, so `a/b.jpg` and `a__b.jpg` share a label file (in one split) or a name that
        import cannot tell apart (in two)."""
        return name.replace("/", FOLDER_JOIN)

    def add(self, item: ExportItem) -> None:
        flat = self.label_stem(item.name)
        key = flat.casefold()
        if key in self._names:
            raise ExportError(f"{item.name} and {self._names[key]} would both be labels/{flat}.png in the flat "
                              "LaPa layout; rename one of them")
        self._names[key] = item.name
        copy_image(item.image_path, self.root / item.split / "images" / f"{flat}{item.image_suffix}")
        write_index_png(self.root / item.split / "labels" / f"{flat}.png", item.mask)


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    found = LabelSet()
    folders = sorted(p for p in [source / "labels", *source.glob("*/labels")] if p.is_dir())
    files = [f for folder in folders for f in visible_files(folder, "*.png")]
    if not files:
        found.problems.append(f"no LaPa label masks found in {source} (expected <split>/labels/<name>.png)")
    for path in files:
        folder = next(f for f in folders if path.is_relative_to(f))
        name = path.relative_to(folder).with_suffix("").as_posix()
        found.items.append(LabelItem(name, str(path), schema.classes, index_mask_loader(path), stem_named=True))
    return found
