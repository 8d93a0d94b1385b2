import json
import os
import shutil
import socket
import sqlite3
import threading
import time
from unittest.mock import patch

import numpy as np
import pytest
from faceparse.core import store as store_module
from faceparse.core.imageio import load_mask
from faceparse.core.schemas import get_schema
from faceparse.core.store import (
    STATUSES,
    MaskError,
    ProjectError,
    ProjectStore,
    natural_sort_key,
    split_for,
)
from faceparse.core.thumbnails import ThumbnailCache
from PIL import Image


def put_image(path, w=8, h=6, color=(10, 20, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), color).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "faces"
    for i in range(3):
        put_image(root / f"img{i}.png", color=(i, i, i))
    return root


@pytest.fixture
def store(folder):
    s = ProjectStore.create(folder)
    s.scan()
    yield s
    s.close()


def ids_by_name(store):
    return {r.relpath: r.id for r in store.images()}


# --- creating and opening ----------------------------------------------------------------------------------------

def test_create_open_and_layout(folder):
    with ProjectStore.create(folder, "lapa") as s:
        assert s.root == folder.resolve()
        assert s.dir == folder.resolve() / ".faceparse"
        assert (s.dir / "project.db").is_file()
        assert s.masks_dir.is_dir() and s.models_dir.is_dir()
        assert s.schema == get_schema("lapa")
        mode = sqlite3.connect(s.dir / "project.db").execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    with ProjectStore.open(folder) as s:
        assert s.schema.name == "lapa"


def test_open_errors_are_clear(tmp_path, folder):
    with pytest.raises(ProjectError, match="does not exist"):
        ProjectStore.open(tmp_path / "nowhere")
    with pytest.raises(ProjectError, match="not a FaceParse project"):
        ProjectStore.open(folder)
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ProjectError, match="not a folder"):
        ProjectStore.create(f)
    with pytest.raises(TypeError):
        ProjectStore(folder)


def test_a_read_only_project_says_so_and_is_left_as_it_was(folder, monkeypatch):
    with ProjectStore.create(folder) as s:
        s.scan()
    before = (folder / ".faceparse" / "project.db").read_bytes()
    real_access = os.access
    project_dir = str(folder.resolve() / ".faceparse")
    monkeypatch.setattr(store_module.os, "access",
                        lambda path, mode: (False if mode == os.W_OK and str(path).startswith(project_dir)
                                            else real_access(path, mode)))
    with pytest.raises(ProjectError, match="read-only .*copy it somewhere writable"):
        ProjectStore.open(folder)
    with pytest.raises(ProjectError, match="read-only"):
        ProjectStore.open_or_create(folder)
    assert (folder / ".faceparse" / "project.db").read_bytes() == before


def test_creating_a_project_on_read_only_media_says_so(folder, monkeypatch):
    import errno
    real_mkdir = store_module.Path.mkdir

    def read_only_mkdir(self, *args, **kwargs):
        if ".faceparse" in self.parts:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(store_module.Path, "mkdir", read_only_mkdir)
    with pytest.raises(ProjectError, match="read-only media; copy the photos somewhere writable"):
        ProjectStore.create(folder)


def test_no_project_is_created_inside_another(folder):
    put_image(folder / "batch1" / "a.png")
    with ProjectStore.create(folder) as s:
        s.scan()
        assert s.find("batch1/a.png") is not None
    for inner in (folder / "batch1", folder / ".faceparse" / "masks" / "corrected"):
        with pytest.raises(ProjectError, match=f"inside the project {folder.resolve()}"):
            ProjectStore.open_or_create(inner)
        assert not ProjectStore.is_project(inner)
        assert ProjectStore.enclosing_project(inner) == folder.resolve()
    assert ProjectStore.enclosing_project(folder) == folder.resolve()
    assert ProjectStore.enclosing_project(folder.parent) is None


def test_create_twice_and_unknown_schema(folder):
    ProjectStore.create(folder).close()
    with pytest.raises(ProjectError, match="already a FaceParse project"):
        ProjectStore.create(folder)


def test_unknown_schema_is_a_project_error(folder):
    with pytest.raises(ProjectError, match="unknown label schema 'helen'"):
        ProjectStore.create(folder, "helen")
    assert not ProjectStore.is_project(folder)


def test_open_or_create_keeps_the_schema_fixed(folder):
    with ProjectStore.open_or_create(folder, "masked-faces") as s:
        assert s.schema.name == "masked-faces"
    with ProjectStore.open_or_create(folder) as s:
        assert s.schema.name == "masked-faces"
    with ProjectStore.open_or_create(folder, "masked-faces") as s:
        assert s.schema.name == "masked-faces"
    with pytest.raises(ProjectError, match="schema is fixed"):
        ProjectStore.open_or_create(folder, "celebamask-hq")


def test_custom_schema_is_copied_into_the_project(folder, tmp_path):
    spec = tmp_path / "teeth.json"
    spec.write_text(json.dumps({"name": "teeth", "classes": ["background", "tooth"],
                                "colors": [[0, 0, 0], [255, 255, 255]]}))
    ProjectStore.create(folder, str(spec)).close()
    spec.unlink()
    with ProjectStore.open(folder) as s:
        assert s.schema.classes == ("background", "tooth")


