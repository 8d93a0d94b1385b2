"""Face-mask scores count only labeled pixels: an ignored pixel is neither a correct nor a wrong background pixel,
an image with no mask in its truth has no F-beta (so a folder of mask-free faces cannot lift the mean), and the
S-measure, which needs the whole map, leaves out images with ignored pixels and says how many."""

import numpy as np
import pytest
from faceparse.core.metrics import BinaryScores


def masked_face():
    truth = np.zeros((32, 32), bool)
    truth[8:20, 4:16] = True
    prob = np.zeros((32, 32))
    prob[8:20, 6:24] = 0.8  # right over most of the mask, wrong to its right
    return truth, prob


def test_ignored_pixels_count_nowhere():
    truth, prob = masked_face()
    valid = np.ones_like(truth)
    valid[:, 20:] = False  # the right 12 columns are not labeled
    scores = BinaryScores()
    scores.add(prob, truth, valid=valid)
    s = scores.summary()
    labeled = valid.sum()
    pred = prob >= 0.5
    assert s["accuracy"] == pytest.approx(((pred == truth) & valid).sum() / labeled)
    assert s["mae"] == pytest.approx(np.abs(prob - truth)[valid].mean())
    tp, fp = (pred & truth & valid).sum(), (pred & ~truth & valid).sum()
    fn = (~pred & truth & valid).sum()
    assert s["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert np.isnan(s["smeasure"]) and s["smeasure_images_skipped"] == 1


def test_an_all_ignored_image_adds_nothing():
    truth, prob = masked_face()
    scores = BinaryScores()
    scores.add(prob, truth)
    before = scores.summary()
    scores.add(prob, truth, valid=np.zeros_like(truth))
    assert scores.summary() == before


def test_faces_without_a_mask_are_left_out_of_the_fbeta_mean():
    truth, prob = masked_face()
    alone = BinaryScores()
    alone.add(prob, truth)
    with_empty = BinaryScores()
    with_empty.add(prob, truth)
    for _ in range(3):
        with_empty.add(np.zeros((32, 32)), np.zeros((32, 32), bool))
    assert with_empty.summary()["fbeta"] == pytest.approx(alone.summary()["fbeta"])
    assert with_empty.summary()["fbeta_images_without_mask"] == 3
    assert with_empty.summary()["images"] == 4
    assert with_empty.summary()["mae"] == pytest.approx(alone.summary()["mae"] / 4)
