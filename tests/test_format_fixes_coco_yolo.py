"""Fixes in the COCO, CelebAMask-HQ and YOLO layouts: hostile COCO segmentations are refused instead of crashing
pycocotools, overlapping CelebAMask-HQ parts combine as the dataset's own combiner does, and YOLO exports work with
the way Ultralytics finds labels and reads data.yaml."""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from faceparse.core.formats import celebamask, coco, yolo
from faceparse.core.formats.base import ExportItem
from faceparse.core.schemas import get_schema
from PIL import Image

SCHEMA = get_schema("celebamask-hq")
G_MASK_ORDER = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip",
                "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")  # CelebAMask-HQ's g_mask.py label_list

HOSTILE_SEGMENTATIONS = [
    [[1, 2, 3, 4, 5, float("nan")]],
    [[1, 2, 3, 4, 5, None]],
    [[1, 2, 3, 4, 5, float("inf")]],
    [[1, 2, 3, 4, 5, 1e20]],
    [[1, 2, 3, 4, -1e10, 5]],
    [[1, 2, 3, 4, 5, "6"]],
    [[1, 2, 3, 4, 5, 6, 7]],
    {"size": [4, 4], "counts": []},
    {"size": [4, 4], "counts": ""},
    {"size": [4, 4], "counts": "0"},
    {"size": [4, 4], "counts": "o"},
    {"size": [4, 4], "counts": "é1"},
    {"size": [4, 4], "counts": [1, 2, 3]},
    {"size": [4, 4], "counts": [-5, 21]},
    {"size": [4, 4], "counts": [2**40, 3]},
    {"size": [4, 4], "counts": [1.5, 14.5]},
]

