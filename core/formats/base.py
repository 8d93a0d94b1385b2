"""What every dataset format shares: the item an exporter receives, the label an importer yields, and file helpers.

An exporter sees one image at a time (its mask already in the target schema and its split already chosen) and
writes into a folder that nobody else can see yet; `export.py` renames that folder into place when all is done.
An importer only *describes* what it found: a `LabelItem` knows where its mask comes from and how to decode it,
so `importer.py` can check every label before anything is written to the project.
"""

from __future__ import annotations

import abc
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from faceparse.core.imageio import ImageLoadError, load_rgb
from faceparse.core.schemas import LabelSchema
from PIL import Image, ImageOps

SPLIT_NAMES = ("train", "val", "test")
SCHEMA_FILE = "schema.json"
CARD_FILE = "README.md"
CARD_DATA_FILE = "dataset.json"
METADATA_FILES = (SCHEMA_FILE, CARD_DATA_FILE)
_EXIF_ORIENTATION = 0x0112


class ExportError(Exception):
    """An export cannot be completed; nothing was left at the destination."""


class LabelFormatError(Exception):
    """A label file that cannot be read as its format says; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class ExportItem:
    number: int
    """Position among the selected images, 0-based; an image left out leaves a gap."""
    name: str
    """The image's path relative to the project folder, without extension, with '/' separators."""
    split: str
    image_path: Path
    mask: np.ndarray
    """Class indices of the target schema, the image's size."""

    @property
    def image_suffix(self) -> str:
        return self.image_path.suffix


class Exporter(abc.ABC):
    """Writes one dataset layout. `add` is called once per image, `finish` once at the end."""

    layout: str = ""
    """Markdown describing the files, copied into the dataset card."""
    stem_label_suffix: str | None = ".png"
    """The suffix of the label file written for each image under its path without extension (`masks/x.png`), so
    that `x.jpg` and `x.png` would share one (and an import could not tell them apart); None for a layout whose
    label files are not named so (numbered files, one JSON for all images)."""
    top_level: tuple[str, ...] = ()
    """The names the layout writes at the top of its folder, beside the card and schema.json (a replace of an
    export from before its card recorded them takes these as the export's own)."""

    @classmethod
    def label_stem(cls, name: str) -> str:
        """The path, without suffix, of the label file written for the image `name` (its project path without
        suffix); a layout that flattens folders changes it, and two images with one label stem are refused before
        anything is written."""
        return name

    @classmethod
    def unwritable_name(cls, relpath: str) -> str | None:
        """Why this layout cannot hold an image of this project path, or None; checked before anything is
        written, so a name the layout cannot hold refuses the export at once instead of part-way."""
        return None

    @classmethod
    def unwritable_class(cls, name: str) -> str | None:
        """Why this layout cannot hold a class of this name, or None; checked before anything is written."""
        return None

    def __init__(self, root: Path, schema: LabelSchema):
        self.root = root
        self.schema = schema

    @abc.abstractmethod
    def add(self, item: ExportItem) -> None:
        """Write one image and its mask."""

    def finish(self) -> None:  # noqa: B027 - an optional hook; most layouts need nothing here
        """Write whatever spans all images (JSON indexes, split lists)."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release open files; called after `finish` and when an export is abandoned."""


@dataclass
class LabelItem:
    name: str
    """Where the label points: a path relative to the dataset (or an image file name), without extension."""
    origin: str
    """The file(s) the label came from, for reports."""
    classes: tuple[str, ...]
    """Class name of every index `load` can return; index 0 is background."""
    load: Callable[[tuple[int, int]], np.ndarray]
    """Given the (height, width) of the project image, the mask as indices into `classes`."""
    size: tuple[int, int] | None = None
    """(height, width) the label file declares, when it declares one."""
    stem_named: bool = False
    """The label file is named after the photo without the photo's extension (index-mask layouts): its name
    `x.jpg` is first the photo `x.jpg.png`, not the photo `x.jpg`."""


