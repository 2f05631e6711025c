"""Oriented half-disc chi^2 histogram gradients (Arbelaez et al. 2011 sec. 3.1).

As ``lib_image::hist_gradient_2D`` of the BSR release: a disc of radius r (every pixel with
dx^2 + dy^2 <= r^2, centre included) is cut into 2n = 16 slices; the pixel at offset (dx, dy)
(rows, columns) falls in slice ``floor(angle(dx + 1/2, dy + 1/2) / pi * n)`` (the original's
``orientation_slice_map`` measures angles from a point half a pixel off the centre, so the
slices are unequal, some empty at r = 3). Each slice histogram is smoothed over the bins with a
Gaussian (truncated at the ends, so bins near them lose mass) and L1-normalised on its own; the
half disc of orientation k sums slices k .. k + n - 1, the other half the rest, and the
gradient is ``chi^2 = 1/2 sum (g - h)^2 / (g + h)`` over the bins where g != h. Orientation k
(angle k pi / n from the row axis towards the column axis) is the direction of the dividing
line: k = 0 compares the left and right halves (a vertical contour).

Two implementations give the same numbers (to float rounding):

* ``histgrad.c`` (compiled on first use by :mod:`wnet.cbuild`; ``WNET_GPB_KERNEL=0`` disables
  it): the original's per-pixel loop, with the bin smoothing applied to the non-empty bins only.
* FFT convolutions (the fallback): every slice histogram is a convolution of per-bin indicator
  maps with the slice's mask, the bin smoothing folded into soft indicators (row ``S[label]``
  of the smoothing matrix). Without smoothing every slice's mass is its pixel count n_s, so the
  weighted full disc F = g + h and the n antisymmetric D_k = g - h suffice: 1 + n convolutions
  per bin. With smoothing each slice's mass depends on its content, so the 2n slices are
  convolved separately (and the mass map once per slice).
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.fft as sfft

from wnet import cbuild
from wnet.postprocess.gpb.textons import gaussian_1d

N_ORI = 8
_SOURCE = Path(__file__).with_name("histgrad.c")
_ENV = "WNET_GPB_KERNEL"
_lock = threading.Lock()
_state: dict = {}


@lru_cache(maxsize=16)
def slice_map(radius: int, n_ori: int = N_ORI) -> np.ndarray:
    """Slice index (0 .. 2 n_ori - 1) of each disc offset, -1 outside the disc.

    Shape: returns (2r+1, 2r+1) int64, indexed [dx + r, dy + r] (rows, columns).
    """
    r = int(radius)
    d = np.arange(-r, r + 1)
    dx, dy = np.meshgrid(d, d, indexing="ij")
    # the original's map coordinate is -(offset) - 1/2 (its loop runs over the flipped window)
    ori = np.arctan2(-dy - 0.5, -dx - 0.5) + np.pi
    idx = np.minimum(np.floor(ori / np.pi * n_ori).astype(np.int64), 2 * n_ori - 1)
    return np.where(dx * dx + dy * dy <= r * r, idx, -1)


def smoothing_matrix(n_bins: int, sigma_bins: float | None) -> np.ndarray:
    """S[label] = the histogram one pixel of that label adds after bin smoothing (K, K).

    The Gaussian (``lib_image::gaussian``, support ceil(3 sigma)) is truncated at the ends,
    as the original's ``conv_in_place_1D``; None gives the identity (no smoothing).
    """
    if sigma_bins is None:
        return np.eye(n_bins)
    g = gaussian_1d(sigma_bins)
    s = len(g) // 2
    m = np.zeros((n_bins, n_bins))
    for k in range(n_bins):
        for j, gv in enumerate(g):
            if 0 <= k + j - s < n_bins:
                m[k, k + j - s] = gv
    return m


def _build() -> ctypes.CDLL:
    lib = cbuild.load(_SOURCE)
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.hist_gradient.argtypes = [p, i64, i64, p, p, i64, p, p, *[i64] * 5, p]
    lib.hist_gradient.restype = i64
    return lib


def kernel() -> ctypes.CDLL | None:
    """The compiled kernel, or None (no compiler, or disabled): then the FFT path runs."""
    return cbuild.load_once(
        _state, _lock, _ENV, _build, "wnet.postprocess.gpb", "using the FFT path (slower)"
    )


def hist_gradient(
    labels: np.ndarray,
    n_bins: int,
    radii: tuple[int, ...],
    sigma_bins: float | None = None,
    border: int = 0,
    n_ori: int = N_ORI,
    use_kernel: bool | None = None,
) -> np.ndarray:
    """chi^2 half-disc gradients of a label map at several radii and n_ori orientations.

    Args:
        labels: bin index of every pixel of the (mirrored) canvas, in [0, n_bins).
        n_bins: histogram length K.
        radii: disc radii (px), each at most ``border``.
        sigma_bins: Gaussian bin smoothing (in bins), None for none.
        border: px trimmed from every side of the result (the canvas margin).
        use_kernel: None: the compiled kernel when available; False: the FFT path.

    Shape:
        labels: (H + 2 border, W + 2 border); returns (len(radii), n_ori, H, W) float32.
    """
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    if labels.ndim != 2 or min(labels.shape) <= 2 * border:
        raise ValueError(f"labels must be 2-D and larger than 2 x border = {2 * border}, got {labels.shape}")
    if labels.min() < 0 or labels.max() >= n_bins:
        raise ValueError(f"labels must lie in [0, {n_bins}), got [{labels.min()}, {labels.max()}]")
    if any(r < 1 or r > border for r in radii):
        raise ValueError(f"radii must lie in [1, border = {border}], got {radii}")
    lib = kernel() if use_kernel is not False else None
    smooth = None if sigma_bins is None else smoothing_matrix(n_bins, sigma_bins)
    if lib is None:
        return np.stack([_fft_gradient(labels, n_bins, r, smooth, border, n_ori) for r in radii])
    return np.stack([_c_gradient(lib, labels, n_bins, r, smooth, border, n_ori) for r in radii])


def _c_gradient(lib, labels, n_bins, radius, smooth, border, n_ori) -> np.ndarray:
    sm = slice_map(radius, n_ori)
    dr, dc = np.nonzero(sm >= 0)
    off_lin = np.ascontiguousarray((dr - radius) * labels.shape[1] + (dc - radius), np.int64)
    off_slice = np.ascontiguousarray(sm[dr, dc], np.int32)
    h, w = labels.shape[0] - 2 * border, labels.shape[1] - 2 * border
    out = np.zeros((n_ori, h, w), np.float32)
    sm_mat = None if smooth is None else np.ascontiguousarray(smooth, np.float64)
    mass = None if smooth is None else np.ascontiguousarray(smooth.sum(1), np.float64)
    ptr = lambda a: None if a is None else a.ctypes.data  # noqa: E731
    rc = lib.hist_gradient(
        labels.ctypes.data, labels.shape[1], n_bins, off_lin.ctypes.data, off_slice.ctypes.data,
        len(off_lin), ptr(sm_mat), ptr(mass), n_ori, border, border + h, border, border + w, out.ctypes.data,
    )  # fmt: skip
    if rc != 0:
        raise MemoryError("hist_gradient: allocation failed in the compiled kernel")
    return out


def _spectra(kernels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """rfft2 of offset kernels (n, 2r+1, 2r+1), each flipped about the origin of a ``shape`` canvas,
    so that the product with an image's spectrum is a correlation."""
    r = kernels.shape[1] // 2
    canvas = np.zeros((len(kernels), *shape), np.float32)
    for dx in range(-r, r + 1):
        canvas[:, -dx % shape[0], -np.arange(-r, r + 1) % shape[1]] = kernels[:, dx + r, :]
    return sfft.rfft2(canvas, workers=1)


