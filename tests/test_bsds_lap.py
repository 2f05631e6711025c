"""The boundary matcher's assignment on dense boundary maps: exact, and bounded in time.

A fine level of a real hierarchy (gPb-owt-ucm, a good W-Net) is an oversegmentation whose thinned
boundary covers much of the image; the matcher before ``wnet.bsds.lap`` stalled on such maps. Here
the per-component solvers are checked against scipy's dense solver on random problems, and the
whole matcher against a brute-force reference on a watershed oversegmentation.
"""

import time

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from helpers import FIXTURES
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import maximum_flow

from wnet.bsds import kernels
from wnet.bsds.assignment import _max_matching
from wnet.bsds.correspond import Matcher
from wnet.bsds.lap import min_cost_assignment, solve_component, use_dense
from wnet.bsds.ssp import shortest_augmenting_paths
from wnet.bsds.thin import thin

GT = FIXTURES / "bsds_bench" / "groundTruth"


def random_problem(seed: int, nr: int, nc: int, degree: int, integer: bool):
    """A feasible sparse assignment problem: a hidden full assignment plus random extra edges."""
    rng = np.random.default_rng(seed)
    hidden = rng.permutation(nc)[:nr]
    r = np.r_[np.arange(nr), rng.integers(0, nr, nr * degree)]
    c = np.r_[hidden, rng.integers(0, nc, nr * degree)]
    pairs = np.unique(np.stack([r, c], 1), axis=0)
    w = rng.integers(0, 5, len(pairs)).astype(float) if integer else rng.random(len(pairs)) * 4
    return pairs[:, 0], pairs[:, 1], w  # integer costs: many ties, the hard case for a solver


def optimum(r, c, w, nr, nc) -> float:
    m = np.full((nr, nc), np.inf)
    m[r, c] = w
    rows, cols = linear_sum_assignment(m)
    return m[rows, cols].sum()


def check_assignment(col, r, c, w, nr, best) -> None:
    cost = {(a, b): x for a, b, x in zip(r.tolist(), c.tolist(), w.tolist(), strict=True)}
    assert col.shape == (nr,) and len(set(col.tolist())) == nr  # every row, distinct columns
    assert all((i, j) in cost for i, j in enumerate(col.tolist()))  # along existing edges
    assert sum(cost[i, j] for i, j in enumerate(col.tolist())) == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize(
    ("nr", "nc", "degree"), [(1, 1, 0), (5, 5, 1), (40, 45, 2), (300, 310, 3), (120, 400, 4)]
)
@pytest.mark.parametrize("budget", [2, 512])  # 2: most searches go to scipy's Dijkstra
def test_sparse_solver_is_optimal(nr, nc, degree, integer, budget):
    for seed in range(3):
        r, c, w = random_problem(seed, nr, nc, degree, integer)
        col = shortest_augmenting_paths(r, c, w, nr, nc, budget=budget)
        check_assignment(col, r, c, w, nr, optimum(r, c, w, nr, nc))


@pytest.mark.parametrize("integer", [True, False])
def test_component_split_and_cache_keep_the_optimum(integer):
    # several independent problems side by side, as the components of a boundary map
    parts, off_r, off_c = [], 0, 0
    for seed, (nr, nc) in enumerate([(1, 3), (30, 30), (200, 260), (7, 9), (900, 950)]):
        r, c, w = random_problem(seed, nr, nc, 2, integer)
        parts.append((r + off_r, c + off_c, w))
        off_r, off_c = off_r + nr, off_c + nc
    r, c, w = (np.concatenate(x) for x in zip(*parts, strict=True))
    best = optimum(r, c, w, off_r, off_c)
    cache = {}
    keys_r, keys_c = np.arange(off_r) * 7, np.arange(off_c) * 11
    first = min_cost_assignment(r, c, w, off_r, off_c, keys_r, keys_c, cache)
    check_assignment(first, r, c, w, off_r, best)
    assert cache  # the components that needed a solver were kept
    again = min_cost_assignment(r, c, w, off_r, off_c, keys_r, keys_c, cache)  # from the cache
    np.testing.assert_array_equal(again, first)
    check_assignment(min_cost_assignment(r, c, w, off_r, off_c), r, c, w, off_r, best)


def test_both_component_solvers_are_used_and_agree():
    assert use_dense(10, 20) and not use_dense(2000, 2100)
    r, c, w = random_problem(3, 900, 950, 3, True)
    assert not use_dense(900, 950)
    best = optimum(r, c, w, 900, 950)
    check_assignment(solve_component(r, c, w, 900, 950), r, c, w, 900, best)
    r, c, w = random_problem(4, 50, 60, 3, True)
    check_assignment(solve_component(r, c, w, 50, 60), r, c, w, 50, optimum(r, c, w, 50, 60))