def test_newer_project_format_is_refused(folder):
    ProjectStore.create(folder).close()
    db = sqlite3.connect(folder / ".faceparse" / "project.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    db.commit()
    db.close()
    with pytest.raises(ProjectError, match="newer FaceParse Studio"):
        ProjectStore.open(folder)



def test_a_project_from_before_prediction_settings_opens_and_gains_them(folder):
    """Projects made before predictions recorded their settings lack that column; opening adds it."""
    put_image(folder / "a.png")
    with ProjectStore.create(folder) as s:
        s.scan()
        s.save_predicted(s.find("a.png").id, np.zeros((6, 8), np.uint8), "v1")
    db = sqlite3.connect(folder / ".faceparse" / "project.db")
    db.execute("ALTER TABLE images DROP COLUMN predicted_with")
    db.commit()
    db.close()
    with ProjectStore.open(folder) as s:
        old = s.find("a.png")
        assert old.model_version == "v1" and old.predicted_with is None
        s.save_predicted(old.id, np.ones((6, 8), np.uint8), "v2", predicted_with="faces, margin 0.3")
        assert s.find("a.png").predicted_with == "faces, margin 0.3"
    with ProjectStore.open(folder) as s:
        assert s.find("a.png").predicted_with == "faces, margin 0.3"


def test_a_project_from_before_job_hosts_opens_and_records_them(folder):
    with ProjectStore.create(folder) as s:
        old_job = s.add_job("prelabel", {})
        s.update_job(old_job, state="running", pid=os.getpid())
    db = sqlite3.connect(folder / ".faceparse" / "project.db")
    db.execute("ALTER TABLE jobs DROP COLUMN host")
    db.commit()
    db.close()
    with ProjectStore.open(folder) as s:
        assert s.job(old_job)["host"] is None and s.job(old_job)["pid"] == os.getpid()
        new_job = s.add_job("prelabel", {})
        s.update_job(new_job, pid=os.getpid())
        assert s.job(new_job)["host"] == socket.gethostname()


def test_a_database_another_program_keeps_locked_is_a_clear_error(folder, monkeypatch):
    ProjectStore.create(folder).close()
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(folder / ".faceparse" / "project.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with ProjectStore.open(folder) as s, pytest.raises(ProjectError, match="is busy"):
            s.set_setting("key", 1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with ProjectStore.open(folder) as s:
        s.set_setting("key", 1)
        assert s.get_setting("key") == 1


def test_corrupt_database_is_a_clear_error(folder):
    ProjectStore.create(folder).close()
    db = folder / ".faceparse" / "project.db"
    for extra in (".faceparse/project.db-wal", ".faceparse/project.db-shm"):
        (folder / extra).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ProjectError, match="cannot open the project database"):
        ProjectStore.open(folder)


def test_interrupted_creation_can_be_finished(folder):
    (folder / ".faceparse").mkdir()
    (folder / ".faceparse" / "project.db").write_bytes(b"")
    with ProjectStore.open_or_create(folder, "lapa") as s:
        assert s.schema.name == "lapa"
        assert s.scan().added == 3


def test_closed_store_refuses_use(store):
    store.close()
    with pytest.raises(ProjectError, match="closed"):
        store.count()


# --- scanning ----------------------------------------------------------------------------------------------------

def test_scan_finds_images_recursively_and_skips_hidden(tmp_path):
    root = tmp_path / "set"
    put_image(root / "a.jpg")
    put_image(root / "sub" / "deeper" / "b.PNG")
    put_image(root / ".hidden" / "c.png")
    put_image(root / ".d.png")
    (root / "notes.txt").write_text("not an image")
    (root / "noext").write_bytes(b"x")
    with ProjectStore.create(root) as s:
        result = s.scan()
        assert (result.added, result.removed, result.changed, result.unchanged) == (2, 0, 0, 0)
        assert sorted(r.relpath for r in s.images()) == ["a.jpg", "sub/deeper/b.PNG"]
        # the project's own folder is never indexed, even after masks are written into it
        s.save_predicted(s.find("a.jpg").id, np.zeros((6, 8), np.uint8), "v0001")
        assert s.scan().unchanged == 2


def test_rescan_sees_added_removed_and_changed(folder, store):
    put_image(folder / "new.png")
    (folder / "img0.png").unlink()
    time.sleep(0.01)
    put_image(folder / "img1.png", w=9, h=9)
    r = store.scan()
    assert (r.added, r.removed, r.changed, r.unchanged) == (1, 1, 1, 1)
    assert r.total == 3
    assert sorted(x.relpath for x in store.images()) == ["img1.png", "img2.png", "new.png"]
    r = store.scan()
    assert (r.added, r.removed, r.changed, r.unchanged) == (0, 0, 0, 3)


def test_changed_file_gets_its_details_refilled(folder, store):
    store.fill_details()
    rec = store.find("img1.png")
    assert (rec.width, rec.height) == (8, 6)
    put_image(folder / "img1.png", w=20, h=10)
    os.utime(folder / "img1.png", ns=(rec.mtime_ns + 10**9, rec.mtime_ns + 10**9))
    store.scan()
    assert store.find("img1.png").width is None
    store.fill_details()
    rec2 = store.find("img1.png")
    assert (rec2.width, rec2.height) == (20, 10) and rec2.content_hash != rec.content_hash


def test_scan_does_not_decode_or_hash(folder, store):
    rec = store.find("img0.png")
    assert rec.width is None and rec.content_hash is None and rec.size_bytes > 0
    assert store.count_pending_details() == 3


def test_natural_name_order(tmp_path):
    root = tmp_path / "n"
    for name in ["img10.png", "img2.png", "IMG1.png", "b/img3.png", "img2b.png"]:
        put_image(root / name)
    with ProjectStore.create(root) as s:
        s.scan()
        assert [r.relpath for r in s.images()] == ["b/img3.png", "IMG1.png", "img2.png", "img2b.png", "img10.png"]
    assert natural_sort_key("x9") < natural_sort_key("x10") < natural_sort_key("x100")
    assert natural_sort_key("x12345678901234567890123") > natural_sort_key("x99")


def test_non_ascii_spaced_names(tmp_path):
    root = tmp_path / "Мои фото"
    put_image(root / "Фото лица 1.jpg")
    with ProjectStore.create(root) as s:
        s.scan()
        s.fill_details()
        rec = s.find("Фото лица 1.jpg")
        assert rec is not None and rec.width == 8 and rec.error is None
        assert s.image_path(rec.id).is_file()
        assert s.find(root / "Фото лица 1.jpg").id == rec.id


def test_fill_details_records_bad_files_and_carries_on(folder, store):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "text.png").write_text("hello")
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.new("RGB", (30, 10)).save(folder / "turned.jpg", exif=exif.tobytes())
    store.scan()
    done = store.fill_details()
    assert done == 6
    by_name = {r.relpath: r for r in store.images()}
    assert "cannot read the image header" in by_name["broken.jpg"].error
    assert "not a recognised image" in by_name["text.png"].error
    assert (by_name["turned.jpg"].width, by_name["turned.jpg"].height) == (10, 30)
    assert all(by_name[f"img{i}.png"].error is None and by_name[f"img{i}.png"].content_hash for i in range(3))
    assert store.count_errors() == 2
    assert store.fill_details() == 0  # bad files are not retried until they change


def test_a_file_that_cannot_be_read_just_now_is_not_marked_bad(folder, store, monkeypatch):
    store.scan()
    locked = folder / "img1.png"
    real_open = Image.open

    def open_unless_locked(fp, *args, **kwargs):
        if str(fp) == str(locked):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_unless_locked)
    store.fill_details()
    rec = store.find("img1.png")
    assert rec.error is None and rec.width is None and store.count_errors() == 0
    monkeypatch.setattr(Image, "open", real_open)
    assert store.fill_details() == 1
    rec = store.find("img1.png")
    assert rec.error is None and (rec.width, rec.height) == (8, 6) and rec.content_hash


