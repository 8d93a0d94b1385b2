"""Which project image a label lands on: never a guess between two candidates, whatever Unicode form the names
use; and an imported mask does not silently replace a mask a human approved."""

import json
import unicodedata
from types import SimpleNamespace

import numpy as np
import pytest
from faceparse.core.export import export_dataset
from faceparse.core.formats.coco import encode_classes
from faceparse.core.importer import ImageIndex, ImportRefused, import_dataset
from faceparse.core.store import ProjectStore
from PIL import Image


def photo(path, size=(8, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 150, 120)).save(path)


def index_masks(folder, masks):
    """An index-png dataset: masks/<name>.png holding class indices."""
    for name, mask in masks.items():
        target = folder / "masks" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(target)
    return folder


def project(root, names):
    for name in names:
        photo(root / name)
    store = ProjectStore.create(root, "celebamask-hq")
    store.scan()
    return store


def records(names):
    return [SimpleNamespace(id=i, relpath=name) for i, name in enumerate(names)]


def test_a_full_file_name_matches_exactly_and_a_stem_shared_by_two_photos_is_ambiguous():
    index = ImageIndex(records(["x.jpg", "x.png", "solo.png"]))
    assert index.match("x.jpg")[0].relpath == "x.jpg"
    assert index.match("x.png")[0].relpath == "x.png"
    rec, why = index.match("x")
    assert rec is None and "x.jpg" in why and "x.png" in why
    assert index.match("solo")[0].relpath == "solo.png"
    assert index.match("solo.jpeg")[0].relpath == "solo.png"  # converted since it was labeled


def test_a_photo_whose_name_holds_two_extensions_is_matched_by_its_own_stem():
    index = ImageIndex(records(["IMG_1.jpg.png", "IMG_1.png"]))
    assert index.match("IMG_1.jpg")[0].relpath == "IMG_1.jpg.png"
    assert index.match("IMG_1")[0].relpath == "IMG_1.png"
    assert index.match("IMG_1.jpg.png")[0].relpath == "IMG_1.jpg.png"


def test_a_flat_name_that_is_also_a_top_level_name_is_taken_as_written():
    index = ImageIndex(records(["a/b.png", "a__b.png"]))
    assert index.match("a__b")[0].relpath == "a__b.png"
    assert index.match("a/b")[0].relpath == "a/b.png"
    assert ImageIndex(records(["a/b.png"])).match("a__b")[0].relpath == "a/b.png"


def test_another_tools_longer_path_matches_by_the_trailing_folders_that_name_one_photo():
    index = ImageIndex(records(["sub/x.jpg", "other/x.jpg", "p/deep/y.png", "q/flat/y.png"]))
    assert index.match("dataset/images/sub/x.jpg")[0].relpath == "sub/x.jpg"
    assert index.match("/home/ann/data/other/x.jpg")[0].relpath == "other/x.jpg"
    assert index.match("deep/y")[0].relpath == "p/deep/y.png"
    rec, why = index.match("images/x.jpg")
    assert rec is None and "other/x.jpg and sub/x.jpg have its name in another folder" in why
    assert index.match("x.jpg")[0] is None and "give it their folder" in index.match("x.jpg")[1]


def test_a_label_in_one_folder_never_lands_on_the_photo_of_its_name_in_another():
    index = ImageIndex(records(["bob/001.png", "deep/in/y.png"]))
    rec, why = index.match("alice/001.png")
    assert rec is None and "bob/001.png has its name in another folder" in why
    assert index.match("in/y")[0].relpath == "deep/in/y.png"
    assert index.match("001")[0].relpath == "bob/001.png"


def test_a_path_written_on_windows_matches_its_photo():
    index = ImageIndex(records(["sub/x.jpg", "other/x.jpg"]))
    assert index.match("C:\\data\\images\\sub\\x.jpg")[0].relpath == "sub/x.jpg"
    assert index.match("other\\x.jpg")[0].relpath == "other/x.jpg"
    assert ImageIndex(records(["a\\b.png"])).match("a\\b.png")[0].relpath == "a\\b.png"  # a Linux name with a backslash


def test_names_match_across_unicode_normal_forms():
    decomposed = unicodedata.normalize("NFD", "café.png")
    index = ImageIndex(records([decomposed]))
    assert index.match(unicodedata.normalize("NFC", "café"))[0].relpath == decomposed
    assert index.match(unicodedata.normalize("NFC", "café.png"))[0].relpath == decomposed


def test_an_index_mask_for_two_photos_of_one_stem_is_refused_not_guessed(tmp_path):
    store = project(tmp_path / "faces", ["x.jpg", "x.png"])
    source = index_masks(tmp_path / "labels", {"x": np.ones((6, 8), np.uint8)})
    with pytest.raises(ImportRefused, match="matches several project images"):
        import_dataset(store, source, "index-png")
    assert store.count("corrected") == 0
    store.close()