@dataclass
class LabelSet:
    items: list[LabelItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What refuses the import."""
    notes: list[str] = field(default_factory=list)
    """What was left out without refusing it (box-only annotations, landmark points), so the user learns of it."""


def empty_label_notes(source: Path, names: Sequence[str], why: str) -> list[str]:
    """Images a dataset lists with no label at all come in as all background (an export of a face-free mask reads
    so), which a tool that lists every frame, labeled or not, did not mean: the report names them."""
    if not names:
        return []
    examples = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    count = len(names)
    return [f"{source}: {count} image{'s' if count != 1 else ''} with {why} come{'s' if count == 1 else ''} in as "
            f"all background; take {'them' if count != 1 else 'it'} out of the dataset first if {'they were' if count != 1 else 'it was'} never labeled: {examples}"]


def strip_split(parts: Sequence[str]) -> list[str]:
    """Path parts without a leading train/val/test folder: labels are matched to images by the rest."""
    parts = list(parts)
    if len(parts) > 1 and parts[0] in SPLIT_NAMES:
        return parts[1:]
    return parts


def relative_name(path: Path, root: Path) -> str:
    """`path` relative to `root`, without extension and split folder, '/'-separated."""
    parts = strip_split(path.relative_to(root).with_suffix("").parts)
    return "/".join(parts)


def visible_files(root: Path, pattern: str) -> list[Path]:
    """Files under root matching pattern, sorted, skipping hidden files and folders (a project's .faceparse,
    half-written exports)."""
    return sorted(p for p in root.rglob(pattern)
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


JPEG_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})


def jpeg_as_jpg(suffix: str) -> str:
    """A JPEG photo's suffix as the readers of datasets expect it: some list only `.jpg` and `.jpeg` and pass over
    a `.jpe` or `.jfif` photo without a word."""
    return ".jpg" if suffix.lower() in JPEG_SUFFIXES else suffix


def copy_image(src: Path, dst: Path) -> None:
    """Copy a photo unchanged, unless an EXIF tag rotates it: masks are stored upright, so the copy must be too,
    or readers that ignore EXIF (most training code) would pair a rotated picture with an upright mask."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with Image.open(src) as img:
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            if isinstance(orientation, int) and orientation != 1:
                _save_upright(img, src, dst)
                return
        shutil.copyfile(src, dst)
    except ImageLoadError as e:
        raise ExportError(f"cannot read image {src}: {e.reason}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ExportError(f"cannot copy image {src}: {getattr(e, 'strerror', None) or e}") from None


def _save_upright(img: Image.Image, src: Path, dst: Path) -> None:
    """Turn the opened photo itself upright, so its mode (alpha, grayscale, 16-bit, palette) survives, and save it
    in its own format without losing more than it must: a lossless WebP stays lossless, a lossy one or a JPEG is
    written at high quality. A mode the format's writer refuses falls back to the RGB picture."""
    kind = "JPEG" if img.format == "MPO" else img.format or "PNG"
    options = _save_options(kind, src)
    if icc := img.info.get("icc_profile"):
        options["icc_profile"] = icc
    upright = ImageOps.exif_transpose(img)
    try:
        upright.save(dst, format=kind, **options)
    except (OSError, ValueError, KeyError):
        options.pop("icc_profile", None)
        Image.fromarray(load_rgb(src)).save(dst, format=kind, **options)


def _save_options(kind: str, src: Path) -> dict:
    if kind == "JPEG":
        return {"quality": 95}
    if kind == "WEBP":
        return {"lossless": True, "exact": True} if _is_lossless_webp(src) else {"quality": 95}
    return {}


def _is_lossless_webp(path: Path) -> bool:
    """Pillow does not tell; the first image chunk does: VP8L is lossless, VP8 lossy (an animation's frames hold
    their chunks after a 16-byte frame header)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            return False
        while len(chunk := f.read(8)) == 8:
            kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind in (b"VP8L", b"VP8 "):
                return kind == b"VP8L"
            f.seek(16 if kind == b"ANMF" else size + (size & 1), os.SEEK_CUR)
    return False


def write_index_png(path: Path, mask: np.ndarray, schema: LabelSchema | None = None) -> None:
    """An 8-bit index PNG: with a schema a palette PNG (indices that show in colour), without one grayscale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
    if schema is not None:
        img.putpalette(schema.palette())
    img.save(path, format="PNG", compress_level=3)


def write_schema(root: Path, schema: LabelSchema) -> None:
    """The class list travels with every export, so index masks stay meaningful and import can map by name."""
    (root / SCHEMA_FILE).write_text(schema.to_json() + "\n", encoding="utf-8")


def read_binary_png(path: Path) -> np.ndarray:
    """A black/white mask as bool; colour or grayscale, anything brighter than mid-grey is on."""
    try:
        with Image.open(path) as img:
            img.load()
            gray = img if img.mode == "L" else img.convert("L")
            return np.asarray(gray, dtype=np.uint8) >= 128
    except OSError as e:
        raise LabelFormatError(path, f"not a readable PNG ({e})") from None
