"""Savitzky-Golay parabola smoothing of the oriented gradients, and oriented non-max suppression.

``fit_parabola`` is the BSR release's ``fitparab`` (``multiscalePb.m``, with ``make_filters`` and
the ``savgol_border`` mex): at each pixel, a parabola a + b d + c d^2 is fitted by least squares
to the values inside an ellipse of half-axes ra (across the contour, along d) and ra / 4 (along
it), both at least 1.5 px; the smoothed value is a. Inside the image this is one convolution;
within ``floor(ra)`` px of the border the fit uses only the pixels inside the image.

``nonmax_oriented`` is ``lib_image::nonmax_oriented_2D`` with the per-pixel orientation of the
strongest channel (``nonmax_channels``): a pixel survives when it exceeds both neighbours across
its orientation (linear interpolation in the 3x3 neighbourhood), each neighbour's value first
multiplied by cos of its orientation difference less the tolerance pi/8; a pixel with a
neighbour outside the image is 0.

Angles here are in the row/column frame of the original: theta = 0 points down the rows, pi/2
along the columns; an oriented channel k has its contour along theta = k pi / 8.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


def _ellipse(ra: float, theta: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Distance d along the fit direction and the support mask, indexed [v + wr, u + wr]."""
    ra, rb = max(1.5, ra), max(1.5, ra / 4)
    wr = int(np.floor(max(ra, rb)))
    u = np.arange(-wr, wr + 1)
    v, u = np.meshgrid(u, u, indexing="ij")  # v: row offset, u: column offset
    d = -u * np.sin(theta) + v * np.cos(theta)  # along the fit direction
    e = u * np.cos(theta) + v * np.sin(theta)
    return d, d * d / ra**2 + e * e / rb**2 <= 1, wr


@lru_cache(maxsize=64)
def savgol_filter(ra: float, theta: float) -> np.ndarray:
    """The linear filter giving the fitted constant term inside the image (``make_filters``)."""
    d, inside, _ = _ellipse(ra, theta)
    p = np.stack([np.ones_like(d), d, d * d])[:, inside]  # (3, n) monomials of the support
    coeff = np.linalg.solve(p @ p.T, p)[0]  # row 0 of (P P^T)^-1 P
    f = np.zeros(d.shape)
    f[inside] = coeff
    return f


def _border_fit(z: np.ndarray, ra: float, theta: float) -> np.ndarray:
    """The fit with the ellipse clipped to the image, at every pixel (used on the borders)."""
    d, inside, _ = _ellipse(ra, theta)
    mom = [np.where(inside, d**j, 0.0).astype(np.float64) for j in range(5)]
    ones = np.ones_like(z, dtype=np.float64)

    def corr(a, k):  # sum over the in-image support: correlation, zero outside
        return cv2.filter2D(a, cv2.CV_64F, k, borderType=cv2.BORDER_CONSTANT)

    d0, d1, d2, d3, d4 = (corr(ones, k) for k in mom)
    v0, v1, v2 = (corr(z.astype(np.float64), k) for k in mom[:3])
    det = -d2 * d2 * d2 + 2 * d1 * d2 * d3 - d0 * d3 * d3 - d1 * d1 * d4 + d0 * d2 * d4
    num = (-d3 * d3 + d2 * d4) * v0 + (d2 * d3 - d1 * d4) * v1 + (-d2 * d2 + d1 * d3) * v2
    return np.where(det > 1e-300, num / np.where(det > 1e-300, det, 1.0), 0.0)


def fit_parabola(z: np.ndarray, ra: float, theta: float) -> np.ndarray:
    """Savitzky-Golay smoothing of one oriented map (module docstring). Shape: (H, W) -> (H, W)."""
    z = np.asarray(z, np.float64)
    h, w = z.shape
    wr = _ellipse(ra, theta)[2]
    a = cv2.filter2D(z, cv2.CV_64F, savgol_filter(ra, theta), borderType=cv2.BORDER_CONSTANT)
    if min(h, w) <= 2 * wr + 1:
        return _border_fit(z, ra, theta)
    m = 2 * wr + 1  # a strip of width wr needs wr more px of input to be exact
    for sl_in, sl_out, sl_res in (
        (np.s_[:m, :], np.s_[:wr, :], np.s_[:wr, :]),
        (np.s_[h - m :, :], np.s_[h - wr :, :], np.s_[m - wr :, :]),
        (np.s_[:, :m], np.s_[:, :wr], np.s_[:, :wr]),
        (np.s_[:, w - m :], np.s_[:, w - wr :], np.s_[:, m - wr :]),
    ):
        if wr > 0:
            a[sl_out] = _border_fit(z[sl_in], ra, theta)[sl_res]
    return a


def nonmax_oriented(pb: np.ndarray, ori: np.ndarray, tol: float = np.pi / 8) -> np.ndarray:
    """Oriented non-max suppression of a non-negative map (module docstring).

    Shape:
        pb, ori: (H, W); returns (H, W), pb where it is a local max across ori, else 0.
    """
    p, po = np.pad(pb, 1), np.pad(ori, 1)
    inside = np.pad(np.ones(pb.shape, bool), 1)
    theta = np.mod(ori + np.pi / 2, np.pi)  # direction of suppression
    out = np.zeros_like(pb)
    # (row, col) steps of the two neighbours a, b on side 0 and the interpolation weight d
    cases = [
        (theta == 0, (-1, 0), (-1, 0), np.zeros_like(theta)),
        ((theta > 0) & (theta < np.pi / 4), (-1, 0), (-1, -1), np.tan(theta)),
        ((theta >= np.pi / 4) & (theta < np.pi / 2), (0, -1), (-1, -1), np.tan(np.pi / 2 - theta)),
        (theta == np.pi / 2, (0, -1), (0, -1), np.zeros_like(theta)),
        ((theta > np.pi / 2) & (theta < 3 * np.pi / 4), (0, -1), (1, -1), np.tan(theta - np.pi / 2)),
        (theta >= 3 * np.pi / 4, (1, 0), (1, -1), np.tan(np.pi - theta)),
    ]
    for mask, a, b, d in cases:
        if not mask.any():
            continue
        na, nb = (-a[0], -a[1]), (-b[0], -b[1])
        valid = _at(inside, a) & _at(inside, b) & _at(inside, na) & _at(inside, nb)
        v0 = _side(p, po, ori, a, b, d, tol)
        v1 = _side(p, po, ori, na, nb, d, tol)
        out = np.where(mask & valid & (pb > v0) & (pb > v1), pb, out)
    return out


def _at(arr: np.ndarray, s: tuple[int, int]) -> np.ndarray:
    """arr (padded by 1) shifted by the step s, cropped back to the unpadded size."""
    h, w = arr.shape[0] - 2, arr.shape[1] - 2
    return arr[1 + s[0] : 1 + s[0] + h, 1 + s[1] : 1 + s[1] + w]


def _side(p, po, ori, a, b, d, tol):
    """Interpolated neighbour value on one side, each scaled by cos of its orientation gap."""

    def gap(s):
        g = np.mod(_at(po, s) - ori, 2 * np.pi)
        g = np.where(g >= np.pi, 2 * np.pi - g, g)
        g = np.where(g >= np.pi / 2, np.pi - g, g)
        return np.cos(np.where(g <= tol, 0.0, g - tol))

    return (1 - d) * _at(p, a) * gap(a) + d * _at(p, b) * gap(b)
