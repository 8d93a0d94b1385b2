"""Import and model messages say what is wrong in the user's file: the one bad COCO image entry (not every
annotation of it), a file that is not JSON text, repeated annotation ids, an odd count of YOLO coordinates, and
an empty model file."""

import json

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.formats import coco, yolo
from faceparse.core.formats.base import LabelFormatError
from faceparse.core.predictor import ModelError, read_model_info
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from PIL import Image

SCHEMA = get_schema("celebamask-hq")
SQUARE = [[0, 0, 3, 0, 3, 3, 0, 3]]


def _document(**image_fields):
    """Two images with three annotations each; `image_fields` spoil the second image's entry."""
    images = [{"id": 1, "file_name": "a.png", "width": 4, "height": 4},
              {"id": 2, "file_name": "b.png", "width": 4, "height": 4, **image_fields}]
    annotations = [{"id": 10 * image + k, "image_id": image, "category_id": 1, "segmentation": SQUARE}
                   for image in (1, 2) for k in range(3)]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "skin"}]}


def _problems(tmp_path, document):
    path = tmp_path / "instances_train.json"
    path.write_text(json.dumps(document))
    return coco.read_labels(path, SCHEMA).problems


@pytest.mark.parametrize(("fields", "message"), [
    ({"file_name": None}, "image 2 (entry 2 of 'images') has 'file_name' null; it needs the photo's path as text"),
    ({"width": "wide"}, "image 2 (entry 2 of 'images') has 'width' \"wide\"; it needs a whole number of pixels"),
], ids=["file-name-null", "width-text"])
def test_a_bad_coco_image_entry_is_one_problem_without_its_annotations(tmp_path, fields, message):
    problems = _problems(tmp_path, _document(**fields))
    assert len(problems) == 1, problems
    assert message in problems[0]
    assert "{" not in problems[0]


def test_a_coco_image_entry_without_an_id_is_named_by_its_place(tmp_path):
    document = _document()
    del document["images"][1]["id"]
    problems = _problems(tmp_path, document)
    assert any("entry 2 of 'images' has no 'id'; it needs a whole-number 'id'" in p for p in problems), problems
    assert not any("{" in p for p in problems)


def test_a_coco_file_that_is_not_json_text_says_so(tmp_path):
    path = tmp_path / "photo.json"
    Image.new("RGB", (4, 4)).save(path, format="JPEG")
    (problem,) = coco.read_labels(path, SCHEMA).problems
    assert problem == f"{path}: not a JSON text file (COCO annotations are JSON text in UTF-8)"


def test_coco_annotations_with_repeated_ids_are_a_problem(tmp_path):
    document = _document()
    document["annotations"][1]["id"] = document["annotations"][0]["id"]
    document["annotations"][4]["id"] = document["annotations"][3]["id"]
    problems = _problems(tmp_path, document)
    assert problems == [f"{tmp_path / 'instances_train.json'}: annotation ids 10, 20 are used more than once; "
                        "every annotation needs its own id"]


def test_a_yolo_line_with_an_odd_number_of_coordinates_says_so(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0 " + " ".join(["0.5"] * 781) + "\n")
    with pytest.raises(LabelFormatError, match="line 1: 781 coordinates after the class, an odd number; each point "
                                               "needs an x and a y"):
        yolo.parse_lines(path, 18)
    path.write_text("0 0.1 0.1 0.2 0.2\n0 0.1 0.1\n")
    with pytest.raises(LabelFormatError, match="line 2: a polygon needs at least three x, y pairs"):
        yolo.parse_lines(path, 18)


def test_an_empty_model_file_is_named_empty(tmp_path, capsys):
    model = tmp_path / "zero.onnx"
    model.write_bytes(b"")
    with pytest.raises(ModelError, match="the model file is empty"):
        read_model_info(model)
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    ProjectStore.create(folder).close()
    code = main(["prelabel", str(folder), "--model", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and "the model file is empty (0 bytes)" in err and "metadata" not in err
