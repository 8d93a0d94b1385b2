"""A scan names every entry it leaves out, and leaves out a subfolder holding a dataset this program exported:
its images are copies of some project's photos and its masks are not photos."""

import os

import numpy as np
from faceparse.core.export import export_dataset
from faceparse.core.formats.base import CARD_DATA_FILE
from faceparse.core.store import EXPORT_CARD_NAME, ProjectStore
from PIL import Image


def photos(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(folder / name)


def test_the_card_name_is_the_one_export_writes():
    assert EXPORT_CARD_NAME == CARD_DATA_FILE


def test_a_scan_above_an_earlier_export_leaves_the_export_out_and_says_so(tmp_path):
    photos(tmp_path / "parent" / "project", ["a.png", "b.png"])
    with ProjectStore.create(tmp_path / "parent" / "project") as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, np.ones((8, 8), np.uint8))
        export_dataset(store, tmp_path / "parent" / "dataset", "index-png", split=(1, 0, 0))
    photos(tmp_path / "parent" / "more", ["c.png"])
    os.rename(tmp_path / "parent" / "project" / ".faceparse", tmp_path / "old-project-data")
    with ProjectStore.create(tmp_path / "parent") as store:
        result = store.scan()
        indexed = sorted(rec.relpath for rec in store.images())
    assert indexed == ["more/c.png", "project/a.png", "project/b.png"]
    assert result.exports_inside == ("dataset",) and result.skipped == 1
    assert result.notes() == ["Skipped 1 subfolder holding an exported dataset (dataset): its images are copies, "
                              "and masks are not photos"]


def test_a_folder_of_another_tool_with_a_dataset_json_is_scanned(tmp_path):
    photos(tmp_path / "faces" / "other", ["a.png"])
    (tmp_path / "faces" / "other" / "dataset.json").write_text('{"name": "Task01", "labels": {}}')
    with ProjectStore.create(tmp_path / "faces") as store:
        result = store.scan()
        assert [rec.relpath for rec in store.images()] == ["other/a.png"] and result.skipped == 0


def test_the_entries_a_scan_could_not_follow_are_named(tmp_path):
    photos(tmp_path / "faces", ["a.png"])
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "faces" / "linked folder")
    with ProjectStore.create(tmp_path / "faces") as store:
        result = store.scan()
    assert result.unreadable == ("linked folder",)
    assert result.notes() == ["Skipped 1 entry that could not be read or is a folder link (not followed): "
                              "linked folder"]