def test_fill_details_limit_and_progress_can_stop(folder, store):
    for i in range(10):
        put_image(folder / f"more{i}.png")
    store.scan()
    assert store.fill_details(limit=4) == 4
    calls = []

    def stop_after_first(done, total):
        calls.append((done, total))
        return False

    assert store.fill_details(batch=3, progress=stop_after_first) == 3
    assert calls == [(3, 9)]
    assert store.count_pending_details() == 6


def test_moved_project_still_opens(tmp_path, folder, store):
    i = store.find("img1.png").id
    store.save_corrected(i, np.ones((6, 8), np.uint8))
    store.add_model_version("parser", "v0001", store.models_dir / "parser" / "v0001", {"miou": 0.5})
    store.close()
    moved = tmp_path / "elsewhere" / "renamed project"
    moved.parent.mkdir()
    shutil.move(folder, moved)
    with ProjectStore.open(moved) as s:
        assert s.root == moved.resolve()
        assert s.image_path(i) == moved.resolve() / "img1.png"
        assert s.corrected_mask(i).sum() == 48
        assert s.model_version("parser", "v0001")["path"] == str(moved.resolve() / ".faceparse/models/parser/v0001")
        assert s.scan().unchanged == 3


def test_removed_image_with_masks_comes_back(folder, store):
    i = store.find("img2.png").id
    store.save_corrected(i, np.full((6, 8), 2, np.uint8))
    data = (folder / "img2.png").read_bytes()
    (folder / "img2.png").unlink()
    (folder / "img0.png").unlink()
    assert store.scan().removed == 2
    assert store.find("img0.png") is None
    assert store.get(i).missing and store.count() == 1
    (folder / "img2.png").write_bytes(data)
    assert store.scan().added == 1
    rec = store.get(i)
    assert not rec.missing and rec.status == "corrected"


