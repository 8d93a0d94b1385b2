"""Replacing an earlier export never deletes what someone put in its folder afterwards: the export records what it
wrote at the top of its folder and how many files its subfolders hold, and anything else there (or a file edited
since) refuses the replace, named where it can be, with nothing changed."""

import json

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.export import ExportError, export_dataset
from faceparse.core.store import ProjectStore
from PIL import Image

SIZE = 8


def put_photo(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        put_photo(folder / f"face{i}.png", seed=i)
    with ProjectStore.create(folder) as store:
        store.scan()
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[2:6, 2:6] = 1
        for rec in store.images():
            store.save_corrected(rec.id, mask)
        yield store


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def forget_the_record(out):
    """The card as exports wrote it before they recorded what they wrote."""
    card = json.loads((out / "dataset.json").read_text())
    del card["top_level"]
    card.pop("contents", None)
    (out / "dataset.json").write_text(json.dumps(card))


def test_an_export_records_what_it_wrote_at_the_top_of_its_folder(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "yolo", split=(1, 0, 0))
    recorded = json.loads((out / "dataset.json").read_text())["top_level"]
    assert sorted(recorded) == sorted(p.name for p in out.iterdir())
    assert {"README.md", "dataset.json", "schema.json", "data.yaml", "images", "labels"} == set(recorded)


def test_overwrite_refuses_a_folder_holding_files_the_export_did_not_write(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "coco", split=(1, 0, 0))
    (out / "notes.txt").write_text("which run used which split")
    (out / "runs" / "exp1").mkdir(parents=True)
    (out / "runs" / "exp1" / "best.pt").write_bytes(b"weights")
    before = snapshot(out)
    with pytest.raises(ExportError) as refused:
        export_dataset(store, out, "index-png", split=(1, 0, 0), overwrite=True)
    message = str(refused.value)
    assert "2 entries the earlier export did not write: notes.txt; runs" in message
    assert "move them out of the folder first" in message
    assert snapshot(out) == before and hidden(tmp_path) == []


def test_many_added_entries_are_named_a_few_then_counted(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "coco", split=(1, 0, 0))
    for i in range(8):
        (out / f"note{i}.txt").write_text("mine")
    with pytest.raises(ExportError, match=r"8 entries .*note0\.txt; note1\.txt; note2\.txt; note3\.txt; "
                                          r"note4\.txt; and 3 more"):
        export_dataset(store, out, "coco", split=(1, 0, 0), overwrite=True)
    assert len(list(out.glob("note*.txt"))) == 8


def test_one_added_entry_is_named_alone(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "coco", split=(1, 0, 0))
    (out / "runs").mkdir()
    with pytest.raises(ExportError, match=r"holds an entry the earlier export did not write: runs\. .*move it out"):
        export_dataset(store, out, "coco", split=(1, 0, 0), overwrite=True)


def test_overwrite_still_replaces_an_export_left_as_it_was(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "coco", split=(1, 0, 0))
    (out / ".DS_Store").write_bytes(b"finder")
    export_dataset(store, out, "index-png", split=(1, 0, 0), overwrite=True)
    assert (out / "masks").is_dir() and not (out / "annotations").exists() and not (out / ".DS_Store").exists()


def test_an_export_without_the_record_owns_its_layouts_names_only(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "celebamask-hq", split=(0.5, 0.5, 0))
    forget_the_record(out)
    (out / "test.txt").write_text("")  # a name the layout writes when it has a test split
    export_dataset(store, out, "index-png", split=(1, 0, 0), overwrite=True)
    assert (out / "masks").is_dir() and not (out / "CelebA-HQ-img").exists()

    forget_the_record(out)
    (out / "labels").mkdir()  # another layout's name is not this export's
    with pytest.raises(ExportError, match="did not write: labels"):
        export_dataset(store, out, "coco", split=(1, 0, 0), overwrite=True)
    assert (out / "labels").is_dir() and (out / "masks").is_dir()


def test_entries_added_while_the_export_runs_refuse_the_replace_at_the_end(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "coco", split=(1, 0, 0))

    def add_a_note(done, total):
        if done == total:
            (out / "notes.txt").write_text("written meanwhile")

    with pytest.raises(ExportError, match="did not write: notes.txt"):
        export_dataset(store, out, "index-png", split=(1, 0, 0), overwrite=True, progress=add_a_note)
    assert (out / "notes.txt").read_text() == "written meanwhile" and (out / "annotations").is_dir()
    assert hidden(tmp_path) == []


def test_the_command_refuses_and_says_why(store, tmp_path, capsys):
    out = tmp_path / "out"
    export_dataset(store, out, "coco", split=(1, 0, 0))
    (out / "runs").mkdir()
    code = main(["export", str(store.root), "--format", "coco", "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "did not write: runs" in err and "move it out" in err
    assert (out / "runs").is_dir()


def test_files_added_or_edited_inside_the_exports_subfolders_refuse_the_replace(store, tmp_path):
    import os

    out = tmp_path / "out"
    export_dataset(store, out, "yolo", split=(1, 0, 0))
    label = next((out / "labels" / "train").iterdir())
    old = label.stat().st_mtime_ns
    (out / "images" / "train" / "my_extra_photo.jpg").write_bytes(b"a photo of my own")
    before = snapshot(out)
    with pytest.raises(ExportError, match="1 file added or changed since: images/train/my_extra_photo.jpg"):
        export_dataset(store, out, "yolo", split=(1, 0, 0), overwrite=True)
    assert snapshot(out) == before

    (out / "images" / "train" / "my_extra_photo.jpg").unlink()
    original = label.read_text()
    label.write_text(original + "0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ExportError, match=f"added or changed since: labels/train/{label.name}"):
        export_dataset(store, out, "yolo", split=(1, 0, 0), overwrite=True)

    os.utime(label, ns=(old, old))  # edited, then its time put back: its size still tells
    with pytest.raises(ExportError, match="other than the ones it wrote"):
        export_dataset(store, out, "yolo", split=(1, 0, 0), overwrite=True)

    label.write_text(original)
    os.utime(label, ns=(old, old))
    shutil_copy = out / "labels" / "train" / "copied_with_its_time.txt"
    shutil_copy.write_text("kept")
    os.utime(shutil_copy, ns=(old, old))
    with pytest.raises(ExportError, match="1 more file than it wrote"):
        export_dataset(store, out, "yolo", split=(1, 0, 0), overwrite=True)
    assert shutil_copy.read_text() == "kept"

    shutil_copy.unlink()
    export_dataset(store, out, "yolo", split=(1, 0, 0), overwrite=True)
    assert not (out / "images" / "train" / "my_extra_photo.jpg").exists()
