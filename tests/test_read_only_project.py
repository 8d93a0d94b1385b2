"""A project on read-only media (an archive, a share, another user's folder) can be looked at and exported, with
nothing written beside it; every change is refused with a message that says why."""

import sqlite3

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.store import MaskError, ProjectError, ProjectStore
from PIL import Image
from read_only_helpers import make_read_only


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _project(folder):
    """Three photos, scanned; the store stays open for the caller."""
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((12, 10, 3), 40 * i, np.uint8)).save(folder / f"f{i}.png")
    store = ProjectStore.create(folder)
    store.scan()
    return store


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    folder = tmp_path / "faces"
    with _project(folder) as store:
        for rec in store.images()[:2]:
            mask = np.zeros((12, 10), np.uint8)
            mask[2:8, 2:6] = 1 + rec.id
            store.save_corrected(rec.id, mask)
        store.save_predicted(store.images()[2].id, np.ones((12, 10), np.uint8), "v1")
    make_read_only(folder, monkeypatch)
    return folder


def test_it_opens_for_reading_with_every_write_refused_and_nothing_written(read_only):
    before = _files(read_only)
    with pytest.raises(ProjectError, match="read-only"):
        ProjectStore.open(read_only)
    with ProjectStore.open_for_reading(read_only) as store:
        assert store.read_only
        assert store.counts()["corrected"] == 2 and len(store.images()) == 3
        first = store.images()[0]
        assert store.corrected_mask(first.id).max() == 1 + first.id
        with pytest.raises(ProjectError, match="read-only here, so it can be looked at and exported"):
            store.set_status(first.id, "reviewed")
        with pytest.raises(ProjectError, match="read-only"):
            store.scan()
    predicted = next((read_only / ".faceparse" / "masks" / "predicted").iterdir())
    predicted.write_bytes(predicted.read_bytes()[:20])
    before = _files(read_only)
    with ProjectStore.open_for_reading(read_only) as store:
        with pytest.raises(MaskError, match="predicted mask of f2.png .* is unreadable"):
            store.predicted_mask(store.images()[2].id)
    assert _files(read_only) == before


def test_info_and_export_work_on_it(read_only, tmp_path, capsys):
    before = _files(read_only)
    assert main(["info", str(read_only)]) == 0
    assert "corrected" in capsys.readouterr().out
    code = main(["export", str(read_only), "--format", "index-png", "--out", str(tmp_path / "out"), "--split", "1,0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Exported 2 images" in out and len(list((tmp_path / "out" / "masks").rglob("*.png"))) == 2
    assert _files(read_only) == before
    code = main(["prelabel", str(read_only)])
    assert code == 2 and "read-only" in capsys.readouterr().err


def test_a_read_only_project_of_an_earlier_version_reads_as_one_with_nothing_in_the_new_parts(read_only):
    db = read_only / ".faceparse" / "project.db"
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE images DROP COLUMN mask_source")
    conn.execute("DROP TABLE face_boxes")
    conn.commit()
    conn.close()
    before = _files(read_only)
    with ProjectStore.open_for_reading(read_only) as store:
        assert store.counts()["corrected"] == 2
        assert {r.mask_source for r in store.images()} == {None}
        assert store._conn().execute("SELECT COUNT(*) FROM face_boxes").fetchone()[0] == 0
    assert _files(read_only) == before
    conn = sqlite3.connect(db)
    assert "mask_source" not in {row[1] for row in conn.execute("PRAGMA table_info(images)")}
    conn.close()


def test_work_still_in_the_database_log_of_a_program_that_has_it_open_is_read(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    writer = _project(folder)  # someone's studio, still open: its saves are in the log, not the database
    try:
        for rec in writer.images()[:2]:
            writer.save_corrected(rec.id, np.ones((12, 10), np.uint8))
        assert (folder / ".faceparse" / "project.db-wal").stat().st_size > 0
        make_read_only(folder, monkeypatch)
        with ProjectStore.open_for_reading(folder) as reader:
            assert reader.read_only and reader.counts()["corrected"] == 2
    finally:
        writer.close()


def test_a_folder_that_is_no_project_is_still_refused_as_such(tmp_path):
    with pytest.raises(ProjectError, match="not a FaceParse project"):
        ProjectStore.open_for_reading(tmp_path)


def test_keeping_changed_masks_is_refused_up_front_in_a_read_only_project(read_only):
    from faceparse.core.changed_photos import keep_changed_masks

    before = _files(read_only)
    with ProjectStore.open_for_reading(read_only) as store:
        with pytest.raises(ProjectError, match="read-only here, so its masks cannot be kept"):
            keep_changed_masks(store)
        with pytest.raises(ProjectError, match="read-only"):
            store.save_corrected(store.images()[0].id, np.zeros((12, 10), np.uint8))
        with pytest.raises(ProjectError, match="read-only"):
            store.set_status(store.images()[2].id, "reviewed")
    assert _files(read_only) == before
