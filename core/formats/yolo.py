"""YOLO segmentation layout: photos and one text file of polygons per photo, as Ultralytics-style trainers read.

    images/<split>/<path>.<ext>   the photo, unchanged
    labels/<split>/<path>.txt     one line per connected region: `<class> x1 y1 x2 y2 ...`, coordinates divided by
                                  the image width and height (0-1), six decimals
    data.yaml                     split folders and class names
    schema.json                   class names, indices and colours

A folder called `images` inside <path> is written as `images_` (and `images_` as `images__`, and so on, so names stay
distinct): trainers find a photo's label by replacing the last `/images/` in its path with `/labels/`. Import undoes
the renaming. data.yaml always names a train and a val folder; an empty split points at the other one.

YOLO class k is schema class k + 1: background has no YOLO class. YOLO has no holes, so each hole of a region is
joined to the region's boundary by a zero-width cut (the closest pair of points) and the region stays one polygon;
a reader that fills each polygon (cv2.fillPoly, as Ultralytics does) keeps the hole open. Lines are written
largest region first, so painting them in file order also restores regions nested inside others.

Import reads every label file under `labels/` and, in the layout Roboflow exports (`<split>/images/`,
`<split>/labels/`), under each `<split>/labels/`; each label goes to the photo of its name below that folder. Class
names come from data.yaml (`names:` as a list, its dashes indented or not, or as a mapping; its split paths are not
needed) or classes.txt. The lines are painted in file order; a line of four numbers is read as a box (centre x,
centre y, width, height).

Round trip: see the tolerance in polygons.py (exact on drawn faces; on random label noise a cut can paint a
pixel of a hole).
"""

from __future__ import annotations

import json
import re
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
    empty_label_notes,
    jpeg_as_jpg,
    relative_name,
    visible_files,
)
from faceparse.core.formats.polygons import bridged, fill_polygons, mask_regions, padded
from faceparse.core.schemas import LabelSchema

DATA_FILE = "data.yaml"
CLASSES_FILE = "classes.txt"
DECIMALS = 6


def mask_to_lines(mask: np.ndarray) -> list[str]:
    height, width = mask.shape
    scale = np.array([width, height], dtype=np.float64)
    lines = []
    for region in mask_regions(mask):
        coords = (padded(bridged(region)) / scale).ravel()
        lines.append(f"{region.class_index - 1} " + " ".join(f"{v:.{DECIMALS}f}" for v in coords))
    return lines


_IMAGES_FOLDER = re.compile(r"images_*")
_RENAMED_IMAGES_FOLDER = re.compile(r"images_+")


def exported_name(name: str) -> str:
    """A project path as written below the split folders: every folder called `images` gains a `_` (as do
    `images_`, `images__`, ..., so no two names meet), because Ultralytics and YOLOv5 find a photo's label by
    replacing the last `/images/` in its path with `/labels/`, and would look in the wrong place."""
    *folders, stem = name.split("/")
    return "/".join([f"{f}_" if _IMAGES_FOLDER.fullmatch(f) else f for f in folders] + [stem])


def project_name(name: str) -> str:
    """The project path of an exported name: undoes `exported_name`."""
    *folders, stem = name.split("/")
    return "/".join([f[:-1] if _RENAMED_IMAGES_FOLDER.fullmatch(f) else f for f in folders] + [stem])


def _split_folder(split: str, present: set[str]) -> tuple[str, str]:
    """(folder, YAML comment) for a train or val key: trainers demand both, so an empty split borrows the other."""
    if split in present:
        return f"images/{split}", ""
    other = next((s for s in SPLIT_NAMES if s in present), "train")
    return f"images/{other}", f"  # no {split} images in this export, so the {other} images stand in"


