"""Exporting a project as a dataset: which images, which split, which schema, and a folder that appears whole.

Every format shares the same plumbing, kept here so a format module only writes its files:
- selection: reviewed images only, corrected and reviewed, or everything with a mask (predictions included);
  each image contributes its current mask (the correction if there is one, else the prediction);
- a seeded train/val/test split: the same images, fractions and seed always give the same split; photos with the
  same content hash are kept in one split, so a duplicate never leaks from train into test;
- mapping to a target schema through the project schema's declared mapping (e.g. CelebAMask-HQ 19 → LaPa 11);
  without one given, a layout whose readers take label values as its own dataset's classes (LaPa) is written in
  that schema, and refused when the project's schema has no mapping to it; every other layout gets the project's;
- the dataset card (README.md, and dataset.json for programs): counts, split sizes, schema, class pixel ratios,
  which model versions pre-labeled the images, how many were corrected by hand;
- atomicity: everything is written into a hidden temporary folder beside the destination, fsynced, and
  renamed into place only when complete. A failure or a cancel removes the temporary folder and leaves the
  destination as it was; what a crash leaves there is removed by the next export to that destination;
- replacing (overwrite): only an earlier export's folder, and only while it holds nothing but what that export
  wrote, at its top and in its subfolders (dataset.json records the names at the top, and how many files there
  were and the newest time one was written), so files put there or edited since are never deleted unasked.

Progress is reported as `progress(done, total)` after each image; setting the `cancel` event stops the export
between two images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np
from faceparse.core.formats import FORMATS, DatasetFormat, card, get_format
from faceparse.core.formats.base import (
    CARD_DATA_FILE,
    CARD_FILE,
    SCHEMA_FILE,
    SPLIT_NAMES,
    Exporter,
    ExportError,
    ExportItem,
    write_schema,
)
from faceparse.core.imageio import ImageLoadError, read_size
from faceparse.core.schemas import LabelSchema, builtin_schema_names, get_schema, resolve_schema
from faceparse.core.store import (
    HUMAN_STATUSES,
    ImageRecord,
    MaskError,
    ProjectError,
    ProjectStore,
    content_hash,
)

try:
    import fcntl
except ImportError:  # Windows: no flock, so no removal of crashed exports' leftovers
    fcntl = None

SELECTIONS: dict[str, tuple[str, ...]] = {
    "reviewed": ("reviewed",),
    "corrected": ("corrected", "reviewed"),
    "all": ("predicted", "corrected", "reviewed"),
}
SELECTION_TITLES = {
    "reviewed": "reviewed images only",
    "corrected": "corrected and reviewed images",
    "all": "every image with a mask, predictions included",
}
SELECTION_NOUNS = {
    "reviewed": "reviewed images",
    "corrected": "corrected or reviewed images",
    "all": "images with a mask (corrected, reviewed or predicted)",
}
DEFAULT_SPLIT = (0.8, 0.1, 0.1)

Progress = Callable[[int, int], object]

__all__ = ["DEFAULT_SPLIT", "SELECTIONS", "DestinationNotEmpty", "ExportCancelled", "ExportError", "ExportResult", "assign_splits",
           "export_dataset", "parse_split", "select_images"]


class ExportCancelled(Exception):
    """The export was cancelled; nothing was left at the destination."""


@dataclass
class ExportResult:
    out_dir: Path
    format: str
    schema: LabelSchema
    count: int
    splits: dict[str, int]
    class_pixels: dict[str, int]
    corrected_by_hand: int
    model_versions: dict[str, int]
    seconds: float
    skipped: list[str] = field(default_factory=list)
    source_schema: LabelSchema | None = None
    """The project's schema, which the masks were mapped from when it is not `schema`."""
    schema_by_default: bool = False
    """Whether `schema` is the format's own, chosen because none was given."""
    approved_as_predicted: int = 0
    """Masks a person checked (accepted or reviewed) and left exactly as the model made them; not in
    `corrected_by_hand`."""
    imported: int = 0
    """Masks brought in from another dataset and not edited here since; not in `corrected_by_hand`."""

    def schema_summary(self) -> str:
        """Which schema the masks are written in, and why when the format chose it."""
        text = f"masks in schema {self.schema.name} ({self.schema.num_classes} classes)"
        if self.source_schema is not None and self.source_schema.name != self.schema.name:
            text += f", mapped from the project's {self.source_schema.name}"
        if self.schema_by_default:
            text += f" (the {self.format} format's default)"
        return text