def test_jfif_and_jpe_photos_are_indexed_and_a_folder_symlink_is_counted_as_skipped(folder, tmp_path):
    put_image(tmp_path / "elsewhere" / "far.png")
    (folder / "batch2").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    put_image(folder / "saved.jfif")
    put_image(folder / "old.jpe")
    with ProjectStore.create(folder) as s:
        result = s.scan()
        assert s.find("saved.jfif") is not None and s.find("old.jpe") is not None
        assert s.find("batch2/far.png") is None
        assert result.skipped == 1


def test_renamed_image_keeps_its_masks(folder, store):
    store.fill_details()
    i = store.find("img1.png").id
    store.save_corrected(i, np.full((6, 8), 3, np.uint8))
    (folder / "img1.png").rename(folder / "renamed.png")
    store.scan()
    store.fill_details()
    rec = store.find("renamed.png")
    assert rec.id == i and rec.status == "corrected"
    assert store.corrected_mask(rec.id).max() == 3
    assert store.count() == 3


def test_a_moved_corrected_photo_keeps_its_masks_in_the_scan_that_sees_it(folder, store):
    i = store.find("img1.png").id
    store.save_corrected(i, np.full((6, 8), 3, np.uint8))  # hashes the photo; no details pass ever ran
    (folder / "sub").mkdir()
    (folder / "img1.png").rename(folder / "sub" / "moved.png")
    result = store.scan()
    assert (result.added, result.removed, result.renamed, result.total) == (0, 0, 1, 3)
    rec = store.find("sub/moved.png")
    assert rec.id == i and rec.status == "corrected" and store.corrected_mask(i).max() == 3
    assert store.missing_photos() == []


def test_a_moved_predicted_photo_keeps_its_prediction_in_the_scan_that_sees_it(folder, store):
    i = store.find("img1.png").id
    store.save_predicted(i, np.full((6, 8), 2, np.uint8), "v0001")  # records the hash; no details pass ran
    (folder / "img1.png").rename(folder / "renamed.png")
    result = store.scan()
    assert (result.removed, result.renamed) == (0, 1)
    rec = store.find("renamed.png")
    assert rec.id == i and rec.status == "predicted" and store.predicted_mask(i).max() == 2
    assert store.missing_photos() == []


def test_a_checked_photo_replaced_is_known_as_changed_right_after_the_scan(folder, store):
    i = store.find("img1.png").id
    store.save_corrected(i, np.full((6, 8), 3, np.uint8))
    put_image(folder / "img1.png", w=8, h=6, color=(200, 10, 10))
    os.utime(folder / "img1.png", ns=(time.time_ns() + 5_000_000_000,) * 2)
    assert store.scan().changed == 1
    assert [r.id for r in store.changed_photos()] == [i]
    assert store.get(i).photo_changed


def test_a_row_already_worked_on_under_its_new_name_is_never_taken_away(folder, store):
    """Adoption replaces only an untouched row: one with a prediction may be open in the studio this moment."""
    i = store.find("img1.png").id
    store.save_corrected(i, np.full((6, 8), 3, np.uint8))
    data = (folder / "img1.png").read_bytes()
    (folder / "img1.png").unlink()
    store.scan()
    (folder / "late.png").write_bytes(data)
    with patch.object(ProjectStore, "_find_renamed", return_value=[]):  # as if the scan had not hashed it
        store.scan()
    late = store.find("late.png")
    store.save_predicted(late.id, np.full((6, 8), 1, np.uint8), "v0001")
    store.fill_details()
    assert store.find("late.png").id == late.id and store.predicted_mask(late.id).max() == 1
    assert store.get(i).missing and store.corrected_mask(i).max() == 3
    assert [r.relpath for r in store.missing_photos()] == ["img1.png"] and store.count_missing() == 1


def test_an_untouched_copy_is_adopted_by_the_details_pass(folder, store):
    i = store.find("img1.png").id
    store.save_corrected(i, np.full((6, 8), 3, np.uint8))
    data = (folder / "img1.png").read_bytes()
    (folder / "copy.png").write_bytes(data)
    store.scan()  # the copy arrives while the original is still there: nothing to look for yet
    (folder / "img1.png").unlink()
    result = store.scan()  # only deletions: no new file to hash
    assert (result.added, result.removed, result.renamed) == (0, 1, 0)
    store.fill_details()
    rec = store.find("copy.png")
    assert rec.id == i and rec.status == "corrected" and store.count_missing() == 0


def test_a_scan_hashes_a_bounded_number_of_same_sized_arrivals(folder, store):
    from faceparse.core.store import RENAME_CANDIDATES_EXTRA, RENAME_CANDIDATES_PER_MISSING

    (folder / "gone.bmp").write_bytes(_bmp(0))
    store.scan()
    store.save_corrected(store.find("gone.bmp").id, np.zeros((4, 4), np.uint8))
    (folder / "gone.bmp").unlink()
    for n in range(1, 40):
        (folder / f"other{n:02d}.bmp").write_bytes(_bmp(n))
    result = store.scan()
    assert (result.added, result.removed, result.renamed) == (39, 1, 0)
    hashed = sum(r.content_hash is not None for r in store.images() if r.relpath.startswith("other"))
    assert hashed == RENAME_CANDIDATES_PER_MISSING + RENAME_CANDIDATES_EXTRA


