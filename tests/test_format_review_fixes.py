"""Dataset formats as other tools read and write them: LabelMe files that a painter of shapes in file order reads
back exactly, LaPa exports in LaPa's own classes, grayscale CelebAMask-HQ combined masks, LabelMe vertices placed as
LabelMe's converter places them, box-only COCO annotations and LabelMe points left out with a note, LabelMe mask
shapes, and YOLO datasets in Roboflow's layout."""

import base64
import io
import json
import shutil

import cv2
import numpy as np
import pytest
import yaml
from faceparse.app.cli import main
from faceparse.app.gui.import_dialog import report_text
from faceparse.core.export import ExportError, export_dataset
from faceparse.core.formats.labelme import mask_to_shapes
from faceparse.core.importer import ImportRefused, import_dataset
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from PIL import Image, ImageDraw

CELEB = get_schema("celebamask-hq")
C = {name: i for i, name in enumerate(CELEB.classes)}


def ring_mask():
    """A ring of hair around background that holds a hat island, which has a background hole of its own."""
    mask = np.zeros((24, 24), np.uint8)
    mask[2:22, 2:22] = C["hair"]
    mask[6:18, 6:18] = 0
    mask[9:15, 9:15] = C["hat"]
    mask[11:13, 11:13] = 0
    return mask


def skin_mask():
    """Skin around an eye, a background hole and a one-pixel nose, with hair regions on the borders."""
    mask = np.zeros((30, 40), np.uint8)
    mask[5:25, 8:30] = C["skin"]
    mask[9:13, 11:16] = C["l_eye"]
    mask[16:20, 20:26] = 0
    mask[22, 12] = C["nose"]
    mask[0:3, 0:4] = C["hair"]
    mask[26:30, 37:40] = C["hair"]
    return mask


MASKS = {"ring.png": ring_mask(), "skin.png": skin_mask()}


def make_project(folder, masks, schema="celebamask-hq"):
    """A project of random photos whose corrected masks are `masks` (by relative path)."""
    for i, (name, mask) in enumerate(masks.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 256, (*mask.shape, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
    with ProjectStore.create(folder, schema) as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, masks[rec.relpath])


def fresh_copy(source, target, schema="celebamask-hq"):
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".faceparse"))
    store = ProjectStore.create(target, schema)
    store.scan()
    return store


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- LabelMe: background enclosed by a region ---------------------------------------------------------------------

def class_value(label, classes):
    """As LabelMe's converters number labels: `_background_` is 0, any other label is looked up."""
    return 0 if label == "_background_" else classes.index(label)


def paint_with_opencv(shapes, size, classes):
    """Every shape filled in file order, hole flags ignored."""
    mask = np.zeros(size, np.uint8)
    for shape in shapes:
        cv2.fillPoly(mask, [np.array(shape["points"], np.int32)], class_value(shape["label"], classes))
    return mask


def paint_with_pil(shapes, size, classes):
    """Every shape drawn in file order as LabelMe's converter draws a polygon (fill and outline), flags ignored."""
    image = Image.new("L", (size[1], size[0]), 0)
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        value = class_value(shape["label"], classes)
        draw.polygon([tuple(p) for p in shape["points"]], fill=value, outline=value)
    return np.array(image)


@pytest.mark.parametrize("name", list(MASKS))
@pytest.mark.parametrize("paint", [paint_with_opencv, paint_with_pil])
def test_labelme_shapes_painted_in_file_order_give_back_background_holes(name, paint):
    mask = MASKS[name]
    shapes = mask_to_shapes(mask, CELEB)
    assert np.array_equal(paint(shapes, mask.shape, CELEB.classes), mask)


def test_enclosed_background_is_a_region_of_class_0_with_its_own_holes():
    mask = ring_mask()
    shapes = mask_to_shapes(mask, CELEB)
    assert [(s["label"], s["flags"]["hole"]) for s in shapes] == [
        ("hair", False), ("hair", True), ("_background_", False), ("_background_", True), ("hat", False),
        ("hat", True), ("_background_", False)]
    assert shapes[2]["group_id"] == shapes[3]["group_id"] not in (None, shapes[0]["group_id"])


