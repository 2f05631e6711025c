"""wnet.postprocess.paper: the paper's hierarchies, on a tiny image whose one true edge is known.

The image has a vertical edge between columns 15 and 16. The W-Net maps have two boundaries: the
true one, and a spurious vertical one between columns 7 and 8 inside the flat left half."""

import numpy as np
import pytest

from wnet.postprocess.gpb import gpb, gpb_ucm2
from wnet.postprocess.paper import COMBINATIONS, alg2_ucm2, argmax_boundaries, ucm2_pixels, wnet_ucm_ucm2

H, W = 24, 32


@pytest.fixture(scope="module")
def scene():
    image = np.full((H, W, 3), 60, np.uint8)
    image[:, 16:] = (210, 150, 40)
    probs = np.zeros((3, H, W), np.float32)
    probs[0, :, :8], probs[1, :, 8:16], probs[2, :, 16:] = 1, 1, 1  # regions 0-7 | 8-15 | 16-31
    return image, probs, gpb(image).orient


def _crack(ucm2, col):
    """Mean level of the vertical cracks between pixel columns c and c + 1 (rows 2..H-3), the strongest
    for c within one pixel of ``col`` (gPb's ridge may lie a pixel off a step edge)."""
    return max(float(ucm2[5 : 2 * H - 4 : 2, 2 * c + 2].mean()) for c in (col - 1, col, col + 1))


def test_argmax_boundaries_are_both_pixels_of_every_crack():
    refined = np.zeros((2, 3, 4), np.float32)
    refined[0, :, :2], refined[1, :, 2:] = 1, 1
    refined[1, 0, 0], refined[0, 0, 0] = 1, 0  # one pixel of class 1 in the top-left corner
    expected = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [0, 1, 1, 0]], bool)
    np.testing.assert_array_equal(argmax_boundaries(refined), expected)


def test_ucm2_pixels_takes_each_pixel_s_strongest_crack():
    ucm2 = np.zeros((5, 7))  # 2 x 3 pixels
    ucm2[1, 2] = 0.4  # between pixels (0, 0) and (0, 1)
    ucm2[2, 5] = 0.7  # between pixels (0, 2) and (1, 2)
    np.testing.assert_allclose(ucm2_pixels(ucm2), [[0.4, 0.4, 0.7], [0.0, 0.0, 0.7]])


def test_alg2_puts_boundaries_only_where_wnet_has_them_and_strength_from_the_image(scene):
    image, probs, orient = scene
    u = alg2_ucm2(probs, orient)
    assert u.shape == (2 * H + 1, 2 * W + 1) and 0 <= u.min() and u.max() <= 1
    true, spurious = _crack(u, 15), _crack(u, 7)
    assert true > 0.5 > spurious  # the image edge is strong, the flat-region boundary weak
    one_region = np.zeros_like(probs)
    one_region[0] = 1
    assert alg2_ucm2(one_region, orient)[1:-1:2, 1:-1:2].max() == 0  # no W-Net boundary: no contour at all


@pytest.mark.parametrize("how", COMBINATIONS)
def test_wnet_ucm_combines_the_two_hierarchies(scene, how):
    image, probs, orient = scene
    only_spurious = np.zeros_like(probs)
    only_spurious[0, :, :8], only_spurious[1, :, 8:] = 1, 1  # W-Net misses the true edge
    u = wnet_ucm_ucm2(only_spurious, orient, how)
    gpb_side = _crack(gpb_ucm2(orient), 15)
    expected_true = {"mean": gpb_side / 2, "max": gpb_side, "min": 0.0}[how]
    assert _crack(u, 15) == pytest.approx(expected_true, abs=0.05)  # the true edge comes from gPb-owt-ucm
    assert _crack(u, 7) <= _crack(alg2_ucm2(only_spurious, orient), 7) + 1e-9
    with pytest.raises(ValueError, match="unknown combination"):
        wnet_ucm_ucm2(probs, orient, "sum")


@pytest.mark.parametrize("how", COMBINATIONS)
def test_the_pipeline_combines_as_its_stages_say(scene, how):
    from wnet.postprocess.pipeline import HIERARCHIES, ImageCues, Stages

    image, probs, orient = scene
    spurious = np.zeros_like(probs)
    spurious[0, :, :8], spurious[1, :, 8:] = 1, 1
    stages = Stages(combination=how)
    got = HIERARCHIES["wnet+ucm"](spurious, image, stages, ImageCues(image, stages, gpb=orient))
    np.testing.assert_array_equal(got, wnet_ucm_ucm2(spurious, orient, how))
