"""The project store: the index of a folder of face photos and everything learned about them.

A project is the image folder plus a hidden `.faceparse/` beside the images:

    .faceparse/project.db              SQLite (WAL): images, settings, model versions, jobs and their logs,
                                       the faces found in the photos
    .faceparse/masks/predicted/<id>.png   the model's mask (8-bit index PNG, schema palette)
    .faceparse/masks/corrected/<id>.png   the human's mask, kept apart from the prediction
    .faceparse/models/<task>/<version>/   checkpoints (written by the training code)
    .faceparse/thumbs/                  thumbnail cache (see thumbnails.py)

Why it is built this way:
- The database is the index, the PNGs are the truth. A mask file is written first (atomically: temp file, fsync,
  rename) and only then is the row updated, in one transaction. A crash between the two leaves the new file with the
  old row; a crash before the rename leaves the old file. No committed row ever points at a missing or torn file.
- Only paths relative to the image folder are stored, so a project folder that was moved or copied still opens.
- Opening must be fast for 100k images: `scan()` only lists directories and compares (size, mtime); it never
  decodes or hashes. Sizes and content hashes are filled in later by `fill_details()`, a background job.
- The label schema is copied into the database at creation, so a project never silently changes meaning.

Durability: journal_mode=WAL with synchronous=FULL. In WAL mode FULL fsyncs the log at every commit, so a committed
mask save survives a power cut, not only a process crash; commits here are human-paced or batched, or at most one
per photo (a mask, or the faces found in it, each after a decode that costs far more), so the fsync cost is small.

Concurrency: several processes may open one project (the GUI writes while a training process reads its masks and
remembers the faces it finds). WAL lets readers run during a write; writers take the lock up front
(BEGIN IMMEDIATE) and wait up to `BUSY_TIMEOUT_S`.

Threads: a ProjectStore may be shared between threads. Each thread gets its own SQLite connection on first use
(SQLite connections must not be used by two threads at once); `close()` closes all of them and must only be called
when no other thread is still using the store.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from faceparse.core.checkpoint_layout import has_checkpoint
from faceparse.core.imageio import IMAGE_EXTENSIONS, ImageLoadError, load_mask, read_size, save_mask
from faceparse.core.schemas import LabelSchema, SchemaError, resolve_schema

PROJECT_DIR_NAME = ".faceparse"
DB_NAME = "project.db"
FORMAT_VERSION = 1
STATUSES = ("new", "predicted", "corrected", "reviewed")
HUMAN_STATUSES = ("corrected", "reviewed")
PHOTO_REPLACED_WHILE_OPEN = "replaced-while-open"
"""The labeled hash of a mask drawn on a photo that was replaced on disk while it was open, by a photo the index
never hashed: no photo has this hash, so the image counts as "photo changed"."""
"""The statuses of images a person checked: only theirs is a corrected mask file a correction (one left behind by
an interrupted discard belongs to no one)."""
NEEDS_ATTENTION = "attention"
"""A filter beside the statuses for `images` and `count`: the photos that cannot be read and the checked masks
whose photo changed since, the images a list badge marks "error" or "photo changed"."""
_PHOTO_CHANGED_SQL = ("(status IN ('corrected', 'reviewed') AND labeled_hash IS NOT NULL AND content_hash IS NOT NULL "
                      "AND content_hash != labeled_hash)")
"""A human mask whose photo, as last hashed, differs from the one it was checked on (`changed_photos`)."""
_NEEDS_ATTENTION_SQL = f"(error IS NOT NULL OR {_PHOTO_CHANGED_SQL})"
SPLITS = ("train", "val")
VAL_FRACTION = 0.2
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_JOB_STATES = ("done", "failed", "cancelled")
JOBS_KEPT = 200
"""Finished jobs kept (with their logs) when a new job is added; older ones are deleted, so the table stays small."""
MASK_KINDS = ("predicted", "corrected")
BUSY_TIMEOUT_S = 15.0
STALE_TEMP_SECONDS = 3600
ORDERINGS = ("name", "uncertainty", "effort")
HASH_NAME = "blake2b-128"


class ProjectError(Exception):
    """Something about the project a user can act on: not a project, already one, a missing image, ..."""


class MaskError(ProjectError):
    """A mask that does not fit its image or its schema; nothing was written."""


@dataclass
class ImageRecord:
    id: int
    relpath: str
    size_bytes: int
    mtime_ns: int
    width: int | None
    height: int | None
    content_hash: str | None
    status: str
    model_version: str | None
    uncertainty: float | None
    effort: float | None
    split: str | None
    error: str | None
    missing: bool = False
    predicted_with: str | None = None  # the framing and test-time settings of the stored prediction
    labeled_hash: str | None = None  # content hash of the photo the human mask was saved or reviewed on
    hash_before: str | None = None  # content hash before a scan saw only the file's time change; see `scan`
    mask_source: str | None = None  # "imported" while the human mask is another dataset's, not edited here

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    def scanned(self, st: os.stat_result) -> bool:
        """Whether a file with this stat is the photo the last scan saw (same byte size and time)."""
        return (st.st_size, st.st_mtime_ns) == (self.size_bytes, self.mtime_ns)

    @property
    def photo_changed(self) -> bool:
        """The file's content differs from the photo the human mask was checked on: the mask may no longer fit,
        even when the size still does. Saving or reviewing the mask again accepts it for the new photo."""
        return self.labeled_hash is not None and self.content_hash is not None and self.content_hash != self.labeled_hash


_RECORD_COLUMNS = ", ".join(f.name for f in fields(ImageRecord))


@dataclass(frozen=True)
class ScanResult:
    added: int
    removed: int
    changed: int
    unchanged: int
    skipped: int = 0
    seconds: float = 0.0
    renamed: int = 0
    """Photos found again under a new name or folder (by content), with their masks."""
    projects_inside: tuple[str, ...] = ()
    """Subfolders (relative paths) that hold a project of their own: their photos belong to that project, so this
    one does not index them (two projects would keep separate masks of one photo). Counted in `skipped`; photos of
    theirs indexed before are treated as removed, so their masks are kept."""
    exports_inside: tuple[str, ...] = ()
    """Subfolders holding a dataset this program exported: copies of some project's photos and their masks, left
    out for the same reason. Counted in `skipped`."""
    unreadable: tuple[str, ...] = ()
    """Entries the scan could not read, and folder links it does not follow. Counted in `skipped`."""
    changed_paths: tuple[str, ...] = ()
    """The photos counted in `changed`, by relative path."""

    @property
    def total(self) -> int:
        """Images present in the folder after the scan."""
        return self.added + self.changed + self.unchanged + self.renamed

    def notes(self) -> list[str]:
        """What the scan found besides the counts, one sentence each: photos found again under a new name, and the
        entries it left out (the command line prints them, the studio's status bar shows them)."""
        notes = []
        if self.renamed:
            many = self.renamed != 1
            notes.append(f"Found {self.renamed:,} renamed or moved photo{'s' if many else ''} again; "
                         f"{'they keep their masks' if many else 'it keeps its masks'}")
        inside = list(self.projects_inside)
        if inside:
            many = len(inside) != 1
            notes.append(f"Skipped {len(inside):,} subfolder{'s' if many else ''} holding a project of "
                         f"{'their' if many else 'its'} own ({_some(inside)}): "
                         f"{'their photos belong to those projects' if many else 'its photos belong to that project'}"
                         ", not this one")
        exports = list(self.exports_inside)
        if exports:
            many = len(exports) != 1
            notes.append(f"Skipped {len(exports):,} subfolder{'s' if many else ''} holding an exported dataset "
                         f"({_some(exports)}): {'their' if many else 'its'} images are copies, and masks are not "
                         "photos")
        unreadable = list(self.unreadable)
        other = self.skipped - len(inside) - len(exports)
        if other:
            entries = "entry that could not be read or is a folder link" if other == 1 else \
                "entries that could not be read or are folder links"
            named = f": {_some(unreadable)}" if unreadable else ""
            notes.append(f"Skipped {other:,} {entries} (not followed){named}")
        return notes


def _some(names: list[str], shown: int = 5) -> str:
    """The first few names, then how many more."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


_FACE_BOXES_SQL = """
CREATE TABLE IF NOT EXISTS face_boxes(
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    detector TEXT NOT NULL,
    pixels TEXT NOT NULL,
    boxes TEXT NOT NULL
)"""
"""The faces a detector (its `signature()`) found in a photo as decoded (a digest of its pixels), as JSON boxes;
one row per image, replaced when the photo or the detector changes (see `face_cache`)."""

_SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    relpath TEXT NOT NULL UNIQUE,
    sort_key TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    content_hash TEXT,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    model_version TEXT,
    uncertainty REAL,
    effort REAL,
    split TEXT CHECK (split IN ('train', 'val')),
    error TEXT,
    missing INTEGER NOT NULL DEFAULT 0,
    updated REAL,
    predicted_with TEXT,
    labeled_hash TEXT,
    hash_before TEXT,
    mask_source TEXT
);
CREATE INDEX IF NOT EXISTS images_by_name ON images(missing, sort_key);
CREATE INDEX IF NOT EXISTS images_by_hash ON images(content_hash) WHERE content_hash IS NOT NULL;
CREATE TABLE IF NOT EXISTS model_versions(
    task TEXT NOT NULL,
    version TEXT NOT NULL,
    path TEXT,
    metrics TEXT NOT NULL,
    parent TEXT,
    data_summary TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (task, version)
);
CREATE TABLE IF NOT EXISTS jobs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    host TEXT
);
CREATE TABLE IF NOT EXISTS job_log(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    time REAL NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_log_by_job ON job_log(job_id, id);
{_FACE_BOXES_SQL}
"""

_DIGIT_RUNS = re.compile(r"(\d+)").split


_ORDER_KEYS = {"name": ("sort_key", "id"),
               "uncertainty": ("uncertainty IS NULL", "-COALESCE(uncertainty, 0)", "sort_key", "id"),
               "effort": ("effort IS NULL", "-COALESCE(effort, 0)", "sort_key", "id")}
"""Each ordering as ascending SQL terms (highest score first, unscored last), so one row comparison continues it."""


RENAME_CANDIDATES_PER_MISSING, RENAME_CANDIDATES_EXTRA = 4, 16
"""How many new files of a missing photo's byte size a scan hashes to look for it (per missing photo, plus a
few): enough for a folder reorganised by hand, and a bounded cost when many same-sized files arrive at once."""


_ADDED_COLUMNS = (("images", "predicted_with"), ("images", "labeled_hash"), ("jobs", "host"),
                  ("images", "hash_before"), ("images", "mask_source"))
_ADDED_TABLES = {"face_boxes": _FACE_BOXES_SQL}
_ADDED_INDEXES = {
    "images_by_uncertainty": "CREATE INDEX IF NOT EXISTS images_by_uncertainty ON images(missing, "
                             f"{', '.join(_ORDER_KEYS['uncertainty'])})",
    "images_by_effort": f"CREATE INDEX IF NOT EXISTS images_by_effort ON images(missing, {', '.join(_ORDER_KEYS['effort'])})",
    "images_by_status": "CREATE INDEX IF NOT EXISTS images_by_status ON images(missing, status)",
}
"""Indexes that keep the list's other orders and its counts fast in a folder of 100,000 photos; made when a project
is opened, since projects made before them lack them."""


def _order_key_values(record: ImageRecord, order_by: str) -> list[Any]:
    tail = [natural_sort_key(record.relpath), record.id]
    if order_by == "name":
        return tail
    score = getattr(record, order_by)
    return [int(score is None), -(score or 0.0), *tail]


def natural_sort_key(relpath: str) -> str:
    """Case-insensitive, numbers compared by value (img2 before img10): each digit run is prefixed by its length.

    Kept short on purpose: it is stored and indexed for every image, and the index is most of the cost of
    indexing 100k files.
    """
    parts = _DIGIT_RUNS(relpath.casefold())
    for k in range(1, len(parts), 2):
        digits = parts[k].lstrip("0") or "0"
        parts[k] = chr(0x30 + len(digits)) + digits if len(digits) < 64 else "~" + digits
    return "".join(parts)


def content_hash(path: str | os.PathLike) -> str:
    """A fingerprint of the file's bytes: finds renamed files and keeps duplicate photos in one split."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


PRETRAINED_ON_SETTING = "pretrained_on"
"""The ids of the photos masked pre-training has learnt from (see `note_pretrained_on`)."""


def _pretrained_on(c: sqlite3.Connection) -> set[int]:
    row = c.execute("SELECT value FROM settings WHERE key = ?", (PRETRAINED_ON_SETTING,)).fetchone()
    return set(json.loads(row[0])) if row else set()


def _split_of_copy(c: sqlite3.Connection, digest: str | None, image_id: int) -> str | None:
    if not digest:
        return None
    row = c.execute("SELECT split FROM images WHERE content_hash = ? AND split IS NOT NULL AND id != ? LIMIT 1",
                    (digest, image_id)).fetchone()
    return row[0] if row is not None else None


def split_for(key: str) -> str:
    """The fixed train/val assignment: a pure function of the key, so it never reshuffles."""
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64
    return "val" if value < VAL_FRACTION else "train"


_DELETED_VERSION_KEY = "deleted_model_version.{task}"


def _version_number(version: str) -> int | None:
    """3 for "v0003"; None for a version named otherwise."""
    match = re.fullmatch(r"v(\d+)", version)
    return int(match.group(1)) if match else None


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _holds_project(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, PROJECT_DIR_NAME, DB_NAME))


EXPORT_CARD_NAME = "dataset.json"
"""The name of the card an export writes at its top (`formats.base.CARD_DATA_FILE`): a folder holding one of this
program's is a dataset made from some project's photos, not photos to index."""


def _holds_export(folder: str) -> bool:
    card_file = os.path.join(folder, EXPORT_CARD_NAME)
    if not os.path.isfile(card_file):
        return False
    from faceparse.core.export import written_by_this_exporter

    return written_by_this_exporter(Path(card_file))


@dataclass
class _Walk:
    """What `_walk_images` found: the images, and the entries it did not index, by relative path."""

    found: list[tuple[str, int, int]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.unreadable) + len(self.projects) + len(self.exports)


def why_not_indexed(root: Path, path: Path) -> str:
    """Why the scan of `root` leaves out the photo at `path`, in the words of the scan's rules (see
    `_walk_images`), for a user who opened that very photo."""
    try:
        parts = Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(root))).parts
    except ValueError:
        return f"it is not inside {root}"
    for depth, part in enumerate(parts):
        if part.startswith("."):
            what = "its name starts" if depth == len(parts) - 1 else f"it is in the folder {part}, whose name starts"
            return f"{what} with a dot, and the studio leaves hidden files and folders out"
        if depth < len(parts) - 1:
            folder = os.path.join(root, *parts[: depth + 1])
            if _holds_project(folder):
                return f"it belongs to the project in {folder}; open that folder to see it"
            if _holds_export(folder):
                return f"it is a copy in the export {folder}, which the project leaves out"
    if not path.is_file():
        return "it is not there any more"
    return "it could not be read when the folder was scanned"


def _walk_images(root: Path) -> _Walk:
    """(relpath, size, mtime_ns) of every image under root, the entries that could not be indexed, and the
    subfolders that hold a project of their own or an export of this program (its photos are copies of some
    project's; indexing them would label the same faces twice, and its masks would pass for photos).

    Hidden entries (names starting with a dot, including .faceparse) are passed over; directory symlinks are not
    followed (they can loop) and are counted as not indexed, so a scan's summary shows them; file symlinks are
    followed. A subfolder with its own project is not entered either: its photos are that project's, and indexing
    them here too would give one photo two sets of masks. It is counted as not indexed and named.
    """
    walk = _Walk()
    exts = IMAGE_EXTENSIONS
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            it = os.scandir(directory)
        except OSError:
            walk.unreadable.append(prefix or ".")
            continue
        with it:
            for entry in it:
                name = entry.name
                if name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if _holds_project(entry.path):
                            walk.projects.append(prefix + name)
                        elif _holds_export(entry.path):
                            walk.exports.append(prefix + name)
                        else:
                            stack.append((entry.path, f"{prefix}{name}/"))
                        continue
                    if entry.is_symlink() and entry.is_dir():
                        walk.unreadable.append(prefix + name)
                        continue
                    dot = name.rfind(".")
                    if dot <= 0 or name[dot:].lower() not in exts:
                        continue
                    st = entry.stat()
                except OSError:
                    walk.unreadable.append(prefix + name)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                rel = prefix + name
                try:
                    rel.encode("utf-8")
                except UnicodeEncodeError:
                    walk.unreadable.append(rel.encode("utf-8", "replace").decode("utf-8"))
                    continue
                walk.found.append((rel, st.st_size, st.st_mtime_ns))
    for names in (walk.unreadable, walk.projects, walk.exports):
        names.sort(key=natural_sort_key)
    return walk


def write_failure_text(error: BaseException, root: Path | None = None) -> str:
    """What stopped a write, in words a person reads: that the project folder (`root`) is gone, that the disk is
    full, or the system's reason with the file it concerns (a temporary file's folder, never its passing name)."""
    if root is not None and not (root / PROJECT_DIR_NAME).is_dir():
        return f"the project folder {root} is no longer there: put it back, then save again"
    if isinstance(error, sqlite3.Error):
        text = str(error)
        return "the disk is full" if "full" in text else f"the project database cannot be written ({text})"
    if isinstance(error, OSError) and error.strerror:
        if error.errno == errno.ENOSPC:
            return "the disk is full"
        name = error.filename2 if error.filename2 is not None else error.filename
        if name is None:
            return error.strerror
        path = Path(os.fsdecode(name))
        return f"{error.strerror} ({path.parent if '.tmp' in path.name else path})"
    return str(error) or type(error).__name__


class ProjectStore:
    """One project: its image index, masks, settings, model versions and jobs. See the module docstring."""

    def __init__(self, root: Path, _token: object = None):
        if _token is not _CONSTRUCT:
            raise TypeError("use ProjectStore.open(), .create() or .open_or_create()")
        self.root = root
        self.dir = root / PROJECT_DIR_NAME
        self.db_path = self.dir / DB_NAME
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.read_only = False
        """Opened with `open_for_reading` on a project that cannot be written: every write is refused."""
        self.schema: LabelSchema

    # --- opening -----------------------------------------------------------------------------------------------

    @staticmethod
    def _image_folder(folder: str | os.PathLike) -> Path:
        root = Path(folder).expanduser()
        if not root.exists():
            raise ProjectError(f"folder does not exist: {root}")
        if not root.is_dir():
            raise ProjectError(f"not a folder: {root}")
        return root.resolve()

    @classmethod
    def is_project(cls, folder: str | os.PathLike) -> bool:
        return (Path(folder) / PROJECT_DIR_NAME / DB_NAME).is_file()

    @classmethod
    def enclosing_project(cls, path: str | os.PathLike) -> Path | None:
        """The image folder of the project that `path` is part of: the folder itself, a folder of photos below
        it, or anything inside its `.faceparse` folder. None if there is none."""
        p = Path(path).expanduser().resolve()
        for folder in (p, *p.parents):
            if folder.name != PROJECT_DIR_NAME and cls.is_project(folder):
                return folder
        return None

    @staticmethod
    def _check_writable(root: Path) -> None:
        """SQLite in WAL mode writes beside its database even to read it, so a project on read-only media or
        without write permission cannot be opened; say so rather than pass on SQLite's "unable to open"."""
        if not ProjectStore._writable(root):
            path = root / PROJECT_DIR_NAME
            path = path if not os.access(path, os.W_OK) else path / DB_NAME
            raise ProjectError(f"the project in {root} is read-only ({path} cannot be written). FaceParse "
                                   "Studio keeps its index there and writes to it even to open the project: make "
                                   "the folder writable, or copy it somewhere writable and open the copy")

    @staticmethod
    def _writable(root: Path) -> bool:
        project_dir = root / PROJECT_DIR_NAME
        return all(os.access(path, os.W_OK) for path in (project_dir, project_dir / DB_NAME))

    @classmethod
    def _is_complete(cls, root: Path) -> bool:
        """False for a database left empty by a creation that was interrupted; creating again finishes it. An
        empty database beside masks or models is no such thing: a new project there would tie the old masks to
        whichever photos got their ids, so it is refused (`ProjectError`)."""
        try:
            conn = sqlite3.connect(root / PROJECT_DIR_NAME / DB_NAME, timeout=BUSY_TIMEOUT_S)
            try:
                complete = conn.execute("SELECT 1 FROM meta WHERE key = 'schema'").fetchone() is not None
            finally:
                conn.close()
        except sqlite3.OperationalError as e:
            complete = "no such table" not in str(e)
        except sqlite3.DatabaseError:
            return True
        if not complete:
            cls._refuse_lost_database(root)
        return complete

    @classmethod
    def _refuse_lost_database(cls, root: Path) -> None:
        """Raise when a project whose database lost its tables still holds masks or models."""
        project_dir = root / PROJECT_DIR_NAME
        kept = sum(1 for sub in ("masks", "models") if (project_dir / sub).is_dir()
                   for path in (project_dir / sub).rglob("*") if path.is_file())
        if kept:
            raise ProjectError(
                f"the project database {project_dir / DB_NAME} is empty or damaged, and {kept} mask and model "
                f"files are still kept in {project_dir}; restore {DB_NAME} from a backup, or move {project_dir} "
                "aside to start a new project (masks cannot be matched to their photos without the database)")

    @classmethod
    def create(cls, folder: str | os.PathLike, schema: LabelSchema | str = "celebamask-hq") -> ProjectStore:
        """Make `folder` a project with a fixed label schema (a built-in name, a schema JSON path or a LabelSchema).

        A folder inside a project is refused; a subfolder that already holds a project stays that project's, since
        the scan leaves it out (see `ScanResult.projects_inside`)."""
        root = cls._image_folder(folder)
        if cls.is_project(root) and cls._is_complete(root):
            raise ProjectError(f"{root} is already a FaceParse project; open it instead")
        outer = cls.enclosing_project(root.parent) if root.parent != root else None
        if outer is not None:
            raise ProjectError(f"{root} is inside the project {outer}, whose scan takes in its photos; open "
                               f"{outer} instead (a second project here would split the masks between the two)")
        try:
            label_schema = resolve_schema(schema)
        except (KeyError, SchemaError) as e:
            raise ProjectError(str(e).strip('"')) from None
        store = cls(root, _CONSTRUCT)
        try:
            for sub in ("masks/predicted", "masks/corrected", "models"):
                (store.dir / sub).mkdir(parents=True, exist_ok=True)
            with store._write() as c:
                for statement in [*_SCHEMA_SQL.split(";"), *_ADDED_INDEXES.values()]:
                    if statement.strip():
                        c.execute(statement)
                meta = {"format_version": str(FORMAT_VERSION), "schema": label_schema.to_json(),
                        "created": _utc_now(), "hash": HASH_NAME}
                c.executemany("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", meta.items())
        except PermissionError as e:
            store.close()
            raise ProjectError(f"cannot create a project in {root}: permission denied ({e.filename})") from None
        except OSError as e:
            store.close()
            if e.errno == errno.EROFS:
                raise ProjectError(f"cannot create a project in {root}: the folder is on read-only media; copy "
                                   "the photos somewhere writable and scan the copy") from None
            if store.dir.exists() and not store.dir.is_dir():
                raise ProjectError(f"cannot create a project in {root}: {store.dir} is a file, where the project "
                                   "keeps its index and masks; move it aside and scan again") from None
            reason = f"{e.strerror} ({e.filename})" if e.strerror and e.filename else (e.strerror or str(e))
            raise ProjectError(f"cannot create a project in {root}: {reason}") from None
        except sqlite3.Error as e:
            store.close()
            raise ProjectError(f"cannot create a project in {root}: {e}") from None
        try:
            store._load_meta()
            store._add_missing_columns()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_for_reading(cls, folder: str | os.PathLike) -> ProjectStore:
        """Open a project to look at it or export it: as `open` does where the project can be written, and
        read-only where it cannot (read-only media, an archive, another user's folder), with every write refused
        and nothing written beside the index, not even SQLite's own files (see `_read_only_connection`)."""
        try:
            return cls.open(folder)
        except ProjectError:
            root = cls._image_folder(folder)
            if not cls.is_project(root) or cls._writable(root):
                raise
        return cls.open(folder, read_only=True)

    @classmethod
    def open(cls, folder: str | os.PathLike, read_only: bool = False) -> ProjectStore:
        root = cls._image_folder(folder)
        if not cls.is_project(root):
            outer = cls.enclosing_project(root) if root.is_dir() else None
            if outer is not None:
                raise ProjectError(f"{root} is inside the project {outer}; use {outer} instead")
            raise ProjectError(f"{root} is not a FaceParse project (no {PROJECT_DIR_NAME}/{DB_NAME}); "
                               "scan it first to create one")
        if not read_only:
            cls._check_writable(root)
        store = cls(root, _CONSTRUCT)
        store.read_only = read_only
        try:
            store._load_meta()
            store._add_missing_columns()
            store._add_missing_tables()
            if not read_only:
                store._remove_stale_temp_files()
        except sqlite3.DatabaseError as e:
            store.close()
            if "no such table" in str(e):
                cls._refuse_lost_database(root)
                raise ProjectError(f"the project database {store.db_path} is empty (a creation that was "
                                   "interrupted); scan the folder to create the project again") from None
            raise ProjectError(f"cannot open the project database {store.db_path}: {e}") from None
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_or_create(cls, folder: str | os.PathLike,
                       schema: LabelSchema | str | None = None) -> ProjectStore:
        """Open the project in `folder`, creating it if needed. A `schema` that differs from an existing
        project's is an error: the schema is fixed when a project is created."""
        root = cls._image_folder(folder)
        if not cls.is_project(root) or not cls._is_complete(root):
            try:
                return cls.create(root, schema if schema is not None else "celebamask-hq")
            except ProjectError:
                if not cls.is_project(root) or not cls._is_complete(root):
                    raise
        store = cls.open(root)
        if schema is not None:
            try:
                wanted = resolve_schema(schema)
            except (KeyError, SchemaError) as e:
                store.close()
                raise ProjectError(str(e).strip('"')) from None
            if wanted.name != store.schema.name or wanted.classes != store.schema.classes:
                store.close()
                raise ProjectError(f"{root} uses label schema {store.schema.name!r} "
                                   f"({store.schema.num_classes} classes), not {wanted.name!r}; "
                                   "a project's schema is fixed when it is created")
        return store

    def _load_meta(self) -> None:
        rows = dict(self._conn().execute("SELECT key, value FROM meta").fetchall())
        version = int(rows.get("format_version", "0"))
        if version > FORMAT_VERSION:
            raise ProjectError(f"{self.dir} was written by a newer FaceParse Studio (project format {version}); "
                               "update the application to open it")
        if "schema" not in rows:
            raise ProjectError(f"{self.db_path} has no label schema; the project is incomplete")
        self.schema = LabelSchema.from_dict(json.loads(rows["schema"]), source=f"project {self.root}")
        self.created = rows.get("created")

    def _add_missing_columns(self) -> None:
        """Columns added after a project was created. Additions are nullable, so an older version of the
        application still reads the project; another process may add the same column at the same moment.

        A project from before `labeled_hash` takes its human masks as checked on the photos it last hashed."""
        def missing() -> list[tuple[str, str]]:
            have = {(table, row[1]) for table in {t for t, _ in _ADDED_COLUMNS}
                    for row in self._conn().execute(f"PRAGMA table_info({table})")}
            return [column for column in _ADDED_COLUMNS if column not in have]

        if self.read_only:
            return  # stood in for by `_stand_in_for_later_schema`
        for table, name in missing():
            try:
                with self._write() as c:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {name} TEXT")
                    if name == "labeled_hash":
                        c.execute("UPDATE images SET labeled_hash = content_hash "
                                  "WHERE status IN ('corrected', 'reviewed')")
            except sqlite3.OperationalError as error:
                if (table, name) in missing():
                    raise ProjectError(f"cannot bring the project database {self.db_path} up to date: "
                                       f"{error}") from None

    def _add_missing_tables(self) -> None:
        """Tables and indexes added after a project was created, made when it is opened (an older version of the
        application leaves them alone); another process may make the same table at the same moment."""
        have = {row[0] for row in self._conn().execute("SELECT name FROM sqlite_master WHERE type IN ('table', "
                                                       "'index')")}
        for name, sql in {**_ADDED_TABLES, **_ADDED_INDEXES}.items():
            if name in have or self.read_only:
                continue
            try:
                with self._write() as c:
                    c.execute(sql)
            except sqlite3.OperationalError as error:
                raise ProjectError(f"cannot bring the project database {self.db_path} up to date: {error}") from None

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by a killed writer; young ones may belong to a writer in another process."""
        cutoff = time.time() - STALE_TEMP_SECONDS
        for kind in MASK_KINDS:
            folder = self.masks_dir / kind
            with contextlib.suppress(OSError), os.scandir(folder) as it:
                for entry in it:
                    if entry.name.startswith(".") and ".tmp" in entry.name:
                        with contextlib.suppress(OSError):
                            if entry.stat().st_mtime < cutoff:
                                os.unlink(entry.path)

    # --- connections ---------------------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise ProjectError(f"the project {self.root} has been closed")
            if self.read_only:
                conn = self._read_only_connection()
            else:
                conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA cache_size=-65536")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _read_only_connection(self) -> sqlite3.Connection:
        """A connection that writes nothing beside the database. Without a write-ahead log to read, the file is
        opened immutable (no lock or index files at all); a log left by a program that has the project open, or
        that was closed before it could fold the log in, holds committed work, so it is read through SQLite's
        read-only WAL mode, and refused with the reason when that mode cannot read it here. The columns and
        tables of later versions that an older project lacks are stood in for by empty temporary ones, which
        live in memory: an old project reads as one with nothing in them."""
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        has_log = wal.exists() and wal.stat().st_size > 0
        uri = f"{self.db_path.resolve().as_uri()}?mode=ro" + ("" if has_log else "&immutable=1")
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("SELECT COUNT(*) FROM meta").fetchone()
        except sqlite3.Error as error:
            conn.close()
            raise ProjectError(f"the project in {self.root} is read-only here and its database log "
                               f"({wal.name}) cannot be read without writing beside it ({error}): the program that "
                               "has it open must close it first, or open the project once where it can be "
                               "written") from None
        self._stand_in_for_later_schema(conn)
        return conn

    @staticmethod
    def _stand_in_for_later_schema(conn: sqlite3.Connection) -> None:
        """Temporary views and tables shadow the main database's for the columns and tables it lacks (SQLite
        looks in the temporary schema first), so a read-only project of an earlier version reads like a new one."""
        tables = {row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
        for table in sorted({t for t, _ in _ADDED_COLUMNS} & tables):
            have = {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
            lacking = [name for t, name in _ADDED_COLUMNS if t == table and name not in have]
            if lacking:
                extra = ", ".join(f"NULL AS {name}" for name in lacking)
                conn.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {extra} FROM main.{table}")
        for name, sql in _ADDED_TABLES.items():
            if name not in tables:
                conn.execute(sql.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE", 1)
                             .replace(" REFERENCES images(id) ON DELETE CASCADE", ""))

    @property
    def read_only_reason(self) -> str | None:
        """Why nothing can be changed here, in words for the user; None where the project can be written."""
        if not self.read_only:
            return None
        return (f"the project in {self.root} is read-only here, so it can be looked at and exported but not "
                "changed: make the folder writable, or copy it somewhere writable")

    def _refuse_if_read_only(self) -> None:
        """Called before anything is written, mask files included, so a refused change leaves nothing behind."""
        if self.read_only:
            raise ProjectError(self.read_only_reason)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the database lock at the start (no deadlock on upgrade)."""
        self._refuse_if_read_only()
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            raise ProjectError(f"the project {self.root} is busy: another program kept its database locked for "
                               f"{BUSY_TIMEOUT_S:.0f} s; try again when it is done") from None
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def release_thread_connection(self) -> None:
        """Close the calling thread's connection, for a thread that is about to end (each one otherwise keeps its
        connection, with its file handles and page cache, until the project is closed)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._connections = [c for c in self._connections if c is not conn]
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProjectStore({str(self.root)!r}, schema={self.schema.name!r})"

    # --- places --------------------------------------------------------------------------------------------------

    @property
    def masks_dir(self) -> Path:
        return self.dir / "masks"

    @property
    def models_dir(self) -> Path:
        return self.dir / "models"

    @property
    def thumbs_dir(self) -> Path:
        return self.dir / "thumbs"

    def mask_path(self, kind: str, image_id: int) -> Path:
        if kind not in MASK_KINDS:
            raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
        return self.masks_dir / kind / f"{int(image_id)}.png"

    def image_path(self, image_id: int) -> Path:
        return self.root / self._require(image_id).relpath

    # --- scanning ------------------------------------------------------------------------------------------------

    def scan(self) -> ScanResult:
        """Bring the index up to date with the folder: new, removed and changed files (by size and mtime).

        A changed file not yet checked by a person forgets which model predicted it, so pre-labeling predicts it
        again. Only when its byte size changed, though: a file whose time alone changed (touched, copied without
        its times, restored from a backup) keeps its prediction and its old hash in `hash_before` until hashing
        it again (`settle_touched`, the details pass) shows whether the bytes differ. Removed images without
        masks are forgotten. Removed images with masks are kept as `missing` (hidden from
        listings) so the work on them comes back if the file does, under its old name or under a new one (new
        files of the size of a missing photo whose hash is known are hashed at once; others once `fill_details`
        has hashed them). A subfolder holding a project of its own is left to that project (`projects_inside`):
        its photos indexed here before count as removed, by the same rules, so no mask of theirs is lost.
        """
        started = time.perf_counter()
        if not self.root.is_dir():
            raise ProjectError(f"the image folder {self.root} is not available")
        walk = _walk_images(self.root)
        entries = walk.found
        added = unchanged = 0
        changed_paths: list[str] = []
        now = time.time()
        with self._write() as c:
            known = {row[0]: row[1:] for row in c.execute(
                "SELECT relpath, id, size_bytes, mtime_ns, missing, status, COALESCE(content_hash, hash_before) "
                "FROM images")}
            inserts: list[tuple] = []
            updates: list[tuple] = []
            touched: list[tuple] = []
            revived: list[tuple] = []
            for rel, size, mtime in entries:
                old = known.pop(rel, None)
                if old is None:
                    inserts.append((rel, natural_sort_key(rel), size, mtime, now))
                    added += 1
                    continue
                image_id, old_size, old_mtime, missing, status, old_hash = old
                same = old_size == size and old_mtime == mtime
                if missing:
                    restored = not same and old_size == size and old_hash is not None and status in ("new",
                                                                                                   "predicted")
                    revived.append((size, mtime, 0 if same or restored else 1, now, image_id))
                    if restored:  # back with a new time, perhaps the same bytes: hashing decides, as for a touch
                        touched.append((mtime, old_hash, now, image_id))
                    added += 1
                elif same:
                    unchanged += 1
                elif old_size == size and old_hash is not None and status in ("new", "predicted"):
                    touched.append((mtime, old_hash, now, image_id))
                    changed_paths.append(rel)
                else:
                    updates.append((size, mtime, now, image_id))
                    changed_paths.append(rel)
            c.executemany("INSERT INTO images(relpath, sort_key, size_bytes, mtime_ns, updated) VALUES (?, ?, ?, ?, ?)",
                          inserts)
            c.executemany("UPDATE images SET size_bytes = ?, mtime_ns = ?, width = NULL, height = NULL, "
                          "content_hash = NULL, hash_before = NULL, error = NULL, updated = ?, "
                          "model_version = CASE WHEN status IN ('new', 'predicted') THEN NULL ELSE model_version END "
                          "WHERE id = ?", updates)
            c.executemany("UPDATE images SET mtime_ns = ?, content_hash = NULL, "
                          "hash_before = COALESCE(hash_before, ?), updated = ? WHERE id = ?", touched)
            c.executemany("UPDATE images SET size_bytes = ?1, mtime_ns = ?2, missing = 0, "
                          "content_hash = CASE WHEN ?3 THEN NULL ELSE content_hash END, "
                          "model_version = CASE WHEN ?3 AND status IN ('new', 'predicted') THEN NULL "
                          "ELSE model_version END, "
                          "width = CASE WHEN ?3 THEN NULL ELSE width END, "
                          "height = CASE WHEN ?3 THEN NULL ELSE height END, error = NULL, updated = ?4 WHERE id = ?5",
                          revived)
            gone = [(image_id, status) for image_id, _, _, missing, status, _ in known.values() if not missing]
            forget = {i for i, status in gone if status == "new" and not self._has_any_mask(i)}
            self._delete_images(c, forget)
            c.executemany("UPDATE images SET missing = 1, updated = ? WHERE id = ?",
                          [(now, i) for i, _ in gone if i not in forget])
        found = self._find_renamed({row[0] for row in inserts}) if inserts else []
        self._hash_changed_checked({image_id for *_, image_id in updates} |
                                   {image_id for _, _, was_changed, _, image_id in revived if was_changed})
        gone_now = sum(1 for i in found if i in {image_id for image_id, _ in gone})
        return ScanResult(added - len(found), len(gone) - gone_now, len(changed_paths), unchanged, walk.skipped,
                          time.perf_counter() - started, len(found), tuple(walk.projects), tuple(walk.exports),
                          tuple(walk.unreadable), tuple(sorted(changed_paths, key=natural_sort_key)))

    def project_inside(self, relpath: str) -> str | None:
        """The subfolder (relative path) holding a project of its own that `relpath` lies in, or None: such a
        photo is that project's, and this one keeps its masks as a missing photo's (see `scan`)."""
        parts = relpath.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if _holds_project(os.fspath(self.root / folder)):
                return folder
        return None

    def photo_changed_since_checked(self, rec: ImageRecord) -> bool:
        """Whether the photo on disk now differs from the one the human mask was saved or reviewed on. A file
        changed since the last scan is hashed again, so such a replacement is caught too; an unreadable file is left
        to its reader."""
        if rec.labeled_hash is None or rec.status not in ("corrected", "reviewed"):
            return False
        digest = self._hash_now(rec)
        return digest is not None and digest != rec.labeled_hash

    def _has_any_mask(self, image_id: int) -> bool:
        return any(self.mask_path(kind, image_id).exists() for kind in MASK_KINDS)

    def fill_details(self, limit: int | None = None,
                     progress: Callable[[int, int], bool | None] | None = None, batch: int = 200) -> int:
        """Fill in width/height (header only) and content hashes for images that lack them. A checked image whose
        mask has no photo hash yet (a project from before the check, hashed later) takes this one.

        Bad files get `error` set and never raise; a file that only could not be read just now (locked, no
        permission) is left for the next pass. `progress(done, total)` is called after each batch; returning
        False stops early. Returns how many images were examined. Safe to run while others read or write.
        """
        conn = self._conn()
        query = ("SELECT id, relpath, size_bytes, mtime_ns, error FROM images WHERE missing = 0 AND error IS NULL "
                 "AND (width IS NULL OR content_hash IS NULL) ORDER BY sort_key, id")
        params: tuple = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (int(limit),)
        return self._fill_rows(conn.execute(query, params).fetchall(), progress, batch)[0]

    def _fill_rows(self, todo: list[tuple], progress: Callable[[int, int], bool | None] | None = None,
                   batch: int = 200) -> tuple[int, list[int]]:
        """`fill_details` for the rows (id, relpath, size, mtime, error as read) given: (examined, ids of the
        missing photos found again under new names). The error read with a row is decided again by this pass, as
        the file is now; one recorded meanwhile (a thumbnail or the studio found the data cut short while the pass
        read the file) stays: reading the header and the bytes does not prove the photo decodes."""
        total = len(todo)
        done, adopted = 0, []
        for start in range(0, total, batch):
            rows = todo[start:start + batch]
            results = [(*details, row[4]) for row in rows if (details := self._details(*row[:4])) is not None]
            with self._write() as c:
                c.executemany("UPDATE images SET width = ?1, height = ?2, content_hash = ?3, "
                              "error = CASE WHEN ?4 IS NOT NULL THEN ?4 WHEN error IS ?9 THEN NULL ELSE error END, "
                              "updated = ?5, "
                              "labeled_hash = CASE WHEN labeled_hash IS NULL AND status IN ('corrected', 'reviewed') "
                              "THEN ?3 ELSE labeled_hash END, "
                              "model_version = CASE WHEN hash_before IS NOT NULL AND status IN ('new', 'predicted') "
                              "AND (?4 IS NOT NULL OR (?3 IS NOT NULL AND ?3 != hash_before)) "
                              "THEN NULL ELSE model_version END, "
                              "hash_before = CASE WHEN ?3 IS NULL AND ?4 IS NULL THEN hash_before ELSE NULL END "
                              "WHERE id = ?6 AND size_bytes = ?7 AND mtime_ns = ?8 AND missing = 0", results)
                adopted += self._adopt_renamed(c, [(r[5], r[2]) for r in results if r[2] is not None])
            done += len(rows)
            if progress is not None and progress(done, total) is False:
                break
        return done, adopted

    def settle_touched(self, progress: Callable[[int, int], bool | None] | None = None) -> int:
        """Hash the files whose time alone changed since their last hash (see `scan`): a prediction stays current
        when the bytes are the same and is forgotten when they differ. Pre-labeling calls this before it decides
        what to predict; reading a file is far cheaper than predicting it. Returns how many files were hashed."""
        rows = self._conn().execute("SELECT id, relpath, size_bytes, mtime_ns, error FROM images WHERE missing = 0 "
                                    "AND hash_before IS NOT NULL ORDER BY sort_key, id").fetchall()
        return self._fill_rows([tuple(row) for row in rows], progress)[0] if rows else 0

    def hash_photos(self, image_ids: Iterable[int]) -> int:
        """Fill in the details and content hash of these images now, where the background pass has not yet, and
        keep them: a caller that needs the hashes (the split a photo will get) then reads them once, not again at
        each use. Already hashed, missing or unreadable images are left as they are, and a project opened read-only
        keeps nothing (its callers hash for themselves). Returns how many were read."""
        if self.read_only:
            return 0
        ids = sorted({int(i) for i in image_ids})
        rows: list[tuple] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows += [tuple(row) for row in self._conn().execute(
                f"SELECT id, relpath, size_bytes, mtime_ns, error FROM images WHERE id IN ({marks}) AND missing = 0 "
                "AND error IS NULL AND content_hash IS NULL ORDER BY sort_key, id", chunk)]
        return self._fill_rows(rows)[0] if rows else 0

    def _hash_changed_checked(self, changed_ids: set[int]) -> None:
        """Hash at once the changed files whose masks a person checked (few, and the ones that matter): whether
        the photo itself differs from the one labeled is then known to `info`, export and the studio right after
        this scan, without waiting for the details pass."""
        if not changed_ids:
            return
        marks = ",".join("?" * len(changed_ids))
        rows = self._conn().execute(f"SELECT id, relpath, size_bytes, mtime_ns, error FROM images WHERE id IN ({marks}) "
                                    "AND labeled_hash IS NOT NULL AND status IN ('corrected', 'reviewed')",
                                    sorted(changed_ids)).fetchall()
        if rows:
            self._fill_rows([tuple(row) for row in rows])

    def _find_renamed(self, inserted: set[str]) -> list[int]:
        """Hash the files this scan added that could be photos gone missing with their masks (the same byte size
        as one whose hash is known), so a renamed or moved photo gets its masks back in the scan that sees it,
        before anything predicts it afresh. Per size, at most a few times as many files as there are missing
        photos of that size are read here; the details pass hashes the rest. Returns the ids found again."""
        conn = self._conn()
        missing = dict(conn.execute("SELECT size_bytes, COUNT(*) FROM images WHERE missing = 1 "
                                    "AND content_hash IS NOT NULL GROUP BY size_bytes").fetchall())
        candidates: dict[int, list[tuple]] = {}
        for row in conn.execute("SELECT id, relpath, size_bytes, mtime_ns, error FROM images WHERE missing = 0 "
                                "AND error IS NULL AND content_hash IS NULL AND status = 'new' "
                                "ORDER BY sort_key, id"):
            if row[2] in missing and row[1] in inserted:
                candidates.setdefault(row[2], []).append(row)
        todo = [row for size, rows in candidates.items()
                for row in rows[:RENAME_CANDIDATES_PER_MISSING * missing[size] + RENAME_CANDIDATES_EXTRA]]
        return self._fill_rows(todo)[1] if todo else []

    def _details(self, image_id: int, relpath: str, size: int, mtime: int) -> tuple | None:
        """The size, hash and lasting error of the file, or None when it is no longer the file the index describes
        (`size` and `mtime`, as the scan saw it) before or after reading: what was read belongs to a photo the
        index has not seen yet, and stored beside the old file's size and time it would pass that photo off as the
        scanned one (a mask drawn on the old photo would then be refused for not fitting the new one's size)."""
        path = self.root / relpath
        if not self._is_scanned_file(path, size, mtime):
            return None
        width = height = digest = error = None
        try:
            width, height = read_size(path)
            digest = content_hash(path)
        except ImageLoadError as e:
            error = e.reason if e.lasting else None
        except OSError:
            pass  # read again by the next pass: the file may be fine once the cause passes
        if not self._is_scanned_file(path, size, mtime):
            return None
        return width, height, digest, error, time.time(), image_id, size, mtime

    @staticmethod
    def _is_scanned_file(path: Path, size: int, mtime: int) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (size, mtime)

    def _adopt_renamed(self, c: sqlite3.Connection, hashed: list[tuple[int, str]]) -> list[int]:
        """A file that vanished with masks and reappears under a new name keeps its id, and so its masks; the
        row made for the new name goes, but only while nothing has been done with it (status new, no mask file):
        a row someone may have open in the studio is never taken away. Returns the ids found again."""
        adopted = []
        for new_id, digest in hashed:
            old = c.execute("SELECT id FROM images WHERE missing = 1 AND content_hash = ? ORDER BY id LIMIT 1",
                            (digest,)).fetchone()
            if old is None:
                continue
            row = c.execute("SELECT relpath, sort_key, size_bytes, mtime_ns, width, height FROM images "
                            "WHERE id = ? AND status = 'new'", (new_id,)).fetchone()
            if row is None or self._has_any_mask(new_id):
                continue
            self._delete_images(c, [new_id])
            c.execute("UPDATE images SET relpath = ?, sort_key = ?, size_bytes = ?, mtime_ns = ?, width = ?, "
                      "height = ?, missing = 0, error = NULL, updated = ? WHERE id = ?", (*row, time.time(), old[0]))
            adopted.append(old[0])
        return adopted

    @staticmethod
    def _delete_images(c: sqlite3.Connection, ids: Iterable[int]) -> None:
        """Forget images and the faces found in them; the face rows go explicitly, as `_delete_finished_jobs` does
        for the job logs, not only through ON DELETE CASCADE."""
        rows = [(int(i),) for i in ids]
        c.executemany("DELETE FROM face_boxes WHERE image_id = ?", rows)
        c.executemany("DELETE FROM images WHERE id = ?", rows)

    def set_error(self, image_id: int, error: str | None) -> None:
        """Record (or clear) a problem found later, e.g. a file whose header was fine but whose data is not."""
        self._require(image_id)
        with self._write() as c:
            c.execute("UPDATE images SET error = ?, updated = ? WHERE id = ?", (error, time.time(), image_id))

    def note_load_error(self, image_id: int, error: ImageLoadError) -> ImageRecord | None:
        """Remember that a photo failed to decode, so its list badge says so from now on; the updated record, or
        None when nothing was recorded: a passing failure (missing, locked) says nothing lasting about the file,
        the same reason was already recorded, or the index could not be written just now."""
        if not error.lasting:
            return None
        record = self.get(image_id)
        if record is None or record.error == error.reason:
            return None
        try:
            self.set_error(image_id, error.reason)
        except (ProjectError, sqlite3.Error):
            return None
        return self.get(image_id)

    # --- reading the index ---------------------------------------------------------------------------------------

    def _record(self, row: tuple) -> ImageRecord:
        rec = ImageRecord(*row)
        rec.missing = bool(rec.missing)
        return rec

    def _status_filter(self, status: str | Iterable[str] | None) -> tuple[str, list[Any]]:
        if status is None:
            return "", []
        if status == NEEDS_ATTENTION:
            return f" AND {_NEEDS_ATTENTION_SQL}", []
        wanted = [status] if isinstance(status, str) else list(status)
        for s in wanted:
            if s not in STATUSES:
                raise ValueError(f"unknown status {s!r}; statuses: {', '.join(STATUSES)}")
        return f" AND status IN ({', '.join('?' * len(wanted))})", wanted

    @staticmethod
    def _path_filter(path_contains: str | None) -> tuple[str, list[Any]]:
        """Photos whose path in the project holds this text, ignoring the case of ASCII letters (`%` and `_` are
        taken as typed, not as wildcards)."""
        if not path_contains:
            return "", []
        escaped = path_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return " AND relpath LIKE ? ESCAPE '\\'", [f"%{escaped}%"]

    def _filters(self, status: str | Iterable[str] | None, path_contains: str | None) -> tuple[str, list[Any]]:
        where, params = self._status_filter(status)
        path_where, path_params = self._path_filter(path_contains)
        return where + path_where, [*params, *path_params]

    def images(self, status: str | Iterable[str] | None = None, order_by: str = "name", limit: int | None = None,
               offset: int = 0, after: ImageRecord | None = None,
               path_contains: str | None = None) -> list[ImageRecord]:
        """Images present in the folder; `order_by` "uncertainty"/"effort" put the highest (most useful) first.

        `after` continues a listing after that record, as it was when listed: a list that pages this way neither
        skips nor repeats images whose status changed between pages, which paging by `offset` would.
        `path_contains`: only photos whose path in the project holds this text (any case).
        """
        if order_by not in ORDERINGS:
            raise ValueError(f"order_by must be one of {ORDERINGS}, got {order_by!r}")
        where, params = self._filters(status, path_contains)
        key = _ORDER_KEYS[order_by]
        if after is not None:
            where += f" AND ({', '.join(key)}) > ({', '.join('?' * len(key))})"
            params = [*params, *_order_key_values(after, order_by)]
        sql = (f"SELECT {_RECORD_COLUMNS} FROM images WHERE missing = 0{where} ORDER BY {', '.join(key)} "
               "LIMIT ? OFFSET ?")
        rows = self._conn().execute(sql, [*params, -1 if limit is None else int(limit), int(offset)]).fetchall()
        return [self._record(r) for r in rows]

    def count(self, status: str | Iterable[str] | None = None, path_contains: str | None = None) -> int:
        where, params = self._filters(status, path_contains)
        return self._conn().execute(f"SELECT COUNT(*) FROM images WHERE missing = 0{where}", params).fetchone()[0]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._conn().execute(
                "SELECT status, COUNT(*) FROM images WHERE missing = 0 GROUP BY status"):
            out[status] = n
        return out

    def count_awaiting_prediction(self) -> int:
        """Images a pre-labeling run will predict whatever its model: readable ones no model has labeled, and
        predicted ones whose photo changed since (a scan forgets which model made their mask)."""
        return self._conn().execute(
            "SELECT COUNT(*) FROM images WHERE missing = 0 AND error IS NULL AND (status = 'new' OR "
            "(status = 'predicted' AND model_version IS NULL))").fetchone()[0]

    def count_errors(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM images WHERE missing = 0 AND error IS NOT NULL").fetchone()[0]

    def changed_photos(self) -> list[ImageRecord]:
        """Images whose photo, as last hashed, differs from the one their human mask was checked on."""
        rows = self._conn().execute(
            f"SELECT {_RECORD_COLUMNS} FROM images WHERE missing = 0 AND {_PHOTO_CHANGED_SQL} "
            "ORDER BY sort_key, id").fetchall()
        return [self._record(row) for row in rows]

    def accept_photo(self, rec: ImageRecord, digest: str) -> ImageRecord | None:
        """Take the human mask of `rec` as checked on the photo whose content hash is `digest` (see
        `changed_photos`); the updated record, or None when the row changed since `rec` was read (a scan saw the
        photo change again), so nothing newer is hidden."""
        with self._write() as c:
            kept = c.execute("UPDATE images SET content_hash = ?, labeled_hash = ?, updated = ? WHERE id = ? "
                             "AND size_bytes = ? AND mtime_ns = ? AND content_hash IS ? AND missing = 0",
                             (digest, digest, time.time(), rec.id, rec.size_bytes, rec.mtime_ns,
                              rec.content_hash)).rowcount
        return self.get(rec.id) if kept else None

    def count_missing(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM images WHERE missing = 1").fetchone()[0]

    def missing_photos(self) -> list[ImageRecord]:
        """Images whose file is gone from the folder but whose masks are kept, waiting for the photo to return
        (under its old name, or under any name once it has been hashed)."""
        rows = self._conn().execute(
            f"SELECT {_RECORD_COLUMNS} FROM images WHERE missing = 1 ORDER BY sort_key, id").fetchall()
        return [self._record(row) for row in rows]

    def count_pending_details(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM images WHERE missing = 0 AND error IS NULL "
                                    "AND (width IS NULL OR content_hash IS NULL)").fetchone()[0]

    def split_counts(self) -> dict[str, int]:
        """Labeled (corrected or reviewed) images per split. An image keeps its split when its correction is
        taken back, so that it joins the same split if it is corrected again; it counts again only then."""
        out = dict.fromkeys(SPLITS, 0)
        for split, n in self._conn().execute(
                "SELECT split, COUNT(*) FROM images WHERE missing = 0 AND split IS NOT NULL "
                "AND status IN ('corrected', 'reviewed') GROUP BY split"):
            out[split] = n
        return out

    def get(self, image_id: int) -> ImageRecord | None:
        row = self._conn().execute(f"SELECT {_RECORD_COLUMNS} FROM images WHERE id = ?", (int(image_id),)).fetchone()
        return self._record(row) if row else None

    def _require(self, image_id: int) -> ImageRecord:
        rec = self.get(image_id)
        if rec is None:
            raise ProjectError(f"no image with id {image_id} in {self.root}")
        return rec

    def find(self, relpath: str | os.PathLike) -> ImageRecord | None:
        """The record for a path relative to the image folder (an absolute path inside it also works)."""
        path = Path(relpath)
        if path.is_absolute():
            try:
                path = path.resolve().relative_to(self.root)
            except ValueError:
                return None
        row = self._conn().execute(f"SELECT {_RECORD_COLUMNS} FROM images WHERE relpath = ?",
                                   (path.as_posix(),)).fetchone()
        return self._record(row) if row else None

    # --- masks ---------------------------------------------------------------------------------------------------

    def _image_sizes(self, rec: ImageRecord, mask_size: tuple[int, int]) -> list[tuple[int, int]]:
        """The sizes a mask of this image may have: the photo's as the last scan saw it, and, when the file has
        been replaced since, its size now (a person who opened the new photo paints a mask of its size, one who
        opened the old photo before it changed paints the old size; neither edit may be refused). The header is
        read only when the mask does not fit the index or the file changed; an index that read the size wrong
        (a TIFF turned by its orientation tag, by an earlier version) learns it then."""
        recorded = (rec.width, rec.height) if rec.width is not None and rec.height is not None else None
        unchanged = self._unchanged_on_disk(rec)
        if recorded is not None and unchanged and mask_size == recorded:
            return [recorded]
        try:
            now = read_size(self.root / rec.relpath)
        except ImageLoadError as e:
            if recorded is not None:
                return [recorded]
            raise MaskError(f"cannot check a mask against {rec.relpath}: {e.reason}") from None
        if unchanged and now != recorded:
            with self._write() as c:
                c.execute("UPDATE images SET width = ?, height = ? WHERE id = ?", (*now, rec.id))
        return [now] if unchanged or recorded is None else [now, recorded]

    def _unchanged_on_disk(self, rec: ImageRecord) -> bool:
        try:
            st = (self.root / rec.relpath).stat()
        except OSError:
            return True
        return rec.scanned(st)

    def _checked_mask(self, rec: ImageRecord, mask: np.ndarray,
                      photo_seen: tuple[int, int] | None = None) -> np.ndarray:
        """The mask as class indices that fit the schema and the photo. A mask drawn on a photo replaced since
        (`photo_seen` is not the file now) whose size the index never read, or has forgotten for the new photo's,
        is taken at its own size: nothing is left to measure it against, and the image is flagged "photo changed"
        (see `_labeled_hash`) rather than the annotator's work refused."""
        arr = np.asarray(mask)
        if arr.ndim != 2:
            raise MaskError(f"mask for {rec.relpath} must be a 2-D array of class indices, got shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise MaskError(f"mask for {rec.relpath} must hold integer class indices, got {arr.dtype}")
        mask_size = (arr.shape[1], arr.shape[0])
        seen_gone = photo_seen is not None and not self._is_scanned_file(self.root / rec.relpath, *photo_seen)
        size_unknown = rec.width is None or tuple(photo_seen or ()) != (rec.size_bytes, rec.mtime_ns)
        sizes = [mask_size] if seen_gone and size_unknown else self._image_sizes(rec, mask_size)
        if (arr.shape[1], arr.shape[0]) not in sizes:
            width, height = sizes[0]
            raise MaskError(f"mask for {rec.relpath} is {arr.shape[1]}x{arr.shape[0]}, "
                            f"but the image is {width}x{height}")
        if arr.size:
            low, high = int(arr.min()), int(arr.max())
            if low < 0 or high >= self.schema.num_classes:
                bad = sorted(int(v) for v in np.unique(arr) if v < 0 or v >= self.schema.num_classes)
                raise MaskError(f"mask for {rec.relpath} has classes {bad[:10]} outside the project's schema "
                                f"{self.schema.name!r} (0..{self.schema.num_classes - 1})")
        return arr.astype(np.uint8, copy=False)

    def save_predicted(self, image_id: int, mask: np.ndarray, model_version: str,
                       uncertainty: float | None = None, predicted_with: str | None = None) -> None:
        """Store a model's mask. A human-checked image (corrected/reviewed) keeps its status and correction.

        predicted_with: how the model was run (framing, test-time augmentation), so a later run with other
        settings knows this prediction is not what it would produce."""
        self._refuse_if_read_only()
        rec = self._require(image_id)
        arr = self._checked_mask(rec, mask)
        if rec.status == "reviewed":
            self._keep_approved_prediction(rec)
        digest = rec.content_hash or self._hash_if_unchanged(rec)
        save_mask(self.mask_path("predicted", rec.id), arr, self.schema, compress_level=1)
        with self._write() as c:
            updated = c.execute(
                "UPDATE images SET model_version = ?, uncertainty = ?, predicted_with = ?, updated = ?, "
                "content_hash = COALESCE(content_hash, ?), hash_before = NULL, "
                "status = CASE WHEN status IN ('new', 'predicted') THEN 'predicted' ELSE status END WHERE id = ?",
                (model_version, None if uncertainty is None else float(uncertainty), predicted_with, time.time(),
                 digest, rec.id)).rowcount
        self._check_still_there(updated, rec)

    def save_corrected(self, image_id: int, mask: np.ndarray, keep_reviewed: bool = True,
                       imported: bool = False, keep_effort: bool = False,
                       photo_seen: tuple[int, int] | None = None) -> None:
        """Store the human's mask; fixes the image's train/val split the first time and scores the effort. A
        reviewed image stays reviewed (the annotator edits what they approved) unless `keep_reviewed` is False
        (an imported mask nobody has looked at here). `imported` marks the mask as another dataset's labels, so
        a dataset card does not count it as corrected by hand; a later save from the editor clears the mark.
        `keep_effort` leaves the stored effort as it is (the same mask scaled to its photo's new size).
        `photo_seen`: the (byte size, time) of the photo the person drew on (see `_labeled_hash`).

        effort = fraction of pixels that differ from the predicted mask (None when there is no prediction): how
        much work the model left, a per-image signal for choosing what to label next.
        """
        self._refuse_if_read_only()
        rec = self._require(image_id)
        arr = self._checked_mask(rec, mask, photo_seen)
        digest = self._hash_now(rec)
        labeled = self._labeled_hash(rec, digest, photo_seen)
        if rec.photo_changed and self._same_as_stored(rec.id, arr):
            labeled = rec.labeled_hash  # the same mask written again (an autosave) is no new check of the photo
        indexed = self._index_hash(rec, digest)
        effort = None
        try:
            predicted = self.predicted_mask(rec.id)
        except MaskError:  # a damaged prediction leaves the effort unknown; it never blocks the person's save
            predicted = None
        if predicted is not None and predicted.shape == arr.shape:
            effort = float(np.count_nonzero(predicted != arr)) / arr.size if arr.size else 0.0
        save_mask(self.mask_path("corrected", rec.id), arr, self.schema)
        with self._write() as c:
            split = rec.split or self._new_split(c, digest, rec.id)
            updated = c.execute(
                "UPDATE images SET effort = CASE WHEN ? THEN effort ELSE ? END, split = COALESCE(split, ?), "
                "content_hash = COALESCE(?, content_hash), labeled_hash = COALESCE(?, content_hash), updated = ?, "
                "status = CASE WHEN status = 'reviewed' AND ? THEN 'reviewed' ELSE 'corrected' END, "
                "mask_source = ? WHERE id = ?",
                (int(keep_effort), effort, split, indexed, labeled, time.time(), int(keep_reviewed),
                 "imported" if imported else None, rec.id)).rowcount
        self._check_still_there(updated, rec)

    def _same_as_stored(self, image_id: int, mask: np.ndarray) -> bool:
        try:
            stored = self.corrected_mask(image_id)
        except MaskError:
            return False
        return stored is not None and stored.shape == mask.shape and np.array_equal(stored, mask)

    def put_back_checked_on(self, image_id: int, checked_on: str) -> None:
        """Restore the hash of the photo the mask was checked on, as it was before a review that is being taken back:
        a mask checked on another photo is flagged "photo changed" again."""
        self._refuse_if_read_only()
        with self._write() as c:
            c.execute("UPDATE images SET labeled_hash = ? WHERE id = ?", (checked_on, int(image_id)))

    def withdraw_review(self, image_id: int, keep_as_correction: bool = False,
                        checked_on: str | None = None) -> None:
        """Take back a review: the image is a correction again, or, when its mask is a model's prediction nobody
        edited (effort 0, not imported), predicted again, so an approval taken back does not leave a model's guess
        among the masks training and export take for a person's. That holds too when the image was predicted again
        after the review: the approved guess was kept aside only because it was approved, and the newer prediction
        is what the image goes back to. `keep_as_correction`: the person accepted the prediction as their mask
        before reviewing it (it stays a correction). `checked_on`: the photo hash the mask was checked on before
        the review (an undo of R puts a "photo changed" flag back with it)."""
        rec = self._require(image_id)
        if rec.status != "reviewed":
            return
        self.set_status(image_id, "corrected")
        if checked_on is not None:  # a mask checked before R, on another photo: a correction, never a model's guess
            self.put_back_checked_on(image_id, checked_on)
            return
        if keep_as_correction or rec.effort != 0 or rec.mask_source is not None:
            return
        try:
            predicted, corrected = self.predicted_mask(image_id), self.corrected_mask(image_id)
        except MaskError:
            return
        if predicted is not None and corrected is not None and predicted.shape == corrected.shape:
            self.discard_correction(image_id)

    def image_row(self, image_id: int) -> dict[str, Any]:
        """The image's index row as it is stored, every column (for `restore_image_rows`)."""
        cursor = self._conn().execute("SELECT * FROM images WHERE id = ?", (int(image_id),))
        row = cursor.fetchone()
        if row is None:
            raise ProjectError(f"no image with id {image_id} in {self.root}")
        return {d[0]: value for d, value in zip(cursor.description, row, strict=True)}

    def restore_image_rows(self, rows: list[dict[str, Any]]) -> None:
        """Write rows taken with `image_row` back, in one transaction (a batch of saves that failed part-way)."""
        self._refuse_if_read_only()
        with self._write() as c:
            for row in rows:
                columns = [name for name in row if name != "id"]
                assignments = ", ".join(f'"{name}" = ?' for name in columns)
                c.execute(f"UPDATE images SET {assignments} WHERE id = ?", [row[name] for name in columns] + [row["id"]])

    def discard_correction(self, image_id: int) -> bool:
        """Take back a correction whose edits were all undone: the image is predicted again (or new) and its
        corrected mask file goes. Only a "corrected" image is touched (a reviewed one was approved); False if
        there was nothing to take back. The row changes before the file goes, so a crash between the two leaves
        a corrected file that matches what the image had, never a "corrected" status without its mask."""
        rec = self._require(image_id)
        status = "predicted" if self.mask_path("predicted", rec.id).exists() else "new"
        with self._write() as c:
            changed = c.execute("UPDATE images SET status = ?, effort = NULL, labeled_hash = NULL, mask_source = NULL, "
                                "updated = ? WHERE id = ? AND status = 'corrected'", (status, time.time(), rec.id)).rowcount
        if changed:
            with contextlib.suppress(FileNotFoundError):
                self.mask_path("corrected", rec.id).unlink()
        return bool(changed)

    def _check_still_there(self, updated: int, rec: ImageRecord) -> None:
        """A save whose row went away meanwhile (another process found the photo to be a renamed one and gave
        it its old id) must not pass for a save: the caller keeps the mask and says so."""
        if not updated:
            raise ProjectError(f"{rec.relpath} changed its place in the project while it was being saved "
                               "(it was found to be a renamed photo); open it again and repeat the last edit")

    def _hash_if_unchanged(self, rec: ImageRecord) -> str | None:
        """The photo's content hash when it is still the file the last scan saw (else None: the next scan sees
        the change). A prediction records it, so a renamed or moved photo finds its predicted mask again too."""
        path = self.root / rec.relpath
        try:
            st = path.stat()
            if not rec.scanned(st):
                return None
            return content_hash(path)
        except OSError:
            return None

    def _hash_now(self, rec: ImageRecord) -> str | None:
        """The content hash of the photo as it is on disk now (the one the person is looking at), which may differ
        from the last scan's. The file is read only when its size or time differ from the scan's (or it was never
        hashed), so saving and exporting do not read every photo again; the stored hash when it cannot be read."""
        path = self.root / rec.relpath
        try:
            st = path.stat()
            if rec.content_hash is not None and rec.scanned(st):
                return rec.content_hash
            return content_hash(path)
        except OSError:
            return rec.content_hash

    def _index_hash(self, rec: ImageRecord, digest: str | None) -> str | None:
        """The hash to keep in the index beside the scan's byte size and time: `digest` when the file on disk is
        still the one the scan saw, else None (the index keeps what it had until a scan sees the new file). A hash
        of a newer file stored beside the old file's size and time would pass the new photo off as the scanned one,
        and a review right after a save would then take it for the photo the mask was drawn on."""
        try:
            return digest if rec.scanned((self.root / rec.relpath).stat()) else None
        except OSError:
            return None

    def _labeled_hash(self, rec: ImageRecord, digest: str | None, photo_seen: tuple[int, int] | None) -> str | None:
        """The hash of the photo a person checked the mask on. That is the file on disk now (`digest`), unless it
        changed after the editor opened it (`photo_seen`, its byte size and time then, differ from the file's now):
        then the mask belongs to the photo the last scan saw, or, when the scan saw yet another one, to a photo no
        longer there, so the image is flagged "photo changed" instead of passing the mask off as this photo's."""
        if photo_seen is None:
            return digest
        try:
            st = (self.root / rec.relpath).stat()
            now = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = None
        if now == tuple(photo_seen):
            return digest
        if tuple(photo_seen) == (rec.size_bytes, rec.mtime_ns) and rec.content_hash:
            return rec.content_hash
        return PHOTO_REPLACED_WHILE_OPEN

    def _keep_approved_prediction(self, rec: ImageRecord) -> bool:
        """A prediction approved as it was (reviewed, never corrected) becomes the human's mask: stored as the
        corrected mask, so a later prediction or a predicted import cannot replace what a person approved.
        False when there is no prediction to keep or a corrected mask exists already."""
        if self.mask_path("corrected", rec.id).exists():
            return False
        approved = self.predicted_mask(rec.id)
        if approved is None:
            return False
        save_mask(self.mask_path("corrected", rec.id), approved, self.schema)
        with self._write() as c:
            c.execute("UPDATE images SET effort = 0, mask_source = NULL WHERE id = ?", (rec.id,))
        return True

    def set_status(self, image_id: int, status: str, photo_seen: tuple[int, int] | None = None) -> None:
        """Change the status; a status must be backed by the mask it implies (predicted/corrected/any for reviewed).
        Reviewing a prediction nobody corrected stores it as the corrected mask (see `_keep_approved_prediction`)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
        self._refuse_if_read_only()
        rec = self._require(image_id)
        has_pred = self.mask_path("predicted", rec.id).exists()
        has_corr = self.mask_path("corrected", rec.id).exists()
        needs = {"predicted": has_pred, "corrected": has_corr, "reviewed": has_pred or has_corr, "new": True}
        if not needs[status]:
            raise MaskError(f"{rec.relpath} cannot be {status!r}: it has no "
                            f"{'mask' if status == 'reviewed' else status + ' mask'}")
        digest = self._hash_now(rec) if status == "reviewed" else rec.content_hash
        labeled = self._labeled_hash(rec, digest, photo_seen)
        indexed = self._index_hash(rec, digest)
        if status == "reviewed" and not has_corr:
            self._keep_approved_prediction(rec)
        with self._write() as c:
            c.execute("UPDATE images SET status = ?, updated = ? WHERE id = ?", (status, time.time(), rec.id))
            if status == "reviewed":
                c.execute("UPDATE images SET content_hash = COALESCE(?, content_hash), "
                          "labeled_hash = COALESCE(?, content_hash) WHERE id = ?", (indexed, labeled, rec.id))
            if status == "reviewed" and not has_corr:
                c.execute("UPDATE images SET split = COALESCE(split, ?), content_hash = COALESCE(content_hash, ?) "
                          "WHERE id = ?", (rec.split or self._new_split(c, digest, rec.id), indexed, rec.id))

    @staticmethod
    def _new_split(c: sqlite3.Connection, digest: str | None, image_id: int) -> str:
        """The split an image gets when it is first checked. A copy of an already split photo joins its split;
        the first checked image trains and the next one validates, so a first retrain can be measured (unless
        masked pre-training has learnt from its photo: then the next such image does); after that the content
        hash decides."""
        copy = _split_of_copy(c, digest, image_id)
        if copy is not None:
            return copy
        counts = dict(c.execute("SELECT split, COUNT(*) FROM images WHERE missing = 0 AND split IS NOT NULL "
                                "GROUP BY split").fetchall())
        if not counts.get("train"):
            return "train"
        if not counts.get("val") and image_id not in _pretrained_on(c):
            return "val"
        return split_for(digest if digest else f"id:{image_id}")

    def note_pretrained_on(self, image_ids: Iterable[int]) -> None:
        """Remember the photos masked pre-training learnt from: none of them is made the first validation image
        when it is checked (its own content decides its split, as for the others), so no retrain is measured on a
        face its model has already seen."""
        with self._write() as c:
            ids = sorted(_pretrained_on(c) | {int(i) for i in image_ids})
            c.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                      "excluded.value", (PRETRAINED_ON_SETTING, json.dumps(ids)))

    def checked_on(self, digest: str, other_than: int | None = None) -> list[ImageRecord]:
        """The images whose checked mask was drawn on a photo of this content (`labeled_hash`): when a changed
        photo now holds what another image's mask was checked on, the photos were renamed or renumbered, and its
        own mask belongs to another picture."""
        rows = self._conn().execute(f"SELECT {_RECORD_COLUMNS} FROM images WHERE labeled_hash = ? AND id != ? "
                                    "ORDER BY sort_key, id", (digest, -1 if other_than is None else int(other_than)))
        return [self._record(row) for row in rows]

    def split_of_copy(self, digest: str | None, image_id: int) -> str | None:
        """The split of another image with this photo content, which a copy joins when it is checked; None when
        there is none."""
        return _split_of_copy(self._conn(), digest, image_id)

    def _read_mask(self, kind: str, image_id: int) -> np.ndarray | None:
        path = self.mask_path(kind, image_id)
        try:
            return load_mask(path)
        except ImageLoadError as e:
            if not path.exists():
                return None
            raise self._damaged_mask(kind, image_id, path, e.reason) from None

    def _damaged_mask(self, kind: str, image_id: int, path: Path, reason: str) -> MaskError:
        """The error for a mask file that cannot be read, naming the photo, the file and the way out. A damaged
        prediction stops counting as current, so the next pre-label run predicts the image again and replaces
        it; a person's mask is never replaced without being asked."""
        rec = self.get(image_id)
        photo = rec.relpath if rec is not None else f"image {image_id}"
        if kind == "predicted":
            with contextlib.suppress(sqlite3.Error, ProjectError), self._write() as c:
                c.execute("UPDATE images SET model_version = NULL WHERE id = ?", (image_id,))
            hint = "pre-label all images again to replace it"
        else:
            hint = ("import its mask with overwrite (--overwrite) to replace it, or delete the file and check the "
                    "image again in the studio, which then shows the model's prediction to correct and save")
        return MaskError(f"the {kind} mask of {photo} ({path}) is unreadable: {reason}; {hint}")

    def predicted_mask(self, image_id: int) -> np.ndarray | None:
        return self._read_mask("predicted", image_id)

    def corrected_mask(self, image_id: int) -> np.ndarray | None:
        return self._read_mask("corrected", image_id)

    def current_mask(self, image_id: int) -> np.ndarray | None:
        """What the annotator should see: the correction of an image a person checked, else the prediction."""
        if self._require(image_id).status in HUMAN_STATUSES:
            mask = self.corrected_mask(image_id)
            if mask is not None:
                return mask
        return self.predicted_mask(image_id)

    # --- faces found in the photos ------------------------------------------------------------------------------

    def face_boxes(self, image_id: int, detector: str, pixels: str) -> list[list[float]] | None:
        """The boxes the detector with this signature found in the picture with this pixel digest, or None when
        it has not looked at that picture."""
        row = self._conn().execute("SELECT boxes FROM face_boxes WHERE image_id = ? AND detector = ? AND pixels = ?",
                                   (int(image_id), detector, pixels)).fetchone()
        return None if row is None else json.loads(row[0])

    def save_face_boxes(self, image_id: int, detector: str, pixels: str, boxes: list[list[float]]) -> None:
        """Remember what the detector found in the picture; replaces what any detector found in any earlier
        version of the photo. An image removed meanwhile is left alone."""
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO face_boxes(image_id, detector, pixels, boxes) "
                      "SELECT id, ?, ?, ? FROM images WHERE id = ?",
                      (detector, pixels, json.dumps(boxes), int(image_id)))

    # --- settings ------------------------------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self._conn().execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        with self._write() as c:
            c.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))

    def settings(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._conn().execute("SELECT key, value FROM settings")}

    # --- model versions ------------------------------------------------------------------------------------------

    def _model_dict(self, row: tuple) -> dict[str, Any]:
        task, version, path, metrics, parent, data_summary, created = row
        return {"task": task, "version": version,
                "path": None if path is None else str(self.dir / path),
                "metrics": json.loads(metrics), "parent": parent,
                "data_summary": json.loads(data_summary), "created": created}

    def add_model_version(self, task: str, version: str, path: str | os.PathLike | None, metrics: dict,
                          parent: str | None = None, data_summary: dict | None = None) -> dict[str, Any]:
        """Record a trained model. A path inside the project is stored relative to it, so moves keep working."""
        stored = None
        if path is not None:
            p = Path(path)
            if not p.is_absolute():
                p = self.dir / p
            try:
                stored = p.resolve().relative_to(self.dir.resolve()).as_posix()
            except ValueError:
                stored = str(p.resolve())
        try:
            with self._write() as c:
                c.execute("INSERT INTO model_versions(task, version, path, metrics, parent, data_summary, created) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (task, version, stored, json.dumps(metrics or {}), parent,
                           json.dumps(data_summary or {}), _utc_now()))
        except sqlite3.IntegrityError:
            raise ProjectError(f"model version {task}/{version} already exists") from None
        return self.model_version(task, version)  # type: ignore[return-value]

    def model_version(self, task: str, version: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT task, version, path, metrics, parent, data_summary, created "
                                   "FROM model_versions WHERE task = ? AND version = ?", (task, version)).fetchone()
        return self._model_dict(row) if row else None

    def model_versions(self, task: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT task, version, path, metrics, parent, data_summary, created FROM model_versions"
        rows = (self._conn().execute(sql + " ORDER BY task, created, version") if task is None else
                self._conn().execute(sql + " WHERE task = ? ORDER BY created, version", (task,)))
        return [self._model_dict(r) for r in rows]

    def active_model(self, task: str) -> dict[str, Any] | None:
        version = self.get_setting(f"active_model.{task}")
        return None if version is None else self.model_version(task, version)

    def set_active_model(self, task: str, version: str | None) -> None:
        """The check that the version exists and the switch are one transaction, so a version deleted by another
        program at the same moment is never left active."""
        with self._write() as c:
            if version is not None and c.execute("SELECT 1 FROM model_versions WHERE task = ? AND version = ?",
                                                 (task, version)).fetchone() is None:
                known = ", ".join(v for (v,) in c.execute(
                    "SELECT version FROM model_versions WHERE task = ? ORDER BY created, version", (task,))) or "none"
                raise ProjectError(f"no model version {version!r} for task {task!r} (known: {known})")
            c.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      (f"active_model.{task}", json.dumps(version)))

    def active_models(self) -> dict[str, dict[str, Any]]:
        out = {}
        for key, version in self.settings().items():
            if key.startswith("active_model.") and version is not None:
                task = key.removeprefix("active_model.")
                model = self.model_version(task, version)
                if model:
                    out[task] = model
        return out

    def delete_model_version(self, task: str, version: str) -> None:
        """Forget a version (its files are the caller's to remove); refused for the active one. Its number is
        remembered and never given out again: predictions record the version name that made them, and a new model
        under an old name would pass for the one that made them."""
        with self._write() as c:
            active = c.execute("SELECT value FROM settings WHERE key = ?", (f"active_model.{task}",)).fetchone()
            if active is not None and json.loads(active[0]) == version:
                raise ProjectError(f"{task} {version} is the active model; activate another version first")
            if c.execute("DELETE FROM model_versions WHERE task = ? AND version = ?",
                         (task, version)).rowcount == 0:
                raise ProjectError(f"no model version {version!r} for task {task!r}")
            number = _version_number(version)
            if number is not None and number > self._highest_deleted(c, task):
                c.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          (_DELETED_VERSION_KEY.format(task=task), json.dumps(number)))

    @staticmethod
    def _highest_deleted(c: sqlite3.Connection, task: str) -> int:
        row = c.execute("SELECT value FROM settings WHERE key = ?",
                        (_DELETED_VERSION_KEY.format(task=task),)).fetchone()
        return 0 if row is None else int(json.loads(row[0]))

    def next_version_name(self, task: str) -> str:
        """One past the highest version number ever given out, deleted versions included, and past every version
        folder on disk: a database restored from a backup may not know the newest ones, and a new version must
        never take the name (and the folder) of one whose predictions are stored under it. A folder without a whole
        checkpoint (left by a crash before its row was written) holds no model, and its number is free."""
        c = self._conn()
        numbers = [n for (v,) in c.execute("SELECT version FROM model_versions WHERE task = ?", (task,))
                   if (n := _version_number(v)) is not None]
        folder = self.models_dir / task
        with contextlib.suppress(OSError):
            numbers += [n for entry in folder.iterdir() if ".partial-" not in entry.name and has_checkpoint(entry)
                        and (n := _version_number(entry.name.lstrip(".").split(".")[0])) is not None]
        return f"v{max(numbers + [self._highest_deleted(c, task)]) + 1:04d}"

    # --- jobs ----------------------------------------------------------------------------------------------------

    def _job_dict(self, row: tuple) -> dict[str, Any]:
        job_id, kind, params, state, progress, message, cancel, pid, created, updated, host = row
        return {"id": job_id, "kind": kind, "params": json.loads(params), "state": state, "progress": progress,
                "message": message, "cancel_requested": bool(cancel), "pid": pid, "created": created,
                "updated": updated, "host": host}

    _JOB_COLUMNS = "id, kind, params, state, progress, message, cancel_requested, pid, created, updated, host"

    def add_job(self, kind: str, params: dict | None = None) -> int:
        """A new queued job; finished jobs beyond the newest `JOBS_KEPT` go at the same time."""
        now = time.time()
        with self._write() as c:
            cur = c.execute("INSERT INTO jobs(kind, params, created, updated) VALUES (?, ?, ?, ?)",
                            (kind, json.dumps(params or {}), now, now))
            self._delete_finished_jobs(c, JOBS_KEPT)
            return int(cur.lastrowid)

    def prune_jobs(self, keep: int = JOBS_KEPT) -> int:
        """Delete finished jobs (done, failed, cancelled) and their logs, all but the newest `keep`; queued and
        running jobs are never touched. Returns how many jobs were deleted."""
        if keep < 0:
            raise ProjectError(f"the number of jobs to keep cannot be negative, got {keep}")
        with self._write() as c:
            return self._delete_finished_jobs(c, keep)

    @staticmethod
    def _delete_finished_jobs(c: sqlite3.Connection, keep: int) -> int:
        """The log rows are deleted explicitly rather than left to ON DELETE CASCADE, which SQLite applies only on
        a connection that turned foreign keys on."""
        finished = ", ".join("?" * len(FINISHED_JOB_STATES))
        doomed = (f"SELECT id FROM jobs WHERE state IN ({finished}) ORDER BY id DESC LIMIT -1 OFFSET ?",
                  (*FINISHED_JOB_STATES, int(keep)))
        c.execute(f"DELETE FROM job_log WHERE job_id IN ({doomed[0]})", doomed[1])
        return c.execute(f"DELETE FROM jobs WHERE id IN ({doomed[0]})", doomed[1]).rowcount

    def add_job_params(self, job_id: int, **params: Any) -> None:
        """Record what a job decided once it runs (its start version, say) beside what it was asked for."""
        with self._write() as c:
            row = c.execute("SELECT params FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise ProjectError(f"no job {job_id}")
            c.execute("UPDATE jobs SET params = ? WHERE id = ?", (json.dumps({**json.loads(row[0]), **params}), job_id))

    def update_job(self, job_id: int, state: str | None = None, progress: float | None = None,
                   message: str | None = None, pid: int | None = None) -> None:
        if state is not None and state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}; states: {', '.join(JOB_STATES)}")
        sets, params = ["updated = ?"], [time.time()]
        host = socket.gethostname() if pid is not None else None  # a process id means something on its machine only
        for column, value in (("state", state), ("progress", progress), ("message", message), ("pid", pid),
                              ("host", host)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        with self._write() as c:
            cur = c.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*params, job_id))
            if cur.rowcount == 0:
                raise ProjectError(f"no job with id {job_id}")

    def request_cancel(self, job_id: int) -> None:
        """Ask a running job to stop; the job polls `job(id)["cancel_requested"]` and ends itself. `updated` is left
        alone: it is the job's own sign of life (see `jobs.reap_stale_jobs`), which a request from elsewhere is not."""
        with self._write() as c:
            c.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))

    def append_job_log(self, job_id: int, line: str) -> None:
        with self._write() as c:
            c.execute("INSERT INTO job_log(job_id, time, line) VALUES (?, ?, ?)", (job_id, time.time(), str(line)))

    def job_log(self, job_id: int, offset: int = 0) -> list[str]:
        rows = self._conn().execute("SELECT line FROM job_log WHERE job_id = ? ORDER BY id LIMIT -1 OFFSET ?",
                                    (job_id, int(offset)))
        return [r[0] for r in rows]

    def job(self, job_id: int) -> dict[str, Any] | None:
        row = self._conn().execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job_dict(row) if row else None

    def jobs(self, kind: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        sql, params = f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE 1", []
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        return [self._job_dict(r) for r in self._conn().execute(sql + " ORDER BY id DESC", params)]


_CONSTRUCT = object()
