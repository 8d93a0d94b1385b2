import threading

import numpy as np
import pytest
import torch
from faceparse.core.pretrain import PretrainConfig, central_patch_mask, masked_batch, masked_pretrain
from faceparse.core.synthetic import draw_face


def test_patches_stay_inside_the_central_region():
    rng = np.random.default_rng(3)
    hidden = central_patch_mask(96, 120, rng, patches=200)
    assert hidden.any()
    ys, xs = np.nonzero(hidden)
    assert ys.min() >= 96 // 6 and ys.max() < 5 * 96 // 6
    assert xs.min() >= 120 // 6 and xs.max() < 5 * 120 // 6


def test_patch_size_scales_with_the_image():
    rng = np.random.default_rng(0)
    small = central_patch_mask(128, 128, rng, patches=1, patch_range=(32, 64))
    side = int(np.sqrt(small.sum()))
    assert 8 <= side <= 16  # 32-64 px at 512 becomes 8-16 px at 128


def test_masked_batch_hides_pixels_only_in_the_input():
    config = PretrainConfig(input_size=64, patches=20)
    images = [draw_face(i, 96)[0] for i in range(2)]
    masked, original = masked_batch(images, np.random.default_rng(0), config)
    assert masked.shape == original.shape == (2, 3, 64, 64)
    differs = (masked != original).any(dim=1)
    assert differs.any()
    border = torch.ones(64, 64, dtype=torch.bool)
    border[64 // 6:5 * 64 // 6, 64 // 6:5 * 64 // 6] = False
    assert not differs[:, border].any()


def test_pretraining_lowers_the_reconstruction_loss_and_transfers_to_a_parser():
    images = [draw_face(i, 96)[0] for i in range(16)]
    losses = []
    config = PretrainConfig(input_size=64, steps=30, batch_size=4, lr=3e-3, imagenet_init=False, patches=16)
    net = masked_pretrain(images, config, on_event=lambda e: losses.append(e["loss"]))
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    parser = net.make_parser(classes=19)
    assert torch.equal(parser.encoder.state_dict()["features.0.0.weight"],
                       net.encoder.state_dict()["features.0.0.weight"])
    parser.eval()
    with torch.no_grad():
        assert parser(torch.zeros(1, 3, 64, 64)).shape == (1, 19, 64, 64)


def test_pretraining_refuses_too_few_images_and_can_be_cancelled():
    images = [draw_face(i, 64)[0] for i in range(16)]
    with pytest.raises(ValueError, match="at least"):
        masked_pretrain(images[:3], PretrainConfig(input_size=64))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InterruptedError):
        masked_pretrain(images, PretrainConfig(input_size=64, imagenet_init=False), cancel=cancel)
