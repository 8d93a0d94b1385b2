"""Training losses for the face parsers, the face-mask segmenter and masked pre-training.

Parsing (seed 000): cross-entropy in its focal form plus soft dice, weighted 0.5/0.5, with optional per-class
weights (seed 004 weights classes by rarity). `focal_gamma=0` is plain cross-entropy.

Face masks (seed 003): per side output, binary focal (α = 0.3, γ = 2) + SSIM + IoU, summed over all side outputs.
The paper prints its SSIM constants as "C1 = 0.012, C2 = 0.032", the BASNet family's C1 = 0.01², C2 = 0.03² with the
exponents lost, and its Eq. 4 shows "+" where the SSIM index multiplies the luminance and contrast-structure
terms; this module uses the standard index with C1 = 0.01², C2 = 0.03² and an 11×11 Gaussian window (σ = 1.5).
Binary losses take either one logit channel or the two-class logits ABANet returns (z = l₁ − l₀).

Masked pre-training (seeds 000/001): the pixel loss between the reconstruction and the original image is summed
only over the central region W/6..5W/6 × H/6..5H/6, where the patches were masked.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

IGNORE_INDEX = 255
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _valid_mask(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


def focal_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 0.0,
    class_weights: torch.Tensor | None = None,
    ignore_index: int | None = IGNORE_INDEX,
) -> torch.Tensor:
    """Mean over labeled pixels of −w_c (1 − p_c)^γ log p_c; γ = 0 is (class-weighted) cross-entropy."""
    valid = _valid_mask(target, ignore_index)
    safe_target = torch.where(valid, target, torch.zeros_like(target)).long()
    log_probs = F.log_softmax(logits.float(), dim=1)
    log_p = log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    loss = -log_p
    if gamma > 0:
        loss = loss * (1.0 - log_p.exp()).clamp_min(0.0).pow(gamma)
    weights = valid.float()
    if class_weights is not None:
        weights = weights * class_weights.to(logits.device, torch.float32)[safe_target]
    return (loss * weights).sum() / weights.sum().clamp_min(1e-12)


def soft_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    ignore_index: int | None = IGNORE_INDEX,
    smooth: float = 1.0,
) -> torch.Tensor:
    """1 − mean over classes present in the batch of 2⟨p, g⟩ / (|p| + |g|), on labeled pixels only."""
    classes = logits.shape[1]
    valid = _valid_mask(target, ignore_index).unsqueeze(1).float()
    safe_target = torch.where(valid.squeeze(1).bool(), target, torch.zeros_like(target)).long()
    probs = F.softmax(logits.float(), dim=1) * valid
    onehot = F.one_hot(safe_target, classes).permute(0, 3, 1, 2).float() * valid
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)
    cardinality = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * intersection + smooth) / (cardinality + smooth)
    present = (onehot.sum(dims) > 0).float()
    weights = present if class_weights is None else present * class_weights.to(logits.device, torch.float32)
    return ((1.0 - dice) * weights).sum() / weights.sum().clamp_min(1e-12)


def _lovasz_gradient(sorted_truth: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at pixels sorted by decreasing error."""
    total = sorted_truth.sum()
    intersection = total - sorted_truth.cumsum(0)
    union = total + (1.0 - sorted_truth).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int | None = IGNORE_INDEX,
    sample: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Lovász-softmax (Berman et al., 2018): a convex surrogate of 1 − IoU per class, averaged over the classes
    present, on the softmax probabilities of the labeled pixels. Unlike cross-entropy it weighs a class by its
    own IoU, so thin and rare parts count as much as the skin, which is what mean F1 and mIoU reward.

    `sample` < 1 scores that fraction of the labeled pixels, drawn at random: each class's sort is the cost."""
    classes = logits.shape[1]
    probs = F.softmax(logits.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, classes)
    labels = target.reshape(-1)
    keep = _valid_mask(labels, ignore_index)
    if sample < 1.0:
        keep &= torch.rand(labels.shape, generator=generator, device=labels.device) < sample
    probs, labels = probs[keep], labels[keep]
    losses = []
    for c in torch.unique(labels).tolist():
        truth = (labels == c).float()
        errors = (truth - probs[:, c]).abs()
        order = torch.argsort(errors, descending=True)
        losses.append(torch.dot(errors[order], _lovasz_gradient(truth[order])))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