def _bmp(seed: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (4, 4, 3), np.uint8)).save(buf, "BMP")
    return buf.getvalue()


def test_a_save_whose_row_went_away_meanwhile_is_not_taken_for_a_save(folder, store):
    rec = store.find("img0.png")

    def row_goes(_record):
        with store._write() as c:
            c.execute("DELETE FROM images WHERE id = ?", (rec.id,))
        return None

    with patch.object(ProjectStore, "_hash_now", side_effect=row_goes), \
            pytest.raises(ProjectError, match="changed its place in the project while it was being saved"):
        store.save_corrected(rec.id, np.zeros((6, 8), np.uint8))


def test_missing_folder_refuses_to_scan(tmp_path, folder, store):
    shutil.rmtree(folder)
    with pytest.raises(ProjectError, match="not available"):
        store.scan()


# --- masks -------------------------------------------------------------------------------------------------------

def test_save_predicted_writes_png_then_row(store):
    i = ids_by_name(store)["img0.png"]
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3:5] = 13
    store.save_predicted(i, mask, "v0003", uncertainty=0.25)
    rec = store.get(i)
    assert (rec.status, rec.model_version, rec.uncertainty) == ("predicted", "v0003", 0.25)
    assert (rec.width, rec.height) == (8, 6)
    png = store.masks_dir / "predicted" / f"{i}.png"
    assert np.array_equal(load_mask(png), mask)
    assert Image.open(png).mode == "P"
    assert np.array_equal(store.current_mask(i), mask)
    assert store.corrected_mask(i) is None


