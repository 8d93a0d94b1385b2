"""Imports check everything first: broken files, wrong sizes, unknown classes and labels without an image give a
report naming each problem, and import nothing at all."""

import json
import shutil

import numpy as np
import pytest
from faceparse.core import importer
from faceparse.core.export import export_dataset
from faceparse.core.importer import ImportCancelled, ImportRefused, import_dataset
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from PIL import Image
from test_formats_support import copy_images, exported, make_project

FORMATS = ("celebamask-hq", "lapa", "index-png", "coco", "labelme", "yolo")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("imports")
    truth = make_project(base / "faces")
    with ProjectStore.open(base / "faces") as store:
        for fmt in FORMATS:
            export_dataset(store, base / fmt, fmt, only="corrected", split=(1, 0, 0), target_schema=store.schema.name)
    return base, truth


@pytest.fixture
def dataset(exports, tmp_path):
    """(copy of an export to spoil, fresh target project) for a format."""
    base, truth = exports

    def make(fmt):
        shutil.copytree(base / fmt, tmp_path / fmt)
        target = copy_images(base / "faces", tmp_path / "target")
        return tmp_path / fmt, target

    yield make


def untouched(store):
    files = [p for kind in ("corrected", "predicted") for p in (store.masks_dir / kind).iterdir()]
    return store.count("new") == store.count() >= 11 and not files


def refused(store, source, fmt, *messages, **options):
    with pytest.raises(ImportRefused) as info:
        import_dataset(store, source, fmt, **options)
    text = str(info.value)
    assert text.startswith(f"nothing was imported from {source}")
    for message in messages:
        assert message in text, text
    assert untouched(store)
    return info.value.report


def test_a_clean_import_works_before_spoiling(dataset):
    source, target = dataset("labelme")
    with target:
        report = import_dataset(target, source, "labelme")
        assert report.imported == len(exported(only="corrected")) == 8


@pytest.mark.parametrize("fmt", ["labelme", "coco"])
def test_broken_json(dataset, fmt):
    source, target = dataset(fmt)
    victim = source / ("train/face02.json" if fmt == "labelme" else "annotations/instances_train.json")
    victim.write_text(victim.read_text()[:-40])
    with target:
        refused(target, source, fmt, str(victim), "not valid JSON")


@pytest.mark.parametrize("fmt", ["index-png", "lapa", "celebamask-hq"])
def test_mask_of_the_wrong_size(dataset, fmt):
    source, target = dataset(fmt)
    pattern = {"index-png": "masks/train/face03.png", "lapa": "train/labels/face03.png",
               "celebamask-hq": "CelebAMask-HQ-mask-anno/0/*_skin.png"}[fmt]
    victim = sorted(source.glob(pattern))[0]
    Image.new("L", (50, 40)).save(victim)
    with target:
        report = refused(target, source, fmt, "50x40")
        assert len(report.problems) == 1


def test_label_sizes_that_disagree_with_the_image(dataset):
    source, target = dataset("labelme")
    victim = source / "train" / "face00.json"
    document = json.loads(victim.read_text())
    document["imageWidth"] += 1
    victim.write_text(json.dumps(document))
    with target:
        refused(target, source, "labelme", f"{victim}: the label is for a 65x64 image, but face00.png is 64x64")


@pytest.mark.parametrize("fmt", ["labelme", "coco", "yolo", "celebamask-hq"])
def test_unknown_class_names(dataset, fmt):
    source, target = dataset(fmt)
    if fmt == "labelme":
        for path in list(source.rglob("face0[12].json")):
            path.write_text(path.read_text().replace('"label":"hair"', '"label":"tattoo"'))
    elif fmt == "coco":
        path = source / "annotations" / "instances_train.json"
        path.write_text(path.read_text().replace('"name": "hair"', '"name": "tattoo"'))
    elif fmt == "yolo":
        path = source / "data.yaml"
        path.write_text(path.read_text().replace('"hair"', '"tattoo"'))
    else:
        for path in source.rglob("*_hair.png"):
            path.rename(path.with_name(path.name.replace("_hair", "_tattoo")))
    with target:
        report = refused(target, source, fmt, "class 'tattoo'", "has no place in the project's schema")
        assert len(report.problems) == 1


def test_index_beyond_the_schema(dataset):
    source, target = dataset("index-png")
    victim = source / "masks" / "train" / "face04.png"
    mask = np.array(Image.open(victim))
    mask[0, 0] = 40
    Image.fromarray(mask).save(victim)
    with target:
        refused(target, source, "index-png", f"{victim}: has class index 40, but the dataset's schema has only 19")