def test_background_touching_the_border_gets_no_shape():
    shapes = mask_to_shapes(skin_mask(), CELEB)
    background = [s for s in shapes if s["label"] == "_background_"]
    assert len(background) == 1 and not background[0]["flags"]["hole"]
    assert {tuple(p) for p in background[0]["points"]} == {(20, 16), (25, 16), (25, 19), (20, 19)}


def test_labelme_export_reads_back_exactly_by_painting_and_by_import(tmp_path):
    make_project(tmp_path / "faces", MASKS)
    with ProjectStore.open(tmp_path / "faces") as store:
        export_dataset(store, tmp_path / "labelme", "labelme", split=(1, 0, 0))
    for name, mask in MASKS.items():
        document = json.loads((tmp_path / "labelme" / "train" / name).with_suffix(".json").read_text())
        assert np.array_equal(paint_with_pil(document["shapes"], mask.shape, CELEB.classes), mask)
    card = (tmp_path / "labelme" / "README.md").read_text()
    assert "background enclosed by a region is a region labeled `_background_`" in card
    with fresh_copy(tmp_path / "faces", tmp_path / "copy") as target:
        assert import_dataset(target, tmp_path / "labelme", "labelme").imported == len(MASKS)
        for name, mask in MASKS.items():
            assert np.array_equal(target.corrected_mask(target.find(name).id), mask)


# --- LaPa: written in LaPa's classes unless told otherwise ----------------------------------------------------------

@pytest.fixture
def celeb_project(tmp_path):
    make_project(tmp_path / "faces", MASKS)
    return tmp_path / "faces"


def lapa_labels(folder):
    return {p.name: np.array(Image.open(p)) for p in (folder / "train" / "labels").iterdir()}


def test_lapa_export_without_a_schema_writes_lapa_classes(celeb_project, tmp_path, capsys):
    with ProjectStore.open(celeb_project) as store:
        result = export_dataset(store, tmp_path / "lapa", "lapa", split=(1, 0, 0))
    assert result.schema.name == "lapa" and result.schema_by_default
    assert result.schema_summary().startswith("masks in schema lapa (11 classes), mapped from the project's "
                                              "celebamask-hq")
    assert json.loads((tmp_path / "lapa" / "schema.json").read_text())["name"] == "lapa"
    for name, label in lapa_labels(tmp_path / "lapa").items():
        assert np.array_equal(label, CELEB.map_mask(MASKS[name], "lapa"))

    code, out, err = run(capsys, "export", celeb_project, "-f", "lapa", "-o", tmp_path / "cli", "--split", "1,0,0")
    assert code == 0, err
    assert "Masks in schema lapa (11 classes), mapped from the project's celebamask-hq" in out
    assert "--schema celebamask-hq keeps the project's classes" in out


def test_a_lapa_export_comes_back_into_a_celebamask_project_with_sides_kept(celeb_project, tmp_path):
    with ProjectStore.open(celeb_project) as store:
        export_dataset(store, tmp_path / "lapa", "lapa", split=(1, 0, 0))
    with fresh_copy(celeb_project, tmp_path / "again") as store:
        report = import_dataset(store, tmp_path / "lapa", "lapa")
        assert report.imported == len(MASKS)
        for rec in store.images():
            through_lapa = get_schema("lapa").map_mask(CELEB.map_mask(MASKS[rec.relpath], "lapa"), "celebamask-hq")
            assert np.array_equal(store.corrected_mask(rec.id), through_lapa)
    eye = np.zeros((4, 4), np.uint8)
    eye[1, 1] = C["l_eye"]
    assert get_schema("lapa").map_mask(CELEB.map_mask(eye, "lapa"), "celebamask-hq")[1, 1] == C["l_eye"]


