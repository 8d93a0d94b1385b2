"""Labels made by other tools come in as those tools meant them: YOLO shapes overlap largest first (an eye listed
before the face stays on top), LabelMe shapes that share a group_id without holes keep their own places in the
file's order, images listed with no label at all are named in the report, and class names typed with stray spaces
are found."""

import json

import numpy as np
import pytest
import yaml
from faceparse.core.importer import import_dataset
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from PIL import Image

CELEB = get_schema("celebamask-hq")
C = {name: i for i, name in enumerate(CELEB.classes)}
SIZE = 40


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.png")):
        Image.fromarray(np.full((SIZE, SIZE, 3), 40 * i, np.uint8)).save(folder / name)
    store = ProjectStore.create(folder)
    store.scan()
    yield store
    store.close()


def square(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def yolo_dataset(root, lines_by_name, names=("l_eye", "r_eye", "skin")):
    (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"names": list(names), "nc": len(names)}))
    for name, lines in lines_by_name.items():
        (root / "labels" / "train" / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    return root


def test_yolo_shapes_overlap_largest_first(project, tmp_path):
    eye = " ".join(f"{v / SIZE:.4f}" for v in square(8, 10, 14, 14))
    face = " ".join(f"{v / SIZE:.4f}" for v in square(4, 4, 36, 36))
    source = yolo_dataset(tmp_path / "yolo", {"a": [f"0 {eye}", f"2 {face}"]})
    report = import_dataset(project, source, "yolo")
    assert report.imported == 1
    mask = project.corrected_mask(project.find("a.png").id)
    assert mask[12, 11] == C["l_eye"] and mask[30, 30] == C["skin"]


def test_an_empty_yolo_label_file_is_named_in_the_report(project, tmp_path):
    face = " ".join(f"{v / SIZE:.4f}" for v in square(4, 4, 36, 36))
    source = yolo_dataset(tmp_path / "yolo", {"a": [f"2 {face}"], "b": []})
    report = import_dataset(project, source, "yolo", dry_run=True)
    assert any("1 image with an empty label file comes in as all background" in note and "b.txt" in note
               for note in report.notes)


def test_coco_images_without_annotations_are_named_in_the_report(project, tmp_path):
    source = tmp_path / "coco"
    source.mkdir()
    document = {"images": [{"id": 1, "file_name": "a.png", "width": SIZE, "height": SIZE},
                           {"id": 2, "file_name": "b.png", "width": SIZE, "height": SIZE}],
                "categories": [{"id": 1, "name": "skin"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [square(4, 4, 36, 36)],
                                 "area": 1024, "bbox": [4, 4, 32, 32], "iscrowd": 0}]}
    (source / "annotations.json").write_text(json.dumps(document))
    report = import_dataset(project, source, "coco", dry_run=True)
    assert any("1 image with no annotations comes in as all background" in note and "b.png" in note
               for note in report.notes)


def labelme_shape(label, points, group_id=None, hole=False):
    return {"label": label, "points": points, "group_id": group_id, "shape_type": "polygon",
            "flags": {"hole": True} if hole else {}, "description": ""}


def test_labelme_groups_without_holes_are_painted_shape_by_shape(project, tmp_path):
    source = tmp_path / "labelme"
    source.mkdir()
    shapes = [labelme_shape("skin", [[2, 2], [20, 2], [20, 20], [2, 20]], group_id=1),
              labelme_shape("hair", [[15, 0], [39, 0], [39, 30], [15, 30]]),
              labelme_shape("skin", [[25, 8], [35, 8], [35, 18], [25, 18]], group_id=1)]
    (source / "a.json").write_text(json.dumps({"version": "5.4.1", "shapes": shapes, "imagePath": "a.png",
                                               "imageHeight": SIZE, "imageWidth": SIZE, "imageData": None}))
    import_dataset(project, source, "labelme")
    mask = project.corrected_mask(project.find("a.png").id)
    assert mask[12, 30] == C["skin"]  # the later skin part lies over the hair, as LabelMe paints it
    assert mask[5, 17] == C["hair"] and mask[5, 5] == C["skin"]


def test_class_names_with_stray_spaces_are_found(project, tmp_path):
    source = tmp_path / "labelme"
    source.mkdir()
    shapes = [labelme_shape("hair ", [[2, 2], [20, 2], [20, 20], [2, 20]]),
              labelme_shape(" L_Eye", [[25, 8], [35, 8], [35, 18], [25, 18]])]
    (source / "a.json").write_text(json.dumps({"version": "5.4.1", "shapes": shapes, "imagePath": "a.png",
                                               "imageHeight": SIZE, "imageWidth": SIZE, "imageData": None}))
    import_dataset(project, source, "labelme")
    mask = project.corrected_mask(project.find("a.png").id)
    assert mask[10, 10] == C["hair"] and mask[12, 30] == C["l_eye"]
