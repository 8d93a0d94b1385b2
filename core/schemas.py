"""Label schemas: which class each mask index means, how it is drawn, how it mirrors and how it maps to other schemas.

A mask is only meaningful together with its schema, so everything that reads, writes, flips, trains on or exports a
mask goes through a `LabelSchema`. The built-in schemas live as JSON in `faceparse.resources/schemas`; a user's own
schema is a JSON file of the same shape, checked by `load_schema_json` before anything trusts it.

Schema JSON:
    {"name": "...", "title": "...", "notes": "...",
     "classes": ["background", ...],            # index order; background first
     "colors": [[r, g, b], ...],                # one per class
     "flip_pairs": [[i, j], ...],               # classes that swap under a horizontal flip (left/right parts)
     "mappings": {"other-schema": TABLE},       # optional conversions to other schemas
     "descriptions": {"class": "in words"}}     # optional: what a terse class name means (neck_l: necklace)

A mapping TABLE is a list with the target index for every class, an object {source class: target class or index},
or {"table": <either form>, "notes": "..."}. Class names in a table are resolved against the target schema, which
must then be a built-in schema (or defined in the same set of files being loaded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

MAX_CLASSES = 256


class SchemaError(ValueError):
    """A schema definition is invalid; the message says what and where."""


@dataclass(frozen=True)
class LabelSchema:
    name: str
    classes: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    mappings: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False)
    title: str = field(default="", compare=False)
    notes: str = field(default="", compare=False)
    mapping_notes: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    descriptions: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"schema {self.name!r} has no class {name!r}; classes: {', '.join(self.classes)}") from None

    def describe(self, index: int) -> str:
        """A class in words, for names such as `eye_g` or `neck_l` that say little to a newcomer ("" if none).
        A project made before schemas had descriptions borrows those of the built-in schema it copied."""
        if not 0 <= index < len(self.classes):
            return ""
        words = self.descriptions
        if not words:
            builtin = _builtins().get(self.name)
            words = builtin.descriptions if builtin is not None and builtin.classes == self.classes else {}
        return words.get(self.classes[index], "")

    def flip_lut(self) -> np.ndarray:
        """Index permutation applied after mirroring a mask: a left eye seen in a mirror is a right eye."""
        lut = np.arange(MAX_CLASSES, dtype=np.uint8)
        for a, b in self.flip_pairs:
            lut[a], lut[b] = b, a
        return lut

    def flip_mask(self, mask: np.ndarray) -> np.ndarray:
        """Mirror a mask horizontally and swap the left/right classes so it stays correct."""
        mask = np.asarray(mask)
        return self.flip_lut()[mask[:, ::-1]]

    def mapping_lut(self, target_name: str) -> np.ndarray:
        if target_name == self.name:
            return np.arange(MAX_CLASSES, dtype=np.uint8)
        try:
            table = self.mappings[target_name]
        except KeyError:
            known = ", ".join(sorted(self.mappings)) or "none"
            raise KeyError(f"schema {self.name!r} declares no mapping to {target_name!r} (it maps to: {known})") from None
        lut = np.zeros(MAX_CLASSES, dtype=np.uint8)
        lut[: len(table)] = table
        return lut

    def map_mask(self, mask: np.ndarray, target_name: str) -> np.ndarray:
        """Convert a mask of this schema into `target_name`'s indices using the declared mapping."""
        mask = np.asarray(mask)
        if mask.size and int(mask.max()) >= self.num_classes:
            raise ValueError(f"mask has class {int(mask.max())}, outside schema {self.name!r} ({self.num_classes} classes)")
        return self.mapping_lut(target_name)[mask]

    def palette(self) -> list[int]:
        """768 values for PIL's putpalette: the class colours, then black."""
        flat = [c for rgb in self.colors for c in rgb]
        return flat + [0] * (3 * MAX_CLASSES - len(flat))

    def color_lut(self) -> np.ndarray:
        return np.asarray(self.palette(), dtype=np.uint8).reshape(MAX_CLASSES, 3)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "notes": self.notes,
            "classes": list(self.classes),
            "colors": [list(c) for c in self.colors],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "mappings": {},
        }
        for target, table in self.mappings.items():
            entry: dict[str, Any] = {"table": list(table)}
            if self.mapping_notes.get(target):
                entry["notes"] = self.mapping_notes[target]
            out["mappings"][target] = entry
        if self.descriptions:
            out["descriptions"] = dict(self.descriptions)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "schema") -> LabelSchema:
        """Build and validate a schema from its JSON form; `source` names the origin in error messages."""
        return _from_dict(data, source, _builtin_target_classes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _validate(s: LabelSchema) -> None:
    if not isinstance(s.name, str) or not s.name.strip():
        raise SchemaError("schema name must be a non-empty string")
    where = f"schema {s.name!r}"
    _check_classes(s, where)
    _check_colors(s, where)
    _check_flip_pairs(s, where)
    _check_mappings(s, where)
    _check_descriptions(s, where)


def _check_descriptions(s: LabelSchema, where: str) -> None:
    for name, words in s.descriptions.items():
        if name not in s.classes:
            raise SchemaError(f"{where}: a description names {name!r}, which is not one of its classes")
        if not isinstance(words, str):
            raise SchemaError(f"{where}: the description of {name!r} must be text, got {words!r}")


def _check_classes(s: LabelSchema, where: str) -> None:
    if len(s.classes) < 2:
        raise SchemaError(f"{where}: needs at least two classes (background and one more)")
    if len(s.classes) > MAX_CLASSES:
        raise SchemaError(f"{where}: {len(s.classes)} classes; 8-bit masks hold at most {MAX_CLASSES}")
    for c in s.classes:
        if not isinstance(c, str) or not c.strip():
            raise SchemaError(f"{where}: class names must be non-empty strings, got {c!r}")
    if s.classes[0] != "background":
        raise SchemaError(f"{where}: the first class (index 0) must be 'background', got {s.classes[0]!r}")
    dupes = sorted({c for c in s.classes if s.classes.count(c) > 1})
    if dupes:
        raise SchemaError(f"{where}: duplicate class names: {', '.join(dupes)}")


def _check_colors(s: LabelSchema, where: str) -> None:
    if len(s.colors) != len(s.classes):
        raise SchemaError(f"{where}: {len(s.classes)} classes but {len(s.colors)} colors")
    for i, rgb in enumerate(s.colors):
        if len(rgb) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in rgb):
            raise SchemaError(f"{where}: color of class {i} ({s.classes[i]}) must be three integers 0-255, got {rgb!r}")