@pytest.mark.parametrize("save", ["save_predicted", "save_corrected"])
def test_wrong_masks_are_refused_and_nothing_is_written(store, save):
    i = ids_by_name(store)["img0.png"]

    def call(mask):
        args = (i, mask, "v1") if save == "save_predicted" else (i, mask)
        getattr(store, save)(*args)

    with pytest.raises(MaskError, match=r"is 6x8, but the image is 8x6"):
        call(np.zeros((8, 6), np.uint8))
    with pytest.raises(MaskError, match=r"classes \[19, 40\] outside the project's schema 'celebamask-hq'"):
        bad = np.zeros((6, 8), np.int32)
        bad[0, 0], bad[1, 1] = 19, 40
        call(bad)
    with pytest.raises(MaskError, match=r"classes \[-1\]"):
        call(np.full((6, 8), -1, np.int16))
    with pytest.raises(MaskError, match="2-D"):
        call(np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(MaskError, match="integer class indices"):
        call(np.zeros((6, 8), np.float32))
    assert store.get(i).status == "new"
    assert not list((store.masks_dir / "predicted").iterdir()) and not list((store.masks_dir / "corrected").iterdir())


def test_mask_for_unreadable_image_is_refused(folder, store):
    (folder / "bad.png").write_text("nope")
    store.scan()
    with pytest.raises(MaskError, match="cannot check a mask against bad.png"):
        store.save_predicted(store.find("bad.png").id, np.zeros((6, 8), np.uint8), "v1")


def test_unknown_image_id(store):
    with pytest.raises(ProjectError, match="no image with id 999"):
        store.save_corrected(999, np.zeros((6, 8), np.uint8))
    assert store.get(999) is None


def test_corrected_status_split_and_effort(store):
    i = ids_by_name(store)["img1.png"]
    predicted = np.zeros((6, 8), np.uint8)
    store.save_predicted(i, predicted, "v0001", 0.5)
    corrected = predicted.copy()
    corrected[:3, :4] = 1  # 12 of 48 pixels changed
    store.save_corrected(i, corrected)
    rec = store.get(i)
    assert rec.status == "corrected"
    assert rec.effort == pytest.approx(0.25)
    assert rec.split == "train" and rec.content_hash  # the first checked image always trains
    assert np.array_equal(store.current_mask(i), corrected)
    assert np.array_equal(store.predicted_mask(i), predicted)
    # a new prediction never overrides the human's work
    store.save_predicted(i, np.full((6, 8), 2, np.uint8), "v0002", 0.1)
    rec2 = store.get(i)
    assert (rec2.status, rec2.model_version, rec2.split) == ("corrected", "v0002", rec.split)
    assert np.array_equal(store.current_mask(i), corrected)


def test_split_is_fixed_forever(store):
    i = ids_by_name(store)["img2.png"]
    store.save_corrected(i, np.zeros((6, 8), np.uint8))
    first = store.get(i).split
    db = sqlite3.connect(store.dir / "project.db")
    flipped = "train" if first == "val" else "val"
    db.execute("UPDATE images SET split = ? WHERE id = ?", (flipped, i))
    db.commit()
    db.close()
    store.save_corrected(i, np.ones((6, 8), np.uint8))
    assert store.get(i).split == flipped  # assigned once, never recomputed


def test_first_two_checked_images_give_one_training_and_one_validation_face(tmp_path):
    root = tmp_path / "faces"
    for i in range(8):
        put_image(root / f"p{i}.png", color=(10 * i, 0, 0))
    put_image(root / "z_copy.png", color=(10, 0, 0))  # the same picture as p1.png
    with ProjectStore.create(root) as s:
        s.scan()
        ids = ids_by_name(s)
        s.save_corrected(ids["p0.png"], np.zeros((6, 8), np.uint8))
        s.save_predicted(ids["p1.png"], np.zeros((6, 8), np.uint8), "v1")
        s.set_status(ids["p1.png"], "reviewed")
        assert (s.get(ids["p0.png"]).split, s.get(ids["p1.png"]).split) == ("train", "val")
        for name in ("p2.png", "p3.png", "p4.png", "p5.png"):
            s.save_corrected(ids[name], np.ones((6, 8), np.uint8))
            rec = s.get(ids[name])
            assert rec.split == split_for(rec.content_hash)
        s.save_corrected(ids["z_copy.png"], np.ones((6, 8), np.uint8))
        assert s.get(ids["z_copy.png"]).split == "val"  # joins its copy, whatever its own hash says
        assert s.split_counts() == {"train": 1 + sum(s.get(ids[f"p{i}.png"]).split == "train" for i in range(2, 6)),
                                    "val": 2 + sum(s.get(ids[f"p{i}.png"]).split == "val" for i in range(2, 6))}
        before = s.split_counts()
        s.discard_correction(ids["p0.png"])  # every edit taken back: kept aside for later, not counted
        assert s.get(ids["p0.png"]).split == "train"
        assert s.split_counts() == {**before, "train": before["train"] - 1}


def test_split_is_deterministic_and_about_a_fifth_val():
    keys = [f"{n:032x}" for n in range(3000)]
    splits = [split_for(k) for k in keys]
    assert splits == [split_for(k) for k in keys]
    assert 0.17 < splits.count("val") / len(splits) < 0.23


def test_reviewed_stays_reviewed(store):
    i = ids_by_name(store)["img0.png"]
    store.save_predicted(i, np.zeros((6, 8), np.uint8), "v1")
    store.set_status(i, "reviewed")
    assert store.get(i).split is not None
    store.save_corrected(i, np.ones((6, 8), np.uint8))
    store.save_predicted(i, np.zeros((6, 8), np.uint8), "v2")
    assert store.get(i).status == "reviewed"


def test_an_approved_prediction_is_kept_when_the_image_is_predicted_again(store):
    i = ids_by_name(store)["img0.png"]
    approved = np.zeros((6, 8), np.uint8)
    approved[2:4, 2:6] = 1
    store.save_predicted(i, approved, "v1")
    store.set_status(i, "reviewed")
    assert np.array_equal(store.corrected_mask(i), approved)
    assert store.get(i).effort == 0
    store.save_predicted(i, np.full((6, 8), 2, np.uint8), "v2")
    assert store.get(i).status == "reviewed"
    assert np.array_equal(store.current_mask(i), approved)
    assert np.array_equal(store.predicted_mask(i), np.full((6, 8), 2))


def test_taking_back_the_review_of_an_approved_prediction_predicted_again_leaves_the_new_prediction(store):
    """The approval was kept aside only because it was approved: withdrawn, the image is predicted by the newer
    model, while an edited mask, one accepted as a correction, or an imported one stays a correction."""
    ids = ids_by_name(store)
    approved, newer = np.zeros((6, 8), np.uint8), np.full((6, 8), 2, np.uint8)
    for name in ("img0.png", "img1.png"):
        store.save_predicted(ids[name], approved, "v1")
        store.set_status(ids[name], "reviewed")
        store.save_predicted(ids[name], newer, "v2")
    store.withdraw_review(ids["img0.png"])
    assert store.get(ids["img0.png"]).status == "predicted"
    assert store.corrected_mask(ids["img0.png"]) is None
    assert np.array_equal(store.current_mask(ids["img0.png"]), newer)
    store.withdraw_review(ids["img1.png"], keep_as_correction=True)
    assert store.get(ids["img1.png"]).status == "corrected"
    assert np.array_equal(store.current_mask(ids["img1.png"]), approved)

    edited = ids["img2.png"]
    store.save_predicted(edited, approved, "v1")
    store.save_corrected(edited, np.ones((6, 8), np.uint8))
    store.set_status(edited, "reviewed")
    store.save_predicted(edited, newer, "v2")
    store.withdraw_review(edited)
    assert store.get(edited).status == "corrected"
    assert np.array_equal(store.current_mask(edited), np.ones((6, 8)))


def test_a_reviewed_prediction_from_an_older_version_is_kept_too(store):
    """Reviewing used to leave the approved prediction as the only mask; predicting again keeps it."""
    i = ids_by_name(store)["img0.png"]
    approved = np.ones((6, 8), np.uint8)
    store.save_predicted(i, approved, "v1")
    with store._write() as c:
        c.execute("UPDATE images SET status = 'reviewed' WHERE id = ?", (i,))
    assert store.corrected_mask(i) is None
    store.save_predicted(i, np.zeros((6, 8), np.uint8), "v2")
    assert np.array_equal(store.current_mask(i), approved)
    assert store.get(i).status == "reviewed"


def test_discarding_a_correction_returns_the_image_to_what_it_was(store):
    ids = ids_by_name(store)
    fresh, predicted, reviewed = ids["img0.png"], ids["img1.png"], ids["img2.png"]
    store.save_corrected(fresh, np.ones((6, 8), np.uint8))
    assert store.discard_correction(fresh)
    assert store.get(fresh).status == "new" and store.corrected_mask(fresh) is None
    assert store.get(fresh).labeled_hash is None and store.get(fresh).effort is None
    store.save_predicted(predicted, np.zeros((6, 8), np.uint8), "v1")
    store.save_corrected(predicted, np.ones((6, 8), np.uint8))
    assert store.discard_correction(predicted)
    assert store.get(predicted).status == "predicted" and store.corrected_mask(predicted) is None
    store.save_corrected(reviewed, np.ones((6, 8), np.uint8))
    store.set_status(reviewed, "reviewed")
    assert not store.discard_correction(reviewed)
    assert store.get(reviewed).status == "reviewed" and store.corrected_mask(reviewed) is not None


def test_set_status_needs_the_matching_mask(store):
    i = ids_by_name(store)["img0.png"]
    for status in ("predicted", "corrected", "reviewed"):
        with pytest.raises(MaskError, match="has no"):
            store.set_status(i, status)
    with pytest.raises(ValueError, match="unknown status"):
        store.set_status(i, "done")
    store.save_predicted(i, np.zeros((6, 8), np.uint8), "v1")
    with pytest.raises(MaskError, match="no corrected mask"):
        store.set_status(i, "corrected")
    store.set_status(i, "new")
    assert store.get(i).status == "new"
    store.set_status(i, "predicted")
    assert store.get(i).status == "predicted"


def test_listing_filters_orders_and_counts(folder, store):
    for k in range(3, 8):
        put_image(folder / f"img{k}.png")
    store.scan()
    ids = ids_by_name(store)
    for name, u in [("img0.png", 0.1), ("img3.png", 0.9), ("img5.png", 0.5)]:
        store.save_predicted(ids[name], np.zeros((6, 8), np.uint8), "v1", u)
    for name, changed in [("img3.png", 1), ("img5.png", 10)]:
        m = np.zeros((6, 8), np.uint8)
        m.flat[:changed] = 1
        store.save_corrected(ids[name], m)
    assert store.counts() == {"new": 5, "predicted": 1, "corrected": 2, "reviewed": 0}
    assert store.count() == 8 and store.count("corrected") == 2 and store.count(["new", "predicted"]) == 6
    assert [r.relpath for r in store.images(order_by="uncertainty", limit=3)] == ["img3.png", "img5.png", "img0.png"]
    assert [r.relpath for r in store.images(order_by="effort", limit=2)] == ["img5.png", "img3.png"]
    assert [r.relpath for r in store.images(status="new", limit=2, offset=1)] == ["img2.png", "img4.png"]
    assert store.split_counts()["train"] + store.split_counts()["val"] == 2
    with pytest.raises(ValueError):
        store.images(order_by="size")
    with pytest.raises(ValueError):
        store.count("finished")
    assert set(store.counts()) == set(STATUSES)


def test_stale_temp_files_are_cleaned_on_open(folder, store):
    old = store.masks_dir / "corrected" / ".5.abc123.tmp.png"
    young = store.masks_dir / "corrected" / ".6.def456.tmp.png"
    old.write_bytes(b"partial")
    young.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    ProjectStore.open(folder).close()
    assert not old.exists() and young.exists()


# --- settings, models, jobs --------------------------------------------------------------------------------------

def test_settings_hold_json_values(store):
    assert store.get_setting("whole_image") is None
    assert store.get_setting("whole_image", True) is True
    store.set_setting("whole_image", False)
    store.set_setting("brush", {"size": 12, "classes": [1, 2]})
    assert store.get_setting("whole_image") is False
    assert store.get_setting("brush") == {"size": 12, "classes": [1, 2]}
    store.set_setting("brush", None)
    assert store.get_setting("brush", "default") is None


def test_model_versions_and_active_model(store):
    assert store.next_version_name("parser") == "v0001"
    assert store.active_model("parser") is None
    m = store.add_model_version("parser", "v0001", "models/parser/v0001", {"miou": 0.61},
                                parent=None, data_summary={"corrected": 40})
    assert m["metrics"] == {"miou": 0.61} and m["data_summary"] == {"corrected": 40}
    assert m["path"] == str(store.dir / "models/parser/v0001")
    store.add_model_version("parser", "v0002", store.models_dir / "parser" / "v0002", {"miou": 0.66}, parent="v0001")
    store.add_model_version("mask", "v0001", None, {})
    assert store.next_version_name("parser") == "v0003"
    assert store.next_version_name("mask") == "v0002"
    assert [x["version"] for x in store.model_versions("parser")] == ["v0001", "v0002"]
    assert len(store.model_versions()) == 3
    with pytest.raises(ProjectError, match="already exists"):
        store.add_model_version("parser", "v0002", None, {})
    with pytest.raises(ProjectError, match="no model version 'v0009'"):
        store.set_active_model("parser", "v0009")
    store.set_active_model("parser", "v0002")
    assert store.active_model("parser")["parent"] == "v0001"
    assert store.get_setting("active_model.parser") == "v0002"
    assert set(store.active_models()) == {"parser"}


def test_jobs_progress_log_and_cancel(store):
    j = store.add_job("train", {"epochs": 3})
    job = store.job(j)
    assert (job["kind"], job["params"], job["state"], job["progress"]) == ("train", {"epochs": 3}, "queued", 0)
    store.update_job(j, state="running", progress=0.5, message="epoch 2/3", pid=os.getpid())
    store.append_job_log(j, "epoch 1 loss 0.9")
    store.append_job_log(j, "epoch 2 loss 0.7")
    store.request_cancel(j)
    job = store.job(j)
    assert (job["state"], job["progress"], job["message"], job["cancel_requested"]) == (
        "running", 0.5, "epoch 2/3", True)
    assert store.job_log(j) == ["epoch 1 loss 0.9", "epoch 2 loss 0.7"]
    assert store.job_log(j, offset=1) == ["epoch 2 loss 0.7"]
    k = store.add_job("prelabel", {})
    assert [x["id"] for x in store.jobs()] == [k, j]
    assert [x["id"] for x in store.jobs(kind="train")] == [j]
    assert store.jobs(state="queued")[0]["id"] == k
    with pytest.raises(ValueError, match="unknown job state"):
        store.update_job(j, state="exploded")
    with pytest.raises(ProjectError, match="no job"):
        store.update_job(12345, progress=1.0)


# --- sharing ------------------------------------------------------------------------------------------------------

def test_store_shared_between_threads(store):
    errors = []

    def worker(n):
        try:
            for k in range(15):
                store.set_setting(f"t{n}.{k}", k)
                store.append_job_log(job, f"{n}:{k}")
                store.count()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    job = store.add_job("test", {})
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.job_log(job)) == 60
    assert store.get_setting("t3.14") == 14