def test_labels_without_an_image(dataset):
    source, target = dataset("coco")
    with target:
        (target.root / "face06.png").unlink()
        target.scan()
        report = refused(target, source, "coco", "no image in the project has this path or name ('face06.png')")
        assert len(report.problems) == 1
        report = import_dataset(target, source, "coco", ignore_unmatched=True)
        assert report.imported == 7 and len(report.skipped) == 1 and "face06" in report.skipped[0]
        assert target.count("corrected") == 7


def test_image_file_gone_since_the_scan(dataset):
    source, target = dataset("yolo")
    with target:
        (target.root / "face07.png").unlink()
        refused(target, source, "yolo", "its image face07.png cannot be read", "file not found")


@pytest.mark.parametrize(("line", "message"), [
    ("25 0.1 0.1 0.2 0.1 0.2 0.2", "class 25 is not one of the 18 classes"),
    ("0 0.1 0.1 0.2 1.5 0.2 0.2", "coordinates must be between 0 and 1"),
    ("0 0.1 0.1 0.2 0.1 0.2", "5 coordinates after the class, an odd number"),
    ("skin 0.1 0.1 0.2 0.1 0.2 0.2", "expected '<class> x1 y1 x2 y2 ...'"),
])
def test_malformed_yolo_lines(dataset, line, message):
    source, target = dataset("yolo")
    victim = source / "labels" / "train" / "face01.txt"
    victim.write_text(victim.read_text() + line + "\n")
    with target:
        refused(target, source, "yolo", f"{victim}: line", message)


def test_malformed_coco_references(dataset):
    source, target = dataset("coco")
    path = source / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 999
    data["annotations"][1]["category_id"] = 77
    data["annotations"][2]["segmentation"] = {"size": [3, 3], "counts": "x"}
    path.write_text(json.dumps(data))
    with target:
        refused(target, source, "coco", "refers to image 999", "has category 77")
        del data["annotations"][:2]
        path.write_text(json.dumps(data))
        refused(target, source, "coco", "RLE size 3x3 differs")


def test_labelme_holes_without_their_region(dataset):
    source, target = dataset("labelme")
    victim = source / "train" / "face00.json"
    document = json.loads(victim.read_text())
    outer = next(s for s in document["shapes"] if s["group_id"] is not None and not s["flags"]["hole"])
    document["shapes"].remove(outer)
    victim.write_text(json.dumps(document))
    with target:
        refused(target, source, "labelme", f"holes of {outer['label']!r} without the region they belong to")


def test_missing_source_or_empty_folder(dataset, tmp_path):
    source, target = dataset("lapa")
    with target:
        refused(target, tmp_path / "nowhere", "lapa", "does not exist")
        (tmp_path / "empty").mkdir()
        refused(target, tmp_path / "empty", "lapa", "no LaPa label masks found")
        refused(target, source, "yolo", "data.yaml: not found")
        refused(target, source, "pascal", "unknown dataset format 'pascal'")


def test_conflicting_corrections_need_overwrite(dataset):
    source, target = dataset("lapa")
    with target:
        rec = target.find("face00.png")
        target.save_corrected(rec.id, np.zeros((64, 64), np.uint8))
        with pytest.raises(ImportRefused, match="already has a different corrected mask"):
            import_dataset(target, source, "lapa")
        assert not target.corrected_mask(rec.id).any() and target.count("corrected") == 1
        report = import_dataset(target, source, "lapa", overwrite=True)
        assert report.imported == 8 and target.corrected_mask(rec.id).any()


def test_dry_run_and_cancel_write_nothing(dataset):
    import threading

    source, target = dataset("celebamask-hq")
    with target:
        report = import_dataset(target, source, "celebamask-hq", dry_run=True)
        assert report.imported == 0 and "would import 8 corrected masks" in report.summary()
        assert untouched(target)
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(ImportCancelled):
            import_dataset(target, source, "celebamask-hq", cancel=cancel)
        assert untouched(target)


