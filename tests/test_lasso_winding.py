"""A lasso or polygon fills what its outline goes round, however many times: a stroke that overshoots its start,
or goes round twice, or a star drawn corner to corner, leaves no hole in its middle."""

import math

import numpy as np
from faceparse.core.label_editor import LabelEditor


def test_a_star_drawn_corner_to_corner_fills_its_centre():
    editor = LabelEditor(np.zeros((64, 64), np.uint8))
    corners = [(32 + 28 * math.sin(k * 4 * math.pi / 5), 32 - 28 * math.cos(k * 4 * math.pi / 5)) for k in range(5)]
    editor.fill_polygon(corners, 3)
    assert editor.mask[32, 32] == 3
    assert editor.mask[8, 32] == 3 and editor.mask[60, 60] == 0


def test_a_lasso_that_goes_round_twice_fills_its_whole_inside():
    editor = LabelEditor(np.zeros((128, 128), np.uint8))
    turns = np.linspace(0, 4 * math.pi, 200)
    editor.fill_polygon([(64 + (40 - t / 2) * math.cos(t), 64 + (40 - t / 2) * math.sin(t)) for t in turns], 5)
    filled = editor.mask == 5
    assert filled[64, 64] and filled[40:88, 40:88].all()
    assert not filled[64, 110]


def test_a_bow_tie_fills_both_loops_and_nothing_between_them():
    editor = LabelEditor(np.zeros((40, 40), np.uint8))
    editor.fill_polygon([(2, 2), (38, 38), (38, 2), (2, 38)], 1)
    assert editor.mask[20, 8] == 1 and editor.mask[20, 32] == 1
    assert editor.mask[6, 20] == 0 and editor.mask[34, 20] == 0