def test_an_explicit_schema_wins_for_lapa(celeb_project, tmp_path, capsys):
    code, out, err = run(capsys, "export", celeb_project, "-f", "lapa", "-o", tmp_path / "lapa", "--split", "1,0,0",
                         "--schema", "celebamask-hq")
    assert code == 0, err
    assert "Masks in schema celebamask-hq (19 classes);" in out and "keeps the project's" not in out
    assert json.loads((tmp_path / "lapa" / "schema.json").read_text())["name"] == "celebamask-hq"
    for name, label in lapa_labels(tmp_path / "lapa").items():
        assert np.array_equal(label, MASKS[name])


def test_lapa_export_of_a_schema_without_a_mapping_is_refused_with_the_way_out(tmp_path, capsys):
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 1
    make_project(tmp_path / "faces", {"a.png": mask}, schema="face-mask")
    with ProjectStore.open(tmp_path / "faces") as store, pytest.raises(ExportError) as info:
        export_dataset(store, tmp_path / "lapa", "lapa")
    assert "'face-mask' declares no mapping to 'lapa'" in str(info.value)
    assert "--schema lapa" in str(info.value) and "--schema face-mask" in str(info.value)
    assert not (tmp_path / "lapa").exists()

    code, _, err = run(capsys, "export", tmp_path / "faces", "-f", "lapa", "-o", tmp_path / "lapa")
    assert code == 2 and "--schema face-mask" in err
    code, out, err = run(capsys, "export", tmp_path / "faces", "-f", "lapa", "-o", tmp_path / "lapa",
                         "--split", "1,0,0", "--schema", "face-mask")
    assert code == 0, err
    assert np.array_equal(lapa_labels(tmp_path / "lapa")["a.png"], mask)


def test_the_project_schema_by_name_works_for_a_schema_that_is_not_built_in(tmp_path):
    schema_file = tmp_path / "mine.json"
    schema_file.write_text(json.dumps({"name": "mine", "classes": ["background", "face"],
                                       "colors": [[0, 0, 0], [200, 0, 0]]}))
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 1
    make_project(tmp_path / "faces", {"a.png": mask}, schema=str(schema_file))
    with ProjectStore.open(tmp_path / "faces") as store:
        result = export_dataset(store, tmp_path / "lapa", "lapa", split=(1, 0, 0), target_schema="mine")
    assert result.schema.name == "mine" and not result.schema_by_default
    assert np.array_equal(lapa_labels(tmp_path / "lapa")["a.png"], mask)


def test_other_formats_keep_the_project_schema_by_default(celeb_project, tmp_path):
    with ProjectStore.open(celeb_project) as store:
        result = export_dataset(store, tmp_path / "index", "index-png", split=(1, 0, 0))
    assert result.schema.name == "celebamask-hq" and not result.schema_by_default


# --- CelebAMask-HQ: grayscale combined masks ------------------------------------------------------------------------

def test_celebamask_combined_masks_read_as_indices_by_opencv(celeb_project, tmp_path):
    with ProjectStore.open(celeb_project) as store:
        export_dataset(store, tmp_path / "celeb", "celebamask-hq", split=(1, 0, 0))
    mapping = dict(line.split("\t") for line in (tmp_path / "celeb" / "image_mapping.txt").read_text().splitlines()[1:])
    for number, name in mapping.items():
        path = tmp_path / "celeb" / "CelebAMask-HQ-mask" / f"{number}.png"
        assert Image.open(path).mode == "L"
        assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), MASKS[name])
    layout = (tmp_path / "celeb" / "README.md").read_text()
    assert "combined index masks, 8-bit grayscale" in layout


@pytest.mark.parametrize("palette", [False, True])
def test_celebamask_combined_masks_import_grayscale_or_palette(celeb_project, tmp_path, palette):
    with ProjectStore.open(celeb_project) as store:
        export_dataset(store, tmp_path / "celeb", "celebamask-hq", split=(1, 0, 0))
    shutil.rmtree(tmp_path / "celeb" / "CelebAMask-HQ-mask-anno")
    if palette:
        for path in (tmp_path / "celeb" / "CelebAMask-HQ-mask").iterdir():
            image = Image.open(path)
            image.putpalette(CELEB.palette())
            image.save(path)
    with fresh_copy(celeb_project, tmp_path / "copy") as target:
        assert import_dataset(target, tmp_path / "celeb", "celebamask-hq").imported == len(MASKS)
        for name, mask in MASKS.items():
            assert np.array_equal(target.corrected_mask(target.find(name).id), mask)