def _fft_gradient(labels, n_bins, radius, smooth, border, n_ori) -> np.ndarray:
    """The FFT path for one radius (module docstring). Shape: (n_ori, H, W) float32."""
    shape = tuple(sfft.next_fast_len(int(s), real=True) for s in labels.shape)
    h, w = labels.shape[0] - 2 * border, labels.shape[1] - 2 * border
    crop = (slice(None), slice(border, border + h), slice(border, border + w))
    sm = slice_map(radius, n_ori)
    masks = np.stack([(sm == s).astype(np.float64) for s in range(2 * n_ori)])  # (2n, 2r+1, 2r+1)
    soft = (np.eye(n_bins) if smooth is None else smooth).astype(np.float32)[labels]  # (Hc, Wc, K)
    out = np.zeros((n_ori, h, w), np.float32)

    def conv(img, spectra):
        return sfft.irfft2(sfft.rfft2(img, s=shape, workers=1)[None] * spectra, s=shape, workers=1)[crop]

    if smooth is None:  # slice masses are the counts n_s: 1 + n linear kernels per bin
        counts = masks.sum((1, 2))
        wts = masks / np.maximum(counts, 1)[:, None, None]
        full = wts.sum(0)
        diff = np.stack(
            [np.roll(wts, -k, 0)[:n_ori].sum(0) - np.roll(wts, -k, 0)[n_ori:].sum(0) for k in range(n_ori)]
        )
        spectra = _spectra(np.concatenate([full[None], diff]), shape)
        for k in np.flatnonzero(np.bincount(labels.ravel(), minlength=n_bins)):
            fd = conv(soft[..., k], spectra)
            out += fd[1:] ** 2 * np.where(fd[0] > 1e-6, 0.5 / np.maximum(fd[0], 1e-6), 0.0)
        return out
    spectra = _spectra(masks, shape)
    z = conv(soft.sum(-1), spectra)  # (2n, h, w) slice masses after smoothing
    inv = np.where(z > 1e-9, 1.0 / np.maximum(z, 1e-9), 0.0)
    for k in np.flatnonzero(soft.reshape(-1, n_bins).max(0) > 0):
        u = conv(soft[..., k], spectra) * inv  # (2n, h, w) normalised slice histograms, bin k
        g, hh = u[:n_ori].sum(0), u[n_ori:].sum(0)
        for o in range(n_ori):
            d, t = g - hh, g + hh
            out[o] += np.where(np.abs(d) > 1e-7, 0.5 * d * d / np.maximum(t, 1e-9), 0.0)
            g, hh = g + u[o + n_ori] - u[o], hh + u[o] - u[o + n_ori]
    return out