_DECODE_EACH = """
import json, sys
from faceparse.core.formats.coco import _decode
outcomes = []
for segmentation in json.loads(sys.argv[1]):
    try:
        _decode(segmentation, 4, 4)
        outcomes.append("decoded")
    except Exception as e:
        outcomes.append(type(e).__name__)
print(json.dumps(outcomes))
"""


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_coco_hostile_segmentations_are_refused_not_a_crash():
    """Run in a child with capped memory: before the checks, pycocotools segfaulted or ate all memory."""
    result = subprocess.run([sys.executable, "-c", _DECODE_EACH, json.dumps(HOSTILE_SEGMENTATIONS)],
                            capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"the decoding process died ({result.returncode}): {result.stderr[-500:]}"
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcomes == ["ValueError"] * len(HOSTILE_SEGMENTATIONS), list(zip(HOSTILE_SEGMENTATIONS, outcomes, strict=True))


def _column_runs(on: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE: run lengths down the columns, starting with a (possibly empty) background run."""
    flat = on.T.ravel()
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


@pytest.mark.parametrize("shape", [(7, 5), (300, 200)])
def test_coco_valid_rle_still_decodes_exactly(shape):
    mask = np.zeros(shape, np.uint8)
    mask[1:-1, 2:] = 1
    mask[shape[0] // 2:, :3] = 2
    mask[0, 0] = 3
    for class_index, rle in coco.encode_classes(mask):
        assert np.array_equal(coco._decode(rle, *shape), mask == class_index)
        uncompressed = {"size": list(shape), "counts": _column_runs(mask == class_index)}
        assert np.array_equal(coco._decode(uncompressed, *shape), mask == class_index)


def test_coco_polygons_within_reach_still_decode():
    pixels = coco._decode([[-3, -3, 15, -3, 15, 1.5, -3, 1.5]], 4, 4)
    assert pixels[0].all() and not pixels[3].any()


def test_coco_duplicate_image_ids_are_reported(tmp_path):
    document = {"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4},
                           {"id": 1, "file_name": "b.png", "width": 4, "height": 4}],
                "annotations": [], "categories": [{"id": 1, "name": "skin"}]}
    path = tmp_path / "instances_train.json"
    path.write_text(json.dumps(document))
    found = coco.read_labels(path, SCHEMA)
    assert any("image id 1 is used by both a.png and b.png" in p for p in found.problems), found.problems


def _write_part(folder: Path, name: str, rows: slice, cols: slice) -> None:
    part = np.zeros((16, 16), np.uint8)
    part[rows, cols] = 255
    Image.fromarray(part).save(folder / f"00000_{name}.png")


def test_celebamask_overlapping_parts_combine_in_g_mask_order(tmp_path):
    folder = tmp_path / celebamask.ANNO_DIR / "0"
    folder.mkdir(parents=True)
    parts = {"skin": (slice(0, 12), slice(0, 16)), "hair": (slice(6, 10), slice(0, 16)),
             "cloth": (slice(8, 16), slice(0, 16)), "eye_g": (slice(2, 6), slice(2, 14)),
             "l_eye": (slice(3, 5), slice(9, 12)), "hat": (slice(0, 2), slice(0, 16)),
             "neck": (slice(10, 14), slice(4, 12)), "ear_r": (slice(4, 7), slice(0, 2))}
    for name, (rows, cols) in parts.items():
        _write_part(folder, name, rows, cols)
    (item,) = celebamask.read_labels(tmp_path, SCHEMA).items
    got = np.array(item.classes)[item.load((16, 16))]
    expected = np.full((16, 16), "background", dtype=object)
    for name in G_MASK_ORDER:
        if name in parts:
            expected[parts[name]] = name
    assert celebamask.DRAW_ORDER == G_MASK_ORDER
    assert (got == expected).all(), np.argwhere(got != expected)[:5]


def _ultralytics_label_path(image: Path) -> Path:
    """ultralytics/data/utils.py img2label_paths: the last /images/ becomes /labels/."""
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(labels.join(str(image).rsplit(images, 1)).rsplit(".", 1)[0] + ".txt")


def _export_yolo(tmp_path: Path, names_and_splits: list[tuple[str, str]]) -> tuple[Path, dict[str, np.ndarray]]:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (6, 5)).save(photo)
    out = tmp_path / "out"
    exporter = yolo.YoloExporter(out, SCHEMA)
    masks = {}
    for number, (name, split) in enumerate(names_and_splits):
        mask = np.zeros((5, 6), np.uint8)
        mask[1:4, number % 3: number % 3 + 3] = number % 5 + 1
        masks[name] = mask
        exporter.add(ExportItem(number, name, split, photo, mask))
    exporter.finish()
    return out, masks


def test_yolo_photos_in_an_images_folder_get_labels_where_ultralytics_looks(tmp_path):
    names = ["images/a", "images_/a", "top", "x/images/images/b", "labels/c"]
    out, masks = _export_yolo(tmp_path, [(name, "train") for name in names])
    photos = sorted((out / "images" / "train").rglob("*.png"))
    assert len(photos) == len(names)
    for photo in photos:
        assert _ultralytics_label_path(photo).is_file(), photo.relative_to(out)
    found = yolo.read_labels(out, SCHEMA)
    assert not found.problems
    assert sorted(item.name for item in found.items) == sorted(names)
    for item in found.items:
        assert np.array_equal(item.load((5, 6)), masks[item.name]), item.name


def _yaml_value(text: str, key: str) -> tuple[str, str]:
    (line,) = [line for line in text.splitlines() if line.startswith(f"{key}:")]
    value, _, comment = line[len(key) + 1:].partition("#")
    return value.strip(), comment.strip()


@pytest.mark.parametrize(("splits", "train", "val"), [
    (["train", "train"], "images/train", "images/train"),
    (["val", "test"], "images/val", "images/val"),
    (["test"], "images/test", "images/test"),
    (["train", "val"], "images/train", "images/val"),
])
def test_yolo_data_yaml_always_names_train_and_val(tmp_path, splits, train, val):
    out, _ = _export_yolo(tmp_path, [(f"f{i}", split) for i, split in enumerate(splits)])
    text = (out / yolo.DATA_FILE).read_text(encoding="utf-8")
    for key, folder in (("train", train), ("val", val)):
        value, comment = _yaml_value(text, key)
        assert value == folder
        assert (f"no {key} images" in comment) == (key not in splits)
    assert ("test:" in text) == ("test" in splits)
    assert yolo.parse_names(text, out / yolo.DATA_FILE) == list(SCHEMA.classes[1:])


PYYAML_DUMP = "train: images/train\nval: images/train\nnc: 3\nnames:\n- skin\n- nose\n- 'yes'\n"


def test_yolo_names_as_pyyaml_dumps_them(tmp_path):
    assert yolo.parse_names(PYYAML_DUMP, tmp_path / "data.yaml") == ["skin", "nose", "yes"]
    assert yolo.parse_names(PYYAML_DUMP + "path: here\n", tmp_path / "data.yaml") == ["skin", "nose", "yes"]


def test_yolo_data_yaml_with_a_byte_order_mark(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0 0 1 0 1 1\n")
    (tmp_path / "data.yaml").write_bytes("names:\n  0: skin\n  1: nose\n".encode("utf-8-sig"))
    found = yolo.read_labels(tmp_path, SCHEMA)
    assert not found.problems and found.items[0].classes == ("background", "skin", "nose")
    (tmp_path / "data.yaml").write_bytes("names: [skin, nose]\n".encode("utf-8-sig"))
    assert yolo.read_labels(tmp_path, SCHEMA).items[0].classes == ("background", "skin", "nose")


def test_yolo_data_yaml_that_is_not_utf8_names_the_file(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0 0 1 0 1 1\n")
    (tmp_path / "data.yaml").write_bytes("names: [peau, caf\u00e9]\n".encode("latin-1"))
    (problem,) = yolo.read_labels(tmp_path, SCHEMA).problems
    assert str(tmp_path / "data.yaml") in problem and "not UTF-8" in problem
