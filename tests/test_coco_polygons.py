"""The `coco-polygons` layout: polygon segmentations that pycocotools (and so every COCO reader built on it)
decodes to exactly the exported pixels, holes and single pixels included."""

import json

import numpy as np
import pytest
from faceparse.core.export import export_dataset
from faceparse.core.formats.coco import polygon_classes
from faceparse.core.importer import import_dataset
from faceparse.core.store import ProjectStore
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from test_formats_support import copy_images, make_project


def decoded(mask: np.ndarray) -> np.ndarray:
    """Paint every class's polygons as pycocotools rasterises them."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for class_index, polygons in polygon_classes(mask):
        out[mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))).astype(bool)] = class_index
    return out


@pytest.mark.parametrize("seed", range(40))
def test_random_labels_come_back_exactly(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 40, size=2)
    mask = rng.integers(0, int(rng.integers(2, 6)), size=(h, w)).astype(np.uint8)
    assert np.array_equal(decoded(mask), mask)


def test_holes_islands_and_single_pixels():
    mask = np.zeros((12, 12), np.uint8)
    mask[1:11, 1:11] = 1
    mask[3:9, 3:9] = 0  # a background hole
    mask[5:7, 5:7] = 1  # an island of the same class inside it
    mask[0, 11] = 2  # a single pixel in a corner
    mask[11, 0:12] = 3  # a one-pixel line along the border
    assert np.array_equal(decoded(mask), mask)
    polygons = dict(polygon_classes(mask))
    assert len(polygons[1]) == 2 and all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons[1])


def test_the_export_is_read_by_the_coco_api_and_imported_back(tmp_path):
    truth = make_project(tmp_path / "faces")
    with ProjectStore.open(tmp_path / "faces") as store:
        result = export_dataset(store, tmp_path / "dataset", "coco-polygons", only="all", split=(1, 0, 0))
    path = tmp_path / "dataset" / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    assert result.count == len(data["images"]) > 0
    for ann in data["annotations"]:
        assert isinstance(ann["segmentation"], list) and all(isinstance(p, list) for p in ann["segmentation"])
        assert ann["iscrowd"] == 0 and ann["area"] > 0
    coco = COCO(str(path))
    for image in data["images"]:
        expected = truth[image["file_name"]]
        painted = np.zeros((image["height"], image["width"]), np.uint8)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            part = coco.annToMask(ann).astype(bool)
            assert ann["area"] == part.sum()
            x, y, w, h = ann["bbox"]
            ys, xs = np.nonzero(part)
            assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            painted[part] = ann["category_id"]
        assert np.array_equal(painted, expected), image["file_name"]
    with copy_images(tmp_path / "faces", tmp_path / "copy") as target:
        report = import_dataset(target, path, "coco-polygons")
        assert report.imported == result.count and not report.problems
        for rec in target.images():
            if rec.status == "corrected":
                assert np.array_equal(target.corrected_mask(rec.id), truth[rec.relpath])