class ParsingLoss(nn.Module):
    """Weighted sum of focal cross-entropy and soft dice for multi-class face parsing (0.5/0.5 as in seed 000)."""

    def __init__(
        self,
        ce_weight: float = 0.5,
        dice_weight: float = 0.5,
        focal_gamma: float = 0.0,
        class_weights: Sequence[float] | torch.Tensor | None = None,
        ignore_index: int | None = IGNORE_INDEX,
    ):
        super().__init__()
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.focal_gamma = focal_gamma
        self.ignore_index = ignore_index
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = focal_cross_entropy(logits, target, self.focal_gamma, self.class_weights, self.ignore_index)
        dice = soft_dice_loss(logits, target, self.class_weights, self.ignore_index)
        return self.ce_weight * ce + self.dice_weight * dice


def binary_logit(logits: torch.Tensor) -> torch.Tensor:
    """N×1×H×W mask logit from one logit channel or from two-class logits (difference of the two)."""
    if logits.dim() != 4 or logits.shape[1] not in (1, 2):
        raise ValueError(f"binary losses need N×1×H×W or N×2×H×W logits, got {tuple(logits.shape)}")
    if logits.shape[1] == 2:
        return logits[:, 1:2] - logits[:, 0:1]
    return logits


def binary_target(target: torch.Tensor) -> torch.Tensor:
    """N×1×H×W float target in {0, 1} from an N×H×W index mask or an N×1×H×W map."""
    if target.dim() == 3:
        target = target.unsqueeze(1)
    return target.float()


def binary_focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.3, gamma: float = 2.0
) -> torch.Tensor:
    """ABANet's Eq. 3: −α(1−p)^γ log p on mask pixels, −(1−α)p^γ log(1−p) elsewhere; mean over pixels."""
    z = binary_logit(logits).float()
    y = binary_target(target)
    p = torch.sigmoid(z)
    positive = -alpha * (1 - p).pow(gamma) * F.logsigmoid(z)
    negative = -(1 - alpha) * p.pow(gamma) * F.logsigmoid(-z)
    return (y * positive + (1 - y) * negative).mean()


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim_loss(
    logits: torch.Tensor, target: torch.Tensor, window_size: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """1 − mean SSIM between the predicted mask probability and the target (patch-level structure)."""
    x = torch.sigmoid(binary_logit(logits).float())
    y = binary_target(target)
    window = _gaussian_window(window_size, sigma, x.device)
    pad = window_size // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (pad, pad, pad, pad), mode="replicate"), window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    )
    return 1.0 - ssim.mean()


def iou_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 − soft IoU per image (map level, so the foreground counts whatever its size), averaged over the batch."""
    s = torch.sigmoid(binary_logit(logits).float())
    g = binary_target(target)
    intersection = (s * g).sum((1, 2, 3))
    union = (s + g - s * g).sum((1, 2, 3))
    return (1.0 - (intersection + smooth) / (union + smooth)).mean()


class HybridMaskLoss(nn.Module):
    """ABANet's deep-supervision loss: Σ over side outputs of focal + SSIM + IoU (Eqs. 1–2 of seed 003)."""

    def __init__(self, alpha: float = 0.3, gamma: float = 2.0):
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (
            binary_focal_loss(logits, target, self.alpha, self.gamma)
            + ssim_loss(logits, target)
            + iou_loss(logits, target)
        )

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        if not outputs:
            raise ValueError("no side outputs to supervise")
        return torch.stack([self.single(side, target) for side in outputs]).sum()


def central_region(height: int, width: int) -> tuple[slice, slice]:
    """Rows H/6..5H/6 and columns W/6..5W/6: the middle two thirds where masked pre-training hides patches."""
    return slice(height // 6, (5 * height) // 6), slice(width // 6, (5 * width) // 6)


def central_reconstruction_loss(
    reconstruction: torch.Tensor, original: torch.Tensor, kind: str = "mse"
) -> torch.Tensor:
    """Mean pixel loss ("mse" or "l1") over the central region only; pixels outside it have no effect."""
    if reconstruction.shape != original.shape:
        raise ValueError(
            f"reconstruction {tuple(reconstruction.shape)} and image {tuple(original.shape)} differ"
        )
    rows, cols = central_region(*reconstruction.shape[-2:])
    pred = reconstruction[..., rows, cols].float()
    true = original[..., rows, cols].float()
    if kind == "mse":
        return F.mse_loss(pred, true)
    if kind == "l1":
        return F.l1_loss(pred, true)
    raise ValueError(f"kind must be 'mse' or 'l1', got {kind!r}")
