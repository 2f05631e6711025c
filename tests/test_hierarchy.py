"""wnet.postprocess.hierarchy: ucm2 layout, and the hierarchy read back the way the BSDS benchmark reads it."""

import numpy as np
import pytest
import scipy.io
from helpers import nested, read_level, same_partition, shared_path

from wnet.postprocess.hierarchy import (
    HierarchyParams,
    absorb_singletons,
    argmax_regions,
    crack_strengths,
    flat_labels,
    to_ucm2,
    ucm2_from_cracks,
    ucm2_from_labels,
)


def quadrants(h=20, w=24, speck=True):
    """Four colour quadrants (TL black, BL near-black, TR red, BR blue), one-hot-ish soft maps."""
    cls = np.zeros((h, w), np.int64)
    cls[: h // 2, w // 2 :] = 1
    cls[h // 2 :, : w // 2] = 2
    cls[h // 2 :, w // 2 :] = 3
    if speck:
        cls[3:5, 3:5] = 3  # a 4-pixel region of class 3 inside the top-left quadrant
    colours = np.array([[0, 0, 0], [255, 0, 0], [25, 25, 25], [0, 0, 255]], np.uint8)
    image = colours[cls]  # (H, W, 3)
    image[3:5, 3:5] = colours[0]  # the speck has the colour of its surroundings
    probs = np.full((4, h, w), 0.05, np.float32)
    np.put_along_axis(probs, cls[None], 0.85, axis=0)
    return probs, image, cls


def test_ucm2_from_cracks_layout_by_hand():
    sh = np.array([[0.2], [0.4]])  # cracks (0,0)|(0,1) and (1,0)|(1,1)
    sv = np.array([[0.1, 0.3]])  # cracks (0,0)/(1,0) and (0,1)/(1,1)
    u = ucm2_from_cracks(sh, sv)
    expected = np.array(
        [
            [0.0, 0.0, 0.2, 0.0, 0.0],
            [0.0, 0.0, 0.2, 0.0, 0.0],
            [0.1, 0.1, 0.4, 0.3, 0.3],
            [0.0, 0.0, 0.4, 0.0, 0.0],
            [0.0, 0.0, 0.4, 0.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(u, expected)
    assert read_level(u, 0.25).tolist() == [[1, 1], [1, 2]]  # cracks 0.1, 0.2 gone; (1, 1) stays apart


def test_ucm2_layout_reproduces_official_files():
    """Rebuilding an official ucm2 from its own crack cells gives it back (junctions, frame)."""
    for path in sorted(shared_path("bsds_bench_fixture", "ucm2").glob("*.mat"))[:2]:
        u = scipy.io.loadmat(path)["ucm2"]
        np.testing.assert_array_equal(ucm2_from_cracks(u[1::2, 2:-1:2], u[2:-1:2, 1::2]), u)


def test_ucm2_from_labels_round_trip():
    labels = np.array([[0, 0, 1], [0, 2, 1], [2, 2, 1]])
    u = ucm2_from_labels(labels)
    assert u.shape == (7, 7) and set(np.unique(u)) == {0.0, 1.0}
    for t in (0.0, 0.5, 0.99):
        assert same_partition(read_level(u, t), labels)


def test_argmax_regions_are_4_connected():
    probs = np.zeros((2, 2, 2), np.float32)
    probs[0] = [[1, 0], [0, 1]]  # class 0 on the diagonal: two regions, not one
    probs[1] = 1 - probs[0]
    assert len(np.unique(argmax_regions(probs))) == 4


def test_absorb_singletons_takes_the_weakest_crack_to_a_larger_region():
    labels = np.array([[0, 0, 1], [0, 2, 1], [0, 0, 1]])
    sh, sv = np.full((3, 2), 0.5), np.full((2, 3), 0.5)
    sh[1, 1] = 0.1  # the centre's crack to region 1 is the weakest
    out = absorb_singletons(labels, sh, sv)
    assert same_partition(out, np.array([[0, 0, 1], [0, 1, 1], [0, 0, 1]]))
    # singletons whose neighbours are all singletons are left to the region graph
    checker = np.array([[0, 1], [2, 3]])
    assert (absorb_singletons(checker, np.zeros((2, 1)), np.zeros((1, 2))) == checker).all()


def test_crack_strengths_values():
    probs, image, _ = quadrants(speck=False)
    sh, sv = crack_strengths(probs, None, alpha=1.0)  # soft contrast only: 0.5 * |0.85 - 0.05| * 2
    assert sh.shape == (20, 23) and sv.shape == (19, 24)
    assert sh[0, 11] == pytest.approx(0.8) and sh[0, 0] == 0.0 and sv[9, 0] == pytest.approx(0.8)
    sh, sv = crack_strengths(probs, image, alpha=0.0)  # image only, in [0, 1]
    assert 0.0 <= sh.min() and sh.max() <= 1.0 and sh[0, 0] == 0.0 and sh[0, 11] > 0.9
    with pytest.raises(ValueError, match="alpha"):
        crack_strengths(probs, image, alpha=1.5)


def test_merge_hierarchy_round_trips_through_benchmark_reading():
    probs, image, _ = quadrants()
    cfg = HierarchyParams(mode="merge", min_region=8, alpha=0.5)
    u = to_ucm2(probs, image, cfg)
    assert u.shape == (41, 49) and u.min() == 0.0 and u.max() <= 1.0
    init = flat_labels(probs, image, cfg)
    assert len(np.unique(init)) == 4  # the 4-pixel speck was absorbed
    assert same_partition(read_level(u, 0.0), init)  # threshold 0: the initial regions
    assert len(np.unique(read_level(u, u.max()))) == 1  # top level: one region
    levels = [read_level(u, t) for t in np.linspace(0, u.max(), 25)]
    counts = [len(np.unique(s)) for s in levels]
    assert counts == sorted(counts, reverse=True) and counts[0] == 4 and counts[-1] == 1
    assert all(nested(f, c) for f, c in zip(levels[:-1], levels[1:], strict=True))
    # the weakest boundary (black | near-black) goes first: 3 regions with TL and BL joined
    first = read_level(u, np.unique(u[u > 0])[0])
    assert len(np.unique(first)) == 3 and first[0, 0] == first[-1, 0] != first[0, -1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_on_noisy_maps_is_an_ultrametric_hierarchy(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (3, 16, 18))
    probs = np.exp(logits) / np.exp(logits).sum(0)
    image = rng.integers(0, 256, (16, 18, 3), dtype=np.uint8)
    cfg = HierarchyParams(min_region=3)
    u = to_ucm2(probs, image, cfg)
    thresholds = np.unique(u)  # every level of the hierarchy
    levels = [read_level(u, t) for t in thresholds]
    assert same_partition(levels[0], flat_labels(probs, image, cfg))
    assert len(np.unique(levels[-1])) == 1
    assert all(nested(f, c) for f, c in zip(levels[:-1], levels[1:], strict=True))
    counts = [len(np.unique(s)) for s in levels]
    assert all(a > b for a, b in zip(counts[:-1], counts[1:], strict=True))  # each level merges


def test_flat_mode_is_one_segmentation():
    probs, image, _ = quadrants()
    cfg = HierarchyParams(mode="flat", min_region=8)
    u = to_ucm2(probs, image, cfg)
    assert set(np.unique(u)) == {0.0, 1.0}
    for t in (0.01, 0.5, 0.99):
        assert same_partition(read_level(u, t), flat_labels(probs, image, cfg))


def test_bad_inputs_raise():
    probs, image, _ = quadrants()
    with pytest.raises(ValueError, match="mode"):
        to_ucm2(probs, image, HierarchyParams(mode="tree"))
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        to_ucm2(probs[0], image)
    with pytest.raises(ValueError, match="size"):
        to_ucm2(probs, image[:-1])
    with pytest.raises(ValueError, match="integer"):
        ucm2_from_labels(np.zeros((3, 3)))


def test_round_trip_through_wnet_bsds_ucm2_to_segmentations():
    """The BSDS port reads the same nested hierarchy at its official thresholds."""
    bsds = pytest.importorskip("wnet.bsds")
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1, (4, 18, 22))
    probs = np.exp(logits) / np.exp(logits).sum(0)
    image = rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)
    cfg = HierarchyParams(min_region=4)
    u = to_ucm2(probs, image, cfg)
    thr = np.concatenate([[0.0], bsds.thresholds(99), [u.max()]])
    segs = bsds.ucm2_to_segmentations(u, thr)
    assert all(s.min() >= 1 for s in segs)  # every pixel is in a region
    assert all(same_partition(s, read_level(u, t)) for s, t in zip(segs, thr, strict=True))
    assert same_partition(segs[0], flat_labels(probs, image, cfg))  # t = 0: the initial regions
    assert len(np.unique(segs[-1])) == 1  # top level
    assert all(nested(f, c) for f, c in zip(segs[:-1], segs[1:], strict=True))


def test_flat_ucm2_scores_perfectly_against_its_own_partition():
    bsds = pytest.importorskip("wnet.bsds")
    probs, image, _ = quadrants(speck=False)
    u = to_ucm2(probs, image, HierarchyParams(mode="flat"))
    gt = flat_labels(probs, image, HierarchyParams()) + 1  # labels from 1, as in BSDS files
    res = bsds.evaluate_image(u, [(gt, bsds.seg2bdry(gt))], nthresh=5, bench="all")
    reg, bd = res.region, res.boundary
    np.testing.assert_allclose(reg.cntR / reg.sumR, 1.0)  # segmentation covering
    np.testing.assert_allclose(reg.sumRI, 1.0)  # probabilistic Rand index
    np.testing.assert_allclose(reg.sumVOI, 0.0, atol=1e-9)  # variation of information
    np.testing.assert_allclose(bd.cntR / bd.sumR, 1.0)  # boundary recall
    np.testing.assert_allclose(bd.cntP / bd.sumP, 1.0)  # boundary precision


@pytest.mark.parametrize("size_prior", [0.0, 100.0])
def test_size_prior_lets_a_small_region_merge_before_two_large_ones(size_prior):
    """A (190 px) | B (10 px) at strength 0.6 and A | C (100 px) at 0.5, costs worked by hand."""
    from wnet.postprocess.hierarchy import _merge_levels

    labels = np.zeros((10, 30), np.int64)
    labels[:, 20:] = 2  # C
    labels[:2, :5] = 1  # B, cut out of A's corner
    value = {(0, 1): 0.6, (0, 2): 0.5}
    sh = np.array(
        [[value.get(tuple(sorted((a, b))), 0.0) for a, b in zip(r[:-1], r[1:], strict=True)] for r in labels]
    )
    sv = np.array(
        [
            [value.get(tuple(sorted((a, b))), 0.0) for a, b in zip(r0, r1, strict=True)]
            for r0, r1 in zip(labels[:-1], labels[1:], strict=True)
        ]
    )
    g = _merge_levels(labels, sh, sv, min_region=1, size_prior=size_prior)
    level = {tuple(sorted(g.ends[e])): g.level[g.members[e] or [e]][0] for e in range(len(g.ends))}
    ab, ac = level[(0, 1)], level[(0, 2)]
    if size_prior:  # B: 0.6 * (1 - e^-0.1) first; then A+B (200 px) | C (100 px): 0.5 * (1 - e^-1)
        assert ab == pytest.approx(0.6 * (1 - np.exp(-0.1))) and ac == pytest.approx(0.5 * (1 - np.exp(-1)))
    else:  # mean boundary strength alone: A | C first at 0.5, then B at 0.6
        assert ac == pytest.approx(0.5) and ab == pytest.approx(0.6)


def test_image_reach_measures_the_step_across_a_one_pixel_ramp():
    """Columns 0 0 0 0 12 25 25 ...: adjacent pixels see half the step, reach 1 all of it."""
    import cv2

    from wnet.postprocess.hierarchy import LAB_SCALE

    image = np.zeros((6, 9, 3), np.uint8)
    image[:, 4] = 12
    image[:, 5:] = 25
    probs = np.full((2, 6, 9), 0.5, np.float32)
    lab = cv2.cvtColor(image[:1].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0]  # (9, 3)

    def expected(a, b):
        return 1 - np.exp(-np.linalg.norm(lab[a] - lab[b]) / LAB_SCALE)

    sh0, _ = crack_strengths(probs, image, alpha=0.0, image_sigma=0.0, image_reach=0)
    sh1, sv1 = crack_strengths(probs, image, alpha=0.0, image_sigma=0.0, image_reach=1)
    assert sh0[0, 3] == pytest.approx(expected(3, 4)) and sh0[0, 4] == pytest.approx(expected(4, 5))
    assert sh1[0, 3] == pytest.approx(expected(2, 5)) and sh1[0, 4] == pytest.approx(expected(3, 6))
    assert sh1[0, 3] > sh0[0, 3] + 0.05  # the whole step, not half of it
    assert sh1[0, 0] == 0.0 and sh1[0, 7] == 0.0  # flat on both sides (edge-replicated border)
    np.testing.assert_allclose(sv1, 0.0)  # nothing changes down the columns
    with pytest.raises(ValueError, match="image_reach"):
        crack_strengths(probs, image, image_reach=-1)
