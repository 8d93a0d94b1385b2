"""An export into an empty folder the user made fills that folder (its owner, mode and access lists stay theirs)
rather than replacing it, and a folder the user may not write is refused before any work."""

import os
import stat

import numpy as np
import pytest
from faceparse.core import export as export_module
from faceparse.core.export import ExportError, export_dataset
from faceparse.core.store import ProjectStore
from PIL import Image


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 70 * i, np.uint8)).save(folder / f"{i}.png")
    store = ProjectStore.create(folder)
    store.scan()
    for rec in store.images():
        store.save_corrected(rec.id, np.ones((8, 8), np.uint8))
    yield store
    store.close()


def test_an_empty_folder_is_filled_not_replaced(store, tmp_path):
    out = tmp_path / "made by the user"
    out.mkdir()
    os.chmod(out, 0o750)
    inode = out.stat().st_ino
    result = export_dataset(store, out, "index-png", split=(1, 0, 0))
    assert result.count == 2
    assert out.stat().st_ino == inode and stat.S_IMODE(out.stat().st_mode) == 0o750
    assert (out / "dataset.json").is_file() and sorted(p.name for p in (out / "masks" / "train").iterdir()) == \
        ["0.png", "1.png"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_that_cannot_be_written_is_refused_before_any_work(store, tmp_path, monkeypatch):
    out = tmp_path / "read only"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(export_module.os, "access",
                        lambda path, mode: False if os.fspath(path) == os.fspath(out) else real_access(path, mode))
    with pytest.raises(ExportError, match="read only cannot be written"):
        export_dataset(store, out, "index-png", split=(1, 0, 0))
    with pytest.raises(ExportError, match="read only cannot be written"):
        export_dataset(store, out / "inside" / "deeper", "index-png", split=(1, 0, 0))
    assert list(out.iterdir()) == [] and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