class YoloExporter(Exporter):
    layout = ("- `images/<split>/<path>`: the photos, unchanged (a folder `images` inside <path> is written as "
              "`images_`, so that trainers find the labels; JPEG photos as `.jpg`, which trainers read where they may pass "
              "over `.jpe` and `.jfif`)\n"
              "- `labels/<split>/<path>.txt`: `<class> x1 y1 x2 y2 ...` per connected region, coordinates "
              "relative to the image size; YOLO class k = schema class k + 1 (no background class); holes "
              "joined to the boundary by a zero-width cut; largest regions first\n"
              f"- `{DATA_FILE}`: split folders (always train and val; an empty one points at the other) and class "
              "names\n"
              "- `schema.json`: class names, indices and colours")
    stem_label_suffix = ".txt"
    top_level = ("images", "labels", DATA_FILE)

    def __init__(self, root: Path, schema: LabelSchema):
        super().__init__(root, schema)
        self._splits: set[str] = set()

    def add(self, item: ExportItem) -> None:
        name = exported_name(item.name)
        copy_image(item.image_path, self.root / "images" / item.split / f"{name}{jpeg_as_jpg(item.image_suffix)}")
        label = self.root / "labels" / item.split / f"{name}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        lines = mask_to_lines(item.mask)
        label.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        self._splits.add(item.split)

    def finish(self) -> None:
        text = [f"# face parsing, schema {self.schema.name}; YOLO class k is schema class k + 1 (background has none)"]
        for split in ("train", "val"):
            folder, comment = _split_folder(split, self._splits)
            text.append(f"{split}: {folder}{comment}")
        if "test" in self._splits:
            text.append("test: images/test")
        text.append(f"nc: {self.schema.num_classes - 1}")
        text.append("names:")
        text += [f"  {i - 1}: {json.dumps(name)}" for i, name in enumerate(self.schema.classes) if i > 0]
        (self.root / DATA_FILE).write_text("\n".join(text) + "\n", encoding="utf-8")


# --- import --------------------------------------------------------------------------------------------------------

_KEY_VALUE = re.compile(r"^\s*(?:-\s*|(\w+)\s*:\s*)(.*?)\s*$")
_UNINDENTED_ENTRY = re.compile(r"-(\s|$)")


def _scalar(text: str, path: Path) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        if text[0] == "'":
            return text[1:-1].replace("''", "'")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise LabelFormatError(path, f"class name {text} is not a valid quoted text ({e.msg})") from None
    return text


_FLOW_ENTRY = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^,\s][^,]*"


def _flow_names(rest: str, path: Path) -> list[str]:
    """`[a, b]` or `{0: a, 1: b}` on the `names:` line."""
    closing = "]" if rest.startswith("[") else "}"
    if not rest.endswith(closing):
        raise LabelFormatError(path, f"names: {rest[0]}...{closing} must be on one line")
    entries = re.findall(_FLOW_ENTRY, rest[1:-1])
    if closing == "]":
        return _numbered(dict(enumerate(_scalar(v, path) for v in entries)), path)
    names: dict[int, str] = {}
    for entry in entries:
        key, sep, value = entry.partition(":")
        if not sep or not key.strip().isdigit():
            raise LabelFormatError(path, f"unexpected entry {entry.strip()!r} in names: {{...}}")
        names[int(key)] = _scalar(value, path)
    return _numbered(names, path)


def _numbered(names: dict[int, str], path: Path) -> list[str]:
    if not names:
        raise LabelFormatError(path, "names: lists no classes")
    if sorted(names) != list(range(len(names))):
        raise LabelFormatError(path, "class numbers under names: must run 0, 1, 2, ... without gaps")
    return [names[k] for k in range(len(names))]


def _continues_block(line: str) -> bool:
    """Whether a line still belongs to the block under `names:`: indented, or a list entry at the key's own
    indentation, as PyYAML's dump writes it."""
    return not line or line[0].isspace() or _UNINDENTED_ENTRY.match(line) is not None


def _without_comment(line: str) -> str:
    """The line without a YAML comment: a `#` after a space, outside a quoted name (a class may be called
    "eye #1"); a quote inside a plain name (`it's`) opens nothing."""
    quote, escaped = None, False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif quote:
            escaped = char == "\\" if quote == '"' else line[i:i + 2] == "''"
            if char == quote and not escaped:
                quote = None
        elif char in "'\"" and line[:i].rstrip()[-1:] in ("", ":", "-", "[", "{", ","):
            quote = char
        elif char == "#" and i and line[i - 1].isspace():
            return line[:i].rstrip()
    return line.rstrip()


def parse_names(text: str, path: Path) -> list[str]:
    """Class names from the `names:` entry of a YOLO data file: a flow list, a block list or a block mapping."""
    text = text.removeprefix("\ufeff")
    lines = [_without_comment(line) for line in text.splitlines() if not line.lstrip().startswith("#")]
    for i, line in enumerate(lines):
        if not line.startswith("names:"):
            continue
        rest = line[len("names:"):].strip()
        if rest.startswith(("[", "{")):
            return _flow_names(rest, path)
        if rest:
            raise LabelFormatError(path, f"cannot read names: {rest}; write a list [a, b], or one class per line")
        names: dict[int, str] = {}
        for line_after in lines[i + 1:]:
            if not _continues_block(line_after):
                break
            match = _KEY_VALUE.match(line_after)
            if not line_after.strip() or match is None:
                continue
            key, value = match.groups()
            if key is None:
                names[len(names)] = _scalar(value, path)
            elif key.isdigit():
                names[int(key)] = _scalar(value, path)
            else:
                raise LabelFormatError(path, f"unexpected entry {line_after.strip()!r} under names:")
        return _numbered(names, path)
    raise LabelFormatError(path, "has no names: entry")


