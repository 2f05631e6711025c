"""contours2ucm(..., watershed="lines"): the original's 8-connected watershed with one-pixel
lines and regions on the corner grid (wnet.postprocess.owt_lines)."""

import numpy as np
import pytest

from wnet.postprocess.owt import contours2ucm
from wnet.postprocess.owt_lines import corner_regions, watershed_lines


def _two_bowls(h=21, w=30):
    y, x = np.mgrid[0:h, 0:w]
    return np.minimum((y - 10) ** 2 + (x - 7) ** 2, (y - 10) ** 2 + (x - 22) ** 2) / 400.0


def test_watershed_lines_split_two_bowls_along_their_ridge():
    ws = watershed_lines(_two_bowls())
    assert set(np.unique(ws)) == {0, 1, 2}
    line = ws == 0
    assert line[:, 14].all() or line[:, 15].all()  # the ridge between the bowls, one pixel wide
    assert line.sum(1).max() == 1
    # no two pixels of different basins touch, even diagonally
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = ws[max(0, -dy) : ws.shape[0] - max(0, dy), max(0, -dx) : ws.shape[1] - max(0, dx)]
        b = ws[max(0, dy) :, max(0, dx) : ws.shape[1] + min(0, dx)][: a.shape[0], : a.shape[1]]
        assert not ((a > 0) & (b > 0) & (a != b)).any()


def test_corner_regions_of_a_closed_line():
    line = np.zeros((8, 8), bool)
    line[2, 2:6] = line[5, 2:6] = line[2:6, 2] = line[2:6, 5] = True  # a 4x4 square ring
    reg = corner_regions(line)
    assert len(np.unique(reg)) == 2
    inside = reg[3, 3]  # corner (i, j) lies between pixels (i, j) and (i+1, j+1)
    # the 9 corners touching the 2x2 interior (pixels 3..4) are inside, the rest outside
    assert (reg == inside).sum() == 9 and (reg[2:5, 2:5] == inside).all()


def _square_contours(n=32):
    e = np.zeros((n, n, 8))
    e[8, 8:24, 0] = e[23, 8:24, 0] = 0.8  # horizontal sides (o = 0)
    e[8:24, 8, 4] = e[8:24, 23, 4] = 0.8  # vertical sides (o = 4)
    y, x = np.mgrid[0:n, 0:n]
    return e + 0.01 * np.sin(x * 1.3 + y * 0.7)[..., None] ** 2  # weak texture: several basins


def test_lines_hierarchy_is_an_ultrametric_that_keeps_the_square():
    u = contours2ucm(_square_contours(), watershed="lines")
    assert u.shape == (65, 65) and u.min() == 0 and u.max() <= 1
    assert (u[1::2, 1::2] == 0).all()
    from scipy.ndimage import label

    counts = [label(u <= t, structure=np.ones((3, 3)))[1] for t in (0.0, 0.05, 0.5, 0.79)]
    assert counts[0] >= counts[1] >= counts[2] == 2 and counts[3] == 2  # nested, square kept
    assert label(u <= 0.81, structure=np.ones((3, 3)))[1] == 1
    np.testing.assert_allclose(u.max(), 0.8, atol=0.02)  # the square's boundary strength


def test_default_layout_is_unchanged_and_the_option_is_checked():
    e = _square_contours()
    np.testing.assert_array_equal(contours2ucm(e), contours2ucm(e, watershed="cracks"))
    with pytest.raises(ValueError, match="watershed"):
        contours2ucm(e, watershed="8")
