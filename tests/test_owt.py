"""wnet.postprocess.owt (contours2ucm) and wnet.postprocess.contours: the hierarchy read back as the BSDS benchmark reads it."""

import numpy as np
import pytest
from helpers import nested, read_level, same_partition
from scipy import ndimage

from wnet.postprocess.contours import (
    OWTParams,
    canny_contours,
    half_disc_kernels,
    image_gradients,
    softmap_gradients,
    wnet_contours,
    wnet_owt_ucm2,
)
from wnet.postprocess.owt import (
    arc_orientations,
    boundary_arcs,
    check_contours,
    contours2ucm,
    owt_strengths,
    split_arc,
    watershed_regions,
)


def boundary_pixels(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label: a two-pixel-wide band along every boundary."""
    b = np.zeros(labels.shape, bool)
    dh, dv = labels[:, 1:] != labels[:, :-1], labels[1:] != labels[:-1]
    b[:, 1:] |= dh
    b[:, :-1] |= dh
    b[1:] |= dv
    b[:-1] |= dv
    return b


def scene(h=40, w=48):
    """Four regions with straight, diagonal and curved boundaries that end at the frame or close
    on themselves: where three regions meet, which region the corner pixel of a two-pixel-wide
    contour band falls to is a tie of the watershed."""
    yy, xx = np.mgrid[0:h, 0:w]
    labels = np.where(xx < 20, 0, 1)
    labels[yy + (w - 1 - xx) < 12] = 2  # an anti-diagonal corner in the top right
    labels[(yy - 26) ** 2 + (xx - 9) ** 2 <= 36] = 3  # a disc of radius 6 in the left block
    return labels


def clean_contours(labels: np.ndarray) -> np.ndarray:
    """0.9 along the true boundaries, 0.2 along two weak lines that split regions 0 and 1."""
    weak = np.zeros(labels.shape, int)
    weak[:, 30:] = 1  # a vertical line in region 1
    weak[10:, :20] += 2  # a horizontal line across region 0, ending on the strong boundary
    return np.where(boundary_pixels(labels), 0.9, np.where(boundary_pixels(weak), 0.2, 0.0))


def ultrametric_checks(u: np.ndarray, finest: np.ndarray) -> None:
    thresholds = np.unique(u)  # every level of the hierarchy
    levels = [read_level(u, t) for t in thresholds]
    assert same_partition(levels[0], finest)  # ucm2 <= 0: the watershed basins
    assert len(np.unique(levels[-1])) == 1
    assert all(nested(f, c) for f, c in zip(levels[:-1], levels[1:], strict=True))
    counts = [len(np.unique(s)) for s in levels]
    assert all(a > b for a, b in zip(counts[:-1], counts[1:], strict=True))  # each level merges
    # each crack carries the level at which its two pixels join: apart just below it, together at it
    below = dict(zip(thresholds[1:], levels[:-1], strict=True))
    at = dict(zip(thresholds, levels, strict=True))
    h, w = finest.shape
    for (y, x), v in np.ndenumerate(u[1::2, 2:-1:2]):  # cracks (y, x) | (y, x + 1)
        if v > 0:
            assert at[v][y, x] == at[v][y, x + 1] and below[v][y, x] != below[v][y, x + 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_orient", [0, 1, 8])  # 0: a plain (H, W) map
def test_every_output_is_an_ultrametric(seed, n_orient):
    rng = np.random.default_rng(seed)
    shape = (14, 17) if n_orient == 0 else (14, 17, n_orient)
    e = ndimage.uniform_filter(rng.random(shape), size=(2, 2, 1)[: len(shape)])  # some plateaus, many minima
    u = contours2ucm(e)
    assert u.shape == (29, 35) and u.min() == 0.0 and u.max() <= 1.0
    assert (u[1::2, 1::2] == 0).all()  # pixel cells
    ultrametric_checks(u, watershed_regions(e))


@pytest.mark.parametrize("options", [{"size_prior": 20.0}, {"min_region": 4}, {"split_tol": 0.5}])
def test_options_keep_the_ultrametric(options):
    e = ndimage.uniform_filter(np.random.default_rng(5).random((16, 15, 4)), size=(3, 3, 1))
    u = contours2ucm(e, **options)
    levels = [read_level(u, t) for t in np.unique(u)]
    assert len(np.unique(levels[-1])) == 1
    assert all(nested(f, c) for f, c in zip(levels[:-1], levels[1:], strict=True))


@pytest.mark.parametrize("n_orient", [1, 8])
def test_clean_contours_of_known_regions_give_those_regions_at_a_mid_threshold(n_orient):
    labels = scene()
    e = clean_contours(labels)
    u = contours2ucm(np.repeat(e[..., None], n_orient, -1))
    assert len(np.unique(read_level(u, 0.1))) == 6  # the weak lines split regions 0 and 1
    assert same_partition(read_level(u, 0.5), labels)
    assert len(np.unique(read_level(u, 0.95))) == 1
    assert np.allclose(u[u > 0.5], 0.9)  # every true boundary at its strength


def test_an_oriented_contour_along_an_arc_keeps_its_strength():
    """A vertical contour (o = 4 of 8) on column 11 and an anti-diagonal one (45 deg, o = 2)."""
    h, w = 24, 30
    e = np.zeros((h, w, 8))
    e[:, 11, 4] = 0.7  # strong only at the arc's own orientation
    e[:, 11, [0, 1, 2, 3, 5, 6, 7]] = 0.05
    yy, xx = np.mgrid[0:h, 0:w]
    diag = (yy + xx == 40) | (yy + xx == 41)  # bottom-left to top-right, right of the vertical line
    e[diag, 2] = 0.6
    e[diag, 6] = 0.1  # the perpendicular orientation, 135 deg
    labels = watershed_regions(e)
    assert len(np.unique(labels)) == 3
    sh, sv = owt_strengths(e, labels)
    cut = labels[:, :-1] != labels[:, 1:]  # cracks between horizontal neighbours
    left = cut & (np.arange(w - 1) < 15)  # along the vertical line
    assert left.sum() == h and np.allclose(sh[left], 0.7)
    right = np.arange(w) > 15  # the diagonal; the vertical line's own vertical steps read 0.7
    assert np.allclose(sh[cut & ~left], 0.6) and np.allclose(sv[(labels[:-1] != labels[1:]) & right], 0.6)
    u = contours2ucm(e)
    assert sorted(np.unique(u)) == pytest.approx([0.0, 0.6, 0.7])
    # with the strength at the perpendicular orientation instead, the arc reads the weak one
    e[diag, 2], e[diag, 6] = 0.1, 0.6
    sh2, _ = owt_strengths(e, labels)
    assert np.allclose(sh2[cut & ~left], 0.1)


def test_a_weak_arc_grazing_a_strong_contour_is_not_upweighted():
    """The OWT artefact of Arbelaez et al. fig. 12: a horizontal arc ending on a strong vertical
    contour reads the horizontal response there, not the vertical one."""
    e = np.zeros((20, 20, 8))
    e[:, 9:11, 4] = 0.9  # a strong vertical contour, two pixels wide
    e[9:11, :, 0] = 0.2  # a weak horizontal contour that crosses it
    labels = watershed_regions(e)
    sh, sv = owt_strengths(e, labels)
    horiz = labels[:-1] != labels[1:]
    assert horiz.any() and np.allclose(sv[horiz], 0.2)
    plain = owt_strengths(e.max(-1), labels)[1]  # without orientations the crossing reads 0.9
    assert plain[horiz].max() == pytest.approx(0.9)


def test_split_arc_by_hand():
    ell = np.array([[0, 0], [0, 1], [0, 2], [0, 3], [1, 3], [2, 3], [3, 3]], float)
    assert split_arc(ell) == [0, 3, 6]  # corner 2.12 px off a 4.24 px chord
    assert split_arc(ell, tol=0.6) == [0, 6]  # 2.12 / 4.24 = 0.5 is within tolerance
    wiggle = np.array([[0, 0], [0.3, 1], [0, 2], [0, 10]], float)  # 0.3 px off a 10 px chord
    assert split_arc(wiggle) == [0, 3]
    square = np.array([[0, 0], [0, 2], [2, 2], [2, 0], [0, 0]], float)  # closed: chord 0
    assert split_arc(square) == [0, 1, 2, 3, 4]


def test_arcs_and_orientations_of_a_staircase():
    labels = (np.add.outer(np.arange(8), np.arange(8)) >= 8).astype(int)  # anti-diagonal staircase
    arcs = boundary_arcs(labels)
    assert len(arcs) == 1 and len(arcs[0][0]) == 14  # 7 vertical + 7 horizontal cracks
    o = arc_orientations(labels, 8)
    assert set(o[o >= 0].tolist()) == {2}  # one 45 degree segment
    ring = np.zeros((7, 7), int)
    ring[2:5, 2:5] = 1  # a closed loop without a junction
    assert len(boundary_arcs(ring)) == 1 and len(boundary_arcs(ring)[0][0]) == 12


def test_plain_and_isotropic_maps_agree_and_ucm2_layout():
    e = ndimage.uniform_filter(np.random.default_rng(1).random((12, 13)), size=2)
    u = contours2ucm(e)
    np.testing.assert_array_equal(u, contours2ucm(e[..., None]))
    np.testing.assert_array_equal(u, contours2ucm(np.repeat(e[..., None], 8, -1)))
    junction = np.maximum.reduce([u[1:-1:2, 2:-1:2][:-1], u[1:-1:2, 2:-1:2][1:], u[2:-1:2, 1:-1:2][:, :-1]])
    np.testing.assert_array_equal(u[2:-1:2, 2:-1:2], np.maximum(junction, u[2:-1:2, 1:-1:2][:, 1:]))


def test_round_trip_through_wnet_bsds():
    bsds = pytest.importorskip("wnet.bsds")
    labels = scene()
    u = contours2ucm(clean_contours(labels))
    thr = np.concatenate([[0.0], bsds.thresholds(9)])
    segs = bsds.ucm2_to_segmentations(u, thr)
    assert all(same_partition(s, read_level(u, t)) for s, t in zip(segs, thr, strict=True))
    assert same_partition(segs[5], labels)  # t = 0.5


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros(5), "shape"),
        (np.zeros((1, 5)), "shape"),
        (np.zeros((4, 4, 2, 2)), "shape"),
        (np.zeros((4, 4, 0)), "shape"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), 1.5), r"\[0, 1\]"),
        (np.full((4, 4), -0.1), r"\[0, 1\]"),
    ],
)
def test_bad_contours_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        contours2ucm(bad)
    with pytest.raises(ValueError, match=match):
        check_contours(bad)


def test_bad_options_raise():
    e = np.zeros((4, 5))
    with pytest.raises(ValueError, match="split_tol"):
        contours2ucm(e, split_tol=0.0)
    with pytest.raises(ValueError, match="min_region"):
        contours2ucm(e, min_region=-1)
    with pytest.raises(ValueError, match="size_prior"):
        contours2ucm(e, size_prior=-1.0)
    with pytest.raises(ValueError, match="labels"):
        owt_strengths(e, np.zeros((5, 4), int))
    assert (contours2ucm(e) == 0).all()  # a flat map: one basin, no boundary


# -- contour signals -----------------------------------------------------------------------------


def test_half_disc_kernels():
    k = half_disc_kernels(3, 8)
    assert k.shape == (8, 7, 7)
    np.testing.assert_allclose(k.sum((1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(np.abs(k).sum((1, 2)), 2, atol=1e-5)  # +1 on one half, -1 on the other
    assert k[0, 0, 3] > 0 > k[0, 6, 3] and k[0, 3, 3] == 0  # o = 0: the half above minus below
    assert k[4, 3, 0] > 0 > k[4, 3, 6]  # o = 4 (vertical): left minus right
    with pytest.raises(ValueError, match="radius"):
        half_disc_kernels(0)


@pytest.mark.parametrize(
    "cut, expected_o, far",
    [
        (lambda yy, xx: yy < 10, 0, (0, 0)),  # horizontal boundary
        (lambda yy, xx: xx < 10, 4, (0, 0)),  # vertical
        (lambda yy, xx: yy + xx < 20, 2, (0, 0)),  # anti-diagonal, 45 deg counter-clockwise
        (lambda yy, xx: yy - xx < 0, 6, (19, 0)),  # diagonal, 135 deg
    ],
)
def test_signals_peak_at_the_boundary_orientation(cut, expected_o, far):
    yy, xx = np.mgrid[0:20, 0:20]
    inside = cut(yy, xx)
    probs = np.stack([inside, ~inside]).astype(np.float32)
    image = np.where(inside[..., None], 40, 200).astype(np.uint8).repeat(3, -1)
    for e in (softmap_gradients(probs, 3), image_gradients(image, 3), canny_contours(image, 1.0)):
        assert e.shape == (20, 20, 8) and e.min() >= 0 and e.max() <= 1
        assert int(e[8:12, 8:12].max((0, 1)).argmax()) == expected_o
    g = softmap_gradients(probs, 3)
    assert g.max() == pytest.approx(1.0, abs=1e-5) and g[far].max() == pytest.approx(0, abs=1e-6)  # step; far


def test_wnet_contours_mixes_the_terms_and_feeds_contours2ucm():
    labels = scene()
    probs = np.stack([labels == k for k in range(4)]).astype(np.float32) * 0.9 + 0.025
    image = np.full((*labels.shape, 3), 128, np.uint8)  # a flat image: its term is 0
    e = wnet_contours(probs, image, alpha=0.5, radius=3, image_radius=3)
    np.testing.assert_allclose(e, 0.5 * softmap_gradients(probs, 3), atol=1e-6)
    np.testing.assert_allclose(wnet_contours(probs, None), softmap_gradients(probs, 10))
    u = contours2ucm(e)
    seg = read_level(u, 0.3)
    assert len(np.unique(seg)) == 4
    # a straight half disc on a curved boundary may put the ridge one pixel off: >= 98 % agree
    majority = {k: np.bincount(labels[seg == k]).argmax() for k in np.unique(seg)}
    assert np.mean(np.vectorize(majority.get)(seg) == labels) >= 0.98
    with pytest.raises(ValueError, match="alpha"):
        wnet_contours(probs, image, alpha=2.0)
    with pytest.raises(ValueError, match="size"):
        wnet_contours(probs, image[:-1])
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        softmap_gradients(probs[0])


def test_wnet_owt_ucm2_is_the_documented_composition():
    labels = scene()
    probs = np.stack([labels == k for k in range(4)]).astype(np.float32) * 0.9 + 0.025
    image = np.where(labels[..., None] == 1, 200, 60).astype(np.uint8).repeat(3, -1)
    p = OWTParams(alpha=0.5, radius=3, image_radius=3, size_prior=50.0)
    u = wnet_owt_ucm2(probs, image, p)
    np.testing.assert_array_equal(u, contours2ucm(wnet_contours(probs, image, 0.5, 3, 3), size_prior=50.0))
    default = wnet_owt_ucm2(probs, image)  # OWTParams(): alpha 0.3, radius 10, image_radius 5, size_prior 400
    expected = contours2ucm(wnet_contours(probs, image), size_prior=400.0)
    np.testing.assert_array_equal(default, expected)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"alpha": 1.5}, "owt.alpha"),
        ({"radius": 0}, "owt.radius"),
        ({"image_radius": 2.5}, "owt.image_radius"),
        ({"size_prior": -1.0}, "owt.size_prior"),
    ],
)
def test_owt_params_are_checked(bad, match):
    with pytest.raises(ValueError, match=match):
        OWTParams(**bad).check()
    OWTParams().check()