@dataclass
class _Tally:
    """What the dataset card reports, counted while the images go out."""

    pixels: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    by_hand: int = 0
    approved: int = 0
    imported: int = 0
    versions: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    splits: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.splits.values())

    def add(self, rec: ImageRecord, mask: np.ndarray, split: str, corrected: bool) -> None:
        self.pixels += np.bincount(mask.ravel(), minlength=256)
        self.splits[split] += 1
        self.statuses[rec.status] += 1
        imported = corrected and rec.mask_source == "imported"
        unchanged = corrected and not imported and rec.effort == 0
        self.imported += imported
        self.by_hand += corrected and not unchanged and not imported
        self.approved += unchanged
        if rec.model_version:
            self.versions[rec.model_version] += 1


SPLIT_SUM_SLACK = 0.005
"""How far from 1 the fractions may add up (thirds written as 0.333) before they are taken for a mistake; within it
they are scaled to add up to 1 exactly."""


def parse_split(text: str | Sequence[float]) -> tuple[float, float, float]:
    """Train/val/test fractions from "0.8,0.1,0.1" (or two values, test then 0); they must add up to 1."""
    if isinstance(text, str):
        fields = text.replace(" ", "").split(",")
        if len(fields) > 1 and fields[-1] == "":
            fields.pop()  # "0.8,0.2,": a trailing comma
        if "" in fields:
            raise ValueError(f"split field {fields.index('') + 1} is empty in {text!r}; write every fraction, "
                             "like 0.5,0,0.5")
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise ValueError(f"split must be numbers like 0.8,0.1,0.1, got {text!r}") from None
    else:
        values = [float(v) for v in text]
    if len(values) == 2:
        values.append(0.0)
    if len(values) != 3:
        raise ValueError(f"split needs two or three fractions (train,val[,test]) like 0.8,0.1,0.1, got "
                         f"{len(values)} value{'' if len(values) == 1 else 's'}")
    if not all(np.isfinite(v) for v in values):
        raise ValueError(f"split fractions must be finite numbers like 0.8,0.1,0.1, got {text!r}")
    if any(v < 0 for v in values):
        raise ValueError("split fractions must not be negative")
    if abs(sum(values) - 1.0) > SPLIT_SUM_SLACK:
        raise ValueError(f"split fractions must add up to 1, got {sum(values):g}")
    total = sum(values)
    if total != 1.0:
        values = [v / total for v in values]
    return values[0], values[1], values[2]


def assign_splits(groups: Sequence[str], fractions: Sequence[float], seed: int) -> list[str]:
    """The split of each item, where `groups[i]` is the item's group key (items of one group stay together).

    Groups are shuffled with the seed and dealt out so each split's image count is as close to its fraction as
    whole groups allow. Linear in the number of items.
    """
    fractions = parse_split(fractions)
    sizes = Counter(groups)
    keys = sorted(sizes)
    order = np.random.default_rng(seed).permutation(len(keys))
    total = len(groups)
    bounds = np.cumsum(fractions) * total
    assigned: dict[str, str] = {}
    taken = 0
    for k in order:
        key = keys[k]
        middle = taken + sizes[key] / 2
        split_index = min(int(np.searchsorted(bounds, middle, side="right")), 2)
        while fractions[split_index] == 0 and split_index > 0:
            split_index -= 1
        while fractions[split_index] == 0:
            split_index += 1
        assigned[key] = SPLIT_NAMES[split_index]
        taken += sizes[key]
    return [assigned[g] for g in groups]


def select_images(store: ProjectStore, only: str = "corrected") -> list[ImageRecord]:
    """The images an export with `only` would contain, in name order."""
    if only not in SELECTIONS:
        raise ValueError(f"--only must be one of {', '.join(SELECTIONS)}, got {only!r}")
    return store.images(status=SELECTIONS[only])


NAMES_SHOWN = 5
"""How many refused names an export's error lists before "and N more"."""


def _listed(items: Sequence[str]) -> str:
    shown = "; ".join(items[:NAMES_SHOWN])
    return shown + (f"; and {len(items) - NAMES_SHOWN} more" if len(items) > NAMES_SHOWN else "")


def _export_names(records: Sequence[ImageRecord], exporter: type[Exporter]) -> list[str]:
    """Each image's path without extension, the name its files are written under. Refused, all at once so one
    run names every rename needed: paths the layout cannot hold, and, for a layout that writes a label file per
    image named from that path, photos that would share one (`x.jpg` and `x.png`, or names differing only in case,
    which are one file on Windows and macOS)."""
    names = [str(PurePosixPath(r.relpath).with_suffix("")) for r in records]
    unwritable = [f"{r.relpath!r}: {why}" for r in records if (why := exporter.unwritable_name(r.relpath))]
    if unwritable:
        raise ExportError(f"{len(unwritable)} image{'s' if len(unwritable) != 1 else ''} cannot be exported in "
                          f"this format; rename {'them' if len(unwritable) != 1 else 'it'}: {_listed(unwritable)}")
    suffix = exporter.stem_label_suffix
    if suffix is None:
        return names
    sharing: dict[str, list[str]] = {}
    for name, rec in zip(names, records, strict=True):
        sharing.setdefault(exporter.label_stem(name).casefold(), []).append(rec.relpath)
    clashes = [(f"{', '.join(paths[:-1])} and {paths[-1]}",
                f"{exporter.label_stem(str(PurePosixPath(paths[0]).with_suffix('')))}{suffix}")
               for paths in sharing.values() if len(paths) > 1]
    if len(clashes) == 1:
        raise ExportError(f"{clashes[0][0]} would get the same label file name {clashes[0][1]}; rename one of them")
    if clashes:
        raise ExportError(f"{len(clashes)} groups of photos would each share one label file name; rename all but "
                          f"one photo of each: {_listed([f'{photos} ({file})' for photos, file in clashes])}")
    return names


