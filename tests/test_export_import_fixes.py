"""Export and import fixes: a photo deleted since the scan, a damaged corrected mask, a destination inside another
project, `a/b` beside `a__b`, names that a layout cannot hold, and the check of photos sharing a stem."""

import json

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.export import ExportError, export_dataset
from faceparse.core.importer import ImportRefused, import_dataset
from faceparse.core.store import ProjectStore
from PIL import Image

SIZE = 8


def put_photo(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def box_mask(k):
    """A different, polygon-friendly mask for each k (YOLO and LabelMe give rectangles back exactly)."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[1:7, 1:5] = 1 + k % 3
    mask[2:5, 5:7] = 4 + k % 5
    return mask


def project(folder, names, status="corrected"):
    """A project of the given photos, each with the mask box_mask(position); returns the truth by name."""
    for i, name in enumerate(names):
        put_photo(folder / name, seed=i)
    truth = {}
    with ProjectStore.create(folder) as store:
        store.scan()
        for rec in store.images():
            truth[rec.relpath] = box_mask(names.index(rec.relpath))
            if status == "predicted":
                store.save_predicted(rec.id, truth[rec.relpath], "v1")
            else:
                store.save_corrected(rec.id, truth[rec.relpath])
    return truth


def fresh_copy(folder, names):
    """A new project on the same photos, without masks."""
    for i, name in enumerate(names):
        put_photo(folder / name, seed=i)
    store = ProjectStore.create(folder)
    store.scan()
    return store


def damage(store, rec):
    path = store.mask_path("corrected", rec.id)
    path.write_bytes(path.read_bytes()[:40])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- 1: a photo deleted since the last scan ------------------------------------------------------------------------

def test_a_photo_deleted_since_the_scan_is_left_out_and_the_export_goes_on(tmp_path, capsys):
    project(tmp_path / "faces", ["a.png", "b.png", "c.png"])
    (tmp_path / "faces" / "b.png").unlink()
    with ProjectStore.open(tmp_path / "faces") as store:
        result = export_dataset(store, tmp_path / "out", "lapa", split=(1, 0, 0))
    assert result.count == 2
    assert len(result.skipped) == 1 and result.skipped[0].startswith("b.png: the photo is gone from the folder")
    assert sorted(p.name for p in (tmp_path / "out" / "train" / "labels").iterdir()) == ["a.png", "c.png"]
    assert "b.png" in json.loads((tmp_path / "out" / "dataset.json").read_text())["skipped"][0]

    code, out, err = run(capsys, "export", tmp_path / "faces", "-f", "index-png", "-o", tmp_path / "cli")
    assert code == 0, err
    assert "Exported 2 images" in out and "left out b.png: the photo is gone" in out


# --- 3: a damaged corrected mask -----------------------------------------------------------------------------------

def test_a_damaged_corrected_mask_is_left_out_of_the_export_with_its_reason(tmp_path):
    project(tmp_path / "faces", ["a.png", "b.png"])
    with ProjectStore.open(tmp_path / "faces") as store:
        victim = store.find("b.png")
        store.save_predicted(victim.id, np.zeros((SIZE, SIZE), np.uint8), "v1")
        damage(store, victim)
        result = export_dataset(store, tmp_path / "out", "index-png", only="all", split=(1, 0, 0))
    assert result.count == 1
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("the corrected mask of b.png") and "unreadable" in result.skipped[0]
    masks = tmp_path / "out" / "masks" / "train"
    assert sorted(p.name for p in masks.iterdir()) == ["a.png"]  # not the prediction the correction replaced


def test_import_with_overwrite_replaces_a_damaged_corrected_mask(tmp_path, capsys):
    truth = project(tmp_path / "faces", ["a.png", "b.png"])
    export_dataset(ProjectStore.open(tmp_path / "faces"), tmp_path / "ds", "index-png")
    with ProjectStore.open(tmp_path / "faces") as store:
        victim = store.find("b.png")
        damage(store, victim)
        with pytest.raises(ImportRefused, match=r"b\.png: the corrected mask of .* is unreadable.*--overwrite"):
            import_dataset(store, tmp_path / "ds", "index-png")

    code, _, err = run(capsys, "import", tmp_path / "faces", tmp_path / "ds", "-f", "index-png")
    assert code == 2 and "unreadable" in err and "--overwrite" in err
    code, out, err = run(capsys, "import", tmp_path / "faces", tmp_path / "ds", "-f", "index-png", "--overwrite")
    assert code == 0, err
    assert out.startswith("Imported 1 corrected mask from") and "1 already identical" in out
    with ProjectStore.open(tmp_path / "faces") as store:
        assert np.array_equal(store.corrected_mask(victim.id), truth["b.png"])


# --- 6: a destination inside an enclosing project ------------------------------------------------------------------

def test_an_export_into_any_enclosing_project_is_refused(tmp_path):
    project(tmp_path / "F" / "b", ["inner.png"])
    for outer in (tmp_path / "F", tmp_path / "other"):  # F made after F/b, as in the report
        outer.mkdir(exist_ok=True)
        ProjectStore.create(outer).close()
    with ProjectStore.open(tmp_path / "F" / "b") as store:
        for out in (tmp_path / "F" / "exported", tmp_path / "other" / "deep" / "down" / "ds", tmp_path / "other"):
            with pytest.raises(ExportError, match="is inside the project .*; its next scan would take"):
                export_dataset(store, out, "lapa")
        assert not (tmp_path / "F" / "exported").exists() and not (tmp_path / "other" / "deep").exists()
        assert export_dataset(store, tmp_path / "elsewhere", "lapa").count == 1


# --- 7: `a/b` beside `a__b` ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["index-png", "yolo", "celebamask-hq"])
def test_a_project_with_a_slash_b_and_a__b_imports_back(tmp_path, fmt):
    names = ["a/b.png", "a__b.png"]
    truth = project(tmp_path / "faces", names)
    with ProjectStore.open(tmp_path / "faces") as store:
        export_dataset(store, tmp_path / "ds", fmt, split=(1, 0, 0))
    with fresh_copy(tmp_path / "copy", names) as store:
        report = import_dataset(store, tmp_path / "ds", fmt)
        assert report.imported == 2
        for rec in store.images():
            assert np.array_equal(store.corrected_mask(rec.id), truth[rec.relpath]), rec.relpath


# --- 10: names a layout cannot hold, and backslashes in LabelMe ---------------------------------------------------

def test_celebamask_export_refuses_names_with_a_line_break_or_tab(tmp_path):
    project(tmp_path / "faces", ["new\nline.png", "tab\there.png", "plain.png"])
    with ProjectStore.open(tmp_path / "faces") as store:
        with pytest.raises(ExportError) as caught:
            export_dataset(store, tmp_path / "out", "celebamask-hq")
        assert export_dataset(store, tmp_path / "index", "index-png").count == 3
    message = str(caught.value)
    assert "\n" not in message
    assert "2 images cannot be exported" in message and "image_mapping.txt" in message
    assert "'new\\nline.png'" in message and "'tab\\there.png'" in message and "plain" not in message
    assert not (tmp_path / "out").exists()


def test_labelme_import_takes_a_backslash_in_image_path_as_written_first(tmp_path):
    names = ["back\\slash.png", "sub/win.png"]
    truth = project(tmp_path / "faces", names)
    with ProjectStore.open(tmp_path / "faces") as store:
        export_dataset(store, tmp_path / "ds", "labelme", split=(1, 0, 0))
    windows = tmp_path / "ds" / "train" / "sub" / "win.json"  # as a Windows LabelMe writes a path to a photo
    document = json.loads(windows.read_text())
    document["imagePath"] = "..\\sub\\win.png"
    windows.write_text(json.dumps(document))
    with fresh_copy(tmp_path / "copy", names) as store:
        assert import_dataset(store, tmp_path / "ds", "labelme").imported == 2
        for rec in store.images():
            assert np.array_equal(store.corrected_mask(rec.id), truth[rec.relpath]), rec.relpath


# --- 12: photos that share a stem ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["coco", "celebamask-hq"])
def test_photos_sharing_a_stem_export_and_import_back_where_no_label_file_is_named_from_it(tmp_path, fmt):
    names = ["photo.png", "photo.bmp"]
    truth = project(tmp_path / "faces", names)
    with ProjectStore.open(tmp_path / "faces") as store:
        assert export_dataset(store, tmp_path / "ds", fmt, split=(1, 0, 0)).count == 2
    with fresh_copy(tmp_path / "copy", names) as store:
        assert import_dataset(store, tmp_path / "ds", fmt).imported == 2
        for rec in store.images():
            assert np.array_equal(store.corrected_mask(rec.id), truth[rec.relpath]), rec.relpath


@pytest.mark.parametrize(("fmt", "suffix"), [("index-png", ".png"), ("lapa", ".png"), ("labelme", ".json"),
                                             ("yolo", ".txt")])
def test_every_stem_clash_is_reported_at_once(tmp_path, fmt, suffix):
    names = [f"p{i}.{ext}" for i in range(7) for ext in ("png", "bmp")] + ["Solo.png", "solo.bmp", "alone.png"]
    project(tmp_path / "faces", names, status="predicted")
    with ProjectStore.open(tmp_path / "faces") as store:
        with pytest.raises(ExportError) as caught:
            export_dataset(store, tmp_path / "out", fmt, only="all")
    message = str(caught.value)
    assert message.startswith("8 groups of photos would each share one label file name")
    assert f"p0.bmp and p0.png (p0{suffix})" in message and "and 3 more" in message
    assert message.count(" and ") == 5 + 1 and "alone" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("only, noun", [("reviewed", "reviewed images"),
                                        ("all", "images with a mask (corrected, reviewed or predicted)")])
def test_nothing_to_export_is_said_in_plain_words(tmp_path, only, noun):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "a.png")
    with ProjectStore.create(folder, "celebamask-hq") as store:
        store.scan()
        with pytest.raises(ExportError) as caught:
            export_dataset(store, tmp_path / "out", "index-png", only=only)
    assert str(caught.value) == f"no images to export: the project has no {noun}"


def test_imported_masks_are_not_counted_as_corrected_by_hand_until_edited_here(tmp_path, capsys):
    names = ["a.png", "b.png", "c.png"]
    truth = project(tmp_path / "faces", names)
    export_dataset(ProjectStore.open(tmp_path / "faces"), tmp_path / "ds", "index-png", split=(1, 0, 0))
    with fresh_copy(tmp_path / "copy", names) as store:
        assert import_dataset(store, tmp_path / "ds", "index-png").imported == 3
        assert {r.mask_source for r in store.images()} == {"imported"}
        edited = store.find("a.png")
        mask = truth["a.png"].copy()
        mask[0, 0] = 7
        store.save_corrected(edited.id, mask)
        assert store.get(edited.id).mask_source is None
        result = export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))
    assert (result.corrected_by_hand, result.imported) == (1, 2)
    data = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert (data["corrected_by_hand"], data["imported"]) == (1, 2)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| corrected by hand | 1 of 3 |" in card and "| imported from another dataset, not edited here | 2 of 3 |" in card
    code, out, err = run(capsys, "export", tmp_path / "copy", "-f", "lapa", "-o", tmp_path / "out2")
    assert code == 0, err
    assert "1 corrected by hand" in out and "2 imported and not edited here" in out


def test_a_project_from_before_the_mask_source_column_gains_it_on_open(tmp_path):
    import sqlite3

    project(tmp_path / "faces", ["a.png"])
    db = tmp_path / "faces" / ".faceparse" / "project.db"
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE images DROP COLUMN mask_source")
    conn.close()
    with ProjectStore.open(tmp_path / "faces") as store:
        rec = store.find("a.png")
        assert rec.status == "corrected" and rec.mask_source is None
