"""What other tools assume of an export: CelebAMask-HQ's loaders count the numbered files, so the numbers have no
gaps when an image is left out; LaPa flattens folders, so two photos that flatten to one name are refused before
anything is written, even in different splits; a COCO file that gives one category id twice is refused; LabelMe's
converters give class 0 only to `_background_`."""

import json

import numpy as np
import pytest
from faceparse.core.export import ExportError, export_dataset
from faceparse.core.importer import import_dataset
from faceparse.core.store import ProjectStore
from PIL import Image


def make_project(folder, names, size=(20, 24)):
    masks = {}
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        mask = np.zeros(size, np.uint8)
        mask[2:10 + i, 3:12] = 1 + i
        masks[name] = mask
    with ProjectStore.create(folder, "celebamask-hq") as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, masks[rec.relpath])
    return masks


def test_celebamask_numbers_have_no_gap_when_a_photo_is_left_out(tmp_path):
    masks = make_project(tmp_path / "faces", [f"{c}.png" for c in "abcde"])
    (tmp_path / "faces" / "b.png").unlink()
    with ProjectStore.open(tmp_path / "faces") as store:
        result = export_dataset(store, tmp_path / "out", "celebamask-hq", split=(1, 0, 0))
    assert result.count == 4
    photos = sorted(p.name for p in (tmp_path / "out" / "CelebA-HQ-img").iterdir())
    assert photos == ["0.png", "1.png", "2.png", "3.png"]
    assert (tmp_path / "out" / "train.txt").read_text().split() == ["0", "1", "2", "3"]
    mapping = (tmp_path / "out" / "image_mapping.txt").read_text().splitlines()[1:]
    assert [line.split("\t")[1] for line in mapping] == ["a.png", "c.png", "d.png", "e.png"]
    combined = {p.stem: np.array(Image.open(p)) for p in (tmp_path / "out" / "CelebAMask-HQ-mask").glob("*.png")}
    for line in mapping:
        number, name = line.split("\t")
        assert np.array_equal(combined[number], masks[name])


@pytest.mark.parametrize("split", [(1, 0, 0), (0.5, 0.5, 0)])
def test_lapa_refuses_photos_that_flatten_to_one_name_before_writing(tmp_path, split):
    make_project(tmp_path / "faces", ["people/ann.jpg", "people__ann.png", "bob.png", "cy.png"])
    with ProjectStore.open(tmp_path / "faces") as store:
        with pytest.raises(ExportError, match=r"people/ann\.jpg and people__ann\.png .*people__ann\.png"):
            export_dataset(store, tmp_path / "out", "lapa", split=split, seed=1)
    assert not (tmp_path / "out").exists()


def test_lapa_keeps_folders_apart_when_their_flat_names_differ(tmp_path):
    masks = make_project(tmp_path / "faces", ["people/ann.png", "people/bob.png", "ann.png"])
    with ProjectStore.open(tmp_path / "faces") as store:
        assert export_dataset(store, tmp_path / "out", "lapa", split=(1, 0, 0),
                              target_schema="celebamask-hq").count == 3
    labels = sorted(p.name for p in (tmp_path / "out" / "train" / "labels").iterdir())
    assert labels == ["ann.png", "people__ann.png", "people__bob.png"]
    assert np.array_equal(np.array(Image.open(tmp_path / "out" / "train" / "labels" / "people__bob.png")),
                          masks["people/bob.png"])


def test_coco_with_a_category_id_given_twice_is_refused(tmp_path):
    make_project(tmp_path / "faces", ["a.png"])
    with ProjectStore.open(tmp_path / "faces") as store:
        export_dataset(store, tmp_path / "coco", "coco", split=(1, 0, 0))
    files = list((tmp_path / "coco").rglob("*.json"))
    document_path = next(p for p in files if "categories" in json.loads(p.read_text()))
    document = json.loads(document_path.read_text())
    skin, hair = (next(c for c in document["categories"] if c["name"] == n) for n in ("skin", "hair"))
    hair["id"] = skin["id"]
    document_path.write_text(json.dumps(document))
    with ProjectStore.open(tmp_path / "faces") as store:
        with pytest.raises(Exception, match=rf"category id {skin['id']} is given twice \('skin' and 'hair'\)"):
            import_dataset(store, tmp_path / "coco", "coco", dry_run=True)