_CARD_KEYS_BEFORE_GENERATOR = frozenset({
    "project", "created", "format", "selection", "count", "statuses", "corrected_by_hand", "split", "schema",
    "schema_file", "source_schema", "class_pixels", "class_ratios_percent", "model_versions", "skipped"})
"""The entries of dataset.json as exports wrote it before it named its generator."""
_CARD_KEYS_ADDED_LATER = frozenset({"approved_as_predicted", "imported", card.CARD_TOP_LEVEL_KEY})

_CARD_TOP_LEVEL = (CARD_FILE, CARD_DATA_FILE, SCHEMA_FILE)
FILE_MANAGER_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
"""Files a file manager leaves in any folder it shows; they hold nobody's work, so they never block a replace."""


def _refuse_enclosing_project(out_dir: Path) -> None:
    """A project whose folder holds the destination (the exported project's or any other, however far up) would
    take the exported photos and label PNGs for new photos at its next scan."""
    try:
        enclosing = ProjectStore.enclosing_project(out_dir)
    except OSError:  # a folder on the way cannot be looked into: left to the destination's own checks
        return
    if enclosing is not None:
        raise ExportError(f"{out_dir} is inside the project {enclosing}; its next scan would take the exported "
                          "photos and masks for new photos. Choose a folder outside it")


class DestinationNotEmpty(ExportError):
    """The destination holds something and replacing was not asked for; the CLI and the studio each add how to ask
    for it (a flag, a check box)."""


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    """Overwriting replaces the whole folder, so it is allowed only for a folder an earlier export wrote (its
    dataset.json is this exporter's) and holding nothing else at its top: a mistyped parent folder, another tool's
    dataset or files added since are refused instead of deleted. A symbolic link is refused: the rename would
    replace the link, not the folder it points to."""
    try:
        _check_destination_folder(out_dir, overwrite)
    except OSError as e:
        raise ExportError(f"cannot export to {out_dir}: {e.strerror or e}") from None


def _check_destination_folder(out_dir: Path, overwrite: bool) -> None:
    if out_dir.is_symlink():
        raise ExportError(f"{out_dir} is a symbolic link (to {os.readlink(out_dir)}); an export would replace the "
                          "link, not the folder it points to. Export to that folder itself or choose another name")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    _refuse_unwritable(out_dir)
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise DestinationNotEmpty(f"{out_dir} already exists and is not empty; choose a new folder, or replace an "
                                  "earlier export there")
    card_file = out_dir / CARD_DATA_FILE
    if not card_file.is_file():
        raise ExportError(f"{out_dir} is not an earlier export (it has no {CARD_DATA_FILE}); only an export's own "
                          "folder is replaced. Choose a new or empty folder")
    if not written_by_this_exporter(card_file):
        raise ExportError(f"{out_dir} is not an earlier export: its {CARD_DATA_FILE} was written by another "
                          "program (an nnU-Net dataset?); only an export's own folder is replaced. Choose a new or "
                          "empty folder")
    _refuse_added_entries(out_dir, card_file)
    _refuse_changed_contents(out_dir, card_file)


def _refuse_unwritable(out_dir: Path) -> None:
    """Refuse, before any work, a destination folder (or, when it does not exist yet, the folder it would be made
    in) this user may not write: a folder made read-only is not filled anyway."""
    folder = out_dir
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"cannot export to {out_dir}: {folder} cannot be written (permission denied)")


def _refuse_added_entries(out_dir: Path, card_file: Path) -> None:
    """Replacing an earlier export deletes its whole folder, so what someone put there since (notes, a `runs`
    folder of training outputs) refuses the replace, named, before anything changes."""
    ours = _earlier_export_names(card_file) | FILE_MANAGER_NAMES
    added = sorted((entry.name for entry in out_dir.iterdir() if entry.name not in ours), key=str.casefold)
    if not added:
        return
    it = "them" if len(added) > 1 else "it"
    entries = f"{len(added)} entries" if len(added) > 1 else "an entry"
    raise ExportError(f"{out_dir} holds {entries} the earlier export did not write: {_listed(added)}. Replacing "
                      f"the export would delete {it}; move {it} out of the folder first, or export to a new folder")


