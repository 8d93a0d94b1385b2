"""Atomic file writes: a crash at any moment leaves either the old file or the new one, never a torn one.

The data goes to a temporary file in the same directory, is fsynced, then renamed over the target (rename is
atomic on POSIX and on NTFS via os.replace); the directory is fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
"""Read once, at import: reading it means setting it for a moment, and two threads doing that at once can leave
the process with umask 0 for good."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it replaces `target` atomically.

    `durable=False` skips the fsyncs: the rename still never exposes a torn file, but a power cut may lose the
    newest version. Only for files that are cheap to remake, such as thumbnails.

    The writer may open the path by name (useful for libraries that only accept file names, such as
    safetensors or PIL with a format inferred from the suffix, so the temporary name keeps the suffix).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp (and some writers that replace the file) make 0600
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
        if durable:
            _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    with atomic_path(target, durable) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def folder_write_problem(folder: Path, what: str = "folder") -> str | None:
    """Why files cannot be written in `folder` (made if it is missing), or None when they can: asked before a run
    loads its model, so that it is not the first save that finds out. The words name `what` the folder is for, its
    path and the system's reason."""
    if folder.exists() and not folder.is_dir():
        return f"the {what} {folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create the {what} {folder}: {error.strerror or error}"
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return f"cannot write in the {what} {folder}: {error.strerror or error}"
    return None