# --- LabelMe: float vertices, shapes without an area, mask shapes ---------------------------------------------------

def labelme_dataset(folder, shapes_by_photo, sizes):
    """LabelMe files naming photos of the project (the files only, no photos beside them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, shapes in shapes_by_photo.items():
        height, width = sizes[name]
        document = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": name, "imageData": None,
                    "imageHeight": height, "imageWidth": width}
        (folder / name).with_suffix(".json").write_text(json.dumps(document))


def polygon(label, points, kind="polygon", **extra):
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind,
            "flags": {}, "mask": None, **extra}


def labelme_painting(shapes, size):
    """LabelMe's own converter: PIL polygons (fill and outline) with the class of each shape, in file order."""
    image = Image.new("L", (size[1], size[0]), 0)
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        value = C[shape["label"]]
        draw.polygon([tuple(p) for p in shape["points"]], fill=value, outline=value)
    return np.array(image)


@pytest.fixture
def blank_photos(tmp_path):
    """A project of two 24x24 photos without masks, and their sizes."""
    (tmp_path / "photos").mkdir()
    sizes = {"a.png": (24, 24), "b.png": (24, 24)}
    for i, name in enumerate(sizes):
        Image.fromarray(np.full((*sizes[name], 3), 40 * i, np.uint8)).save(tmp_path / "photos" / name)
    store = ProjectStore.create(tmp_path / "photos")
    store.scan()
    return store, sizes


def test_labelme_float_vertices_land_where_labelmes_converter_puts_them(blank_photos, tmp_path):
    store, sizes = blank_photos
    shapes = [polygon("skin", [[2.7, 3.6], [20.5, 3.2], [20.9, 19.8], [2.4, 19.1]]),
              polygon("l_eye", [[6.6, 6.7], [11.8, 6.3], [11.5, 10.6], [6.2, 10.9]]),
              polygon("nose", [[14.8, 12.5], [17.9, 12.9], [17.6, 15.7], [14.1, 15.5]])]
    labelme_dataset(tmp_path / "ds", {"a.png": shapes}, sizes)
    with store:
        import_dataset(store, tmp_path / "ds", "labelme")
        got = store.corrected_mask(store.find("a.png").id)
    expected = np.zeros(sizes["a.png"], np.uint8)
    expected[3:20, 2:21] = C["skin"]
    expected[6:11, 6:12] = C["l_eye"]
    expected[12:16, 14:18] = C["nose"]
    assert np.array_equal(labelme_painting(shapes, sizes["a.png"]), expected)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("points, kind, rows, cols", [
    ([[2.8, 3.9], [9.6, 12.5]], "rectangle", slice(3, 13), slice(2, 10)),  # corners floored
    ([[2, 2], [9, 2], [9, 6], [2, 6]], "oriented_rectangle", slice(2, 7), slice(2, 10)),
])
def test_labelme_rectangles_are_read_as_labelme_fills_them(blank_photos, tmp_path, points, kind, rows, cols):
    store, sizes = blank_photos
    labelme_dataset(tmp_path / "ds", {"a.png": [polygon("hat", points, kind=kind)]}, sizes)
    expected = np.zeros(sizes["a.png"], np.uint8)
    expected[rows, cols] = C["hat"]
    with store:
        import_dataset(store, tmp_path / "ds", "labelme")
        assert np.array_equal(store.corrected_mask(store.find("a.png").id), expected)


