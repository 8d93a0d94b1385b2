"""Losses: ~0 for a perfect prediction, larger for a wrong one, differentiable; the reconstruction loss sees only the
central region."""

import pytest
import torch
from faceparse.models.losses import (
    HybridMaskLoss,
    ParsingLoss,
    binary_focal_loss,
    binary_logit,
    central_reconstruction_loss,
    central_region,
    focal_cross_entropy,
    iou_loss,
    soft_dice_loss,
    ssim_loss,
)

CONFIDENCE = 20.0


def parsing_case(classes: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (2, 16, 16), generator=generator)
    perfect = torch.nn.functional.one_hot(target, classes).permute(0, 3, 1, 2).float() * CONFIDENCE
    wrong = (
        torch.nn.functional.one_hot((target + 1) % classes, classes).permute(0, 3, 1, 2).float() * CONFIDENCE
    )
    return target, perfect, wrong


def mask_case():
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, 8:24, 6:20] = 1
    perfect = torch.where(target.unsqueeze(1) == 1, CONFIDENCE, -CONFIDENCE)
    wrong = -perfect
    return target, perfect, wrong


def assert_perfect_wrong_and_differentiable(loss_fn, target, perfect, wrong):
    assert float(loss_fn(perfect, target)) < 1e-3
    assert float(loss_fn(wrong, target)) > 0.1
    blurred = (0.1 * wrong).requires_grad_(True)
    value = loss_fn(blurred, target)
    value.backward()
    assert blurred.grad is not None and float(blurred.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    "loss_fn",
    [
        lambda logits, target: focal_cross_entropy(logits, target),
        lambda logits, target: focal_cross_entropy(logits, target, gamma=2.0),
        lambda logits, target: soft_dice_loss(logits, target),
        ParsingLoss(),
        ParsingLoss(focal_gamma=2.0, class_weights=[0.5, 1.0, 2.0, 4.0]),
    ],
    ids=["cross_entropy", "focal", "dice", "parsing", "parsing_weighted_focal"],
)
def test_parsing_losses(loss_fn):
    assert_perfect_wrong_and_differentiable(loss_fn, *parsing_case())


def test_parsing_loss_ignores_unlabelled_pixels_and_weights_classes():
    target, perfect, wrong = parsing_case()
    mixed = perfect.clone()
    unlabeled = target.clone()
    unlabeled[:, :8] = 255
    mixed[:, :, :8] = wrong[:, :, :8]
    assert float(ParsingLoss()(mixed, unlabeled)) < 1e-3
    assert float(ParsingLoss()(mixed, target)) > 0.1

    heavy_on_0 = ParsingLoss(ce_weight=1.0, dice_weight=0.0, class_weights=[10.0, 1.0, 1.0, 1.0])
    only_class_0_wrong = perfect.clone()
    is_0 = (target == 0).unsqueeze(1).expand_as(perfect)
    only_class_0_wrong[is_0] = wrong[is_0]
    plain = ParsingLoss(ce_weight=1.0, dice_weight=0.0)
    assert float(heavy_on_0(only_class_0_wrong, target)) > float(plain(only_class_0_wrong, target))


@pytest.mark.parametrize(
    "loss_fn",
    [binary_focal_loss, ssim_loss, iou_loss, HybridMaskLoss()],
    ids=["focal", "ssim", "iou", "hybrid"],
)
def test_binary_losses_on_one_logit_and_on_two_class_logits(loss_fn):
    target, perfect, wrong = mask_case()
    assert_perfect_wrong_and_differentiable(loss_fn, target, perfect, wrong)

    def two_class(logits):
        return torch.cat([-0.5 * logits, 0.5 * logits], dim=1)

    assert torch.allclose(binary_logit(two_class(perfect)), perfect)
    assert float(loss_fn(two_class(wrong), target)) == pytest.approx(float(loss_fn(wrong, target)), rel=1e-5)


