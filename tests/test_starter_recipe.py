"""The starter parser's recipe (benchmarks/train_starter_parser.py): the edge-aware loss, the rare-class crops and
the copy-paste of jewellery."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

_spec = importlib.util.spec_from_file_location(
    "train_starter_parser", Path(__file__).resolve().parents[1] / "benchmarks" / "train_starter_parser.py")
recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipe)


def test_near_edges_marks_a_band_on_both_sides_of_a_label_change():
    target = torch.zeros(1, 6, 10, dtype=torch.long)
    target[0, :, 5:] = 3
    band = recipe.near_edges(target, radius=2)
    assert band[0, 0].tolist() == [False, False, False, True, True, True, True, False, False, False]
    assert band.all(dim=1).equal(band.any(dim=1))


def test_the_ignored_fill_at_the_border_is_not_a_label_edge():
    target = torch.full((1, 8, 12), 3, dtype=torch.long)
    target[0, :, :2] = recipe.IGNORE  # what a shift leaves at the border
    assert not recipe.near_edges(target, radius=2).any()
    target[0, :, 8:] = 5
    band = recipe.near_edges(target, radius=2)
    assert band[0, 0].tolist() == [False] * 6 + [True] * 4 + [False] * 2
    assert not band[0, :, :2].any()


def test_without_edge_weight_the_loss_is_the_class_weighted_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 16, 16)
    target = torch.randint(0, 5, (2, 16, 16))
    target[0, :3] = recipe.IGNORE
    weights = torch.tensor([0.5, 1.0, 2.0, 3.0, 1.5])
    expected = F.cross_entropy(logits, target, weight=weights, ignore_index=recipe.IGNORE)
    assert recipe.edge_weighted_ce(logits, target, weights, 0.0).item() == pytest.approx(expected.item(), rel=1e-6)


def test_edge_weight_makes_mistakes_at_the_edge_cost_more_than_inside():
    target = torch.zeros(1, 12, 12, dtype=torch.long)
    target[0, :, 6:] = 1
    weights = torch.ones(2)
    right = F.one_hot(target, 2).permute(0, 3, 1, 2).float() * 8
    edge_miss, inside_miss = right.clone(), right.clone()
    edge_miss[0, :, :, 6] = edge_miss[0, :, :, 6].flip(0)
    inside_miss[0, :, :, 11] = inside_miss[0, :, :, 11].flip(0)
    for w in (0.0, 2.0):
        edge = recipe.edge_weighted_ce(edge_miss, target, weights, w)
        inside = recipe.edge_weighted_ce(inside_miss, target, weights, w)
        assert (edge > inside * 1.5) if w else edge == pytest.approx(inside.item())


def test_rare_crop_contains_the_rare_class_at_the_face_scale():
    mask = np.zeros((512, 512), np.uint8)
    mask[470:480, 20:30] = 16
    image = np.dstack([mask * 10] * 3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        img, m = recipe.rare_crop(image, mask, [16], 256, rng)
        assert img.shape == (256, 256, 3) and m.shape == (256, 256)
        assert (m == 16).any()
        assert np.array_equal(img[..., 0], m * 10)


def test_rare_crop_of_a_face_without_the_class_is_still_a_full_size_crop():
    mask = np.ones((300, 400), np.uint8)
    img, m = recipe.rare_crop(np.zeros((300, 400, 3), np.uint8), mask, [16], 256, np.random.default_rng(1))
    assert img.shape == (256, 256, 3) and m.shape == (256, 256)


def _face(ear_col: int | None, neck_rows: slice, level: int) -> tuple[np.ndarray, np.ndarray]:
    """A 64 px face: skin above, neck below; an ear at `ear_col` when given; flat colour `level`."""
    mask = np.zeros((64, 64), np.uint8)
    mask[8:40, 16:48] = recipe.CLASSES.index("skin")
    mask[neck_rows, 24:40] = recipe.CLASSES.index("neck")
    if ear_col is not None:
        mask[20:30, ear_col:ear_col + 4] = recipe.CLASSES.index("l_ear")
    return np.full((64, 64, 3), level, np.uint8), mask


def _jewellery(donor_mask: np.ndarray) -> np.ndarray:
    donor_mask = donor_mask.copy()
    donor_mask[32:36, 12:15] = recipe.CLASSES.index("ear_r")  # an earring beside the face's left ear
    donor_mask[42:50, 26:38] = recipe.CLASSES.index("neck_l")  # a necklace across the neck
    return donor_mask


def test_plain_paste_copies_every_jewellery_pixel():
    img, mask = _face(12, slice(40, 56), 100)
    donor_img, donor_mask = _face(12, slice(40, 56), 200)
    out, pasted = recipe.paste_rare(img, mask, donor_img, _jewellery(donor_mask), [15, 16])
    assert (pasted == 15).sum() == 12 and (pasted == 16).sum() == 96
    assert out[46, 30].tolist() == [200, 200, 200]


def test_blended_paste_keeps_pieces_that_fit_the_face_in_its_light():
    img, mask = _face(12, slice(40, 56), 120)
    donor_img, donor_mask = _face(12, slice(40, 56), 160)
    donor_img[42:50, 26:38] = 100  # the necklace is darker than the donor's skin
    out, pasted = recipe.paste_blended(img, mask, donor_img, _jewellery(donor_mask), [15, 16])
    assert (pasted == 15).sum() == 12 and (pasted == 16).sum() == 96
    assert out[46, 30].tolist() == [75, 75, 75]  # 100 scaled by the skin ratio 120 / 160


def test_blended_paste_leaves_out_an_earring_far_from_any_ear_and_a_necklace_off_the_neck():
    img, mask = _face(None, slice(40, 42), 80)  # no ear; the neck ends above the necklace
    donor_img, donor_mask = _face(12, slice(40, 56), 160)
    out, pasted = recipe.paste_blended(img, mask, donor_img, _jewellery(donor_mask), [15, 16])
    assert not np.isin(pasted, [15, 16]).any()
    assert np.array_equal(out, img) and np.array_equal(pasted, mask)


def test_copy_encoder_moves_a_trained_default_parsers_encoder_into_the_unet_and_leaves_its_decoder():
    from faceparse.models import build_model

    torch.manual_seed(0)
    trained = build_model("deeplabv3plus_mobilenetv2", classes=5)
    unet = build_model("unet_mobilenetv2", classes=5)
    decoder_before = {k: v.clone() for k, v in unet.decoder.state_dict().items()}
    recipe.copy_encoder(unet, {k: v.half() for k, v in trained.state_dict().items()})
    for key, value in trained.encoder.state_dict().items():
        assert torch.equal(unet.encoder.state_dict()[key], value.half().float()), key
    assert all(torch.equal(unet.decoder.state_dict()[k], v) for k, v in decoder_before.items())


def test_copy_encoder_refuses_weights_without_the_whole_encoder():
    from faceparse.models import build_model

    unet = build_model("unet_mobilenetv2", classes=5)
    partial = {k: v for k, v in unet.state_dict().items() if k.startswith("encoder.") and "features.18" not in k}
    with pytest.raises(RuntimeError, match="Missing key"):
        recipe.copy_encoder(unet, partial)


def test_a_trained_default_parser_starts_the_refined_one_with_the_same_output():
    from faceparse.models import build_model

    torch.manual_seed(0)
    trained = build_model("deeplabv3plus_mobilenetv2", classes=5).eval()
    refined = build_model("deeplabv3plus_mobilenetv2_refined", classes=5).eval()
    added = recipe.load_init(refined, trained.state_dict())
    assert added and all(k.startswith("refinement.") for k in added)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.allclose(refined(x), trained(x), atol=1e-6)


def test_load_init_refuses_weights_of_another_network():
    from faceparse.models import build_model

    unet = build_model("unet_mobilenetv2", classes=5)
    with pytest.raises(RuntimeError, match="do not fit"):
        recipe.load_init(unet, build_model("deeplabv3plus_mobilenetv2", classes=5).state_dict())


def test_the_refined_parser_refuses_a_size_its_encoder_cannot_divide_with_the_same_message_as_smp():
    from faceparse.models import build_model

    with pytest.raises(RuntimeError, match="Wrong input shape"):
        build_model("deeplabv3plus_mobilenetv2_refined", classes=3).eval()(torch.randn(1, 3, 70, 64))
