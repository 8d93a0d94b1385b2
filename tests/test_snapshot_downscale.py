"""A photo downscaled for training keeps its mask on it: each mask pixel is the label at the centre of the block
the image pixel averages, not at its corner, which would shift every label edge by up to half a block."""

import numpy as np
import pytest
from faceparse.core.datasets import _downscale


@pytest.mark.parametrize(("edge", "block_4_labelled"), [(17, False), (19, True)])
def test_a_downscaled_mask_labels_a_block_as_its_centre_is_labelled(edge, block_4_labelled):
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, :edge] = 255
    mask = np.zeros((40, 40), np.uint8)
    mask[:, :edge] = 1
    small_image, small_mask = _downscale(image, mask, max_side=10)
    assert small_mask.shape == (10, 10)
    assert bool(small_mask[0, 4]) is block_4_labelled
    assert bool(small_image[0, 4, 0] > 127) is block_4_labelled  # the mask agrees with the picture it trains on
    assert small_mask[0, :4].all() and not small_mask[0, 5:].any()
