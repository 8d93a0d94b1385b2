"""An import that fails part-way (a full disk, a folder in the way) puts back every image it had written, so the
project holds either the whole import or none of it, and says why in plain words."""

import sqlite3

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core import importer
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore
from PIL import Image

SIZE = 8
NAMES = ["a.png", "b.png", "c.png", "d.png"]


def photos(folder):
    folder.mkdir(parents=True)
    for i, name in enumerate(NAMES):
        Image.fromarray(np.full((SIZE, SIZE, 3), 50 * i, np.uint8)).save(folder / name)


@pytest.fixture
def source(tmp_path):
    """An index-png dataset of the four photos, each mask all 3."""
    photos(tmp_path / "labeled")
    with ProjectStore.create(tmp_path / "labeled") as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, np.full((SIZE, SIZE), 3, np.uint8))
        export_dataset(store, tmp_path / "dataset", "index-png", only="all", split=(1, 0, 0))
    return tmp_path / "dataset"


@pytest.fixture
def target(tmp_path):
    """The same photos: a and c corrected (all 1), b and d predicted (all 2)."""
    photos(tmp_path / "target")
    store = ProjectStore.create(tmp_path / "target")
    store.scan()
    for rec in store.images():
        store.save_predicted(rec.id, np.full((SIZE, SIZE), 2, np.uint8), "v1")
        if rec.relpath in ("a.png", "c.png"):
            store.save_corrected(rec.id, np.ones((SIZE, SIZE), np.uint8))
    yield store
    store.close()


def state(store):
    """Every image's row and the bytes of its mask files."""
    out = {}
    for rec in store.images():
        files = tuple(p.read_bytes() if p.is_file() else None
                      for p in (store.mask_path(kind, rec.id) for kind in ("predicted", "corrected")))
        out[rec.relpath] = (store.image_row(rec.id), files)
    return out


def test_a_full_disk_on_the_third_mask_takes_back_the_first_two(source, target, monkeypatch):
    before = state(target)
    real_save = ProjectStore.save_corrected
    calls = []

    def save_until_the_disk_fills(self, image_id, mask, **kwargs):
        calls.append(image_id)
        real_save(self, image_id, mask, **kwargs)
        if len(calls) == 3:  # the mask file and its row were written; the database then found the disk full
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ProjectStore, "save_corrected", save_until_the_disk_fills)
    with pytest.raises(importer.ImportFailed) as failed:
        importer.import_dataset(target, source, "index-png", overwrite=True)
    assert len(calls) == 3
    message = str(failed.value)
    assert "failed at mask 3 of 4" in message and "the disk is full" in message
    assert "nothing was imported (the 2 masks written before it were taken back)" in message
    assert state(target) == before
    assert not [p for kind in ("predicted", "corrected") for p in (target.masks_dir / kind).iterdir()
                if p.name.startswith(".")]


def test_a_folder_in_the_way_of_a_mask_imports_nothing_and_names_the_real_file(source, target, capsys):
    in_the_way = target.mask_path("corrected", target.find("d.png").id)
    in_the_way.mkdir()
    (in_the_way / "x").write_text("")
    before = state(target)
    code = main(["import", str(target.root), str(source), "--format", "index-png", "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing was imported" in err and "Traceback" not in err
    assert ".tmp" not in err and str(in_the_way) in err
    assert state(target) == before


def test_an_import_that_goes_through_keeps_nothing_aside(source, target):
    report = importer.import_dataset(target, source, "index-png", overwrite=True)
    assert report.imported == 4
    assert all(np.array_equal(target.corrected_mask(rec.id), np.full((SIZE, SIZE), 3)) for rec in target.images())
    assert not [p for kind in ("predicted", "corrected") for p in (target.masks_dir / kind).iterdir()
                if p.name.startswith(".")]