CONTENTS_KEY = "contents"
"""The card's record of what the export wrote below its top: {"files": count, "newest_ns": newest write time,
"listing": a digest of every file's path, size and time}."""


def _contents(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file in the folder's tree but its card data file and what file managers leave behind: its path
    relative to `folder`, and the time it was last written (ns) and its size."""
    found = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            relative = path.relative_to(folder).as_posix()
            if relative != CARD_DATA_FILE and name not in FILE_MANAGER_NAMES:
                st = path.lstat()
                found[relative] = (st.st_mtime_ns, st.st_size)
    return found


def _listing(contents: dict[str, tuple[int, int]]) -> str:
    """A digest of the files' paths, times and sizes: a file swapped in for one deleted, with an old time (a move,
    an unzip), changes neither the count nor the newest time, but it changes this. (Files only deleted since are
    no reason to refuse a replace, and with as many swapped in as were deleted the count does not tell them apart.)"""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(contents):
        written, size = contents[path]
        digest.update(f"{path}\0{written}\0{size}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _record_contents(card_file: Path) -> None:
    """Add to the card what the export holds below its top, once everything else is written."""
    written = _contents(card_file.parent)
    data = _read_card(card_file) or {}
    data[CONTENTS_KEY] = {"files": len(written), "newest_ns": max((t for t, _ in written.values()), default=0),
                          "listing": _listing(written)}
    card_file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _refuse_changed_contents(out_dir: Path, card_file: Path) -> None:
    """Files added to an earlier export's subfolders, or edited there, since it was written: a replace would delete
    them, so it is refused and what can be named is."""
    recorded = (_read_card(card_file) or {}).get(CONTENTS_KEY)
    if not (isinstance(recorded, dict) and isinstance(recorded.get("files"), int)
            and isinstance(recorded.get("newest_ns"), int)):
        return  # an export from before the record: only its top was checked
    now = _contents(out_dir)
    newer = sorted((p for p, (written, _) in now.items() if written > recorded["newest_ns"]), key=str.casefold)
    extra = len(now) - recorded["files"]
    listing = recorded.get("listing")
    swapped = isinstance(listing, str) and extra == 0 and listing != _listing(now)
    if not newer and extra <= 0 and not swapped:
        return
    if newer:
        what = f"{len(newer)} file{'s' if len(newer) != 1 else ''} added or changed since: {_listed(newer)}"
    elif extra > 0:
        what = f"{extra} more file{'s' if extra != 1 else ''} than it wrote"
    else:
        what = "files other than the ones it wrote (some were added, replaced or moved in since)"
    raise ExportError(f"{out_dir} holds {what}. Replacing the export would delete them; move them out of the folder "
                      "first, or export to a new folder")


def _earlier_export_names(card_file: Path) -> frozenset[str]:
    """What the earlier export wrote at the top of its folder: its card's record or, for an export from before the
    record, every name its layout writes there (any layout's, when the card does not say which)."""
    data = _read_card(card_file) or {}
    recorded = data.get(card.CARD_TOP_LEVEL_KEY)
    if isinstance(recorded, list) and all(isinstance(name, str) for name in recorded):
        return frozenset(recorded)
    layout = data.get("format")
    known = FORMATS.get(layout) if isinstance(layout, str) else None
    names = known.exporter.top_level if known is not None else \
        tuple(name for f in FORMATS.values() for name in f.exporter.top_level)
    return frozenset((*_CARD_TOP_LEVEL, *names))


def _read_card(card_file: Path) -> dict | None:
    try:
        data = json.loads(card_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def written_by_this_exporter(card_file: Path) -> bool:
    """Whether a dataset.json is this exporter's card: it names this program as its generator or, from before that
    entry, has the entries those exports wrote (and at most the ones added since). Other tools' dataset.json
    (nnU-Net's) has neither."""
    data = _read_card(card_file)
    if data is None:
        return False
    if data.get(card.CARD_GENERATOR_KEY) == card.CARD_GENERATOR:
        return True
    return _CARD_KEYS_BEFORE_GENERATOR <= data.keys() <= _CARD_KEYS_BEFORE_GENERATOR | _CARD_KEYS_ADDED_LATER


_NAME_IN_HIDDEN = 32
_HIDDEN_KINDS = ("partial", "old")
_MAKE_HIDDEN_TRIES = 100


def _name_in_hidden(name: str) -> str:
    """The destination's name as its hidden folders carry it: whole when short, else cut and told apart by a hash,
    so a legal 255-character destination name still leaves room for the hidden name's additions."""
    if len(name) <= _NAME_IN_HIDDEN:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    return f"{name[:_NAME_IN_HIDDEN - 9]}~{digest}"


PARTIAL_MARKER = ".faceparse-partial-export"
"""Written into a `.partial` folder when it is made and removed just before the finished export is renamed into
place: what marks a crashed export's folder as one."""


def _make_hidden(out_dir: Path, kind: str) -> Path:
    """A new hidden folder beside the destination, `.<name>.<8 hex digits>.<kind>`. Made by a plain mkdir, so it
    gets the usual mode (0o777 less the umask, default ACLs) and not mkdtemp's 0700, which the renamed export would
    keep."""
    for _ in range(_MAKE_HIDDEN_TRIES):
        path = out_dir.parent / f".{_name_in_hidden(out_dir.name)}.{secrets.token_hex(4)}.{kind}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for a hidden folder beside {out_dir}")


def _has_leftover_name(name: str, out_dir: Path) -> bool:
    names = "|".join(re.escape(n) for n in {out_dir.name, _name_in_hidden(out_dir.name)})
    kinds = "|".join(_HIDDEN_KINDS)
    return re.fullmatch(rf"\.(?:{names})\.[0-9a-f]{{8}}\.(?:{kinds})", name) is not None


def _is_leftover(path: Path, out_dir: Path) -> bool:
    """Whether `path` is what a crashed export to `out_dir` left: a hidden folder of this module's naming that
    holds either the partial-export marker or a finished export of this program (an overwritten one set aside as
    `.old`, or one that crashed just before its rename). A folder of the user's that merely looks like one (a
    dated backup `.dataset.20240101.old`) holds neither and is kept."""
    if not _has_leftover_name(path.name, out_dir) or path.is_symlink() or not path.is_dir():
        return False
    return (path / PARTIAL_MARKER).is_file() or written_by_this_exporter(path / CARD_DATA_FILE)


def _remove_leftovers(out_dir: Path) -> None:
    try:
        leftovers = [p for p in out_dir.parent.iterdir() if _is_leftover(p, out_dir)]
    except OSError:
        return
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)


