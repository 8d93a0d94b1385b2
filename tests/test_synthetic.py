import json

import cv2
import numpy as np
import pytest
from faceparse.core.imageio import load_mask, load_rgb
from faceparse.core.schemas import SchemaError, get_schema, load_schema_json
from faceparse.core.synthetic import draw_face, draw_scene, make_synthetic_folder

CELEB = get_schema("celebamask-hq")


def cls(name):
    return CELEB.index(name)


def centroid_x(mask, name):
    xs = np.nonzero(mask == cls(name))[1]
    return xs.mean() if xs.size else None


def test_shapes_dtypes_and_sizes():
    for size in (64, 128, 300):
        image, mask = draw_face(1, size=size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        assert mask.shape == (size, size) and mask.dtype == np.uint8
        assert mask.max() < CELEB.num_classes


def test_same_seed_same_face_other_seed_other_face():
    a_img, a_mask = draw_face(7, size=96)
    b_img, b_mask = draw_face(7, size=96)
    c_img, c_mask = draw_face(8, size=96)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert not np.array_equal(a_img, c_img) and not np.array_equal(a_mask, c_mask)


def test_every_part_appears_across_seeds():
    seen = set()
    for seed in range(90):
        seen |= set(np.unique(draw_face(seed, size=128)[1]).tolist())
    assert seen == set(range(CELEB.num_classes))


def test_core_parts_in_every_face():
    for seed in range(12):
        mask = draw_face(seed, size=128, face_mask=False)[1]
        present = set(np.unique(mask).tolist())
        for name in ("skin", "nose", "l_eye", "r_eye", "u_lip", "l_lip", "neck", "cloth"):
            assert cls(name) in present, (seed, name)


def test_left_parts_are_on_the_image_right():
    for seed in range(15):
        mask = draw_face(seed, size=128, glasses=False, face_mask=False)[1]
        for left, right in (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")):
            lx, rx = centroid_x(mask, left), centroid_x(mask, right)
            if lx is not None and rx is not None:
                assert lx > rx, (seed, left)
        assert centroid_x(mask, "l_eye") > centroid_x(mask, "nose") > centroid_x(mask, "r_eye")


def test_glasses_flag():
    for seed in range(5):
        assert cls("eye_g") in draw_face(seed, size=128, glasses=True)[1]
        assert cls("eye_g") not in draw_face(seed, size=128, glasses=False)[1]


def test_face_mask_flag_and_default():
    for seed in range(4):
        assert 2 in draw_face(seed, size=128, schema="masked-faces", face_mask=True)[1]
        assert 1 in draw_face(seed, size=128, schema="face-mask", face_mask=True)[1]
        assert 2 not in draw_face(seed, size=128, schema="masked-faces", face_mask=False)[1]
    with_masks = sum(2 in draw_face(s, size=64, schema="masked-faces")[1] for s in range(40))
    assert 3 < with_masks < 30
    assert not any(draw_face(s, size=64, schema="celebamask-hq")[1].max() == 255 for s in range(5))


def test_face_mask_hides_the_mouth():
    image, mask = draw_face(3, size=128, face_mask=True)
    assert cls("u_lip") not in mask and cls("l_lip") not in mask and cls("mouth") not in mask


def test_other_schemas_follow_the_declared_mapping_and_same_picture():
    for seed in range(6):
        img_c, mask_c = draw_face(seed, size=128, face_mask=False)
        for target in ("lapa", "masked-faces"):
            img_t, mask_t = draw_face(seed, size=128, schema=target, face_mask=False)
            assert np.array_equal(img_c, img_t)
            assert np.array_equal(mask_t, CELEB.map_mask(mask_c, target))
        img_f, mask_f = draw_face(seed, size=128, schema="face-mask", face_mask=False)
        assert np.array_equal(img_c, img_f) and mask_f.max() == 0


def test_masked_faces_and_face_mask_agree():
    for seed in range(4):
        mf = draw_face(seed, size=128, schema="masked-faces", face_mask=True)[1]
        fm = draw_face(seed, size=128, schema="face-mask", face_mask=True)[1]
        assert np.array_equal(get_schema("masked-faces").map_mask(mf, "face-mask"), fm)


def test_custom_schema_by_class_names(tmp_path):
    p = tmp_path / "hs.json"
    p.write_text(json.dumps({"name": "hair-skin", "classes": ["background", "hair", "skin"],
                             "colors": [[0, 0, 0], [1, 1, 1], [2, 2, 2]]}))
    schema = load_schema_json(p)
    celeb_mask = draw_face(5, size=128)[1]
    mask = draw_face(5, size=128, schema=schema)[1]
    assert set(np.unique(mask).tolist()) <= {0, 1, 2}
    assert np.array_equal(mask == 1, celeb_mask == cls("hair"))
    assert np.array_equal(mask == 2, celeb_mask == cls("skin"))
    p.write_text(json.dumps({"name": "cars", "classes": ["background", "wheel"], "colors": [[0, 0, 0], [1, 1, 1]]}))
    with pytest.raises(SchemaError, match="shares no class"):
        draw_face(5, size=64, schema=load_schema_json(p))


def test_mask_edges_are_picture_edges():
    """Exact ground truth: the picture changes where the mask changes, and is smooth inside regions."""
    for seed in range(4):
        image, mask = draw_face(seed, size=256, background="plain")
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grad = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        edges = cv2.dilate((cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0)
                           .astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert grad[edges].mean() > 3 * grad[~edges].mean(), seed


def test_backgrounds():
    plain = draw_face(2, size=64, background="plain")[0]
    none = draw_face(2, size=64, background="none")[0]
    assert plain[0, 0].mean() > 15 and none[0, 0].max() < 20
    with pytest.raises(ValueError, match="background"):
        draw_face(2, background="forest")


def test_scene_with_several_faces():
    image, mask, boxes = draw_scene(11, size=(320, 240), faces=3)
    assert image.shape == (240, 320, 3) and mask.shape == (240, 320)
    assert len(boxes) == 3
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
        assert (mask[y0:y1, x0:x1] == cls("skin")).mean() > 0.2
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], "faces overlap"
    outside = np.ones(mask.shape, bool)
    for x0, y0, x1, y1 in boxes:
        outside[y0:y1, x0:x1] = False
    assert not np.isin(mask[outside], [cls("nose"), cls("l_eye"), cls("r_eye")]).any()
    again = draw_scene(11, size=(320, 240), faces=3)
    assert np.array_equal(again[0], image) and again[2] == boxes


def test_scene_faces_differ_in_size():
    widths = set()
    for seed in range(3):
        widths |= {x1 - x0 for x0, _, x1, _ in draw_scene(seed, size=(400, 300), faces=4)[2]}
    assert max(widths) > 1.5 * min(widths)


def test_scene_in_lapa():
    _, mask, _ = draw_scene(4, size=(200, 160), faces=2, schema="lapa")
    assert mask.max() < 11 and (mask == 1).any()


def test_synthetic_folder(tmp_path):
    paths = make_synthetic_folder(tmp_path / "imgs", 4, size=64, seed=3, schema="lapa",
                                  masks_folder=tmp_path / "masks")
    assert [p.name for p in paths] == [f"synthetic_{i:05d}.jpg" for i in range(4)]
    for p in paths:
        assert load_rgb(p).shape == (64, 64, 3)
        mask = load_mask(tmp_path / "masks" / f"{p.stem}.png")
        assert mask.shape == (64, 64) and mask.max() < 11
    again = make_synthetic_folder(tmp_path / "again", 4, size=64, seed=3, schema="lapa")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]
    other = make_synthetic_folder(tmp_path / "other", 2, size=64, seed=4, ext="png")
    assert other[0].suffix == ".png" and other[0].read_bytes() != paths[0].read_bytes()
    assert not list((tmp_path / "imgs").glob(".*"))
