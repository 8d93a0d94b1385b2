"""Metrics against an independent computation: per-class pixel loops and a line-by-line port of the S-measure
reference code (Fan et al. 2017, 1-based indices, MATLAB rounding)."""

import math

import numpy as np
import pytest
from faceparse.core.metrics import BinaryScores, confusion_matrix, s_measure, scores_from_confusion

EPS = np.finfo(np.float64).eps


def loop_scores(target, pred, n, ignore=255):
    """Per-class counts straight from the label arrays, no confusion matrix."""
    keep = target != ignore
    t, p = target[keep], pred[keep]
    iou, f1, acc = {}, {}, {}
    for c in range(n):
        tp = int(np.sum((t == c) & (p == c)))
        fp = int(np.sum((t != c) & (p == c)))
        fn = int(np.sum((t == c) & (p != c)))
        if tp + fp + fn:
            iou[c] = tp / (tp + fp + fn)
            f1[c] = 2 * tp / (2 * tp + fp + fn)
        if tp + fn:
            acc[c] = tp / (tp + fn)

    def mean(d, skip_bg=False):
        values = [v for c, v in d.items() if not (skip_bg and c == 0)]
        return sum(values) / len(values) if values else math.nan

    return {
        "pixel_accuracy": float(np.mean(t == p)) if t.size else math.nan,
        "mean_accuracy": mean(acc),
        "miou": mean(iou),
        "mean_f1": mean(f1),
        "miou_no_bg": mean(iou, True),
        "mean_f1_no_bg": mean(f1, True),
        "iou": iou,
        "f1": f1,
        "pixels": int(t.size),
    }


def assert_same(scores, expected, n):
    for key in ("pixel_accuracy", "mean_accuracy", "miou", "mean_f1", "miou_no_bg", "mean_f1_no_bg"):
        assert scores[key] == pytest.approx(expected[key], nan_ok=True, abs=1e-12), key
    assert scores["pixels"] == expected["pixels"]
    for c in range(n):
        name = str(c)
        assert scores["per_class_iou"][name] == (pytest.approx(expected["iou"][c]) if c in expected["iou"] else None)
        assert scores["per_class_f1"][name] == (pytest.approx(expected["f1"][c]) if c in expected["f1"] else None)


@pytest.mark.parametrize("seed", range(40))
def test_scores_match_per_class_loops_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
    used = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)  # some classes never occur
    target = rng.choice(used, size=shape).astype(np.uint8)
    pred = np.where(rng.random(shape) < 0.6, target, rng.choice(used, size=shape)).astype(np.uint8)
    target[rng.random(shape) < 0.1] = 255
    cm = confusion_matrix(target, pred, n)
    assert_same(scores_from_confusion(cm), loop_scores(target, pred, n), n)


def expand(cm):
    """Label arrays that produce exactly this confusion matrix."""
    n = cm.shape[0]
    t = np.repeat(np.repeat(np.arange(n), n), cm.ravel())
    p = np.repeat(np.tile(np.arange(n), n), cm.ravel())
    return t, p


@pytest.mark.parametrize("seed", range(40))
def test_scores_match_per_class_loops_on_random_confusion_matrices(seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(2, 20))
    cm = rng.integers(0, 50, size=(n, n)) * (rng.random((n, n)) < 0.5)
    cm[rng.random(n) < 0.2] = 0  # classes absent from the ground truth
    t, p = expand(cm)
    assert_same(scores_from_confusion(cm), loop_scores(t, p, n), n)


def test_accumulated_matrix_is_one_matrix_over_all_pixels():
    rng = np.random.default_rng(5)
    pairs = [(rng.integers(0, 4, (7, 9)), rng.integers(0, 4, (7, 9))) for _ in range(5)]
    total = sum(confusion_matrix(t, p, 4) for t, p in pairs)
    t_all = np.concatenate([t.ravel() for t, _ in pairs])
    p_all = np.concatenate([p.ravel() for _, p in pairs])
    assert_same(scores_from_confusion(total), loop_scores(t_all, p_all, 4), 4)


def test_confusion_matrix_rejects_labels_outside_the_schema():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, -1]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="pixels"):
        confusion_matrix(np.zeros(4), np.zeros(5), 3)
    assert confusion_matrix(np.array([255, 1]), np.array([7, 1]), 3)[1, 1] == 1


def test_class_names_key_the_per_class_scores():
    scores = scores_from_confusion(np.array([[3, 1], [0, 4]]), ["background", "face_mask"])
    assert scores["per_class_iou"] == {"background": 0.75, "face_mask": 0.8}


# --- S-measure: a direct port of the reference code --------------------------------------------------------------

def matlab_round(x):
    return math.floor(x + 0.5)


def ref_object(values):
    if values.size == 0:
        return 0.0
    x = values.mean()
    sigma = values.std(ddof=1) if values.size > 1 else 0.0
    return 2.0 * x / (x * x + 1.0 + sigma + EPS)


