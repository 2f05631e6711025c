"""sPb, the spectral (global) contour cue of gPb (Arbelaez et al. 2011 sec. 3.2).

As ``spectralPb.m`` and its ``buildW`` mex (intervening-contour code of C. Fowlkes) in the BSR
release: pixels within ``radius`` = 5 px of each other get the affinity
``exp(-(1 - C(m)) / rho)``, rho = 0.1, where m is the largest mPb (non-max suppressed, the sPb
input) crossed by the Bresenham line between them and ``C(m) = 1 / (1 + exp(-(1.8682 - 1.3113 m
/ 0.3130)))`` (``C_IC_SS``); a pixel's affinity with itself is 1, and W is symmetrised by
averaging. A step between 4-neighbours crosses the mPb of the upper / left pixel of the pair; a
diagonal step crosses the three pixels of its 2x2 block other than the lower-right one (the
original's dual lattice ``l{1}``, ``l{2}``). The original walks rays from each pixel to the
border of its window and keeps, for each pixel the ray passes, the best-aligned ray; here each
pair uses the Bresenham line between the two pixels themselves. The ray to an offset crosses the
edges of the line from its far end back, so the symmetrised W is the same away from the image border (tested).

The generalized eigenproblem (D - W) v = lambda D v (17 smallest, the first being the constant
vector) is solved by :mod:`wnet.postprocess.gpb.eigs`. Each eigenvector but the first is rescaled to [0, 1], divided by sqrt(lambda) and
filtered with the 8 oriented first-derivative-of-Gaussian filters of ``oeFilter`` (sigma 1,
support 3 sigma); sPb(theta) is the sum of the absolute responses.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import scipy.sparse

RADIUS = 5  # dthresh of buildW
RHO = 0.1  # sigma of buildW
N_VEC = 17  # eigenvectors, the constant one included
N_ORI = 8


def c_ic_ss(m: np.ndarray) -> np.ndarray:
    """Probability of the same segment given the intervening contour m (BSE logistic fit)."""
    return 1.0 / (1.0 + np.exp(-(1.8682 - 1.3113 * m / 0.3130)))


@lru_cache(maxsize=128)
def bresenham(dr: int, dc: int) -> tuple[tuple[int, int], ...]:
    """Pixels (row, col) of the Bresenham line from (0, 0) to (dr, dc), both ends included.

    Steps as ``ic_walk``: along the major axis every step, along the minor one when the error
    term becomes positive.
    """
    adx, ady = abs(dc), abs(dr)
    sx, sy = (1 if dc > 0 else -1), (1 if dr > 0 else -1)
    x = y = 0
    pts = [(0, 0)]
    if adx > ady:
        t = -adx
        while x != dc:
            x += sx
            t += 2 * ady
            if t > 0:
                y += sy
                t -= 2 * adx
            pts.append((y, x))
    else:
        t = -ady
        while y != dr:
            y += sy
            t += 2 * adx
            if t > 0:
                x += sx
                t -= 2 * ady
            pts.append((y, x))
    return tuple(pts)


def half_offsets(radius: int = RADIUS) -> list[tuple[int, int]]:
    """Offsets (dr, dc) with 0 < dr^2 + dc^2 <= radius^2, one of each +-pair."""
    r = int(radius)
    return [
        (dr, dc)
        for dr in range(0, r + 1)
        for dc in range(-r, r + 1)
        if 0 < dr * dr + dc * dc <= r * r and (dr > 0 or dc > 0)
    ]


def _crossing_maps(m: np.ndarray, pad: int) -> dict[str, np.ndarray]:
    """The value crossed by a vertical, horizontal or diagonal step, keyed by its 2x2 block."""
    mp = np.pad(m, ((0, 1), (0, 1)))
    diag = np.maximum(np.maximum(mp[:-1, :-1], mp[:-1, 1:]), mp[1:, :-1])
    return {k: np.pad(v, pad) for k, v in (("v", m), ("h", m), ("d", diag))}


def _max_crossed(maps: dict[str, np.ndarray], dr: int, dc: int, shape, pad: int) -> np.ndarray:
    """Largest crossing on the line from every pixel p to p + (dr, dc). Shape: (H, W)."""
    h, w = shape
    pts = bresenham(dr, dc)
    out = np.zeros(shape)
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:], strict=True):
        kind = "v" if c0 == c1 else "h" if r0 == r1 else "d"
        br, bc = min(r0, r1) + pad, min(c0, c1) + pad
        np.maximum(out, maps[kind][br : br + h, bc : bc + w], out=out)
    return out


def affinities(mpb: np.ndarray, radius: int = RADIUS, rho: float = RHO) -> scipy.sparse.dia_matrix:
    """Intervening-contour affinity matrix W (module docstring), pixels in row-major order.

    Shape:
        mpb: (H, W) in [0, 1]; returns (H W, H W) symmetric, 1 on the diagonal.
    """
    m = np.asarray(mpb, np.float64)
    h, w = m.shape
    maps = _crossing_maps(m, radius + 1)
    rows, cols = np.mgrid[0:h, 0:w]
    offsets, data = [0], [np.ones(h * w)]
    for dr, dc in half_offsets(radius):
        fwd = np.exp(-(1 - c_ic_ss(_max_crossed(maps, dr, dc, (h, w), radius + 1))) / rho)
        bwd = np.exp(-(1 - c_ic_ss(_max_crossed(maps, -dr, -dc, (h, w), radius + 1))) / rho)
        ok = (rows + dr < h) & (cols + dc >= 0) & (cols + dc < w)
        wp = np.zeros((h, w))  # w(p) for the pair (p, p + d), averaged with the reverse line
        sl_p = np.s_[0 : h - dr, max(0, -dc) : w - max(0, dc)]
        sl_q = np.s_[dr:h, max(0, dc) : w + min(0, dc)]
        wp[sl_p] = 0.5 * (fwd[sl_p] + bwd[sl_q])
        wp = np.where(ok, wp, 0.0).ravel()
        off = dr * w + dc
        # dia layout: data[k, j] = A[j - off_k, j]; A[p, p + off] sits at column p + off
        offsets += [off, -off]
        data += [np.roll(wp, off), wp]
    return scipy.sparse.dia_matrix((np.stack(data), np.array(offsets)), shape=(h * w, h * w))


def _round(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)  # MATLAB round: halves away from zero


@lru_cache(maxsize=16)
def oe_filter(theta: float, sigma: float = 1.0, support: float = 3.0) -> np.ndarray:
    """``oeFilter(sigma, support, theta, deriv=1, hil=0)``: unit-L1, zero-mean oriented derivative.

    Sampled as the original: a 10x supersampled grid, rotated, nearest-neighbour lookups into a
    finer 1-D evaluation, accumulated into (2 hsz + 1)^2 bins. Rows of the result follow the
    original's x (its ``reshape`` transposes), so theta = pi / 2 differentiates along columns.
    """
    hsz = int(np.ceil(support * sigma))
    sz = 2 * hsz + 1
    rate = min(10, max(1, 1000 // sz))
    r = sz // 2 + 0.5 * (1 - 1 / rate)
    dom = np.linspace(-r, r, sz * rate)
    sx, sy = np.meshgrid(dom, dom)
    mx, my = _round(sx).astype(int), _round(sy).astype(int)
    su = sx * np.sin(theta) + sy * np.cos(theta)
    sv = sx * np.cos(theta) - sy * np.sin(theta)
    big = r * np.sqrt(2) * 1.01
    n = int(np.ceil(big * rate * 10))
    n += (n + 1) % 2
    fdom = np.linspace(-big, big, n)
    gap = 2 * big / (n - 1)
    fx = np.exp(-(fdom**2) / (2 * sigma**2))
    fy = np.exp(-(fdom**2) / (2 * sigma**2)) * (-fdom / sigma**2)
    xi = _round(su / gap).astype(int) + n // 2
    yi = _round(sv / gap).astype(int) + n // 2
    f = np.zeros((sz, sz))
    np.add.at(f, (mx + hsz, my + hsz), fx[xi] * fy[yi])  # f[x bin, y bin]
    f -= f.mean()
    return f / np.abs(f).sum()


# oeFilter(theta = o pi / 8), o = 1..8, adds to channel ch_per(o) of the original (ch_per =
# [4 3 2 1 8 7 6 5], 1-based): here the 0-based channel of each o.
SPB_CHANNEL = (3, 2, 1, 0, 7, 6, 5, 4)


def spb_from_vectors(lambdas: np.ndarray, vectors: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """sPb (n_ori, H, W) from the eigenpairs (the first, constant one is skipped).

    Shape:
        lambdas (n,), vectors (H W, n); returns (8, H, W) float64.
    """
    out = np.zeros((N_ORI, *shape))
    for lam, v in zip(lambdas[1:], vectors.T[1:], strict=True):
        if not lam > 0:
            continue
        img = v.reshape(shape)
        span = img.max() - img.min()
        img = (img - img.min()) / (span if span > 0 else 1.0) / np.sqrt(lam)
        pad = cv2.copyMakeBorder(img, 3, 3, 3, 3, cv2.BORDER_REFLECT)  # padReflect: edge repeated
        for o in range(1, N_ORI + 1):
            f = oe_filter(o * np.pi / N_ORI)
            resp = cv2.filter2D(pad, cv2.CV_64F, f, borderType=cv2.BORDER_CONSTANT)[3:-3, 3:-3]
            out[SPB_CHANNEL[o - 1]] += np.abs(resp)
    return out
