"""Hand-checkable cases for the pieces of the BSDS benchmark port."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from wnet.bsds import seg2bdry, thresholds, ucm2_to_segmentations
from wnet.bsds.assignment import exact_match
from wnet.bsds.collect import average_precision, fmeasure, max_f
from wnet.bsds.correspond import Matcher
from wnet.bsds.levels import Prediction
from wnet.bsds.region import (
    Table,
    contingency,
    level_scores,
    rand_index,
    region_image,
    variation_of_information,
)
from wnet.bsds.thin import thin


def test_thresholds():
    np.testing.assert_allclose(thresholds(5), [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    assert thresholds(99)[0] == pytest.approx(0.01) and thresholds(99)[-1] == pytest.approx(0.99)
    with pytest.raises(ValueError, match="positive integer"):
        thresholds(0)


def test_rand_index_by_hand():
    # pixels a b | c d: seg {a,b}{c,d}; gt {a,b,c}{d}. Of the 6 pairs, ab, ad, bd agree -> RI = 1/2
    seg = np.array([[0, 0], [1, 1]])
    gt = np.array([[1, 1], [1, 2]])
    assert rand_index(contingency(seg, gt)) == pytest.approx(0.5)
    assert rand_index(contingency(gt, gt)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "seg, gt, vi",
    [
        (np.array([[1, 1], [2, 2]]), np.array([[1, 1], [2, 2]]), 0.0),  # identical
        (np.array([[1, 1], [1, 1]]), np.array([[1, 1], [2, 2]]), 1.0),  # one region vs halves: H(gt) = 1 bit
        (np.array([[1, 2], [1, 2]]), np.array([[1, 1], [2, 2]]), 2.0),  # independent halves: 1 + 1 bits
    ],
)
def test_variation_of_information_log2(seg, gt, vi):
    assert variation_of_information(contingency(seg, gt)) == pytest.approx(vi)


def test_covering_by_hand():
    # gt: two 8-pixel halves; prediction: one 16-pixel region -> each overlap 8/16
    gt = np.ones((4, 4), int)
    gt[:, 2:] = 2
    seg = np.ones((4, 4), int)
    cnt_r, sum_r, cnt_p, sum_p, _, _, best = level_scores([Table.from_labels(seg, gt)])
    assert (cnt_r / sum_r, cnt_p / sum_p) == pytest.approx((0.5, 0.5))
    np.testing.assert_allclose(best, [0.5, 0.5])
    # label 0 is not a region: its pixels count for neither covering
    seg0 = gt.copy()
    seg0[:, 2:] = 0
    cnt_r, sum_r, cnt_p, sum_p, *_ = level_scores([Table.from_labels(seg0, gt)])
    assert (cnt_r / sum_r, sum_p, cnt_p) == pytest.approx((0.5, 8, 8))


def test_region_image_two_annotators():
    gt1 = np.ones((4, 4), int)
    gt2 = gt1.copy()
    gt2[:, 2:] = 2
    pred = Prediction("segs", [gt2.copy(), np.ones((4, 4), int)])
    r = region_image(pred, [gt1, gt2], np.array([1.0, 2.0]))
    # level 1 = gt2: covers gt2 fully, gt1 by 0.5 per half -> R = (16*0.5 + 16*1) / 32
    np.testing.assert_allclose(r.cntR / r.sumR, [0.75, 0.75])
    np.testing.assert_allclose(r.sumR, [32, 32])
    assert r.cntR_best == pytest.approx(16 * 1 + 8 * 1 + 8 * 1)  # every GT region fully covered once


def test_seg2bdry_by_hand():
    # the official imageSize map marks the pixel left of / above a label change
    np.testing.assert_array_equal(seg2bdry(np.array([[1, 2], [1, 2]])), [[1, 0], [1, 0]])
    np.testing.assert_array_equal(seg2bdry(np.array([[1, 1], [2, 2]])), [[1, 1], [0, 0]])
    assert not seg2bdry(np.ones((3, 4))).any()


def test_ucm2_to_segmentations_8_connectivity():
    # 2x2 image; only the pixel centres and the central junction are open below 0.5. With
    # MATLAB's default 8-connectivity all four pixels join through the junction (4-conn: four).
    ucm2 = np.full((5, 5), 0.5)
    ucm2[1::2, 1::2] = 0
    ucm2[2, 2] = 0
    np.testing.assert_array_equal(ucm2_to_segmentations(ucm2, [0.3])[0], [[1, 1], [1, 1]])
    ucm2[2, 2] = 0.5
    np.testing.assert_array_equal(ucm2_to_segmentations(ucm2, [0.3, 0.6])[0], [[1, 3], [2, 4]])


def test_ucm2_levels_column_major_labels():
    ucm2 = np.zeros((3, 5))  # 1x2 image, contour of height 0.5 between the pixels
    ucm2[:, 2] = 0.5
    low, high = ucm2_to_segmentations(ucm2, [0.3, 0.6])
    np.testing.assert_array_equal(low, [[1, 2]])
    np.testing.assert_array_equal(high, [[1, 1]])


def _thin_reference(bw):
    """Independent LUT implementation (pyEdgeEval's tables for MATLAB's thin)."""
    from pyEdgeEval.preprocess.thin.bwmorph_thin import G123_LUT, G123P_LUT

    skel = bw.astype(np.uint8)
    mask = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]], dtype=np.uint8)
    while True:
        before = skel.sum()
        for lut in (G123_LUT, G123P_LUT):
            skel[np.take(lut, ndi.correlate(skel, mask, mode="constant"))] = 0
        if skel.sum() == before:
            return skel.astype(bool)


def test_thin_by_hand_and_against_lut():
    bar = np.zeros((7, 12), bool)
    bar[2:5, 1:11] = True  # 3-pixel-thick bar -> a 1-pixel line
    t = thin(bar)
    assert t.sum() > 0 and t.sum(0).max() == 1
    line = np.zeros((5, 5), bool)
    line[2, :] = True
    np.testing.assert_array_equal(thin(line), line)  # already thin: unchanged
    rng = np.random.default_rng(0)
    for k in range(10):
        bw = ndi.binary_dilation(rng.random((40, 50)) < 0.04, iterations=int(rng.integers(0, 3)))
        np.testing.assert_array_equal(thin(bw), _thin_reference(bw), err_msg=str(k))


@pytest.mark.parametrize("solver", ["exact", "csa"])
def test_matcher_by_hand(solver):
    m = Matcher((100, 100), solver=solver)  # radius 0.0075 * hypot(100, 100) = 1.06 px
    gt = np.zeros((100, 100), bool)
    gt[50, 50] = True
    g = m.prepare(gt)
    pred = np.zeros_like(gt)
    pred[50, 52] = True  # 2 px away: too far
    assert m.match(pred, g)[1] == 0
    pred[50, 51] = True  # 1 px away: matched, and only that pixel
    m1, k = m.match(pred, g)
    assert k == 1 and m1[50, 51] and m1.sum() == 1


@pytest.mark.parametrize("solver", ["exact", "csa"])
def test_matcher_parallel_lines(solver):
    m = Matcher((400, 400), solver=solver)  # radius 4.24 px
    gt = np.zeros((400, 400), bool)
    gt[12, 10:15] = True  # 5 GT pixels
    pred = np.zeros_like(gt)
    pred[10, 10:20] = True  # 10 predicted pixels two rows up
    m1, k = m.match(pred, m.prepare(gt))
    assert k == 5 and m1.sum() == 5 and m1[10, 10:15].all()


def test_exact_match_prefers_nearest():
    # one human pixel, two candidates at distances 2 and 1: the nearer one is matched
    matched, k = exact_match(np.array([0, 1]), np.array([0, 0]), np.array([2.0, 1.0]), 2, 1)
    assert k == 1 and matched.tolist() == [False, True]
    # a chain p0-g0 (1), p0-g1 (1), p1-g1 (1): a maximum matching has both pairs
    matched, k = exact_match(np.array([0, 0, 1]), np.array([0, 1, 1]), np.ones(3), 2, 2)
    assert k == 2 and matched.all()


def test_max_f_interpolates():
    # from (R=1, P=0) to (R=0, P=1): the best F is near the middle, 0.5
    t, r, p, f = max_f(np.array([0.25, 0.75]), np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert f == pytest.approx(0.5, abs=1e-3) and t == pytest.approx(0.5, abs=0.01)
    assert fmeasure(0.0, 0.0) == 0.0


def test_average_precision_quirks():
    assert average_precision([0.5, 0.5], [1.0, 0.2]) == 0.0  # one distinct recall: 0
    # a flat P = 1 from R = 0 to 1: 101 samples x 0.01 = 1.01, as the official sum computes it
    assert average_precision([0.0, 1.0], [1.0, 1.0]) == pytest.approx(1.01)
    # recall only up to 0.5: the samples above count 0
    assert average_precision([0.0, 0.5], [1.0, 1.0]) == pytest.approx(0.51)
