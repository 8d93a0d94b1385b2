"""Importing labels from a dataset folder into a project: everything is checked before anything is written.

Existing labels must come in without silent loss, so an import has two phases:
1. check: every label file is parsed and decoded, matched to a project image (by relative path, then by file
   stem), its class names mapped to the project's schema, its size compared with the image's; a corrected mask
   that would be replaced by a different one is a conflict unless overwriting was asked for;
2. write: only when the check found no problem, every mask is saved (as the corrected mask, or as a prediction).
A single broken file, unknown class name, wrong-sized mask or label without a matching image refuses the whole
import with a report listing every problem, so the project never holds half an import. What a format describes
without any pixels (a COCO annotation with only a box, a LabelMe landmark point) is no problem: it is left out and
listed in the report's notes.

Class names are mapped by name (case-insensitively as a fallback; "_background_" is background). When the
dataset's schema (given, from its schema.json, or the format's own, e.g. LaPa) declares a mapping to the project's
schema, that mapping is used instead, so a CelebAMask-HQ dataset can come into a LaPa project.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from faceparse.core.formats import DatasetFormat, get_format
from faceparse.core.formats.base import SCHEMA_FILE, LabelFormatError, LabelItem
from faceparse.core.imageio import IMAGE_EXTENSIONS, ImageLoadError, read_size
from faceparse.core.mask_rollback import MaskRollback
from faceparse.core.schemas import LabelSchema, SchemaError, get_schema, load_schema_json, resolve_schema
from faceparse.core.store import ImageRecord, MaskError, ProjectError, ProjectStore, write_failure_text
from faceparse.core.wording import counted

KINDS = ("corrected", "predicted")
BACKGROUND_ALIASES = frozenset({"background", "_background_", "__background__"})
CACHE_BYTES = 256 << 20
"""Masks decoded during the check are kept for the write up to this many bytes; beyond, they are decoded again."""
REPORT_LINES = 25

Progress = Callable[[int, int], object]


SCALE_HINT = (" (to resize masks of the photo's aspect ratio but another size: --scale-masks, or the dialog's box "
              "\"Resize masks of the image's aspect ratio but another size\")")
"""What a refused mask of the photo's shape but another size can do: the command-line option and the dialog's box."""


@dataclass
class ImportReport:
    source: Path
    format: str
    kind: str
    labels: int = 0
    planned: int = 0
    imported: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the format reader left out without refusing the import (box-only COCO annotations, LabelMe points)."""
    class_map: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    def summary(self) -> str:
        verb, count = ("would import", self.planned) if self.dry_run else ("imported", self.imported)
        text = f"{verb} {count} {self.kind} mask{'' if count == 1 else 's'} from {self.source} ({self.format})"
        if self.unchanged:
            text += f"; {self.unchanged} already identical"
        if self.skipped:
            text += f"; {counted(len(self.skipped), 'label')} without a matching image skipped"
        return text


class ImportRefused(Exception):
    """The check found problems; nothing was imported. `report.problems` lists all of them."""

    def __init__(self, report: ImportReport):
        self.report = report
        shown = report.problems[:REPORT_LINES]
        more = len(report.problems) - len(shown)
        refused = (f"an import from {report.source} would be refused" if report.dry_run else
                   f"nothing was imported from {report.source}")
        lines = [f"{refused}: {len(report.problems)} problem"
                 f"{'s' if len(report.problems) != 1 else ''}"]
        lines += [f"  - {p}" for p in shown]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


class ImportCancelled(Exception):
    """Cancelled while checking; nothing was imported."""


class ImportFailed(Exception):
    """Writing failed part-way (a disk error, the project changed meanwhile); the message says how far it got."""


class ImportStopped(ImportFailed):
    """Writing was stopped on request (`stop`) part-way; the message says how many masks were imported."""


