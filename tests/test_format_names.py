"""Names that other layouts read differently: a photo called like another photo's mask, class names with a
YAML comment sign or a path separator in them, and the classes a CelebAMask-HQ reader expects."""

import json

import numpy as np
import pytest
from faceparse.core.export import ExportError, export_dataset
from faceparse.core.importer import import_dataset
from faceparse.core.schemas import get_schema, load_schema_json
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from PIL import Image


def _folders(tmp_path, names, size=32):
    for folder in ("src", "dst"):
        (tmp_path / folder).mkdir()
        for i, name in enumerate(names):
            image, _ = draw_face(20 + i, size=size)
            Image.fromarray(image).save(tmp_path / folder / name)


@pytest.mark.parametrize("fmt", ["index-png", "lapa", "yolo"])
def test_a_mask_named_after_a_photo_with_two_extensions_finds_that_photo(tmp_path, fmt):
    _folders(tmp_path, ["x.jpg", "x.jpg.png"])
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    with ProjectStore.create(tmp_path / "src") as store:
        store.scan()
        store.save_corrected(store.find("x.jpg.png").id, mask)
        export_dataset(store, tmp_path / "out", fmt, split=(1, 0, 0))
    with ProjectStore.create(tmp_path / "dst") as store:
        store.scan()
        import_dataset(store, tmp_path / "out", fmt)
        assert store.find("x.jpg").status == "new"
        assert store.corrected_mask(store.find("x.jpg").id) is None
        imported = store.corrected_mask(store.find("x.jpg.png").id)
        assert imported is not None and (imported > 0).sum() == (mask > 0).sum()


def test_a_mask_named_photo_dot_ext_dot_png_still_finds_the_photo_alone(tmp_path):
    """Tools that name a photo's mask `x.jpg.png` are still understood when no photo is called `x.jpg.png`."""
    _folders(tmp_path, ["x.jpg"])
    (tmp_path / "labels").mkdir()
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 1
    Image.fromarray(mask).save(tmp_path / "labels" / "x.jpg.png")
    with ProjectStore.create(tmp_path / "dst") as store:
        store.scan()
        import_dataset(store, tmp_path / "labels", "index-png")
        assert (store.corrected_mask(store.find("x.jpg").id) == mask).all()


def _schema(tmp_path, classes):
    path = tmp_path / "schema.json"
    colours = [[0, 0, 0]] + [[40 * i, 200 - 40 * i, 90] for i in range(1, len(classes))]
    path.write_text(json.dumps({"name": "mine", "classes": classes, "colors": colours}))
    return load_schema_json(path)


def test_yolo_class_names_with_a_comment_sign_come_back(tmp_path):
    schema = _schema(tmp_path, ["background", "eye #1", "it's #2", "plain"])
    mask = np.zeros((32, 32), np.uint8)
    mask[2:10, 2:10], mask[12:20, 12:20], mask[22:30, 2:10] = 1, 2, 3
    _folders(tmp_path, ["f.png"])
    with ProjectStore.create(tmp_path / "src", schema) as store:
        store.scan()
        store.save_corrected(store.images()[0].id, mask)
        export_dataset(store, tmp_path / "out", "yolo", split=(1, 0, 0))
    with ProjectStore.create(tmp_path / "dst", schema) as store:
        store.scan()
        import_dataset(store, tmp_path / "out", "yolo")
        back = store.corrected_mask(store.images()[0].id)
        assert sorted(np.unique(back)) == [0, 1, 2, 3]


def test_celebamask_export_refuses_a_class_that_cannot_be_a_file_name_before_writing(tmp_path):
    schema = _schema(tmp_path, ["background", "hat/cap", "skin"])
    _folders(tmp_path, ["f.png"])
    with ProjectStore.create(tmp_path / "src", schema) as store:
        store.scan()
        store.save_corrected(store.images()[0].id, np.ones((32, 32), np.uint8))
        with pytest.raises(ExportError, match="'hat/cap'"):
            export_dataset(store, tmp_path / "out", "celebamask-hq", split=(1, 0, 0))
        assert not (tmp_path / "out").exists()
        export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))


def test_a_lapa_project_exports_celebamask_hq_classes_to_that_layout(tmp_path):
    lapa, celeb = get_schema("lapa"), get_schema("celebamask-hq")
    _folders(tmp_path, ["f.png"])
    mask = np.zeros((32, 32), np.uint8)
    mask[4:28, 4:28] = lapa.classes.index("skin")
    mask[8:12, 6:14] = lapa.classes.index("left_brow") if "left_brow" in lapa.classes else 2
    with ProjectStore.create(tmp_path / "src", lapa) as store:
        store.scan()
        store.save_corrected(store.images()[0].id, mask)
        export_dataset(store, tmp_path / "out", "celebamask-hq", split=(1, 0, 0))
    parts = sorted(p.name for p in (tmp_path / "out").rglob("00000_*.png"))
    assert parts and all(p[len("00000_"):-4] in celeb.classes for p in parts)
    assert json.loads((tmp_path / "out" / "schema.json").read_text())["name"] == "celebamask-hq"


def test_yolo_writes_jpeg_photos_as_jpg_and_imports_them_back(tmp_path):
    _folders(tmp_path, ["a.jfif", "b.jpe"])
    mask = np.zeros((32, 32), np.uint8)
    mask[6:26, 6:26] = 1
    with ProjectStore.create(tmp_path / "src") as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, mask)
        export_dataset(store, tmp_path / "out", "yolo", split=(1, 0, 0))
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir()) == ["a.jpg", "b.jpg"]
    with ProjectStore.create(tmp_path / "dst") as store:
        store.scan()
        import_dataset(store, tmp_path / "out", "yolo")
        assert all(store.corrected_mask(rec.id) is not None for rec in store.images())