def ref_ssim(pred, gt):
    hei, wid = pred.shape
    n = hei * wid
    x, y = pred.mean(), gt.mean()
    sx = ((pred - x) ** 2).sum() / (n - 1 + EPS)
    sy = ((gt - y) ** 2).sum() / (n - 1 + EPS)
    sxy = ((pred - x) * (gt - y)).sum() / (n - 1 + EPS)
    alpha = 4 * x * y * sxy
    beta = (x * x + y * y) * (sx + sy)
    if alpha != 0:
        return alpha / (beta + EPS)
    return 1.0 if beta == 0 else 0.0


def ref_s_measure(pred, gt):
    gt = gt.astype(bool)
    y = gt.mean()
    if y == 0:
        return 1.0 - pred.mean()
    if y == 1:
        return pred.mean()
    u = y
    fg = pred.copy()
    fg[~gt] = 0
    bg = 1.0 - pred
    bg[gt] = 0
    s_object = u * ref_object(fg[gt]) + (1 - u) * ref_object(bg[~gt])

    rows, cols = gt.shape
    total = gt.sum()
    X = matlab_round(sum(gt[:, j - 1].sum() * j for j in range(1, cols + 1)) / total)
    Y = matlab_round(sum(gt[i - 1, :].sum() * i for i in range(1, rows + 1)) / total)
    area = rows * cols
    g = gt.astype(np.float64)
    w1 = X * Y / area
    w2 = (cols - X) * Y / area
    w3 = X * (rows - Y) / area
    w4 = (cols - X) * (rows - Y) / area
    quadrants = [(w1, slice(0, Y), slice(0, X)), (w2, slice(0, Y), slice(X, cols)),
                 (w3, slice(Y, rows), slice(0, X)), (w4, slice(Y, rows), slice(X, cols))]
    s_region = sum(w * ref_ssim(pred[r, c], g[r, c]) for w, r, c in quadrants if pred[r, c].size)
    return max(0.0, 0.5 * s_object + 0.5 * s_region)


@pytest.mark.parametrize("seed", range(60))
def test_s_measure_matches_the_reference_code(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(2, 40)), int(rng.integers(2, 40))
    gt = rng.random((h, w)) < rng.uniform(0.05, 0.95)
    if seed % 3 == 0:
        gt = np.zeros((h, w), bool)
        gt[rng.integers(0, h):, rng.integers(0, w):] = True
    noise = rng.random((h, w))
    pred = np.clip(gt * rng.uniform(0, 1) + noise * rng.uniform(0, 1), 0, 1)
    if seed % 5 == 0:
        pred = 1.0 - pred  # anti-correlated: exercises the clip at zero
    assert s_measure(pred, gt) == pytest.approx(ref_s_measure(pred, gt), abs=1e-9)


def test_s_measure_centroid_rounds_half_away_from_zero():
    gt = np.zeros((6, 6), bool)
    gt[0:2, 1:3] = True  # 1-based column mean 2.5, row mean 1.5: both on a half
    pred = np.zeros((6, 6))
    pred[0:3, 0:3] = 0.8
    assert s_measure(pred, gt) == pytest.approx(ref_s_measure(pred, gt), abs=1e-12)


def test_s_measure_known_values():
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    assert s_measure(gt.astype(float), gt) == pytest.approx(1.0)
    assert s_measure(np.full((8, 8), 0.25), np.zeros((8, 8), bool)) == pytest.approx(0.75)
    assert s_measure(np.full((8, 8), 0.25), np.ones((8, 8), bool)) == pytest.approx(0.25)
    assert 0.0 <= s_measure(1.0 - gt.astype(float), gt) < 0.1


def test_binary_scores_match_direct_counts():
    rng = np.random.default_rng(3)
    scores = BinaryScores()
    tp = fp = fn = tn = 0
    mae, fbeta, sm = [], [], []
    for _ in range(12):
        gt = rng.random((16, 20)) < rng.uniform(0.0, 0.6)
        prob = np.clip(gt * 0.7 + rng.random((16, 20)) * 0.5, 0, 1)
        scores.add(prob, gt)
        pred = prob >= 0.5
        a, b, c, d = (pred & gt).sum(), (pred & ~gt).sum(), (~pred & gt).sum(), (~pred & ~gt).sum()
        tp, fp, fn, tn = tp + a, fp + b, fn + c, tn + d
        mae.append(np.abs(prob - gt).mean())
        if gt.any():  # a face without a mask has no F-beta
            precision = a / (a + b) if a + b else 0.0
            recall = a / (a + c)
            fbeta.append(1.3 * precision * recall / (0.3 * precision + recall) if precision + recall else 0.0)
        sm.append(ref_s_measure(prob, gt))
    s = scores.summary()
    assert s["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert s["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert s["precision"] == pytest.approx(tp / (tp + fp))
    assert s["recall"] == pytest.approx(tp / (tp + fn))
    assert s["accuracy"] == pytest.approx((tp + tn) / (tp + tn + fp + fn))
    assert s["mae"] == pytest.approx(np.mean(mae))
    assert s["fbeta"] == pytest.approx(np.mean(fbeta))
    assert s["smeasure"] == pytest.approx(np.mean(sm))
    assert s["images"] == 12