def test_yolo_coordinates_just_below_a_pixel_still_round_to_it(tmp_path):
    """Six decimals put 24/72 at 0.333333, 23.99998 pixels: the YOLO reader rounds, it does not floor."""
    mask = np.zeros((72, 72), np.uint8)
    mask[24:48, 24:48] = C["skin"]
    make_project(tmp_path / "faces", {"a.png": mask})
    with ProjectStore.open(tmp_path / "faces") as store:
        export_dataset(store, tmp_path / "yolo", "yolo", split=(1, 0, 0))
    assert "0.333333" in (tmp_path / "yolo" / "labels" / "train" / "a.txt").read_text()
    with fresh_copy(tmp_path / "faces", tmp_path / "copy") as target:
        import_dataset(target, tmp_path / "yolo", "yolo")
        assert np.array_equal(target.corrected_mask(target.find("a.png").id), mask)


def test_labelme_points_and_lines_are_left_out_with_a_note(blank_photos, tmp_path, capsys):
    store, sizes = blank_photos
    area = polygon("skin", [[2, 2], [20, 2], [20, 20], [2, 20]])
    landmarks = [polygon("nose", [[11, 11]], kind="point"), polygon("mouth", [[5, 15], [15, 15]], kind="line"),
                 polygon("l_brow", [[4, 5], [7, 4], [10, 5]], kind="linestrip"),
                 polygon("r_eye", [[14, 8], [16, 8]], kind="points")]
    labelme_dataset(tmp_path / "ds", {"a.png": [area, *landmarks], "b.png": landmarks[:1]}, sizes)
    store.close()
    code, out, err = run(capsys, "import", tmp_path / "photos", tmp_path / "ds", "-f", "labelme")
    assert code == 0, err
    assert "note: 5 LabelMe shapes without an area left out (1 line, 1 linestrip, 2 point, 1 points, in 2 files)" \
        in out
    assert "note: 1 LabelMe file holding only such shapes left out, rather than imported as all background" in out
    with ProjectStore.open(tmp_path / "photos") as store:
        expected = np.zeros(sizes["a.png"], np.uint8)
        expected[2:21, 2:21] = C["skin"]
        assert np.array_equal(store.corrected_mask(store.find("a.png").id), expected)
        assert store.find("b.png").status == "new"


def mask_shape(label, on, x, y):
    buffer = io.BytesIO()
    Image.fromarray(on).save(buffer, format="PNG")
    corners = [[x + 0.4, y + 0.9], [x + on.shape[1] - 1 + 0.6, y + on.shape[0] - 1 + 0.2]]
    return polygon(label, corners, kind="mask", mask=base64.b64encode(buffer.getvalue()).decode("ascii"))


def test_labelme_mask_shapes_are_placed_at_their_box(blank_photos, tmp_path):
    store, sizes = blank_photos
    on = np.zeros((5, 7), bool)
    on[1:4, 2:6] = True
    on[0, 0] = True
    over_the_edge = np.ones((4, 6), bool)
    shapes = [polygon("skin", [[1, 1], [15, 1], [15, 15], [1, 15]]), mask_shape("l_eye", on, 3, 4),
              mask_shape("hair", over_the_edge, 20, 21)]
    labelme_dataset(tmp_path / "ds", {"a.png": shapes}, sizes)
    expected = np.zeros(sizes["a.png"], np.uint8)
    expected[1:16, 1:16] = C["skin"]
    expected[4:9, 3:10][on] = C["l_eye"]
    expected[21:24, 20:24] = C["hair"]
    with store:
        import_dataset(store, tmp_path / "ds", "labelme")
        assert np.array_equal(store.corrected_mask(store.find("a.png").id), expected)


def test_a_labelme_mask_that_does_not_fit_its_box_is_a_problem(blank_photos, tmp_path):
    store, sizes = blank_photos
    shape = mask_shape("skin", np.ones((5, 7), bool), 3, 4)
    shape["points"][1][0] += 2
    labelme_dataset(tmp_path / "ds", {"a.png": [shape]}, sizes)
    with store, pytest.raises(ImportRefused, match="its PNG is 7x5, but its points span 9x5 pixels"):
        import_dataset(store, tmp_path / "ds", "labelme")


# --- COCO: box-only annotations -------------------------------------------------------------------------------------

