import json

import numpy as np
import pytest
from faceparse.core.schemas import (
    LabelSchema,
    SchemaError,
    builtin_schema_names,
    get_schema,
    load_schema_json,
    resolve_schema,
)

CELEB = ["background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
         "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]
LAPA = ["background", "skin", "left_brow", "right_brow", "left_eye", "right_eye", "nose", "upper_lip",
        "inner_mouth", "lower_lip", "hair"]


def test_builtin_names_and_class_orders():
    assert set(builtin_schema_names()) == {"celebamask-hq", "lapa", "face-mask", "masked-faces"}
    assert list(get_schema("celebamask-hq").classes) == CELEB
    assert list(get_schema("lapa").classes) == LAPA
    assert get_schema("face-mask").classes == ("background", "face_mask")
    assert get_schema("masked-faces").classes == ("background", "face", "face_mask")


def test_builtin_flip_pairs_and_colors():
    celeb = get_schema("celebamask-hq")
    assert celeb.flip_pairs == ((4, 5), (6, 7), (8, 9))
    assert get_schema("lapa").flip_pairs == ((2, 3), (4, 5))
    for name in builtin_schema_names():
        s = get_schema(name)
        assert len(s.colors) == s.num_classes
        assert len(set(s.colors)) == s.num_classes, f"{name} has two classes with one colour"


def test_unknown_schema_lists_known_names():
    with pytest.raises(KeyError, match="celebamask-hq"):
        get_schema("helen")


def test_index_by_name():
    s = get_schema("celebamask-hq")
    assert s.index("hair") == 13
    with pytest.raises(KeyError, match="no class 'beard'"):
        s.index("beard")


def test_flip_lut_is_an_involution_that_swaps_pairs():
    s = get_schema("celebamask-hq")
    lut = s.flip_lut()
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    assert (lut[4], lut[5], lut[6], lut[7], lut[8], lut[9]) == (5, 4, 7, 6, 9, 8)
    assert lut[1] == 1 and lut[13] == 13
    assert np.array_equal(lut[lut], np.arange(256))


def test_flip_mask_mirrors_and_swaps():
    s = get_schema("celebamask-hq")
    mask = np.zeros((4, 6), np.uint8)
    mask[1, 4] = s.index("l_eye")  # subject's left eye sits in the image's right half
    mask[2, 0] = s.index("hair")
    flipped = s.flip_mask(mask)
    assert flipped[1, 1] == s.index("r_eye")
    assert flipped[2, 5] == s.index("hair")
    assert np.array_equal(s.flip_mask(flipped), mask)


def test_map_celebamask_to_lapa():
    celeb, lapa = get_schema("celebamask-hq"), get_schema("lapa")
    names = {c: lapa.classes[celeb.mapping_lut("lapa")[i]] for i, c in enumerate(CELEB)}
    assert names["nose"] == "nose"
    assert names["mouth"] == "inner_mouth"
    assert names["u_lip"] == "upper_lip" and names["l_lip"] == "lower_lip"
    assert names["hair"] == "hair" and names["skin"] == "skin"
    assert names["eye_g"] == "skin"
    for c in ("hat", "ear_r", "neck_l", "neck", "cloth"):
        assert names[c] == "background"
    # the subject's left eye (image right) is LaPa's right_eye (image side)
    assert names["l_eye"] == "right_eye" and names["r_brow"] == "left_brow"


def test_mappings_commute_with_flip():
    """Flipping then mapping equals mapping then flipping: left/right mappings stay consistent."""
    celeb = get_schema("celebamask-hq")
    rng = np.random.default_rng(0)
    mask = rng.integers(0, celeb.num_classes, (8, 9), dtype=np.uint8)
    for target in celeb.mappings:
        t = get_schema(target)
        assert np.array_equal(celeb.map_mask(celeb.flip_mask(mask), target), t.flip_mask(celeb.map_mask(mask, target)))


def test_masked_faces_to_face_mask():
    s = get_schema("masked-faces")
    assert np.array_equal(s.map_mask(np.array([[0, 1, 2]], np.uint8), "face-mask"), [[0, 0, 1]])


def test_map_to_self_is_identity_and_unknown_target_is_clear():
    s = get_schema("lapa")
    m = np.array([[0, 10, 3]], np.uint8)
    assert np.array_equal(s.map_mask(m, "lapa"), m)
    with pytest.raises(KeyError, match="no mapping to 'face-mask'"):
        s.map_mask(m, "face-mask")
    with pytest.raises(ValueError, match="outside schema"):
        s.map_mask(np.array([[11]], np.uint8), "masked-faces")


def test_palette_has_768_values_starting_with_class_colors():
    s = get_schema("lapa")
    pal = s.palette()
    assert len(pal) == 768
    assert tuple(pal[3:6]) == s.colors[1]
    assert pal[3 * s.num_classes:] == [0] * (768 - 3 * s.num_classes)


def test_dict_roundtrip_keeps_everything():
    for name in builtin_schema_names():
        s = get_schema(name)
        back = LabelSchema.from_dict(json.loads(json.dumps(s.to_dict())))
        assert back == s and back.mappings == s.mappings and back.descriptions == s.descriptions


def test_every_builtin_class_is_described_and_the_cryptic_names_say_what_they_are():
    for name in builtin_schema_names():
        s = get_schema(name)
        assert all(s.describe(i) for i in range(1, s.num_classes)), name
    celeb = get_schema("celebamask-hq")
    assert [celeb.describe(celeb.index(c)) for c in ("ear_r", "neck_l")] == ["earring", "necklace"]
    assert "glasses" in celeb.describe(celeb.index("eye_g"))
    assert "image's right" in celeb.describe(celeb.index("l_eye"))
    assert celeb.describe(99) == "" and celeb.describe(0) == ""


def test_a_project_schema_saved_without_descriptions_borrows_the_builtin_ones_only_if_its_classes_match():
    data = get_schema("celebamask-hq").to_dict()
    del data["descriptions"]
    assert LabelSchema.from_dict(data).describe(16) == "necklace"
    data["classes"] = [*data["classes"][:-1], "coat"]
    assert LabelSchema.from_dict(data).describe(16) == ""


def _write(tmp_path, data, name="custom.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_custom_schema_from_json(tmp_path):
    p = _write(tmp_path, {
        "name": "hands",
        "classes": ["background", "left_hand", "right_hand", "face"],
        "colors": [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
        "flip_pairs": [[1, 2]],
        "mappings": {"masked-faces": {"background": "background", "left_hand": 0, "right_hand": 0, "face": "face"}},
    })
    s = load_schema_json(p)
    assert s.name == "hands" and s.num_classes == 4
    assert s.mappings["masked-faces"] == (0, 0, 0, 1)
    assert resolve_schema(str(p)) == s
    assert resolve_schema("lapa") is get_schema("lapa")


BASE = {"name": "x", "classes": ["background", "a", "b"], "colors": [[0, 0, 0], [1, 1, 1], [2, 2, 2]]}


@pytest.mark.parametrize(("change", "message"), [
    ({"classes": ["background", "a", "a"]}, "duplicate class names: a"),
    ({"classes": ["a", "background", "b"]}, "must be 'background'"),
    ({"colors": [[0, 0, 0], [1, 1, 1]]}, "3 classes but 2 colors"),
    ({"colors": [[0, 0, 0], [1, 1, 1], [2, 2, 300]]}, "three integers 0-255"),
    ({"flip_pairs": [[1, 3]]}, "outside 1..2"),
    ({"flip_pairs": [[0, 1]]}, "outside 1..2"),
    ({"flip_pairs": [[1, 1]]}, "with itself"),
    ({"mappings": {"lapa": [0, 1]}}, "2 entries for 3 classes"),
    ({"mappings": {"lapa": {"background": "background", "a": "skin"}}}, "does not say where b go"),
    ({"mappings": {"lapa": {"background": "background", "a": "skin", "b": "beard"}}}, "does not have"),
    ({"mappings": {"lapa": [0, 1, 11]}}, "beyond its 11 classes"),
    ({"mappings": {"mystery": {"background": "background", "a": "x", "b": "y"}}}, "not a known schema"),
    ({"descriptions": {"c": "a class that is not there"}}, "'c', which is not one of its classes"),
    ({"descriptions": {"a": 3}}, "must be text"),
    ({"descriptions": ["a"]}, "must be an object"),
    ({"name": "celebamask-hq"}, "the name of a built-in schema with other classes"),
])
def test_invalid_custom_schemas_name_the_problem_and_file(tmp_path, change, message):
    p = _write(tmp_path, {**BASE, **change})
    with pytest.raises(SchemaError, match=message) as err:
        load_schema_json(p)
    assert str(p) in str(err.value)


def test_missing_key_and_broken_json(tmp_path):
    with pytest.raises(SchemaError, match="missing required key 'colors'"):
        load_schema_json(_write(tmp_path, {"name": "x", "classes": ["background", "a"]}))
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        load_schema_json(bad)
    with pytest.raises(SchemaError, match="cannot read schema file"):
        load_schema_json(tmp_path / "absent.json")


def test_a_copy_of_a_builtin_schema_file_keeps_its_name(tmp_path):
    p = _write(tmp_path, get_schema("lapa").to_dict())
    assert load_schema_json(p) == get_schema("lapa")