class ImageIndex:
    """Finds the project image a label belongs to: by its exact relative path, then by relative path without
    extension, by a flat layout's `folder__name`, case-insensitively, and last by the longest run of trailing
    folders and file stem that names one image: another tool's `data/images/sub/x.jpg` (or `C:\\data\\sub\\x.jpg`,
    written on Windows) is the project's `sub/x.jpg`, even beside an `other/x.jpg`.

    Two project images that one label could name (`x.jpg` and `x.png` for a mask `x.png` of an index-mask layout)
    make the label ambiguous: it is refused with both names rather than given to whichever came last. A name is
    read as written before as a flat `folder__name`, so `a__b` is `a__b.png` even beside `a/b.png`. Names are
    compared in Unicode NFC, since macOS writes file names decomposed."""

    def __init__(self, records: Sequence[ImageRecord]):
        self.exact: dict[str, ImageRecord] = {}
        self.by_relpath: dict[str, list[ImageRecord]] = defaultdict(list)
        self.by_path: dict[str, list[ImageRecord]] = defaultdict(list)
        self.by_folded: dict[str, list[ImageRecord]] = defaultdict(list)
        self.by_tail: dict[str, list[ImageRecord]] = defaultdict(list)
        self.by_flat: dict[str, list[ImageRecord]] = defaultdict(list)
        for rec in records:
            relpath = _nfc(rec.relpath)
            stripped = str(PurePosixPath(relpath).with_suffix(""))
            self.exact[rec.relpath] = rec
            self.by_relpath[relpath].append(rec)
            self.by_path[stripped].append(rec)
            self.by_folded[stripped.casefold()].append(rec)
            for tail in _tails(stripped):
                self.by_tail[tail].append(rec)
            self.by_flat[stripped.replace("/", "__")].append(rec)

    def match(self, name: str, stem_named: bool = False) -> tuple[ImageRecord | None, str]:
        """(record, "") or (None, why not). `name` may carry the photo's extension (COCO, LabelMe) or not; it is
        taken as given first (a photo may be called `IMG_1.jpg.png`), and only when that finds nothing without its
        image extension. A `stem_named` label (an index mask named after the photo without its extension) is
        first read as such, so the mask `x.jpg.png` of the photo `x.jpg.png` does not land on a photo `x.jpg`."""
        if not stem_named and name in self.exact:  # the very name, as the file system spells it
            return self.exact[name], ""
        name = _nfc(name)
        rec, why = self._match_named(name, stem_named)
        if rec is None and why == _NO_IMAGE and "\\" in name:  # a path written on Windows
            rec, why = self._match_named(name.replace("\\", "/"), stem_named)
        if rec is None and why == _NO_IMAGE:
            why = self._same_name_elsewhere(name.replace("\\", "/")) or why
        return rec, why

    def _same_name_elsewhere(self, name: str) -> str | None:
        """For a label no photo matches: the photos of its name in other folders, which it was not given to."""
        path = PurePosixPath(name)
        stem = path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else path.name
        others = self.by_tail.get(stem, [])
        if not others or "/" not in name:
            return None
        paths = sorted(r.relpath for r in others)
        listed = " and ".join(paths) if len(paths) <= 3 else f"{', '.join(paths[:3])} and {len(paths) - 3} more"
        return (f"no image in the project has this path; {listed} {'has' if len(others) == 1 else 'have'} its name "
                "in another folder (a label is matched to a photo by its folders too)")

    def _match_named(self, name: str, stem_named: bool = False) -> tuple[ImageRecord | None, str]:
        if stem_named:
            rec, why = self._match_stripped(name)
            if rec is not None or why != _NO_IMAGE:
                return rec, why
        same = self.by_relpath.get(name, [])
        if len(same) == 1:
            return same[0], ""
        if len(same) > 1:  # one name in two Unicode forms (macOS and Linux write them differently)
            return None, _ambiguous(same)
        rec, why = self._match_stripped(name)
        if rec is None and PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS and why == _NO_IMAGE:
            return self._match_stripped(str(PurePosixPath(name).with_suffix("")))
        return rec, why

    def _match_stripped(self, name: str) -> tuple[ImageRecord | None, str]:
        """The name as given is tried before its flat reading (`a__b` as `a/b`) in each table: an export keeps
        subfolders, so its `a__b` is the photo `a__b.jpg` even when the project also holds `a/b.jpg`."""
        candidates = list(dict.fromkeys([name, name.replace("__", "/")]))
        for table in (self.by_path, self.by_flat, self.by_folded):
            for candidate in candidates:
                found = table.get(candidate.casefold() if table is self.by_folded else candidate, [])
                if len(found) == 1:
                    return found[0], ""
                if len(found) > 1:
                    return None, _ambiguous(found)
        for candidate in candidates:
            tails = _tails(candidate)
            # the label's whole path ends a project path, or a project path is the label's path without some of
            # its leading folders (another tool's `data/images/sub/x` is `sub/x`); never the other way round,
            # where a label in `alice/` would land on the photo of the same name in `bob/`
            for table, keys in ((self.by_tail, tails[:1]), (self.by_path, tails[1:])):
                for tail in keys:
                    same_tail = table.get(tail, [])
                    if len(same_tail) == 1:
                        return same_tail[0], ""
                    if len(same_tail) > 1:
                        return None, _ambiguous(same_tail) + "; give it their folder"
        return None, _NO_IMAGE