def test_binary_focal_uses_alpha_for_the_mask_class():
    target = torch.ones(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 1, 4, 4)
    # p = 0.5 on mask pixels: alpha * 0.5^2 * log 2
    assert float(binary_focal_loss(logits, target)) == pytest.approx(
        0.3 * 0.25 * torch.log(torch.tensor(2.0)).item()
    )
    assert float(binary_focal_loss(logits, 1 - target)) == pytest.approx(
        0.7 * 0.25 * torch.log(torch.tensor(2.0)).item()
    )


def test_hybrid_loss_sums_over_every_side_output():
    target, perfect, wrong = mask_case()
    loss = HybridMaskLoss()
    sides = [perfect] + [wrong] * 7
    assert float(loss(sides, target)) == pytest.approx(
        float(loss(perfect, target)) + 7 * float(loss(wrong, target))
    )
    assert float(loss([perfect] * 8, target)) < 1e-2


def test_central_reconstruction_loss_ignores_pixels_outside_the_region():
    assert central_region(60, 96) == (slice(10, 50), slice(16, 80))
    generator = torch.Generator().manual_seed(0)
    original = torch.rand(2, 3, 60, 96, generator=generator)
    reconstruction = original.clone()
    reconstruction[..., :10, :] = 5.0
    reconstruction[..., 50:, :] = -5.0
    reconstruction[..., :, :16] = 7.0
    reconstruction[..., :, 80:] = 7.0
    for kind in ("mse", "l1"):
        assert float(central_reconstruction_loss(reconstruction, original, kind)) == 0.0
    inside = reconstruction.clone().requires_grad_(True)
    with torch.no_grad():
        inside[..., 30, 40] += 1.0
    value = central_reconstruction_loss(inside, original)
    assert float(value.detach()) > 0
    value.backward()
    assert float(inside.grad[..., :10, :].abs().sum()) == 0.0
    assert float(inside.grad[..., 30, 40].abs().sum()) > 0
    with pytest.raises(ValueError):
        central_reconstruction_loss(reconstruction, original, "huber")


def test_lovasz_softmax_equals_one_minus_iou_on_hard_predictions():
    from faceparse.models.losses import lovasz_softmax_loss

    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (2, 9, 11), generator=gen)
    predicted = torch.where(torch.rand(target.shape, generator=gen) < 0.7, target,
                            torch.randint(0, 5, target.shape, generator=gen))
    logits = torch.nn.functional.one_hot(predicted, 5).permute(0, 3, 1, 2).float() * 50.0
    expected = []
    for c in torch.unique(target).tolist():
        inter = ((target == c) & (predicted == c)).sum().item()
        union = ((target == c) | (predicted == c)).sum().item()
        expected.append(1.0 - inter / union)
    assert lovasz_softmax_loss(logits, target).item() == pytest.approx(sum(expected) / len(expected), abs=1e-5)
    assert lovasz_softmax_loss(logits, predicted).item() == pytest.approx(0.0, abs=1e-5)


def test_lovasz_softmax_skips_ignored_pixels_and_trains():
    from faceparse.models.losses import lovasz_softmax_loss

    target = torch.zeros(1, 6, 6, dtype=torch.long)
    target[0, 2:4, 2:4] = 1
    logits = torch.zeros(1, 2, 6, 6, requires_grad=True)
    ignored = target.clone()
    ignored[0, 0] = 255
    spoiled = logits.detach().clone()
    spoiled[0, 1, 0] = 9.0  # wrong, but only where the label is ignored
    assert lovasz_softmax_loss(spoiled, ignored).item() == pytest.approx(lovasz_softmax_loss(logits.detach(),
                                                                                               ignored).item())
    opt = torch.optim.SGD([logits], lr=5.0)
    first = lovasz_softmax_loss(logits, target)
    for _ in range(20):
        opt.zero_grad()
        lovasz_softmax_loss(logits, target).backward()
        opt.step()
    assert lovasz_softmax_loss(logits, target).item() < first.item() / 2
    assert lovasz_softmax_loss(logits, target, sample=0.5, generator=torch.Generator().manual_seed(1)).item() < 0.5
