"""gPb (wnet.postprocess.gpb): each stage against a literal loop or a hand-checkable case, and
the whole pipeline on tiny synthetic images (one torch thread, no shared data needed)."""

import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io
import scipy.sparse
from helpers import ROOT, load_script

from wnet.postprocess.gpb import (
    GPbParams,
    eigs,
    gpb,
    gpb_ucm2,
    gradients,
    normalize_output,
    smoothing,
    spectral,
    textons,
)


def _labels(h=26, w=30, k=6, seed=0):
    """Two regions and a square, with 20 % of the pixels relabelled at random."""
    lab = np.zeros((h, w), np.int64)
    lab[:, w // 2 :] = 3
    lab[8:16, 4:10] = 5
    rng = np.random.default_rng(seed)
    return np.where(rng.random(lab.shape) < 0.2, rng.integers(0, k, lab.shape), lab)


def _literal_gradient(labels, k, r, sigma, border, n_ori=8):
    """lib_image::hist_gradient_2D as written: per pixel, slice histograms, 1-D truncated
    smoothing of each, per-slice L1 normalisation, spin the halves, chi^2."""
    sm = gradients.slice_map(r, n_ori)
    g = None if sigma is None else textons.gaussian_1d(sigma)
    h, w = labels.shape
    out = np.zeros((n_ori, h - 2 * border, w - 2 * border))
    for y in range(border, h - border):
        for x in range(border, w - border):
            hs = np.zeros((2 * n_ori, k))
            for dx in range(-r, r + 1):
                for dy in range(-r, r + 1):
                    if sm[dx + r, dy + r] >= 0:
                        hs[sm[dx + r, dy + r], labels[y + dx, x + dy]] += 1
            if g is not None:  # conv_in_place_1D: out[n] = sum_j hist[n + s - j] g[j], truncated
                s = len(g) // 2
                hs = np.array([[sum(row[n + s - j] * g[j] for j in range(len(g)) if 0 <= n + s - j < k)
                                for n in range(k)] for row in hs])  # fmt: skip
            z = hs.sum(1, keepdims=True)
            hs = np.divide(hs, z, out=np.zeros_like(hs), where=z > 0)
            for o in range(n_ori):
                left = hs[[(o + j) % (2 * n_ori) for j in range(n_ori)]].sum(0)
                right = hs.sum(0) - left
                d, s = left - right, left + right
                out[o, y - border, x - border] = 0.5 * sum(d[i] ** 2 / s[i] for i in range(k) if d[i] != 0)
    return out


@pytest.mark.parametrize("radius", [3, 5])
@pytest.mark.parametrize("sigma", [None, 1.25])
@pytest.mark.parametrize("use_kernel", [None, False])
def test_half_disc_chi2_matches_a_literal_loop(radius, sigma, use_kernel):
    if use_kernel is None and gradients.kernel() is None:
        pytest.skip("no C compiler: the compiled kernel is unavailable")
    lab = _labels()
    ref = _literal_gradient(lab, 6, radius, sigma, border=radius)
    got = gradients.hist_gradient(lab, 6, (radius,), sigma, border=radius, use_kernel=use_kernel)[0]
    assert ref.max() > 1.0  # the square and the step give strong gradients
    np.testing.assert_allclose(got, ref, atol=2e-5 * ref.max())


def test_slices_partition_the_disc_and_orientation_0_splits_left_from_right():
    for r in (3, 5, 10, 20):
        sm = gradients.slice_map(r)
        d = np.arange(-r, r + 1)
        inside = d[:, None] ** 2 + d[None, :] ** 2 <= r * r
        assert ((sm >= 0) == inside).all() and set(np.unique(sm[inside])) <= set(range(16))
        left = (sm >= 0) & (sm < 8)  # the half disc of orientation 0
        assert (np.nonzero(left)[1] >= r).all()  # columns dy >= 0 (the half-pixel offset puts dy = 0 there)


def test_a_vertical_step_gives_its_chi2_at_orientation_0_only():
    lab = np.zeros((20, 20), np.int64)
    lab[:, 10:] = 1
    g = gradients.hist_gradient(lab, 2, (3,), None, border=3)[0]  # (8, 14, 14)
    col = 10 - 3  # first column right of the step, in the trimmed map
    assert g[0, :, col].min() > 0.9 * g.max()
    assert g[4, :, col].max() < 0.05 * g.max()  # the horizontal split sees no difference


def test_texton_assignment_matches_a_literal_loop():
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((7, 9, 34)).astype(np.float32)
    tex = rng.standard_normal((12, 34)).astype(np.float32)
    got = textons.assign(feats, tex)
    for i in range(7):
        for j in range(9):
            d = [sum((float(feats[i, j, c]) - float(tex[t, c])) ** 2 for c in range(34)) for t in range(12)]
            assert got[i, j] == int(np.argmin(d))


def test_filter_bank_has_the_original_shape_and_norms():
    fs = textons.all_filters()
    assert len(fs) == 34 and fs[0].shape == (13, 13) and fs[17].shape == (19, 19)  # s = ceil(3 sigma)
    for f in fs:
        assert abs(np.abs(f).sum() - 1) < 1e-9 and abs(f.sum()) < 1e-9  # unit L1, zero mean
    even0 = fs[0]  # orientation 0: long axis down the rows, 2nd derivative across the columns
    assert even0[6, 6] < 0 and np.allclose(even0, even0[:, ::-1]) and np.allclose(even0, even0[::-1])


def test_the_shipped_dictionary_has_64_textons():
    t = textons.load_dictionary()
    assert t.shape == (64, 34) and np.isfinite(t).all()


def test_parabola_fit_keeps_a_constant_and_a_parabola_across_the_contour():
    z = np.full((40, 50), 0.7)
    for theta in smoothing_thetas():
        np.testing.assert_allclose(smoothing.fit_parabola(z, 5, theta), 0.7, atol=1e-9)
    cols = np.arange(50)[None, :].repeat(40, 0).astype(float)
    z = 0.01 * (cols - 20) ** 2 + 0.3 * cols  # varies across columns only: theta = pi / 2 fits along them
    got = smoothing.fit_parabola(z, 5, np.pi / 2)
    np.testing.assert_allclose(got, z, atol=1e-9)  # exact inside and (with clipped support) at the border


def smoothing_thetas():
    return (1.5708, 1.1781, 0.7854, 0.3927, 0.0, 2.7489, 2.3562, 1.9635)


def test_nonmax_keeps_the_ridge_of_a_vertical_contour():
    x = np.arange(21)
    pb = np.exp(-((x - 10.0) ** 2) / 8)[None, :].repeat(15, 0)
    out = smoothing.nonmax_oriented(pb, np.zeros_like(pb))  # orientation 0: contour down the rows
    assert (out[:, 10] == pb[:, 10]).all()
    assert np.count_nonzero(out) == 15  # one per row: the first and last rows have both neighbours
    out = smoothing.nonmax_oriented(pb.T, np.full(pb.T.shape, np.pi / 2))  # the same, horizontal
    assert (out[10, :] == pb[:, 10]).all() and np.count_nonzero(out) == 15


def test_intervening_contour_affinity_follows_the_bresenham_line():
    m = np.zeros((12, 12))
    m[:, 6] = 0.8  # a contour down column 6
    w = spectral.affinities(m, radius=5).tocsr()
    p = lambda r, c: r * 12 + c  # noqa: E731
    same = math.exp(-(1 - spectral.c_ic_ss(0.0)) / 0.1)
    across = math.exp(-(1 - spectral.c_ic_ss(0.8)) / 0.1)
    assert w[p(3, 2), p(3, 5)] == pytest.approx(same)  # no contour crossed
    assert w[p(3, 4), p(3, 8)] == pytest.approx(across)  # crosses column 6
    # a step crosses the lattice edge valued with its left / upper pixel: reaching column 6 from
    # the left crosses nothing, leaving it to the right crosses 0.8
    assert w[p(3, 3), p(3, 6)] == pytest.approx(same)
    assert w[p(3, 6), p(3, 9)] == pytest.approx(across)
    assert w[p(3, 3), p(3, 3)] == 1.0 and w[p(0, 0), p(5, 5)] == 0.0  # self; beyond the radius
    assert abs(w - w.T).max() < 1e-12


def test_eigenvectors_solve_the_generalized_problem():
    rng = np.random.default_rng(2)
    m = np.zeros((70, 72))
    m[20, :], m[:, 40] = 0.9, 0.6  # two contours
    m = np.clip(m + 0.05 * rng.random(m.shape), 0, 1)
    w = spectral.affinities(m).tocsr()
    d = np.asarray(w.sum(1)).ravel()
    lam, v = eigs.multigrid_eigs(m, 17, 5, 0.1, iters=40)  # 70 x 72 > 4000 px: two levels
    lap = scipy.sparse.diags(d) - w
    res = np.linalg.norm(lap @ v - (d[:, None] * v) * lam[None, :], axis=0) / np.linalg.norm(
        d[:, None] * v, axis=0
    )
    assert res.max() < 2e-3
    np.testing.assert_allclose(v.T @ (d[:, None] * v), np.eye(17), atol=1e-3)  # D-orthonormal
    ref = eigs.arpack_eigs(w, 17)[0]
    np.testing.assert_allclose(lam, ref, atol=1e-5)
    assert abs(lam[0]) < 1e-6 and (np.diff(lam) >= -1e-7).all()


def test_oe_filter_orientation():
    f = spectral.oe_filter(np.pi / 2)  # differentiates along the columns
    assert f.shape == (7, 7) and abs(np.abs(f).sum() - 1) < 1e-12
    np.testing.assert_allclose(f, -f[:, ::-1], atol=1e-12)
    g = spectral.oe_filter(np.pi)  # along the rows
    np.testing.assert_allclose(g, -g[::-1, :], atol=1e-12)


def _square_image(n=48):
    img = np.full((n, n, 3), 60, np.uint8)
    img[12:36, 14:34] = (200, 180, 90)
    return cv2.GaussianBlur(img, (3, 3), 0)


@pytest.fixture(scope="module")
def square_gpb():
    return gpb(_square_image())


def test_gpb_peaks_on_the_boundaries_at_their_orientation(square_gpb):
    g = square_gpb.orient  # (48, 48, 8), project convention: o = 0 horizontal, o = 4 vertical
    mag = g.max(-1)
    # the square spans rows 12..35 and columns 14..33; the original's half-disc slices are
    # centred half a pixel down and right, so a peak may sit one pixel past the crack
    for r in range(16, 32):  # left and right sides: vertical contours
        assert int(np.argmax(mag[r, 4:24])) + 4 in (13, 14, 15)
        assert int(np.argmax(mag[r, 24:44])) + 24 in (33, 34, 35)
        assert int(np.argmax(g[r, 14])) == 4 and int(np.argmax(g[r, 34])) == 4
    for c in range(18, 30):  # top and bottom: horizontal contours
        assert int(np.argmax(mag[4:24, c])) + 4 in (11, 12, 13)
        assert int(np.argmax(mag[24:44, c])) + 24 in (35, 36, 37)
        assert int(np.argmax(g[12, c])) == 0 and int(np.argmax(g[36, c])) == 0
    assert mag[24, 24] < 0.3 * mag.max() and mag[24, 4] < 0.3 * mag.max()  # flat regions


def test_gpb_ucm2_separates_the_square(square_gpb):
    from wnet.bsds.levels import ucm2_to_segmentations  # noqa: F401 (the benchmark's own reader)

    ucm2 = gpb_ucm2(square_gpb.orient)
    assert ucm2.shape == (97, 97) and ucm2.min() == 0 and ucm2.max() <= 1
    seg = cv2.connectedComponents((ucm2 <= 0.5 * ucm2.max()).astype(np.uint8), connectivity=8)[1][1::2, 1::2]
    assert seg[24, 24] != seg[3, 3]  # the square is its own region at half the top level
    assert (seg[14:34, 16:32] == seg[24, 24]).all() and (seg[:8] == seg[3, 3]).all()


def test_normalize_output_is_the_original_sigmoid():
    assert normalize_output(np.array([0.0]))[0] == 0.0
    v = 1 / (1 + math.exp(-(-2.7487 + 11.1189 * 0.3)))
    assert normalize_output(np.array([0.3]))[0] == pytest.approx((v - 0.0602) / (1 - 0.0602))


def test_params_are_checked():
    with pytest.raises(ValueError, match="13"):
        GPbParams(gpb_weights=(0.1,) * 12)
    with pytest.raises(ValueError, match="eigensolver"):
        GPbParams(eigensolver="lanczos")


@pytest.mark.slow  # gPb of several images in a subprocess
def test_cli_writes_ucm2_files_and_resumes(tmp_path):
    src = tmp_path / "images"
    src.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(src / f"{name}.png"), _square_image(40)[..., ::-1])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "wnet.postprocess.gpb", str(src), str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    for name in ("a", "b"):
        u = scipy.io.loadmat(out / f"{name}.mat")["ucm2"]
        assert u.shape == (81, 81) and 0 < u.max() <= 1
    summary = json.loads((out / "timings.json").read_text())
    assert summary["n_images"] == 2 and summary["total_cpu_seconds"]["max"] > 0
    assert "spb_eigensolver" in summary["stage_median_seconds"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert r.returncode == 0 and len((out / "timings.jsonl").read_text().splitlines()) == 2  # nothing redone
    bad = subprocess.run(
        [*cmd[:3], str(tmp_path / "none"), str(out)], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def _original_walk(dx: int, dy: int) -> list[tuple[int, int]]:
    """ic_walk's Bresenham stepping, literally (octants of the BSR code; x = column, y = row)."""
    adx, ady = abs(dx), abs(dy)
    if dx > 0 and dy >= 0:
        octant = 0 if adx > ady else 1
    elif dx <= 0 and dy > 0:
        octant = 2 if adx < ady else 3
    elif dy <= 0 and dx < 0:
        octant = 4 if adx > ady else 5
    else:
        octant = 6 if adx < ady else 7
    major_x = octant in (0, 3, 4, 7)
    sx = 1 if octant in (0, 1, 6, 7) else -1
    sy = 1 if octant in (0, 1, 2, 3) else -1
    t, x, y, pts = (-adx if major_x else -ady), 0, 0, [(0, 0)]
    while (x, y) != (dx, dy):
        if major_x:
            x, t = x + sx, t + 2 * ady
            if t > 0:
                y, t = y + sy, t - 2 * adx
        else:
            y, t = y + sy, t + 2 * adx
            if t > 0:
                x, t = x + sx, t - 2 * ady
        pts.append((x, y))
    return pts


def _original_support(m: np.ndarray, x0: int, y0: int, wr: int) -> dict:
    """interveningContour for a pixel whose box is inside the image: {(x, y): max mPb crossed}."""
    h_edge = lambda x, y: m[y - 1, x] if y >= 1 else 0.0  # noqa: E731  l{1}(2:end, :) = mPb
    v_edge = lambda x, y: m[y, x - 1] if x >= 1 else 0.0  # noqa: E731  l{2}(:, 2:end) = mPb
    per = [(x, -wr) for x in range(-wr, wr + 1)] + [(wr, y) for y in range(-wr + 1, wr + 1)]
    per += [(x, wr) for x in range(wr - 1, -wr - 1, -1)] + [(-wr, y) for y in range(wr - 1, -wr, -1)]
    out = {}
    for k, b in enumerate(per):
        b1, b3 = per[k - 1], per[(k + 1) % len(per)]
        d11, d22, d33 = (v[0] ** 2 + v[1] ** 2 for v in (b1, b, b3))
        pts, maxpb = _original_walk(*b), 0.0
        for (ox, oy), (xi, yi) in zip(pts[:-1], pts[1:], strict=True):
            (ax, ay), (bx, by) = (x0 + ox, y0 + oy), (x0 + xi, y0 + yi)
            if ax == bx:
                cut = h_edge(bx, by) if by > ay else h_edge(ax, ay)
            elif ay == by:
                cut = v_edge(bx, by) if bx > ax else v_edge(ax, ay)
            else:  # a diagonal step crosses two H and two V edges of its 2x2 block
                hx, vx = (ax, bx) if bx > ax else (bx, ax)
                hy, vy = (by, ay) if by > ay else (ay, by)
                cut = max(h_edge(ax, hy), h_edge(bx, hy), v_edge(vx, ay), v_edge(vx, by))
            maxpb = max(maxpb, cut)
            dii = xi * xi + yi * yi
            d1, d2, d3 = (xi * v[0] + yi * v[1] for v in (b1, b, b3))
            if d2 * d2 == dii * d22 or (d11 * d2 * d2 > d22 * d1 * d1 and d33 * d2 * d2 >= d22 * d3 * d3):
                out[(bx, by)] = maxpb
    return out


def test_line_affinities_equal_the_original_rays_once_symmetrised():
    """The original records each pixel on its best-aligned ray to the window's border, whose path
    differs from the Bresenham line of the pair for 24 of the 80 offsets of radius 5; after the
    symmetrising average, W is nevertheless the same, pair for pair, away from the image border."""
    rng = np.random.default_rng(3)
    m, wr, rho = rng.random((17, 18)), 5, 0.1
    ours = spectral.affinities(m, radius=wr, rho=rho).tocsr()
    inner = [(x, y) for y in range(wr, 17 - wr) for x in range(wr, 18 - wr)]
    support = {p: _original_support(m, *p, wr) for p in inner}
    one_way = lambda p, q: math.exp(-(1 - spectral.c_ic_ss(support[p][q])) / rho)  # noqa: E731
    checked = 0
    for p in inner:
        for q in inner:
            if p != q and (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 <= wr * wr:
                w = 0.5 * (one_way(p, q) + one_way(q, p))
                assert ours[p[1] * 18 + p[0], q[1] * 18 + q[0]] == pytest.approx(w, rel=1e-12)
                checked += 1
    assert checked > 500


def test_fidelity_subset_is_scored_against_the_official_hierarchies_of_the_same_images(tmp_path):
    """experiments/gpb_val.py --limit N: the official side of the table reads only those N images."""
    gpb_val = load_script("gpb_val")
    data = tmp_path / "BSDS500"
    for i in ("3", "1", "2"):
        for folder, suffix in (("images/val", ".jpg"), ("ucm2_gpb/val", ".mat")):
            (data / folder).mkdir(parents=True, exist_ok=True)
            (data / folder / f"{i}{suffix}").write_bytes(b"x")
    images = gpb_val.list_images(data / "images" / "val")
    assert gpb_val.official_folder(data, images, tmp_path / "out") == data / "ucm2_gpb" / "val"
    subset = gpb_val.official_folder(data, images[:2], tmp_path / "out")
    assert sorted(p.name for p in subset.iterdir()) == ["1.mat", "2.mat"]
    assert (subset / "1.mat").resolve() == (data / "ucm2_gpb" / "val" / "1.mat").resolve()


@pytest.mark.parametrize(
    "script, args, said",
    [
        ("learn_textons", ["--images", "{tmp}/nope/train"], "learn_textons: error: image folder {tmp}/nope/train does not exist"),
        ("gpb_val", ["--data", "{tmp}/nope", "--out", "{tmp}/out"], "gpb_val: error: image folder {tmp}/nope/images/val does not exist"),
    ],
)  # fmt: skip
def test_a_missing_image_folder_is_one_line_naming_it(tmp_path, script, args, said):
    with pytest.raises(SystemExit) as e:
        load_script(script).main([a.format(tmp=tmp_path) for a in args])
    assert str(e.value).startswith(said.format(tmp=tmp_path)) and "\n" not in str(e.value)