_NO_IMAGE = "no image in the project has this path or name"


def _tails(path: str) -> list[str]:
    """`a/b/c`, `b/c`, `c`: the path without its leading folders, longest first."""
    parts = [p for p in PurePosixPath(path).parts if p not in ("/", ".", "..")]
    return ["/".join(parts[i:]) for i in range(len(parts))]


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _ambiguous(records) -> str:
    paths = sorted(r.relpath for r in records)
    more = f", … ({len(paths)} in all)" if len(paths) > 4 else ""
    if len({_nfc(p) for p in paths}) < len(paths):  # names that look alike, their accents encoded two ways
        shown = ", ".join(ascii(p) for p in paths[:4])
        return (f"matches several project images whose names differ only in how their accents are encoded "
                f"({shown}{more}); rename one of them")
    return f"matches several project images ({', '.join(paths[:4])}{more})"


def _folded_name(name: str) -> str:
    """A class name as a person may have typed it in another tool: any case, spaces around it or doubled."""
    return " ".join(name.split()).casefold()


class ClassMapper:
    """Index tables from a dataset's class names to the project's class indices, cached per class list."""

    def __init__(self, project: LabelSchema, dataset_schema: LabelSchema | None):
        self.project = project
        self.via = None
        if (dataset_schema is not None and dataset_schema.name != project.name
                and project.name in dataset_schema.mappings):
            self.via = (dataset_schema, dataset_schema.mapping_lut(project.name))
        self._folded = {_folded_name(c): i for i, c in enumerate(project.classes)}
        self._tables: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

    def target(self, name: str) -> int | None:
        if self.via is not None:
            schema, lut = self.via
            if name in schema.classes:
                return int(lut[schema.classes.index(name)])
        if name in self.project.classes:
            return self.project.classes.index(name)
        if _folded_name(name) in BACKGROUND_ALIASES:
            return 0
        return self._folded.get(_folded_name(name))

    def reached(self) -> set[int]:
        """The project's classes the labels read so far can hold: through the class names they used (a format
        that names its classes may use the project's own names whatever schema was given), or, before any label
        was read, through the dataset schema's mapping."""
        if not self._tables:
            if self.via is None:
                return set(range(len(self.project.classes)))
            return {int(v) for v in self.via[1][:len(self.via[0].classes)]}
        return {t for classes in self._tables for name in classes if (t := self.target(name)) is not None}

    def table(self, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(lookup table source index -> project index, which source indices have no project class)."""
        if classes not in self._tables:
            lut = np.zeros(256, np.uint8)
            unknown = np.zeros(256, bool)
            for i, name in enumerate(classes[:256]):
                t = self.target(name)
                if t is None:
                    unknown[i] = True
                else:
                    lut[i] = t
            self._tables[classes] = (lut, unknown)
        return self._tables[classes]


@dataclass
class _Planned:
    rec: ImageRecord
    item: LabelItem
    size: tuple[int, int]
    lut: np.ndarray
    mask: np.ndarray | None
    scale_masks: bool = False
    corrected_seen: tuple[int, int] | None = None
    """The corrected mask file as the check saw it ((time, size), None when there was none)."""
    overwrite: bool = False


def _schema_notes(source: Path, fmt: DatasetFormat, dataset: LabelSchema | None, project: LabelSchema,
                  mapper: ClassMapper) -> list[str]:
    """What the user should know about the classes before trusting the masks: values read in the project's schema
    for want of the dataset's own, and the project's classes a mapped dataset can never contain."""
    notes = []
    if dataset is None and not fmt.names_classes:
        notes.append(f"{source} has no {SCHEMA_FILE}: its mask values were read as the project's schema "
                     f"{project.name!r}; name the dataset's own with --source-schema if it has another")
    if mapper.via is not None:
        reached = mapper.reached()
        never = [c for i, c in enumerate(project.classes) if i and i not in reached]
        schema = mapper.via[0]
        if never:
            notes.append(f"{schema.name} has no class for {', '.join(never)}: the imported masks never contain "
                         f"them ({schema.mapping_notes.get(project.name) or 'see the schema mapping'}); import "
                         "with --as predicted to keep them out of training until corrected")
    return notes


def _dataset_schema(source: Path, fmt: DatasetFormat, given: str | LabelSchema | None,
                    problems: list[str]) -> LabelSchema | None:
    """The schema the dataset's labels are read in: `given` (--source-schema), else the dataset's own schema.json,
    else the format's default. A `given` that contradicts the dataset's own schema.json is a problem: one of them is
    wrong, and reading the masks in the wrong one would import every class under another's name."""
    own = None
    card = source / SCHEMA_FILE
    if source.is_dir() and card.is_file():
        try:
            own = load_schema_json(card)
        except SchemaError as e:
            problems.append(str(e))
            return None
    if given is None:
        return own if own is not None else (get_schema(fmt.default_schema) if fmt.default_schema else None)
    try:
        chosen = resolve_schema(given)
    except (KeyError, SchemaError) as e:
        problems.append(str(e.args[0]) if e.args else str(e))
        return None
    if own is not None and own.classes != chosen.classes:
        problems.append(f"--source-schema {chosen.name} ({chosen.num_classes} classes) contradicts the dataset's own "
                        f"{card} ({own.name}, {own.num_classes} classes); leave --source-schema out to read the "
                        "masks in the dataset's own schema")
        return None
    return chosen


def _image_size(store: ProjectStore, rec: ImageRecord) -> tuple[int, int]:
    """(height, width) of the photo as it is on disk now: the index's, unless the file changed since the scan
    (a label is fitted to the photo it will be shown with, not to one replaced since)."""
    path = store.root / rec.relpath
    if rec.width and rec.height:
        try:
            if rec.scanned(path.stat()):
                return rec.height, rec.width
        except OSError:
            return rec.height, rec.width
    width, height = read_size(path)
    return height, width


def _describe_size(size: tuple[int, ...]) -> str:
    return f"{size[1]}x{size[0]}"


def _same_aspect(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] * b[1] == a[1] * b[0]


def _load_label(item: LabelItem, size: tuple[int, int], scale_masks: bool) -> np.ndarray:
    """The label's index mask; with `scale_masks`, a mask of the image's aspect ratio but another size (or a label
    declaring such a size, as COCO and LabelMe files do) is resized to the image (nearest neighbour). The check and the write both load through here, so a mask decoded again for
    the write comes out exactly as the check saw it."""
    declared = tuple(item.size) if item.size is not None else size
    scaled = scale_masks and declared != size and _same_aspect(declared, size)
    raw = item.load(declared if scaled else size)
    if raw.shape != size and scale_masks and _same_aspect(raw.shape, size):
        raw = cv2.resize(raw, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)
    return raw


def import_dataset(store: ProjectStore, source: str | os.PathLike, format: str, *, kind: str = "corrected",
                   source_schema: str | LabelSchema | None = None, ignore_unmatched: bool = False,
                   overwrite: bool = False, scale_masks: bool = False, dry_run: bool = False,
                   model_version: str | None = None, progress: Progress | None = None,
                   cancel: threading.Event | None = None, writing: threading.Event | None = None,
                   stop: threading.Event | None = None) -> ImportReport:
    """Check every label in `source` and, if all are usable, save them into the project (module docstring).

    kind: "corrected" (the human's mask) or "predicted" (kept as a model's proposal, tagged `model_version`,
    by default "import:<format>"). ignore_unmatched: labels whose image is not in the project are listed in the
    report instead of refusing the import. overwrite: replace differing corrected masks. scale_masks: resize
    masks of the image's aspect ratio but another size, nearest neighbour (CelebAMask-HQ ships 512 px masks for
    1024 px photos); otherwise a size mismatch is a problem. dry_run: check only.
    progress(done, total) counts labels checked plus masks written; the total is an estimate (every label written)
    until the check ends, then exact, and the last report is always (total, total).
    cancel stops the check (nothing is imported); once the masks are being written it is no longer looked at, so an
    import is not left half done. `writing` is set when that begins, for a caller that tells its user so; `stop`
    stops the writing between two masks anyway (ImportStopped says how many were imported).
    Raises ImportRefused (with the full report), ImportCancelled, ImportFailed or ImportStopped.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    source = Path(source).expanduser()
    report = ImportReport(source, format, kind, dry_run=dry_run)
    try:
        fmt = get_format(format)
    except KeyError as e:
        report.problems.append(e.args[0])
        raise ImportRefused(report) from None
    if not source.exists():
        report.problems.append(f"{source} does not exist")
        raise ImportRefused(report)
    if not source.is_dir() and not fmt.reads_file:
        report.problems.append(f"{source} is not a folder; {fmt.title} datasets are folders")
        raise ImportRefused(report)
    dataset_schema = _dataset_schema(source, fmt, source_schema, report.problems)
    if report.problems:
        raise ImportRefused(report)
    found = fmt.read_labels(source, dataset_schema or store.schema)
    report.problems.extend(found.problems)
    report.notes.extend(found.notes)
    report.labels = len(found.items)
    checker = _Checker(store, dataset_schema, report, ignore_unmatched, overwrite, scale_masks)
    plan = _check(checker, found.items, fmt, progress, cancel, 1 if dry_run else 2)
    if report.problems:
        raise ImportRefused(report)
    report.notes.extend(_schema_notes(source, fmt, dataset_schema, store.schema, checker.mapper))
    if progress is not None:
        progress(report.labels, report.labels + (0 if dry_run else len(plan)))
    if dry_run:
        return report
    _start_writing(report, cancel, writing)
    _write(store, plan, report, model_version or f"import:{fmt.name}", progress, stop)
    return report


class _Checker:
    """Turns each label into a planned write or into problems in the report; writes nothing."""

    def __init__(self, store: ProjectStore, dataset_schema: LabelSchema | None, report: ImportReport,
                 ignore_unmatched: bool, overwrite: bool, scale_masks: bool):
        self.store = store
        self.scale_masks = scale_masks
        self.report = report
        self.ignore_unmatched = ignore_unmatched
        self.overwrite = overwrite
        self.index = ImageIndex(store.images())
        self.mapper = ClassMapper(store.schema, dataset_schema)
        self.unknown: dict[str, list[str]] = defaultdict(list)
        self.claimed: dict[int, str] = {}
        self.cached = 0

    def check(self, item: LabelItem) -> _Planned | None:
        report = self.report
        rec, why = self.index.match(item.name, item.stem_named)
        if rec is None:
            (report.skipped if self.ignore_unmatched else report.problems).append(
                f"{item.origin}: {why} ({item.name!r})")
            return None
        if rec.id in self.claimed:
            report.problems.append(f"{item.origin}: {rec.relpath} already has a label from {self.claimed[rec.id]}")
            return None
        self.claimed[rec.id] = item.origin
        try:
            size = _image_size(self.store, rec)
        except ImageLoadError as e:
            report.problems.append(f"{item.origin}: its image {rec.relpath} cannot be read ({e.reason})")
            return None
        if item.size is not None and tuple(item.size) != size:
            same_aspect = _same_aspect(tuple(item.size), size)
            if not (self.scale_masks and same_aspect):
                hint = SCALE_HINT if same_aspect else ""
                report.problems.append(f"{item.origin}: the label is for a {_describe_size(item.size)} image, "
                                       f"but {rec.relpath} is {_describe_size(size)}{hint}")
                return None
        try:
            raw = _load_label(item, size, self.scale_masks)
        except LabelFormatError as e:
            report.problems.append(str(e))
            return None
        if raw.shape != size:
            hint = "" if self.scale_masks or not _same_aspect(raw.shape, size) else SCALE_HINT
            report.problems.append(f"{item.origin}: the mask is {_describe_size(raw.shape)}, but {rec.relpath} is "
                                   f"{_describe_size(size)}{hint}")
            return None
        mask = self._mapped(item, raw)
        if mask is None or not self._may_replace(item, rec, mask):
            return None
        keep = self.cached + mask.nbytes <= CACHE_BYTES
        self.cached += mask.nbytes if keep else 0
        return _Planned(rec, item, size, self.mapper.table(item.classes)[0], mask if keep else None,
                        self.scale_masks, _file_seen(self.store.mask_path("corrected", rec.id)), self.overwrite)

    def _mapped(self, item: LabelItem, raw: np.ndarray) -> np.ndarray | None:
        present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256))
        if present.size and present[-1] >= len(item.classes):
            self.report.problems.append(f"{item.origin}: has class index {int(present[-1])}, but the dataset's "
                                        f"schema has only {len(item.classes)} classes")
            return None
        lut, missing = self.mapper.table(item.classes)
        bad = [item.classes[i] for i in present if missing[i]]
        for name in bad:
            self.unknown[name].append(item.origin)
        if bad:
            return None
        for i in present:
            self.report.class_map[item.classes[i]] = self.store.schema.classes[lut[i]]
        return lut[raw]

    def _may_replace(self, item: LabelItem, rec: ImageRecord, mask: np.ndarray) -> bool:
        """A corrected mask, or the mask a human approved as reviewed, is someone's work: replacing it by a
        different one needs `overwrite`."""
        if self.report.kind != "corrected":
            return True
        try:
            existing = self.store.corrected_mask(rec.id)
        except MaskError as e:  # a damaged file: overwriting is the way to repair it
            if self.overwrite:
                return True
            self.report.problems.append(f"{item.origin}: {e}")
            return False
        try:
            if existing is None and rec.status == "reviewed":
                existing = self.store.predicted_mask(rec.id)
        except ProjectError as e:
            self.report.problems.append(f"{item.origin}: {e}")
            return False
        if existing is not None and np.array_equal(existing, mask):
            self.report.unchanged += 1
            return False
        if existing is not None and not self.overwrite:
            what = "reviewed" if rec.status == "reviewed" else "corrected"
            self.report.problems.append(f"{item.origin}: {rec.relpath} already has a different {what} mask "
                                        "(to replace it: --overwrite, or the dialog's box \"Replace corrected masks "
                                        "that differ\")")
            return False
        return True

    def finish(self) -> None:
        for name, origins in sorted(self.unknown.items()):
            examples = ", ".join(origins[:3]) + (", ..." if len(origins) > 3 else "")
            schema = self.store.schema
            self.report.problems.append(
                f"class {name!r} (in {len(origins)} label file{'s' if len(origins) > 1 else ''}: {examples}) has "
                f"no place in the project's schema {schema.name!r} ({', '.join(schema.classes)})")


def _cancelled_while_checking(report: ImportReport) -> ImportCancelled:
    return ImportCancelled(f"import from {report.source} cancelled while checking; nothing was imported")


def _check(checker: _Checker, items: list[LabelItem], fmt: DatasetFormat, progress: Progress | None,
           cancel: threading.Event | None, passes: int) -> list[_Planned]:
    """`passes`: 2 when every label checked may also be written, 1 for a dry run (the progress total's guess)."""
    report = checker.report
    plan: list[_Planned] = []
    total = len(items) * passes
    for done, item in enumerate(items):
        if cancel is not None and cancel.is_set():
            raise _cancelled_while_checking(report)
        if progress is not None and done:
            progress(done, total)
        planned = checker.check(item)
        if planned is not None:
            plan.append(planned)
    checker.finish()
    if not items and not report.problems:
        report.problems.append(f"no {fmt.title} labels found in {report.source}")
    report.planned = len(plan)
    return plan


def _start_writing(report: ImportReport, cancel: threading.Event | None, writing: threading.Event | None) -> None:
    """From here on `cancel` is not looked at; it is read once more after `writing` is set, so a cancel that came
    before its caller could see the writing start still imports nothing."""
    if writing is not None:
        writing.set()
    if cancel is not None and cancel.is_set():
        raise _cancelled_while_checking(report)


def _write(store: ProjectStore, plan: list[_Planned], report: ImportReport, model_version: str,
           progress: Progress | None, stop: threading.Event | None) -> None:
    """Save every planned mask. A stop or a KeyboardInterrupt becomes ImportStopped saying how far it got (what was
    imported stays); a failed save puts every image this import wrote back as it was, so a failure imports
    nothing, as a problem found in the check does."""
    rollback = MaskRollback(store)
    try:
        for planned in plan:
            if stop is not None and stop.is_set():
                raise ImportStopped(f"import from {report.source} stopped: imported {report.imported} of "
                                    f"{len(plan)} {report.kind} masks; importing it again brings in the rest")
            try:
                rollback.keep(planned.rec.id)
                _write_one(store, planned, report, model_version)
            except (ImportFailed, OSError, sqlite3.Error, ProjectError) as e:
                failure = e if isinstance(e, ImportFailed) else ImportFailed(f"{planned.rec.relpath}: {write_failure_text(e)}")
                raise _taken_back(rollback, report, len(plan), failure) from e
            if progress is not None:
                progress(report.labels + report.imported, report.labels + len(plan))
    except KeyboardInterrupt:
        raise ImportStopped(f"import from {report.source} interrupted: imported {report.imported} of {len(plan)} "
                            f"{report.kind} masks (the one being saved may be incomplete); importing it again "
                            "brings in the rest") from None
    finally:
        rollback.discard()


def _taken_back(rollback: MaskRollback, report: ImportReport, planned_count: int, failure: ImportFailed
                ) -> ImportFailed:
    """The failure, after the images written so far were put back (or, if even that failed, saying so)."""
    written = report.imported
    try:
        rollback.restore()
    except (OSError, sqlite3.Error, ProjectError) as e:
        return ImportFailed(f"importing from {report.source} failed at mask {written + 1} of {planned_count}: "
                            f"{failure}; putting back the {written} masks written before it failed too "
                            f"({write_failure_text(e)}): those images now have the imported masks")
    report.imported = 0
    return ImportFailed(f"importing from {report.source} failed at mask {written + 1} of {planned_count}: "
                        f"{failure}; nothing was imported (the {written} masks written before it were taken back)")


def _file_seen(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _checked_meanwhile(store: ProjectStore, planned: _Planned) -> bool:
    """Whether someone corrected or reviewed the image (in the studio, or another program) after the check let this
    import replace its mask: that newer work is not replaced without `overwrite` either."""
    now = store.get(planned.rec.id)
    if now is None:
        return False
    newly_checked = now.status in ("corrected", "reviewed") and now.status != planned.rec.status
    return newly_checked or _file_seen(store.mask_path("corrected", now.id)) != planned.corrected_seen


def _write_one(store: ProjectStore, planned: _Planned, report: ImportReport, model_version: str) -> None:
    if report.kind == "corrected" and not planned.overwrite and _checked_meanwhile(store, planned):
        report.notes.append(f"{planned.rec.relpath} left out: it was corrected or reviewed while the import ran; "
                            "import again with --overwrite to replace it")
        return
    try:
        mask = planned.mask if planned.mask is not None else \
            planned.lut[_load_label(planned.item, planned.size, planned.scale_masks)]
        if report.kind == "corrected":
            store.save_corrected(planned.rec.id, mask, keep_reviewed=False, imported=True)  # nobody reviewed it here
        else:
            store.save_predicted(planned.rec.id, mask, model_version)
    except (OSError, sqlite3.Error, ProjectError, LabelFormatError) as e:
        raise ImportFailed(f"{planned.rec.relpath}: {write_failure_text(e)}") from e
    report.imported += 1