def _check_flip_pairs(s: LabelSchema, where: str) -> None:
    """Each pair names two different non-background classes, and no class is in two pairs."""
    seen: set[int] = set()
    for pair in s.flip_pairs:
        if len(pair) != 2:
            raise SchemaError(f"{where}: flip pair {pair!r} must have two class indices")
        for i in pair:
            if not isinstance(i, int) or not 1 <= i < len(s.classes):
                raise SchemaError(f"{where}: flip pair {list(pair)} refers to class {i!r}, outside 1..{len(s.classes) - 1}")
        if pair[0] == pair[1]:
            raise SchemaError(f"{where}: flip pair {list(pair)} pairs a class with itself")
        if seen & set(pair):
            raise SchemaError(f"{where}: class in flip pair {list(pair)} already appears in another pair")
        seen.update(pair)


def _check_mappings(s: LabelSchema, where: str) -> None:
    for target, table in s.mappings.items():
        if len(table) != len(s.classes):
            raise SchemaError(f"{where}: mapping to {target!r} has {len(table)} entries for {len(s.classes)} classes")
        if not all(isinstance(v, int) and 0 <= v < MAX_CLASSES for v in table):
            raise SchemaError(f"{where}: mapping to {target!r} has entries outside 0..{MAX_CLASSES - 1}")


TargetClasses = Callable[[str], "tuple[str, ...] | None"]


