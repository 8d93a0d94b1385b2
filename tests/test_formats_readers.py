"""Exports read by readers that know nothing of this code: pycocotools for COCO, PIL/numpy for the PNG layouts,
plain JSON/text parsing and polygon filling for LabelMe and YOLO."""

import json

import cv2
import numpy as np
import pytest
import yaml
from faceparse.core.export import export_dataset
from faceparse.core.imageio import colorize
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from PIL import Image, ImageDraw
from pycocotools.coco import COCO
from test_formats_support import agreement, class_ious, exported, make_project

SCHEMA = get_schema("celebamask-hq")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("readers") / "faces"
    return root, make_project(root)


def export(project, tmp_path, fmt, **options):
    root, truth = project
    out = tmp_path / fmt
    with ProjectStore.open(root) as store:
        export_dataset(store, out, fmt, only="all", **options)
    return out, truth


def stem(relpath):
    return relpath.rsplit(".", 1)[0]


def test_coco_read_by_pycocotools(project, tmp_path, capsys):
    out, truth = export(project, tmp_path, "coco")
    seen = set()
    for split in ("train", "val", "test"):
        path = out / "annotations" / f"instances_{split}.json"
        if not path.exists():
            continue
        coco = COCO(str(path))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(SCHEMA.classes[1:])
        for image in coco.loadImgs(coco.getImgIds()):
            assert (out / "images" / split / image["file_name"]).is_file()
            mask = np.zeros((image["height"], image["width"]), np.uint8)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
                pixels = coco.annToMask(ann).astype(bool)
                assert not mask[pixels].any(), "annotations of one image must not overlap"
                assert ann["area"] == pixels.sum() and ann["iscrowd"] == 0
                mask[pixels] = ann["category_id"]
            assert np.array_equal(mask, truth[image["file_name"]])
            seen.add(image["file_name"])
    assert seen == exported(only="all")


def test_lapa_labels_are_grayscale_index_pngs(project, tmp_path):
    out, truth = export(project, tmp_path, "lapa", split=(0.5, 0.5, 0))
    names = {}
    for split in ("train", "val"):
        for label in (out / split / "labels").iterdir():
            img = Image.open(label)
            assert img.mode == "L"
            image = next((out / split / "images").glob(label.stem + ".*"))
            assert Image.open(image).size == img.size
            names[label.stem] = np.array(img)
    assert not (out / "test").exists()
    assert set(names) == {stem(n).replace("/", "__") for n in exported(only="all")}
    for name in exported(only="all"):
        assert np.array_equal(names[stem(name).replace("/", "__")], SCHEMA.map_mask(truth[name], "lapa"))


def test_index_png_masks_are_palette_pngs_with_colour_previews(project, tmp_path):
    out, truth = export(project, tmp_path, "index-png")
    found = set()
    for mask_path in (out / "masks").rglob("*.png"):
        split = mask_path.relative_to(out / "masks").parts[0]
        name = mask_path.relative_to(out / "masks" / split).with_suffix("").as_posix()
        relpath = name + ".png"
        img = Image.open(mask_path)
        assert img.mode == "P"
        assert img.getpalette()[: 3 * SCHEMA.num_classes] == [v for rgb in SCHEMA.colors for v in rgb]
        assert np.array_equal(np.array(img), truth[relpath])
        preview = np.array(Image.open(out / "previews" / split / f"{name}.png").convert("RGB"))
        assert np.array_equal(preview, colorize(truth[relpath], SCHEMA))
        assert (out / "images" / split / relpath).is_file()
        found.add(relpath)
    assert found == exported(only="all")
    assert json.loads((out / "schema.json").read_text())["classes"] == list(SCHEMA.classes)


