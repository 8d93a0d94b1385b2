"""Segmentation metrics from a confusion matrix accumulated over many images.

Accumulating one matrix over all pixels of all images (instead of averaging per-image scores) is how the face-parsing
papers report pixel accuracy, mIoU and F1, and it keeps tiny classes from being swamped by empty images. The binary
extras (MAE, F-beta, S-measure) follow the salient-object convention the ABANet paper uses: they are per-image scores
averaged over images. The S-measure follows the authors' reference code (Fan et al. 2017): the centroid rounds half
away from zero, a one-pixel region counts as structurally identical, and the score is clipped at 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def confusion_matrix(target: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Rows are ground truth, columns are predictions."""
    target = np.asarray(target).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if target.shape != pred.shape:
        raise ValueError(f"target has {target.size} pixels but the prediction has {pred.size}")
    keep = target != ignore_index
    target, pred = target[keep], pred[keep]
    if target.size and (min(target.min(), pred.min()) < 0 or max(target.max(), pred.max()) >= num_classes):
        raise ValueError(f"labels outside 0..{num_classes - 1}")
    return np.bincount(target * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores_from_confusion(cm: np.ndarray, class_names: list[str] | None = None) -> dict:
    """Pixel accuracy, mean class accuracy, IoU and F1 per class, and their means with and without background.

    Classes that never occur in the ground truth nor in the prediction are left out of the means (NaN per class).
    """
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.shape[0]
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pr = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / (gt + pr - tp)
        f1 = 2 * tp / (gt + pr)
        acc = tp / gt
    present = (gt + pr) > 0
    iou[~present] = np.nan
    f1[~present] = np.nan
    names = class_names or [str(i) for i in range(n)]

    def mean(values: np.ndarray, skip_background: bool) -> float:
        v = values[1:] if skip_background else values
        v = v[~np.isnan(v)]
        return float(v.mean()) if v.size else float("nan")

    total = cm.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_accuracy": mean(acc, False),
        "miou": mean(iou, False),
        "mean_f1": mean(f1, False),
        "miou_no_bg": mean(iou, True),
        "mean_f1_no_bg": mean(f1, True),
        "per_class_iou": {names[i]: _num(iou[i]) for i in range(n)},
        "per_class_f1": {names[i]: _num(f1[i]) for i in range(n)},
        "pixels": int(total),
    }


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """Structure measure of Fan et al. (ICCV 2017): object-aware plus region-aware similarity.

    `pred` is a foreground probability map in [0, 1], `gt` a binary mask.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt).astype(bool)
    y = gt.mean()
    if y == 0:
        return float(1.0 - pred.mean())
    if y == 1:
        return float(pred.mean())
    return max(0.0, float(alpha * _s_object(pred, gt) + (1 - alpha) * _s_region(pred, gt)))


def _s_object(pred: np.ndarray, gt: np.ndarray) -> float:
    def score(x: np.ndarray) -> float:
        if x.size == 0:
            return 0.0
        m = x.mean()
        s = x.std(ddof=1) if x.size > 1 else 0.0
        return 2.0 * m / (m * m + 1.0 + s + 1e-20)

    fg = score(pred[gt])
    bg = score(1.0 - pred[~gt])
    u = gt.mean()
    return u * fg + (1 - u) * bg


def _round_half_up(value: float) -> int:
    return int(np.floor(value + 0.5))


def _centroid(gt: np.ndarray) -> tuple[int, int]:
    """(rows, columns) above and left of the split point: the 1-based centroid, rounded as MATLAB rounds."""
    rows, cols = gt.shape
    if gt.sum() == 0:
        return _round_half_up(rows / 2), _round_half_up(cols / 2)
    ys, xs = np.nonzero(gt)
    return _round_half_up(ys.mean() + 1), _round_half_up(xs.mean() + 1)


def _ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    n = pred.size
    if n == 0:
        return 0.0
    x, y = pred.mean(), gt.mean()
    dof = max(n - 1, 1)
    sx = ((pred - x) ** 2).sum() / dof
    sy = ((gt - y) ** 2).sum() / dof
    sxy = ((pred - x) * (gt - y)).sum() / dof
    a = 4 * x * y * sxy
    b = (x * x + y * y) * (sx + sy)
    if a != 0:
        return float(a / (b + 1e-20))
    return 1.0 if b == 0 else 0.0


def _s_region(pred: np.ndarray, gt: np.ndarray) -> float:
    cy, cx = _centroid(gt)
    h, w = gt.shape
    area = h * w
    g = gt.astype(np.float64)
    parts = [(slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)), (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w))]
    total = 0.0
    for rs, cs in parts:
        p, q = pred[rs, cs], g[rs, cs]
        total += (p.size / area) * _ssim(p, q)
    return total


@dataclass
class BinaryScores:
    """Per-image binary scores of the face-mask segmenter (foreground probability vs. binary ground truth)."""

    beta2: float = 0.3
    mae: list[float] = field(default_factory=list)
    fbeta: list[float] = field(default_factory=list)
    smeasure: list[float] = field(default_factory=list)
    cm: np.ndarray = field(default_factory=lambda: np.zeros((2, 2), dtype=np.int64))
    fbeta_empty: int = 0
    smeasure_skipped: int = 0

    def add(self, prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5, valid: np.ndarray | None = None) -> None:
        """One image. `valid` marks the labeled pixels (ignored ones count nowhere); the S-measure needs the whole
        map, so an image with ignored pixels is left out of it (`smeasure_skipped`). An image without a mask in its
        truth has no Fβ (its precision and recall are undefined): it is left out of that mean (`fbeta_empty`)."""
        prob = np.clip(np.asarray(prob, dtype=np.float64), 0, 1)
        gt = np.asarray(gt).astype(bool)
        valid = np.ones(gt.shape, bool) if valid is None else np.asarray(valid, bool)
        if not valid.any():
            return
        pred = prob >= threshold
        self.cm += confusion_matrix(np.where(valid, gt, 255).astype(np.uint8), pred.astype(np.uint8), 2, 255)
        self.mae.append(float(np.abs(prob - gt)[valid].mean()))
        pred_v, gt_v = pred & valid, gt & valid
        if gt_v.any():
            tp = float((pred_v & gt_v).sum())
            precision = tp / pred_v.sum() if pred_v.sum() else 0.0
            recall = tp / gt_v.sum()
            denom = self.beta2 * precision + recall
            self.fbeta.append((1 + self.beta2) * precision * recall / denom if denom else 0.0)
        else:
            self.fbeta_empty += 1
        if valid.all():
            self.smeasure.append(s_measure(prob, gt))
        else:
            self.smeasure_skipped += 1

    def summary(self) -> dict:
        tn, fp, fn, tp = self.cm.ravel().astype(np.float64)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        return {
            "iou": tp / (tp + fp + fn) if tp + fp + fn else float("nan"),
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
            "precision": precision,
            "recall": recall,
            "accuracy": (tp + tn) / self.cm.sum() if self.cm.sum() else float("nan"),
            "mae": float(np.mean(self.mae)) if self.mae else float("nan"),
            "fbeta": float(np.mean(self.fbeta)) if self.fbeta else float("nan"),
            "smeasure": float(np.mean(self.smeasure)) if self.smeasure else float("nan"),
            "images": len(self.mae),
            "fbeta_images_without_mask": self.fbeta_empty,
            "smeasure_images_skipped": self.smeasure_skipped,
        }