@pytest.fixture
def reviewed(tmp_path):
    store = project(tmp_path / "faces", ["a.png"])
    rec = store.find("a.png")
    approved = np.zeros((6, 8), np.uint8)
    approved[2:4, 2:6] = 1
    store.save_predicted(rec.id, approved, "v1")
    store.set_status(rec.id, "reviewed")
    yield store, rec, approved
    store.close()


def test_importing_over_a_reviewed_mask_needs_overwrite_and_the_result_is_corrected(reviewed, tmp_path):
    store, rec, approved = reviewed
    other = np.full((6, 8), 2, np.uint8)
    source = index_masks(tmp_path / "labels", {"a": other})
    with pytest.raises(ImportRefused, match="already has a different reviewed mask"):
        import_dataset(store, source, "index-png")
    assert store.get(rec.id).status == "reviewed" and np.array_equal(store.current_mask(rec.id), approved)
    report = import_dataset(store, source, "index-png", overwrite=True)
    assert report.imported == 1
    assert store.get(rec.id).status == "corrected" and np.array_equal(store.current_mask(rec.id), other)


def test_importing_the_reviewed_mask_itself_changes_nothing(reviewed, tmp_path):
    store, rec, approved = reviewed
    report = import_dataset(store, index_masks(tmp_path / "labels", {"a": approved}), "index-png")
    assert report.imported == 0 and report.unchanged == 1
    assert store.get(rec.id).status == "reviewed"


def test_a_coco_label_for_a_smaller_copy_of_the_photo_is_scaled_only_when_asked(tmp_path):
    store = project(tmp_path / "faces", ["a.png"])
    small = np.zeros((3, 4), np.uint8)
    small[1:, 2:] = 1
    annotations = [{"id": n + 1, "image_id": 1, "category_id": c, "segmentation": rle, "iscrowd": 0}
                   for n, (c, rle) in enumerate(encode_classes(small))]
    source = tmp_path / "coco"
    (source / "annotations").mkdir(parents=True)
    (source / "annotations" / "labels.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 3}], "annotations": annotations,
        "categories": [{"id": i, "name": name} for i, name in enumerate(store.schema.classes) if i]}))
    with pytest.raises(ImportRefused, match="--scale-masks"):
        import_dataset(store, source, "coco")
    assert import_dataset(store, source, "coco", scale_masks=True).imported == 1
    expected = np.zeros((6, 8), np.uint8)
    expected[2:, 4:] = 1
    assert np.array_equal(store.corrected_mask(store.find("a.png").id), expected)
    store.close()


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_a_label_naming_its_photo_with_the_extension_lands_on_that_photo(tmp_path, fmt):
    store = project(tmp_path / "faces", ["x.jpg", "x.png"])
    x_png = store.find("x.png")
    mask = np.zeros((6, 8), np.uint8)
    mask[1:5, 2:6] = 1
    store.save_corrected(x_png.id, mask)
    out = tmp_path / "export"
    export_dataset(store, out, fmt, only="corrected", split=(1, 0, 0))
    target = project(tmp_path / "again", ["x.jpg", "x.png"])
    assert import_dataset(target, out, fmt).imported == 1
    assert np.array_equal(target.corrected_mask(target.find("x.png").id), mask)
    assert target.find("x.jpg").status == "new"
    store.close()
    target.close()


def test_a_label_is_checked_against_the_photo_as_it_is_now_not_as_last_scanned(tmp_path):
    from faceparse.core.importer import ImportRefused, import_dataset

    store = project(tmp_path / "faces", ["a.png"])
    store.fill_details()
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(store.root / "a.png")  # retouched, larger, since
    old_size = index_masks(tmp_path / "old", {"a": np.ones((6, 8), np.uint8)})
    with pytest.raises(ImportRefused, match="16x12"):
        import_dataset(store, old_size, "index-png")
    new_size = index_masks(tmp_path / "new", {"a": np.ones((12, 16), np.uint8)})
    import_dataset(store, new_size, "index-png")
    assert store.corrected_mask(store.images()[0].id).shape == (12, 16)
    store.close()


def test_one_name_in_two_unicode_forms_is_refused_unless_spelled_exactly():
    composed, decomposed = (unicodedata.normalize(form, "café.png") for form in ("NFC", "NFD"))
    index = ImageIndex(records([composed, decomposed]))
    assert index.match(decomposed)[0].relpath == decomposed
    assert index.match(composed)[0].relpath == composed
    rec, why = index.match(unicodedata.normalize("NFD", "café.jpg"))
    assert rec is None and "accents" in why and "\\u0301" in why