def test_coco_box_only_annotations_are_left_out_with_a_note(celeb_project, tmp_path, capsys):
    with ProjectStore.open(celeb_project) as store:
        export_dataset(store, tmp_path / "coco", "coco", split=(1, 0, 0))
    path = tmp_path / "coco" / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    ring = next(i for i in data["images"] if i["file_name"] == "ring.png")
    skin = next(i for i in data["images"] if i["file_name"] == "skin.png")
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != skin["id"]]
    for image_id, count in ((ring["id"], 2), (skin["id"], 1)):
        data["annotations"] += [{"id": 1000 + image_id * 10 + k, "image_id": image_id, "category_id": 1,
                                 "segmentation": [], "area": 20.0, "bbox": [1, 1, 4, 5], "iscrowd": 0}
                                for k in range(count)]
    del data["annotations"][-1]["segmentation"]  # detection files often leave the key out altogether
    path.write_text(json.dumps(data))

    with fresh_copy(celeb_project, tmp_path / "copy") as target:
        report = import_dataset(target, tmp_path / "coco", "coco")
        assert report.imported == 1
        assert np.array_equal(target.corrected_mask(target.find("ring.png").id), MASKS["ring.png"])
        assert target.find("skin.png").status == "new"
    assert report.notes == [f"{path}: 3 box-only COCO annotations left out (no segmentation, or an empty one: no "
                            "pixels)",
                            f"{path}: 1 image with only box-only annotations left out rather than imported as all "
                            "background: skin.png"]
    assert "Notes (2):\n  - " + report.notes[0] in report_text(report)

    code, out, err = run(capsys, "import", tmp_path / "copy", tmp_path / "coco", "-f", "coco", "--dry-run")
    assert code == 0, err
    assert f"note: {report.notes[0]}" in out


# --- YOLO: Roboflow's layout -----------------------------------------------------------------------------------------

def roboflow_layout(yolo, target):
    """The export rearranged as Roboflow writes it: <split>/images, <split>/labels, `../<split>/images` paths."""
    for split, renamed in (("train", "train"), ("val", "valid")):
        for kind in ("images", "labels"):
            if (yolo / kind / split).is_dir():
                shutil.copytree(yolo / kind / split, target / renamed / kind)
    names = yaml.safe_load((yolo / "data.yaml").read_text())["names"]
    data = {"train": "../train/images", "val": "../valid/images", "nc": len(names),
            "names": [names[k] for k in sorted(names)]}
    (target / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_yolo_import_reads_the_roboflow_layout(celeb_project, tmp_path):
    with ProjectStore.open(celeb_project) as store:
        export_dataset(store, tmp_path / "yolo", "yolo", split=(0.5, 0.5, 0))
    roboflow_layout(tmp_path / "yolo", tmp_path / "roboflow")
    assert {p.parent.parent.name for p in (tmp_path / "roboflow").glob("*/labels/*.txt")} == {"train", "valid"}
    with fresh_copy(celeb_project, tmp_path / "copy") as target:
        report = import_dataset(target, tmp_path / "roboflow", "yolo")
        assert report.imported == len(MASKS) and not report.notes
        for name, mask in MASKS.items():
            assert np.array_equal(target.corrected_mask(target.find(name).id), mask)


def test_index_pngs_in_the_mmsegmentation_layout_import_from_the_dataset_root(blank_photos, tmp_path):
    store, sizes = blank_photos
    root = tmp_path / "mmseg"
    expected = {}
    for i, (name, size) in enumerate(sizes.items()):
        split = ("train", "val")[i % 2]
        (root / "img_dir" / split).mkdir(parents=True, exist_ok=True)
        (root / "ann_dir" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((*size, 3), np.uint8)).save(root / "img_dir" / split / name)
        mask = np.zeros(size, np.uint8)
        mask[2:10, 3:12] = C["skin"] + i
        Image.fromarray(mask).save(root / "ann_dir" / split / name)
        expected[name] = mask
    with store:
        report = import_dataset(store, root, "index-png")
        assert report.imported == len(sizes)
        for name, mask in expected.items():
            assert np.array_equal(store.corrected_mask(store.find(name).id), mask)