@pytest.mark.parametrize("cache_bytes", [importer.CACHE_BYTES, 0], ids=["kept", "decoded-again"])
def test_half_size_celebamask_parts_are_scaled_only_when_asked(dataset, exports, monkeypatch, cache_bytes):
    monkeypatch.setattr(importer, "CACHE_BYTES", cache_bytes)
    _, truth = exports
    source, target = dataset("celebamask-hq")
    for part in source.rglob("*_*.png"):
        if "mask-anno" in str(part):
            Image.fromarray(np.array(Image.open(part))[::2, ::2]).save(part)
    with target:
        refused(target, source, "celebamask-hq", "--scale-masks")
        report = import_dataset(target, source, "celebamask-hq", scale_masks=True)
        assert report.imported == 8
        for rec in target.images(status="corrected"):
            half = truth[rec.relpath][::2, ::2]
            expected = np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)
            assert np.array_equal(target.corrected_mask(rec.id), expected)


def _edit_coco(source, change):
    path = source / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _first_annotation(**fields):
    return lambda data: data["annotations"][0].update(fields)


def _many_categories(data):
    data["categories"] += [{"id": 1000 + i, "name": f"extra{i}"} for i in range(300)]


@pytest.mark.parametrize("change, message", [
    (_first_annotation(image_id=[1]), "refers to image [1]"),
    (_first_annotation(category_id=[1]), "has category [1]"),
    (_first_annotation(segmentation={"size": [96, 72], "counts": [-5, 10]}), "annotation"),
    (_many_categories, "a mask holds at most 255 classes"),
], ids=["image-id-list", "category-id-list", "negative-rle", "300-categories"])
def test_malformed_coco_is_listed_not_a_crash(dataset, change, message):
    source, target = dataset("coco")
    _edit_coco(source, change)
    with target:
        refused(target, source, "coco", message)


def test_labelme_group_id_must_be_a_number_or_text(dataset):
    source, target = dataset("labelme")
    path = next(p for p in sorted(source.rglob("*.json")) if p.name not in ("dataset.json", "schema.json"))
    data = json.loads(path.read_text())
    data["shapes"][0]["group_id"] = [1]
    path.write_text(json.dumps(data))
    with target:
        refused(target, source, "labelme", path.name, "group_id [1]")


def test_yolo_names_as_a_flow_mapping_and_bad_quoting(dataset):
    source, target = dataset("yolo")
    data_file = source / "data.yaml"
    names = get_schema("celebamask-hq").classes[1:]
    header = [line for line in data_file.read_text().splitlines() if not line.startswith(("names:", "  "))]
    data_file.write_text("\n".join([*header, "names: {" + ", ".join(f"{i}: {n}" for i, n in enumerate(names)) + "}"]))
    with target:
        report = import_dataset(target, source, "yolo", dry_run=True)
        assert report.planned == len(exported(only="corrected")) and not report.problems
        data_file.write_text("\n".join([*header, 'names: ["sk\\q", "nose"]']))
        refused(target, source, "yolo", "data.yaml", "not a valid quoted text")
        data_file.write_text("\n".join([*header, "names: skin nose"]))
        refused(target, source, "yolo", "cannot read names: skin nose")


def test_a_mapped_import_names_the_classes_it_can_never_bring(exports, tmp_path):
    base, _ = exports
    with ProjectStore.open(base / "faces") as store:
        export_dataset(store, tmp_path / "lapa", "lapa", only="corrected", split=(1, 0, 0))
    with copy_images(base / "faces", tmp_path / "target") as target:
        report = import_dataset(target, tmp_path / "lapa", "lapa", dry_run=True)
    note = next(n for n in report.notes if n.startswith("lapa has no class for"))
    assert "eye_g, l_ear, r_ear, hat, ear_r, neck_l, neck, cloth: the imported masks never contain them" in note
    assert "--as predicted" in note and "need drawing by hand" in note


def test_index_masks_without_a_schema_file_say_which_schema_they_were_read_in(dataset):
    source, target = dataset("index-png")
    (source / "schema.json").unlink()
    with target:
        report = import_dataset(target, source, "index-png", dry_run=True)
    assert f"{source} has no schema.json: its mask values were read as the project's schema 'celebamask-hq'" \
        in " ".join(report.notes)
    with ProjectStore.open(target.root) as again:
        report = import_dataset(again, source, "index-png", dry_run=True, source_schema="celebamask-hq")
    assert not any("has no schema.json" in n for n in report.notes)


def test_a_checked_refusal_says_the_import_would_be_refused():
    from faceparse.core.importer import ImportRefused, ImportReport

    report = ImportReport(source="labels", format="index-png", kind="corrected", problems=["a.png: wrong size"],
                          dry_run=True)
    assert str(ImportRefused(report)).startswith("an import from labels would be refused: 1 problem")