def test_two_stores_on_one_project_see_each_other(folder, store):
    other = ProjectStore.open(folder)
    try:
        i = ids_by_name(store)["img0.png"]
        store.save_corrected(i, np.ones((6, 8), np.uint8))
        assert other.get(i).status == "corrected"
        assert other.corrected_mask(i).sum() == 48
        other.set_setting("from_other", 1)
        assert store.get_setting("from_other") == 1
    finally:
        other.close()


# --- thumbnails -------------------------------------------------------------------------------------------------

def test_a_thumbnail_that_cannot_be_read_just_now_leaves_no_error(folder, store, monkeypatch):
    store.scan()
    real_open = Image.open

    def locked(fp, *args, **kwargs):
        if str(fp).endswith("img0.png"):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", locked)
    cache = ThumbnailCache(store, max_side=64)
    assert cache.generate() == (2, 1)
    assert store.find("img0.png").error is None
    monkeypatch.setattr(Image, "open", real_open)
    assert cache.generate() == (1, 0)


def test_thumbnails_are_made_lazily_and_follow_changes(folder, store):
    put_image(folder / "wide.png", w=600, h=300)
    (folder / "bad.png").write_text("not an image")
    store.scan()
    cache = ThumbnailCache(store, max_side=64)
    rec = store.find("wide.png")
    assert cache.cached(rec) is None
    path = cache.get(rec)
    assert path.is_file() and path.is_relative_to(store.dir / "thumbs")
    assert Image.open(path).size == (64, 32)
    assert cache.cached(rec) == path
    assert cache.load(rec).shape == (32, 64, 3)
    made, failed = cache.generate()
    assert (made, failed) == (3, 1)
    assert "not a recognised image" in store.find("bad.png").error
    put_image(folder / "wide.png", w=100, h=200)
    os.utime(folder / "wide.png", ns=(rec.mtime_ns + 10**9, rec.mtime_ns + 10**9))
    store.scan()
    rec2 = store.find("wide.png")
    assert cache.cached(rec2) is None
    assert Image.open(cache.get(rec2)).size == (32, 64)
    assert cache.prune() == 1
    assert cache.cached(rec2) is not None


def test_a_damaged_mask_names_its_photo_and_file_and_a_damaged_prediction_is_predicted_again(store):
    i = store.find("img1.png").id
    store.save_predicted(i, np.ones((6, 8), np.uint8), "v0001")
    store.mask_path("predicted", i).write_bytes(b"not a png")
    with pytest.raises(MaskError, match=r"predicted mask of img1\.png \(.*predicted.*\) is unreadable.*pre-label"):
        store.predicted_mask(i)
    assert store.get(i).model_version is None  # no longer current: the next pre-label run replaces it
    store.save_corrected(i, np.ones((6, 8), np.uint8))
    store.mask_path("corrected", i).write_bytes(b"")
    with pytest.raises(MaskError, match=r"corrected mask of img1\.png .* unreadable.*--overwrite"):
        store.corrected_mask(i)