def test_celebamask_part_files_combine_into_the_masks(project, tmp_path):
    out, truth = export(project, tmp_path, "celebamask-hq")
    mapping = dict(line.split("\t") for line in (out / "image_mapping.txt").read_text().splitlines()[1:])
    assert set(mapping.values()) == exported(only="all")
    numbers = [int(n) for split in ("train", "val", "test") if (out / f"{split}.txt").exists()
               for n in (out / f"{split}.txt").read_text().split()]
    assert sorted(numbers) == sorted(int(n) for n in mapping)
    for number, relpath in mapping.items():
        n = int(number)
        expected = truth[relpath]
        picture = Image.open(out / "CelebA-HQ-img" / f"{n}.png")
        assert picture.size == (expected.shape[1], expected.shape[0])
        combined = np.zeros_like(expected)
        parts = sorted((out / "CelebAMask-HQ-mask-anno" / str(n // 2000)).glob(f"{n:05d}_*.png"))
        assert {p.stem.split("_", 1)[1] for p in parts} == {SCHEMA.classes[c] for c in np.unique(expected) if c}
        for part in parts:
            on = np.array(Image.open(part).convert("L")) == 255
            assert not combined[on].any()
            combined[on] = SCHEMA.classes.index(part.stem.split("_", 1)[1])
        assert np.array_equal(combined, expected)
        assert np.array_equal(np.array(Image.open(out / "CelebAMask-HQ-mask" / f"{n}.png")), expected)


def paint_labelme(document, honour_holes):
    """A reader written from LabelMe's file description: polygons painted in file order with PIL."""
    size = (document["imageWidth"], document["imageHeight"])
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for shape in document["shapes"]:
        points = [tuple(p) for p in shape["points"]]
        value = 0 if shape["label"] == "_background_" else SCHEMA.classes.index(shape["label"])
        if shape["flags"].get("hole") and honour_holes:
            draw.polygon(points, fill=0)
            draw.line(points + points[:1], fill=value)
        elif not shape["flags"].get("hole"):
            draw.polygon(points, fill=value, outline=value)
    return np.array(mask)


def test_labelme_files_are_polygons_painted_in_order(project, tmp_path):
    out, truth = export(project, tmp_path, "labelme")
    files = {"/".join(p.relative_to(out).with_suffix("").parts[1:]): p for p in out.glob("*/**/*.json")}
    assert set(files) == {stem(n) for n in exported(only="all")}
    for name, path in files.items():
        document = json.loads(path.read_text())
        expected = truth[name + ".png"]
        assert (document["imageHeight"], document["imageWidth"]) == expected.shape
        assert (path.parent / document["imagePath"]).is_file() and document["imageData"] is None
        assert all(s["shape_type"] == "polygon" and len(s["points"]) >= 3 for s in document["shapes"])
        holes = [s for s in document["shapes"] if s["flags"]["hole"]]
        assert all(s["group_id"] is not None for s in holes)
        with_holes = paint_labelme(document, honour_holes=True)
        assert agreement(expected, with_holes) >= 0.99
        assert min(class_ious(expected, with_holes).values()) >= 0.9
        assert agreement(expected, paint_labelme(document, honour_holes=False)) >= 0.95


def test_yolo_labels_fill_back_with_opencv(project, tmp_path):
    out, truth = export(project, tmp_path, "yolo")
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {i - 1: name for i, name in enumerate(SCHEMA.classes) if i}
    assert data["nc"] == SCHEMA.num_classes - 1
    seen = set()
    for split in ("train", "val", "test"):
        if split not in data:
            continue
        images = out / data[split]
        for image in images.rglob("*.png"):
            relpath = image.relative_to(images).as_posix()
            label = (out / "labels" / split / relpath).with_suffix(".txt")
            width, height = Image.open(image).size
            mask = np.zeros((height, width), np.uint8)
            for line in label.read_text().splitlines():
                values = line.split()
                points = np.array(values[1:], float).reshape(-1, 2) * (width, height)
                assert len(points) >= 3 and 0 <= int(values[0]) < data["nc"]
                cv2.fillPoly(mask, [np.round(points).astype(np.int32)], int(values[0]) + 1)
            assert agreement(truth[relpath], mask) >= 0.995
            assert min(class_ious(truth[relpath], mask).values()) >= 0.95
            seen.add(relpath)
    assert seen == exported(only="all")