def oversegmentation(shape, seed: int, markers: int) -> np.ndarray:
    """The thinned boundary of a watershed oversegmentation of a smooth random image: a dense map
    like the finest levels of a gPb-owt-ucm hierarchy."""
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.random(shape), 3)
    grad = ndimage.gaussian_gradient_magnitude(image, 1)
    seeds = np.zeros(shape, np.int32)
    seeds.flat[rng.choice(seeds.size, markers, replace=False)] = np.arange(1, markers + 1)
    labels = ndimage.watershed_ift((grad / grad.max() * 255).astype(np.uint8), seeds)
    edge = np.zeros(shape, bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return thin(edge)


def brute_force(bmap: np.ndarray, gt: np.ndarray, radius: float) -> tuple[int, float]:
    """Most pairs within ``radius``, then least total distance, by one dense assignment."""
    p, g = np.argwhere(bmap), np.argwhere(gt)
    d = np.hypot(*(p[:, None, :] - g[None, :, :]).transpose(2, 0, 1))  # (n1, n2)
    big = 1e6  # a pair out of range costs more than every in-range distance together
    rows, cols = linear_sum_assignment(np.where(d <= radius, d, big))
    ok = d[rows, cols] <= radius
    return int(ok.sum()), float(d[rows, cols][ok].sum())


def test_a_dense_fine_level_finishes_and_matches_brute_force_on_a_crop():
    gt = scipy.io.loadmat(str(GT / "2018.mat"))["groundTruth"][0, 0]["Boundaries"][0, 0] != 0
    shape = gt.shape  # (321, 481), a real BSDS annotation
    bmap = oversegmentation(shape, 0, 3000)  # regions of ~50 px: most pixels near a boundary
    assert bmap.mean() > 0.15
    m = Matcher(shape)
    t0 = time.perf_counter()
    flags, k = m.match(bmap, m.prepare(gt))
    assert time.perf_counter() - t0 < 20  # the matcher before lap.py took minutes on such maps
    assert 0 < k == flags.sum() <= gt.sum()
    legacy = Matcher(shape, solver="legacy")
    assert legacy.match(bmap, legacy.prepare(gt))[1] == k  # the same optimum, solved in one call

    # a crop small enough for a brute-force dense assignment over all pixel pairs
    # (the 60 x 80 window with the most human boundary, matched at the whole image's radius)
    counts = {(y, x): gt[y : y + 60, x : x + 80].sum() for y in range(0, 261, 20) for x in range(0, 401, 20)}
    y, x = max(counts, key=counts.get)
    crop_b, crop_g = bmap[y : y + 60, x : x + 80], gt[y : y + 60, x : x + 80]
    mc = Matcher(crop_b.shape, max_dist=m.radius / np.hypot(60, 80))
    assert mc.radius == pytest.approx(m.radius) and m.radius > 4
    k_ref, dist_ref = brute_force(crop_b, crop_g, mc.radius)
    flags, k = mc.match(crop_b, mc.prepare(crop_g))
    assert k == flags.sum() == k_ref > 50
    # the least total distance too: rebuild the optimum's distance from an exact matcher call
    p, g = np.argwhere(crop_b), np.argwhere(crop_g)
    d = np.hypot(*(p[:, None, :] - g[None, :, :]).transpose(2, 0, 1))
    sel = np.where(d <= mc.radius, d, 1e6)[flags[crop_b]]  # rows of the matched predicted pixels
    rows, cols = linear_sum_assignment(sel)
    assert sel[rows, cols].sum() == pytest.approx(dist_ref, abs=1e-6)


needs_kernels = pytest.mark.skipif(
    not kernels.available(), reason="no C compiler: the Python paths run instead"
)


@pytest.fixture(params=["compiled", "python"])
def kernel_mode(request, monkeypatch):
    """Run a test with the C kernels and again with the Python/scipy fallback."""
    if request.param == "compiled" and not kernels.available():
        pytest.skip("no C compiler")
    if request.param == "python":
        monkeypatch.setattr(kernels, "_state", {"error": "disabled for this test"})
    return request.param


def flow_matching_size(ei, ej, n1, n2) -> int:
    s, t = n1 + n2, n1 + n2 + 1
    rows = np.concatenate([np.full(n1, s), ei, n1 + np.arange(n2)])
    cols = np.concatenate([np.arange(n1), n1 + ej, np.full(n2, t)])
    g = sp.csr_matrix((np.ones(rows.size, dtype=np.int32), (rows, cols)), shape=(t + 1, t + 1))
    return int(maximum_flow(g, s, t).flow_value)


@pytest.mark.parametrize(
    ("n1", "n2", "degree"), [(1, 1, 1), (10, 3, 2), (50, 80, 1), (400, 300, 2), (2000, 2000, 1)]
)
def test_max_matching_is_maximum(kernel_mode, n1, n2, degree):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        pairs = np.unique(rng.integers(0, [n1, n2], (n1 * degree, 2)), axis=0)
        ei, ej = pairs[:, 0], pairs[:, 1]
        mate = _max_matching(ei, ej, n1, n2)
        got = mate[mate >= 0]
        assert len(set(got.tolist())) == got.size  # distinct partners
        edges = set(zip(ei.tolist(), ej.tolist(), strict=True))
        assert all(
            (i, j) in edges for i, j in zip(np.flatnonzero(mate >= 0).tolist(), got.tolist(), strict=True)
        )
        assert got.size == flow_matching_size(ei, ej, n1, n2)


@needs_kernels
@pytest.mark.parametrize("integer", [True, False])
def test_compiled_searches_give_the_python_assignment(integer):
    for seed in range(3):
        r, c, w = random_problem(seed, 1500, 1600, 3, integer)
        a = shortest_augmenting_paths(r, c, w, 1500, 1600, compiled=True)
        b = shortest_augmenting_paths(r, c, w, 1500, 1600, compiled=False)
        np.testing.assert_array_equal(a, b)  # same method, same tie-breaking


def test_the_dense_level_scores_the_same_with_and_without_the_kernels(kernel_mode):
    gt = scipy.io.loadmat(str(GT / "2018.mat"))["groundTruth"][0, 0]["Boundaries"][0, 0] != 0
    bmap = oversegmentation(gt.shape, 1, 3000)
    m = Matcher(gt.shape)
    flags, k = m.match(bmap, m.prepare(gt))
    # fixed by the two C-free reference solvers of this file: brute force is too big here, the
    # one-call LAPJVsp of the legacy matcher is not
    legacy = Matcher(gt.shape, solver="legacy")
    assert (k, int(flags.sum())) == (legacy.match(bmap, legacy.prepare(gt))[1], k)