SHARED_LOCK_WAIT_S = 30.0
"""How long an export waits for another one to finish removing leftovers (an exclusive lock held for a moment)."""


def _lock_parent(out_dir: Path, cancel: threading.Event | None = None) -> int | None:
    """Mark this export as running in the destination's parent folder, and remove what crashed exports to the same
    destination left there (hidden `.partial` and `.old` folders of this module's naming).

    Every export holds a shared flock on the parent folder until it ends, and the kernel drops a lock when its
    process dies, however it dies. An export that gets the lock exclusively therefore knows that no other export
    into that folder is running, so every hidden folder of its destination is a crash's leftover; it removes them
    and then shares the lock. While another export runs there, leftovers wait for a later export. Without flock
    (Windows, some network file systems) nothing is removed. Returns the open folder that holds the lock; an
    exclusive lock that outlasts `SHARED_LOCK_WAIT_S` (some other program's) ends the export with ExportError.
    """
    if fcntl is None:
        return None
    try:
        fd = os.open(out_dir.parent, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        alone = True
    except BlockingIOError:
        alone = False
    except OSError:
        os.close(fd)
        return None
    if alone:
        _remove_leftovers(out_dir)
    deadline = time.monotonic() + SHARED_LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if cancel is not None and cancel.is_set():
                os.close(fd)
                raise ExportCancelled(f"export to {out_dir} cancelled while waiting for a lock on "
                                      f"{out_dir.parent}") from None
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ExportError(f"cannot export to {out_dir}: another program has held a lock on "
                                  f"{out_dir.parent} for {SHARED_LOCK_WAIT_S:.0f} s; try again once it "
                                  "has finished") from None
            time.sleep(0.05)
        except OSError:
            os.close(fd)
            return None


def _unlock(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)


def _make_parent(out_dir: Path) -> None:
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in reversed(out_dir.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker is not None else \
            f"cannot create {out_dir.parent} ({e.strerror or e})"
        raise ExportError(f"cannot export to {out_dir}: {reason}") from None


def _start_export(out_dir: Path, cancel: threading.Event | None = None) -> tuple[Path, int | None]:
    """The hidden folder the export is written into, and the lock that marks the export as running."""
    _make_parent(out_dir)
    lock = _lock_parent(out_dir, cancel)
    try:
        tmp = _make_hidden(out_dir, "partial")
        (tmp / PARTIAL_MARKER).touch()
        return tmp, lock
    except OSError as e:
        _unlock(lock)
        raise ExportError(f"cannot write in {out_dir.parent}: {e.strerror or e}") from None


FSYNC_THREADS = 16


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush(folder: Path) -> None:
    """Make every finished file durable before the rename makes the folder visible.

    Each file and folder is fsynced, many at a time: concurrent fsyncs share journal commits, which makes this
    several times faster than one after another, and unlike a global sync it never waits for other programs'
    writes (a training job saving checkpoints).
    """
    paths = [Path(d) / name for d, dirs, files in os.walk(folder) for name in files]
    if os.name == "posix":
        paths += [Path(d) for d, _, _ in os.walk(folder)]
    with ThreadPoolExecutor(FSYNC_THREADS) as pool:
        list(pool.map(_fsync, paths))


def _move_into_place(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename the finished export into place. An empty folder the user made is kept (its owner, group, mode and
    access lists are theirs) and the export's entries move into it, the dataset card last, so a reader never takes
    a half-moved folder for a dataset. An earlier export it replaces lends the new folder its mode and, where this
    process may set them, its owner and group, so sharing settings stay."""
    _check_destination(out_dir, overwrite)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        _move_entries_into(tmp, out_dir)
        return
    old = None
    if out_dir.is_dir():
        _lend_ownership(out_dir, tmp)
        old = _make_hidden(out_dir, "old")
        old.rmdir()
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    if os.name == "posix":
        _fsync(out_dir.parent)


def _move_entries_into(tmp: Path, out_dir: Path) -> None:
    """Move the export's top-level entries into an empty folder, the card data last; on a failure the entries
    already moved go back, leaving the folder empty as it was."""
    entries = sorted(tmp.iterdir(), key=lambda entry: entry.name == CARD_DATA_FILE)
    moved: list[Path] = []
    try:
        for entry in entries:
            os.replace(entry, out_dir / entry.name)
            moved.append(entry)
    except OSError:
        for entry in reversed(moved):
            with contextlib.suppress(OSError):
                os.replace(out_dir / entry.name, entry)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    if os.name == "posix":
        _fsync(out_dir)


def _lend_ownership(folder: Path, to: Path) -> None:
    """Give `to` the mode of `folder` and, where allowed, its owner and group."""
    info = folder.stat()
    os.chmod(to, stat.S_IMODE(info.st_mode))
    if hasattr(os, "chown"):
        with contextlib.suppress(OSError):
            os.chown(to, info.st_uid, info.st_gid)


GONE = "the photo is gone from the folder (its mask is kept and comes back when a scan finds the photo, under any name)"


def _why_missing(store: ProjectStore, rec: ImageRecord) -> str:
    """Why a photo with a mask is not in the folder the project indexes: gone, or now part of a project of its own
    in a subfolder (which the scan leaves to that project)."""
    inside = store.project_inside(rec.relpath)
    if inside is None:
        return f"{rec.relpath}: {GONE}"
    return (f"{rec.relpath}: its folder {inside} holds a project of its own now, which the photo belongs to (the "
            "mask made here is kept and comes back if that folder stops being a project)")


def _mask_of(store: ProjectStore, rec: ImageRecord) -> tuple[np.ndarray | None, bool, str | None]:
    """(mask, whether it is the correction, why the image is left out). A damaged mask file leaves its image out,
    as training does, and is not replaced by the prediction: the person's correction superseded that. Only an image
    a person checked is read from its corrected mask file (a file left behind for a predicted image is no one's
    correction), and a corrected image whose file is gone is left out rather than passing the model's guess off
    as a person's."""
    if rec.status in HUMAN_STATUSES:
        try:
            corrected = store.corrected_mask(rec.id)
        except MaskError as e:
            return None, True, str(e)
        if corrected is not None:
            return corrected, True, None
        if rec.status == "corrected":
            return None, True, f"{rec.relpath}: status corrected but its corrected mask file is missing"
    try:
        predicted = store.predicted_mask(rec.id)
    except MaskError as e:
        return None, False, str(e)
    if predicted is None:
        return None, False, f"{rec.relpath}: status {rec.status} but no mask file"
    return predicted, False, None


def _photo_mismatch(store: ProjectStore, rec: ImageRecord, mask: np.ndarray, predicted: bool) -> str | None:
    """Why the photo and its mask cannot be exported together (the photo was replaced or cropped after labeling,
    or replaced by another of the same size, or deleted or damaged since the last scan, which export does not run),
    or None when they fit. `predicted`: the mask is the model's."""
    if predicted and rec.status in ("new", "predicted") and _prediction_is_stale(store, rec):
        return (f"{rec.relpath}: the photo changed after the model predicted its mask; pre-label it again, or "
                "correct it, to export it")
    try:
        width, height = read_size(store.root / rec.relpath)
    except ImageLoadError as e:  # deleted or damaged since the last scan: left out, as training leaves it out
        if not e.path.exists():
            return f"{rec.relpath}: {GONE}"
        return f"{rec.relpath}: the photo cannot be read ({e.reason})"
    if (height, width) != mask.shape:
        return (f"{rec.relpath}: the photo is {width}x{height} but its mask is {mask.shape[1]}x{mask.shape[0]} "
                "(was the photo replaced after labeling?)")
    if store.photo_changed_since_checked(rec):
        return (f"{rec.relpath}: the photo changed after its mask was checked; open it, check the mask and save "
                "or review it again to export it")
    return None


def _prediction_is_stale(store: ProjectStore, rec: ImageRecord) -> bool:
    """Whether the photo changed after its prediction was made. A scan that finds a predicted photo changed
    forgets the model version (so pre-labeling predicts it again) but keeps the mask file; a change since the last
    scan shows as a size or modification time other than the scan's, which the next scan would treat the same. A
    photo whose time alone changed keeps its prediction only if its bytes are still the ones predicted."""
    if rec.model_version is None:
        return True
    path = store.root / rec.relpath
    try:
        st = path.stat()
        if not rec.scanned(st):
            return True
        return rec.hash_before is not None and content_hash(path) != rec.hash_before
    except OSError:
        return False  # left to the photo's reader, which reports it


def _target_schema(project: LabelSchema, dataset_format: DatasetFormat,
                   given: str | LabelSchema | None) -> LabelSchema:
    """The schema the masks are written in: the one given (the project's own by its name, even when it is not a
    built-in), else the format's own when its readers take label values as that schema's classes (or its
    preferred one, when the project's schema maps to it), else the project's. Writing the project's indices into such a layout would give every reader other classes, silently."""
    if given is not None:
        return project if given == project.name else resolve_schema(given)
    preferred = dataset_format.preferred_schema
    if preferred is not None and preferred != project.name and preferred in project.mappings:
        return get_schema(preferred)
    native = dataset_format.export_schema
    if native is None or native == project.name:
        return project
    if native in project.mappings:
        return get_schema(native)
    raise ExportError(
        f"the {dataset_format.name} format writes label values as {native}'s classes (its readers take them so), "
        f"but the project's schema {project.name!r} declares no mapping to {native!r}. Add a mapping to {native!r} "
        f"to the project's schema and export with the schema {native} (--schema {native}), or export with the "
        f"project's schema (--schema {project.name}) to write its own classes in the {dataset_format.name} layout")


def _checked_request(store: ProjectStore, out_dir: str | os.PathLike, format: str, only: str,
                     split: str | Sequence[float], seed: int, target_schema: str | LabelSchema | None,
                     overwrite: bool) -> tuple[DatasetFormat, tuple[float, float, float], list[ImageRecord],
                                               LabelSchema, np.ndarray, Path]:
    """Everything `export_dataset` checks before it writes a byte: (format, split fractions, selected images,
    target schema, class lookup table, absolute destination). Raises ExportError for what the user can fix."""
    try:
        dataset_format = get_format(format)
    except KeyError as e:
        raise ExportError(e.args[0]) from None
    try:
        fractions = parse_split(split)
        records = select_images(store, only)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ExportError(f"the split's seed must be a whole number of 0 or more, got {seed!r}")
    target, lut = _checked_mapping(store.schema, dataset_format, target_schema)
    unwritable = [f"{name!r}: {why}" for name in target.classes[1:]
                  if (why := dataset_format.exporter.unwritable_class(name))]
    if unwritable:
        raise ExportError(f"the {dataset_format.name} layout names a file after each class, and cannot hold "
                          f"{'these classes' if len(unwritable) > 1 else 'this class'}: {'; '.join(unwritable)}. "
                          "Rename the class in the project's schema, or export in another format")
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.resolve().is_relative_to(store.root.resolve()):
        raise ExportError(f"{out_dir} is inside the project's image folder; the exported photos would be "
                          "scanned as new images. Choose a folder outside it")
    if store.root.resolve().is_relative_to(out_dir.resolve()):
        raise ExportError(f"{out_dir} holds the project itself; exporting there would replace it. "
                          "Choose a folder outside the project")
    _refuse_enclosing_project(out_dir)
    _check_destination(out_dir, overwrite)
    if not records:
        gone = sum(rec.status in SELECTIONS[only] for rec in store.missing_photos())
        if gone:
            raise ExportError(f"no images to export: the photos of all {gone} {SELECTION_NOUNS[only]} are gone "
                              "from the folder (their masks are kept; `faceparse info` names them): put the "
                              "photos back, then scan")
        raise ExportError(f"no images to export: the project has no {SELECTION_NOUNS[only]}")
    return dataset_format, fractions, records, target, lut, out_dir


def _checked_mapping(project: LabelSchema, dataset_format: DatasetFormat,
                     given: str | LabelSchema | None) -> tuple[LabelSchema, np.ndarray]:
    """The target schema and the lookup table from the project's classes to it, checked to fit each other."""
    try:
        target = _target_schema(project, dataset_format, given)
        lut = project.mapping_lut(target.name)
    except (KeyError, ValueError) as e:
        raise ExportError(str(e.args[0]) if e.args else str(e)) from None
    # the mapping is found by name: it must be for these classes (a built-in target's), or at least fit their count
    meant = (project.classes if target.name == project.name
             else get_schema(target.name).classes if target.name in builtin_schema_names() else None)
    if meant is not None and tuple(meant) != tuple(target.classes):
        raise ExportError(f"the given schema {target.name!r} has {target.num_classes} classes, but the project's "
                          f"masks map to the {target.name!r} of {len(meant)} classes ({', '.join(meant)}); give "
                          "that schema, or name yours differently")
    top = int(lut[:project.num_classes].max())
    if top >= target.num_classes:
        raise ExportError(f"the project's mapping to {target.name!r} uses class {top}, but the given "
                          f"{target.name!r} has only {target.num_classes} classes")
    return target, lut


def export_dataset(store: ProjectStore, out_dir: str | os.PathLike, format: str, *, only: str = "corrected",
                   split: str | Sequence[float] = DEFAULT_SPLIT, seed: int = 0,
                   target_schema: str | LabelSchema | None = None, overwrite: bool = False,
                   progress: Progress | None = None, cancel: threading.Event | None = None) -> ExportResult:
    """Write the project's masks as a dataset in `format` at `out_dir` (see the module docstring).

    Raises ExportError for anything the user can fix (unknown format, no mapping to the target schema, a
    non-empty destination or one inside a project, names the layout cannot hold, no images selected or none left
    once unreadable photos and masks are left out) and ExportCancelled when `cancel` was set.
    """
    started = time.perf_counter()
    dataset_format, fractions, records, target, lut, out_dir = _checked_request(
        store, out_dir, format, only, split, seed, target_schema, overwrite)
    names = _export_names(records, dataset_format.exporter)
    splits = assign_splits([r.content_hash or r.relpath for r in records], fractions, seed)

    tmp, lock = _start_export(out_dir, cancel)
    exporter = None
    try:
        exporter = dataset_format.exporter(tmp, target)
        tally = _Tally()
        total = len(records)
        for number, (rec, name, split_name) in enumerate(zip(records, names, splits, strict=True)):
            if cancel is not None and cancel.is_set():
                raise ExportCancelled(f"export to {out_dir} cancelled after {number} of {total} images")
            mask, corrected, why = _mask_of(store, rec)
            if why is not None:
                tally.skipped.append(why)
            elif (mismatch := _photo_mismatch(store, rec, mask, not corrected)) is not None:
                tally.skipped.append(mismatch)
            else:
                mask = lut[mask]
                exporter.add(ExportItem(number, name, split_name, store.root / rec.relpath, mask))
                tally.add(rec, mask, split_name, corrected)
            if progress is not None:
                progress(number + 1, total)
        if not tally.count:
            raise ExportError(f"no images to export: all {total} selected images were left out, e.g. "
                              f"{tally.skipped[0]}")
        tally.skipped.extend(_why_missing(store, rec) for rec in store.missing_photos()
                             if rec.status in SELECTIONS[only])
        exporter.finish()
        exporter.close()
        result = ExportResult(out_dir, dataset_format.name, target, tally.count,
                              {s: tally.splits[s] for s in SPLIT_NAMES},
                              {c: int(tally.pixels[i]) for i, c in enumerate(target.classes)}, tally.by_hand,
                              dict(tally.versions), 0.0, tally.skipped, store.schema,
                              target_schema is None and target is not store.schema, tally.approved, tally.imported)
        write_schema(tmp, target)
        written = sorted({*os.listdir(tmp), CARD_FILE, CARD_DATA_FILE} - {PARTIAL_MARKER}, key=str.casefold)
        card.write_card(tmp, card.CardFacts(
            project=store.root.name, format_name=dataset_format.name, format_title=dataset_format.title,
            layout=exporter.layout, selection=SELECTION_TITLES[only], statuses=dict(tally.statuses), seed=seed,
            fractions=fractions, splits=result.splits, schema=target, source_schema=store.schema,
            class_pixels=result.class_pixels, corrected_by_hand=tally.by_hand, approved_as_predicted=tally.approved,
            imported=tally.imported,
            model_versions=result.model_versions,
            known_models=store.model_versions(), skipped=tally.skipped,
            created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), top_level=written))
        (tmp / PARTIAL_MARKER).unlink()
        _record_contents(tmp / CARD_DATA_FILE)
        _flush(tmp)
        _move_into_place(tmp, out_dir, overwrite)
    except BaseException as e:
        if exporter is not None:
            exporter.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError | ProjectError):
            raise ExportError(f"export to {out_dir} failed: {e}") from e
        raise
    finally:
        _unlock(lock)
    result.seconds = time.perf_counter() - started
    return result
