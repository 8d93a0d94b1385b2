"""The starter parser's recipe (benchmarks/train_starter_parser.py): the edge-aware loss and the rare-class crops."""
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