def _read_text(path: Path) -> str:
    """A text file as UTF-8, with or without a byte order mark (Windows editors write one)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise LabelFormatError(path, f"is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def _class_names(source: Path) -> list[str]:
    for name in (DATA_FILE, "data.yml", "dataset.yaml"):
        path = source / name
        if path.is_file():
            return parse_names(_read_text(path), path)
    path = source / CLASSES_FILE
    if path.is_file():
        return [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    raise LabelFormatError(source / DATA_FILE, "not found; the class names of a YOLO dataset come from data.yaml "
                                               "(names:) or classes.txt")


def parse_lines(path: Path, class_count: int) -> list[tuple[int, np.ndarray]]:
    """(YOLO class, (N, 2) relative points) per line; raises LabelFormatError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LabelFormatError(path, f"cannot read ({e})") from None
    shapes = []
    for line_no, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            k = int(tokens[0])
            values = np.array([float(t) for t in tokens[1:]])
        except ValueError:
            raise LabelFormatError(path, f"line {line_no}: expected '<class> x1 y1 x2 y2 ...' numbers") from None
        if not 0 <= k < class_count:
            raise LabelFormatError(path, f"line {line_no}: class {k} is not one of the {class_count} classes "
                                         "named in the data file")
        if not np.isfinite(values).all() or values.min(initial=0) < 0 or values.max(initial=0) > 1:
            raise LabelFormatError(path, f"line {line_no}: coordinates must be between 0 and 1")
        if len(values) == 4:
            cx, cy, w, h = values
            values = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy - h / 2, cx + w / 2, cy + h / 2,
                               cx - w / 2, cy + h / 2])
        elif len(values) % 2:
            raise LabelFormatError(path, f"line {line_no}: {len(values)} coordinates after the class, an odd number; "
                                         "each point needs an x and a y")
        elif len(values) < 6:
            raise LabelFormatError(path, f"line {line_no}: a polygon needs at least three x, y pairs")
        shapes.append((k, values.reshape(-1, 2)))
    return shapes


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _loader(path: Path, class_count: int):
    """Shapes are painted largest first, as Ultralytics overlaps a label file's masks, so an eye listed before the
    face around it stays on top of it (ties keep the file's order, so this project's own exports, written largest
    first, come back as written)."""
    def load(size: tuple[int, int]) -> np.ndarray:
        height, width = size
        mask = np.zeros(size, np.uint8)
        shapes = [(k, points * (width, height)) for k, points in parse_lines(path, class_count)]
        for k, points in sorted(shapes, key=lambda shape: -_polygon_area(shape[1])):
            fill_polygons(mask, [points], k + 1)
        return mask
    return load


def label_files(source: Path) -> list[tuple[Path, Path]]:
    """(label file, the folder its name is relative to) for the Ultralytics layout, `labels/<split>/<name>.txt`,
    and the Roboflow layout, `<split>/labels/<name>.txt` beside `<split>/images/` (splits named as the export
    names them: train, valid, test)."""
    splits = [f for f in sorted(source.glob("*/labels")) if f.parent.name not in ("labels", "images")
              and not f.parent.name.startswith(".")]
    folders = [source / "labels", *splits]
    return [(path, folder) for folder in folders if folder.is_dir() for path in visible_files(folder, "*.txt")]


def read_labels(source: Path, schema: LabelSchema) -> LabelSet:
    found = LabelSet()
    try:
        names = _class_names(source)
    except (LabelFormatError, OSError, UnicodeDecodeError) as e:
        found.problems.append(str(e))
        return found
    files = label_files(source)
    if not files:
        found.problems.append(f"no YOLO label files found in {source} (expected labels/<split>/<name>.txt, or "
                              "<split>/labels/<name>.txt as Roboflow writes them)")
    classes = ("background", *names)
    empty = []
    for path, folder in files:
        try:
            if not parse_lines(path, len(names)):
                empty.append(path.relative_to(source).as_posix())
        except LabelFormatError as e:
            found.problems.append(str(e))
            continue
        found.items.append(LabelItem(project_name(relative_name(path, folder)), str(path), classes,
                                     _loader(path, len(names)), stem_named=True))
    found.notes += empty_label_notes(source, empty, "an empty label file")
    return found