def _resolve_table(raw: Any, source_classes: tuple[str, ...], target: str, classes_of: TargetClasses,
                   where: str) -> tuple[int, ...]:
    if isinstance(raw, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            raise SchemaError(f"{where}: mapping to {target!r} must list integer class indices")
        table = tuple(raw)
    elif isinstance(raw, dict):
        target_classes = classes_of(target)
        missing = [c for c in source_classes if c not in raw]
        if missing:
            raise SchemaError(f"{where}: mapping to {target!r} does not say where {', '.join(missing)} go")
        unknown = [k for k in raw if k not in source_classes]
        if unknown:
            raise SchemaError(f"{where}: mapping to {target!r} names unknown classes: {', '.join(unknown)}")
        out = []
        for c in source_classes:
            v = raw[c]
            if isinstance(v, str):
                if target_classes is None:
                    raise SchemaError(f"{where}: mapping to {target!r} uses class names, but {target!r} is not a "
                                      "known schema; give target indices instead")
                if v not in target_classes:
                    raise SchemaError(f"{where}: mapping to {target!r} sends {c!r} to {v!r}, "
                                      f"which {target!r} does not have")
                out.append(target_classes.index(v))
            elif isinstance(v, int) and not isinstance(v, bool):
                out.append(v)
            else:
                raise SchemaError(f"{where}: mapping to {target!r} sends {c!r} to {v!r}; expected a name or index")
        table = tuple(out)
    else:
        raise SchemaError(f"{where}: mapping to {target!r} must be a list or an object")
    target_classes = classes_of(target)
    if target_classes is not None and any(v >= len(target_classes) for v in table):
        raise SchemaError(f"{where}: mapping to {target!r} uses an index beyond its {len(target_classes)} classes")
    return table


def _descriptions(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: 'descriptions' must be an object of class name to words")
    return dict(raw)


def _from_dict(data: Mapping[str, Any], source: str, classes_of: TargetClasses) -> LabelSchema:
    if not isinstance(data, Mapping):
        raise SchemaError(f"{source}: a schema must be a JSON object")
    for key in ("name", "classes", "colors"):
        if key not in data:
            raise SchemaError(f"{source}: missing required key {key!r}")
    name = data["name"]
    where = f"{source} (schema {name!r})"
    classes = data["classes"]
    if not isinstance(classes, list):
        raise SchemaError(f"{where}: 'classes' must be a list of names")
    colors = data["colors"]
    if not isinstance(colors, list) or not all(isinstance(c, list | tuple) for c in colors):
        raise SchemaError(f"{where}: 'colors' must be a list of [r, g, b] lists")
    pairs = data.get("flip_pairs", [])
    if not isinstance(pairs, list) or not all(isinstance(p, list | tuple) for p in pairs):
        raise SchemaError(f"{where}: 'flip_pairs' must be a list of [i, j] lists")
    raw_maps = data.get("mappings", {}) or {}
    if not isinstance(raw_maps, dict):
        raise SchemaError(f"{where}: 'mappings' must be an object")
    mappings: dict[str, tuple[int, ...]] = {}
    notes: dict[str, str] = {}
    for target, raw in raw_maps.items():
        if isinstance(raw, dict) and "table" in raw:
            notes[target] = str(raw.get("notes", ""))
            raw = raw["table"]
        mappings[target] = _resolve_table(raw, tuple(map(str, classes)), target, classes_of, where)
    try:
        return LabelSchema(
            name=str(name),
            classes=tuple(classes),
            colors=tuple(tuple(c) for c in colors),
            flip_pairs=tuple(tuple(p) for p in pairs),
            mappings=mappings,
            title=str(data.get("title", "")),
            notes=str(data.get("notes", "")),
            mapping_notes=notes,
            descriptions=_descriptions(data.get("descriptions", {}), where),
        )
    except SchemaError as e:
        raise SchemaError(f"{source}: {e}") from None


def _builtin_files() -> dict[str, dict[str, Any]]:
    folder = resources.files("faceparse.resources") / "schemas"
    raw = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            raw[data["name"]] = data
    return raw


@cache
def _builtins() -> dict[str, LabelSchema]:
    raw = _builtin_files()

    def classes_of(target: str) -> tuple[str, ...] | None:
        return tuple(raw[target]["classes"]) if target in raw else None

    return {name: _from_dict(data, f"built-in schema {name}", classes_of) for name, data in sorted(raw.items())}


def _builtin_target_classes(target: str) -> tuple[str, ...] | None:
    schema = _builtins().get(target)
    return schema.classes if schema else None


def mapping_matrix(lut: np.ndarray, source_classes: int, target_classes: int) -> np.ndarray:
    """A class mapping as a target×source 0/1 matrix: multiplying class probabilities by it adds up, for each
    target class, the probabilities of the source classes that map to it."""
    matrix = np.zeros((target_classes, source_classes), np.float32)
    matrix[np.asarray(lut[:source_classes], dtype=np.int64), np.arange(source_classes)] = 1.0
    return matrix


def reverse_mapping_lut(schema: LabelSchema, source_name: str, source_classes: tuple[str, ...]) -> np.ndarray:
    """Index table from the classes of `source_name` (named `source_classes`) into `schema`'s, read backwards from
    the mapping `schema` declares to `source_name`. A user's schema file can only declare mappings from itself, so
    this is how a model of a built-in schema labels a project of the user's schema.

    Each source class that a class of `schema` maps to becomes that class; the source classes nothing maps to
    become background (0). KeyError when `schema` declares no mapping to `source_name`; SchemaError when the table
    points beyond `source_classes`, or when several classes of `schema` map to one source class (which of them a
    pixel of that class is cannot be told)."""
    try:
        table = schema.mappings[source_name]
    except KeyError:
        raise KeyError(f"schema {schema.name!r} declares no mapping to {source_name!r}") from None
    where = f"the mapping of schema {schema.name!r} to {source_name!r}"
    if max(table) >= len(source_classes):
        raise SchemaError(f"{where} uses class {max(table)}, beyond the {len(source_classes)} classes of "
                          f"{source_name!r}")
    owners: dict[int, list[str]] = {}
    for name, target in zip(schema.classes, table, strict=True):
        owners.setdefault(target, []).append(name)
    for target, names in sorted(owners.items()):
        if len(names) > 1:
            raise SchemaError(f"{where} sends {', '.join(names[:-1])} and {names[-1]} "
                              f"{'both' if len(names) == 2 else 'all'} to {source_classes[target]!r}, so a "
                              f"pixel of {source_classes[target]!r} could be any of them; map at most one class "
                              f"to each class of {source_name!r}")
    lut = np.zeros(MAX_CLASSES, dtype=np.uint8)
    for target, (name,) in owners.items():
        lut[target] = schema.classes.index(name)
    return lut


def builtin_schema_names() -> list[str]:
    return list(_builtins())


def get_schema(name: str | LabelSchema) -> LabelSchema:
    """A built-in schema by name (a LabelSchema passes through, so callers may accept either)."""
    if isinstance(name, LabelSchema):
        return name
    try:
        return _builtins()[name]
    except KeyError:
        raise KeyError(f"unknown label schema {name!r}; built-in schemas: {', '.join(builtin_schema_names())}") from None


def load_schema_json(path: str | os.PathLike) -> LabelSchema:
    """Read and validate a user's schema file; any problem is a SchemaError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SchemaError(f"cannot read schema file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise SchemaError(f"schema file {path} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SchemaError(f"schema file {path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    schema = _from_dict(data, f"schema file {path}", _builtin_target_classes)
    builtin = _builtins().get(schema.name)
    if builtin is not None and builtin.classes != schema.classes:
        raise SchemaError(f"schema file {path} is named {schema.name!r}, the name of a built-in schema with other "
                          "classes; models and mappings find schemas by name, so give yours a name of its own")
    return schema


def resolve_schema(spec: str | os.PathLike | LabelSchema) -> LabelSchema:
    """A built-in name, a path to a schema JSON file, or a LabelSchema: what command lines and dialogs accept."""
    if isinstance(spec, LabelSchema):
        return spec
    text = os.fspath(spec)
    if text in _builtins():
        return _builtins()[text]
    if text.lower().endswith(".json") or os.path.sep in text or Path(text).is_file():
        return load_schema_json(text)
    folded = {name.lower(): schema for name, schema in _builtins().items()}
    if text.lower() in folded:
        return folded[text.lower()]
    return get_schema(text)
