"""The label ceiling (benchmarks/parser_label_ceiling.py): a perfect parser of the data set's convention is scored
down only on the left/right classes of masks that name the sides mirrored."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_bench = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_bench))
_spec = importlib.util.spec_from_file_location("parser_label_ceiling", _bench / "parser_label_ceiling.py")
ceiling_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ceiling_bench)
CLASSES = ceiling_bench.CLASSES


def face(mirrored: bool) -> np.ndarray:
    """A 64 px mask with skin, two eyes and a nose; `l_eye` on the image's right unless mirrored."""
    mask = np.zeros((64, 64), np.uint8)
    mask[10:54, 10:54] = CLASSES.index("skin")
    left, right = (CLASSES.index("r_eye"), CLASSES.index("l_eye"))
    if mirrored:
        left, right = right, left
    mask[20:26, 16:26] = left
    mask[20:26, 38:48] = right
    mask[30:40, 28:36] = CLASSES.index("nose")
    return mask


def test_masks_that_all_follow_the_convention_set_no_ceiling():
    scores, mirrored = ceiling_bench.ceiling([("a", None, face(False)), ("b", None, face(False))])
    assert mirrored == 0
    assert scores["mean_f1_no_bg"] == pytest.approx(1.0)


def test_a_mirrored_mask_costs_only_its_left_right_classes():
    scores, mirrored = ceiling_bench.ceiling([("a", None, face(False)), ("b", None, face(True))])
    assert mirrored == 1
    f1 = scores["per_class_f1"]
    assert f1["skin"] == pytest.approx(1.0) and f1["nose"] == pytest.approx(1.0)
    assert f1["l_eye"] == pytest.approx(0.5) and f1["r_eye"] == pytest.approx(0.5)
    assert scores["mean_f1_no_bg"] < 1.0
