"""CelebAMask-HQ layout: numbered photos, one black-and-white PNG per face part, and combined index masks.

    CelebA-HQ-img/<n>.<ext>                                the photo, unchanged; n = 0, 1, 2, ...; a JPEG is <n>.jpg
    CelebAMask-HQ-mask-anno/<n // 2000>/<n:05d>_<class>.png  255 where the part is, 0 elsewhere; only parts present
    CelebAMask-HQ-mask/<n>.png                             combined index mask, 8-bit grayscale, value = class
    train.txt, val.txt, test.txt                           the numbers in each split, one per line
    image_mapping.txt                                      tab-separated: number, the image's path in the project
    schema.json                                            which class each index of the combined masks means

JPEG photos are named `<n>.jpg` whatever their own suffix (`.jpeg`, `.JPG`, `.jfif`), because the dataset's readers
open `str(n) + '.jpg'`; other photos keep their format and suffix. The per-part files are what CelebAMask-HQ ships and what its readers combine; <class> is the target schema's class
name. The combined masks are what the dataset's own combiner (g_mask.py, cv2.imwrite of the index array) writes:
plain grayscale, so cv2.imread(..., IMREAD_GRAYSCALE) reads the class indices as PIL does (from a palette PNG it
would read the colours' brightness).

Import reads the per-part files (or, without them, the combined masks, grayscale or palette); numbers are turned
back into the project's image paths through image_mapping.txt, else through the photo names in CelebA-HQ-img.
Where parts overlap (they do in the original dataset, never in an export) they are painted in the order of the
dataset's own combiner, g_mask.py, later wins: eyes over glasses, hair and hat over the face, ear rings, neck and
cloth last; a part that g_mask.py does not know is painted after all of them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from faceparse.core.formats.base import (
    SPLIT_NAMES,
    Exporter,
    ExportItem,
    LabelFormatError,
    LabelItem,
    LabelSet,
    copy_image,
    jpeg_as_jpg,
    read_binary_png,
    visible_files,
    write_index_png,
)
from faceparse.core.formats.index_png import index_mask_loader
from faceparse.core.imageio import IMAGE_EXTENSIONS
from faceparse.core.schemas import LabelSchema
from PIL import Image

IMAGE_DIR = "CelebA-HQ-img"
ANNO_DIR = "CelebAMask-HQ-mask-anno"
COMBINED_DIR = "CelebAMask-HQ-mask"
MAPPING_FILE = "image_mapping.txt"
FILES_PER_FOLDER = 2000
DRAW_ORDER = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip",
              "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
"""The order in which CelebAMask-HQ's own combiner (Data_preprocessing/g_mask.py) paints the parts, later wins."""
_PART_NAME = re.compile(r"^(\d+)_(.+)$")
class CelebAMaskExporter(Exporter):
    layout = (f"- `{IMAGE_DIR}/<n>`: the photos, unchanged, numbered from 0 (JPEG photos as `<n>.jpg`)\n"
              f"- `{ANNO_DIR}/<n // {FILES_PER_FOLDER}>/<n:05d>_<class>.png`: one black/white mask per class "
              "present (255 = the class)\n"
              f"- `{COMBINED_DIR}/<n>.png`: combined index masks, 8-bit grayscale (the value is the class index)\n"
              "- `train.txt`, `val.txt`, `test.txt`: the numbers in each split\n"
              f"- `{MAPPING_FILE}`: number and original path of every photo (tab-separated)\n"
              "- `schema.json`: class names, indices and colours")
    stem_label_suffix = None  # files are numbered; the mapping keeps each photo's full name
    top_level = (IMAGE_DIR, ANNO_DIR, COMBINED_DIR, MAPPING_FILE, *(f"{split}.txt" for split in SPLIT_NAMES))

    @classmethod
    def unwritable_name(cls, relpath: str) -> str | None:
        """image_mapping.txt holds one tab-separated line per image, so a name with a line break or a tab (legal on
        Linux) would come back as another name or a broken line."""
        if "\t" in relpath or relpath.splitlines() != [relpath]:
            return f"its name holds a line break or tab, which {MAPPING_FILE} (one tab-separated line per image) " \
                   "cannot hold"
        return None

    @classmethod
    def unwritable_class(cls, name: str) -> str | None:
        """Each class is a file name here (`<n>_<class>.png`), on every system the dataset may be read on."""
        bad = sorted({c for c in name if c in '/\\:*?"<>|' or ord(c) < 32})
        if bad or name in (".", ".."):
            return f"it cannot be part of a file name ({' '.join(map(repr, bad)) or 'a dot name'})"
        return None

    def __init__(self, root: Path, schema: LabelSchema):
        super().__init__(root, schema)
        self._splits: dict[str, list[int]] = defaultdict(list)
        self._mapping: list[str] = ["idx\tsource"]

    def add(self, item: ExportItem) -> None:
        n = len(self._mapping) - 1  # numbered without gaps, as the dataset's loaders count the files
        copy_image(item.image_path, self.root / IMAGE_DIR / f"{n}{jpeg_as_jpg(item.image_suffix)}")
        write_index_png(self.root / COMBINED_DIR / f"{n}.png", item.mask)
        folder = self.root / ANNO_DIR / str(n // FILES_PER_FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        counts = np.bincount(item.mask.ravel(), minlength=self.schema.num_classes)
        for index in np.flatnonzero(counts[1:]) + 1:
            part = np.where(item.mask == index, 255, 0).astype(np.uint8)
            Image.fromarray(part).save(folder / f"{n:05d}_{self.schema.classes[index]}.png", format="PNG",
                                       compress_level=3)
        self._splits[item.split].append(n)
        self._mapping.append(f"{n}\t{item.name}{item.image_suffix}")

    def finish(self) -> None:
        for split in SPLIT_NAMES:
            if self._splits[split]:
                (self.root / f"{split}.txt").write_text("".join(f"{n}\n" for n in self._splits[split]))
        (self.root / MAPPING_FILE).write_text("\n".join(self._mapping) + "\n", encoding="utf-8")


def _read_mapping(source: Path, found: LabelSet) -> dict[int, str]:
    path = source / MAPPING_FILE
    if not path.is_file():
        return {}
    mapping: dict[int, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        found.problems.append(f"{path}: cannot read the image mapping ({e})")
        return {}
    for line_no, line in enumerate(lines, 1):
        if not line.strip() or (line_no == 1 and line.startswith("idx")):
            continue
        number, _, name = line.partition("\t")
        if not number.strip().isdigit() or not name:
            found.problems.append(f"{path}, line {line_no}: expected '<number><TAB><image path>', got {line!r}")
            continue
        mapping[int(number)] = name  # with its extension: `x.jpg` and `x.png` are told apart
    return mapping


def _image_names(source: Path) -> dict[int, str]:
    folder = source / IMAGE_DIR
    if not folder.is_dir():
        return {}
    return {int(p.stem): p.stem for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.stem.isdigit()}


def _draw_rank(name: str) -> tuple[int, str]:
    return (DRAW_ORDER.index(name), "") if name in DRAW_ORDER else (len(DRAW_ORDER), name)


def _parts_loader(parts: list[tuple[int, Path]]):
    def load(_size: tuple[int, int]) -> np.ndarray:
        mask: np.ndarray | None = None
        for index, path in parts:
            on = read_binary_png(path)
            if mask is None:
                mask = np.zeros(on.shape, np.uint8)
            elif on.shape != mask.shape:
                raise LabelFormatError(path, f"is {on.shape[1]}x{on.shape[0]}, but {parts[0][1].name} is "
                                             f"{mask.shape[1]}x{mask.shape[0]}; the parts of one face must match")
            mask[on] = index
        assert mask is not None
        return mask
    return load


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    found = LabelSet()
    mapping = _read_mapping(source, found)
    images = _image_names(source)

    def name_of(number: int) -> str:
        return mapping.get(number) or images.get(number) or str(number)

    anno = source / ANNO_DIR
    if not anno.is_dir():
        combined = source / COMBINED_DIR
        files = visible_files(combined, "*.png") if combined.is_dir() else []
        if not files:
            found.problems.append(f"no CelebAMask-HQ masks found in {source} (expected {ANNO_DIR}/<folder>/"
                                  f"<number>_<class>.png or {COMBINED_DIR}/<number>.png)")
        for path in files:
            if not path.stem.isdigit():
                found.problems.append(f"{path}: not named <number>.png")
                continue
            found.items.append(LabelItem(name_of(int(path.stem)), str(path), schema.classes,
                                         index_mask_loader(path)))
        return found
    by_number: dict[int, list[tuple[str, Path]]] = defaultdict(list)
    for path in visible_files(anno, "*.png"):
        match = _PART_NAME.match(path.stem)
        if match is None:
            found.problems.append(f"{path}: not named <number>_<class>.png")
            continue
        by_number[int(match.group(1))].append((match.group(2), path))
    if not by_number and not mapping and not found.problems:
        found.problems.append(f"no part masks found in {anno} (expected <folder>/<number>_<class>.png)")
    names = sorted({name for parts in by_number.values() for name, _ in parts}, key=_draw_rank)
    classes = ("background", *names)
    for number in sorted(by_number):
        parts = sorted(by_number[number], key=lambda p: _draw_rank(p[0]))
        found.items.append(LabelItem(name_of(number), f"{anno}/*/{number:05d}_*.png", classes,
                                     _parts_loader([(classes.index(name), path) for name, path in parts])))
    for number in sorted((mapping.keys() | images.keys()) - by_number.keys()):
        found.items.append(LabelItem(name_of(number), f"{IMAGE_DIR}/{number} (no part masks: all background)",
                                     classes, _background))
    return found


def _background(size: tuple[int, int]) -> np.ndarray:
    """A listed photo without part files has no face part at all; dropping it would lose that label."""
    return np.zeros(size, np.uint8)
