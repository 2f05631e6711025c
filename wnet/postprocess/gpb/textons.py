"""Texture channel of gPb: a filter bank's responses assigned to a texton dictionary.

The filter bank is the BSR release's ``lib_image::texton_filters`` at two scales, sigma = 2 and
2 sqrt(2) (``mex_pb_parts_final_selected.cc``): for each scale, 8 orientations (k pi / 8) of an
elongated (3:1) Gaussian second derivative (even) and of its Hilbert transform (odd), plus one
centre-surround difference of Gaussians (scale ratio sqrt(2)): 17 filters, 34 in all. Each
filter is built on an axis-aligned grid, rotated with bilinear interpolation and cropped to
(2s+1)^2 px, s = ceil(3 sigma) (``gaussian_2D``, ``rotate_2D_crop``); derivatives are made
zero-mean and every filter has unit L1 norm. Filter rows run along the image rows.

Deviation from the original, on purpose: the original clusters each image's own responses into
64 textons (k-means per image); here the 64 textons are one dictionary learned once with
k-means on the BSDS500 **train** images (``experiments/learn_textons.py``) and shipped as
``textons_bsds500_train.npz``, so every image is assigned to the same textons.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import scipy.signal

N_ORI = 8
SIGMAS = (2.0, 2.0 * np.sqrt(2.0))  # sigma_tg_filt_sm, sigma_tg_filt_lg
ELONGATION = 3.0  # oe_filters: sigma_y = sigma_x / 3
CS_RATIO = np.sqrt(2.0)  # centre-surround scale factor
DICTIONARY = Path(__file__).with_name("textons_bsds500_train.npz")


def gaussian_1d(
    sigma: float, deriv: int = 0, hilbert: bool = False, support: int | None = None
) -> np.ndarray:
    """Sampled Gaussian (or its 1st / 2nd derivative, optionally Hilbert-transformed), 2s+1 taps.

    Derivatives are zero-mean; the kernel has unit L1 norm (``lib_image::gaussian``).
    """
    s = int(np.ceil(3 * sigma)) if support is None else int(support)
    big = s
    if hilbert:  # a power-of-two length for the transform, as the original
        big, t = 1, s
        while t > 0:
            big, t = big * 2, t // 2
    x = np.arange(-big, big + 1, dtype=np.float64)
    g = np.exp(-0.5 * x * x / sigma**2)
    if deriv == 1:
        g = g * -x
    elif deriv == 2:
        g = g * (x * x / sigma**2 - 1)
    if hilbert:
        g = np.imag(scipy.signal.hilbert(g[:-1]))[big - s : big + s + 1]
    if deriv > 0:
        g = g - g.mean()
    return g / np.abs(g).sum()


def _rotated_support(sx: float, sy: float, ori: float) -> tuple[int, int]:
    c, s = np.cos(ori), np.sin(ori)
    x = max(abs(sx * c - sy * s), abs(sx * c + sy * s))
    y = max(abs(sx * s - sy * c), abs(sx * s + sy * c))
    return int(np.ceil(x)), int(np.ceil(y))


def rotate_crop(m: np.ndarray, ori: float, size: tuple[int, int]) -> np.ndarray:
    """Rotate ``m`` by ``ori`` about its centre, bilinear, zero outside (``rotate_2D_crop``)."""
    u = np.arange(size[0]) - (size[0] - 1) / 2
    v = np.arange(size[1]) - (size[1] - 1) / 2
    u, v = np.meshgrid(u, v, indexing="ij")
    x = u * np.cos(ori) + v * np.sin(ori) + (m.shape[0] - 1) / 2
    y = v * np.cos(ori) - u * np.sin(ori) + (m.shape[1] - 1) / 2
    x0, y0 = np.floor(x), np.floor(y)
    x1, y1 = np.ceil(x), np.ceil(y)
    ok = (x >= 0) & (y >= 0) & (x1 < m.shape[0]) & (y1 < m.shape[1])
    x0, x1, y0, y1 = (np.where(ok, a, 0).astype(int) for a in (x0, x1, y0, y1))
    t0 = np.where(x0 != x1, (x1 - x) * m[x0, y0] + (x - x0) * m[x1, y0], m[x0, y0])
    t1 = np.where(x0 != x1, (x1 - x) * m[x0, y1] + (x - x0) * m[x1, y1], m[x0, y1])
    out = np.where(y0 != y1, (y1 - y) * t0 + (y - y0) * t1, t0)
    return np.where(ok, out, 0.0)


def gaussian_2d(
    sigma_x: float, sigma_y: float, ori: float, deriv: int, hilbert: bool, support: int
) -> np.ndarray:
    """Oriented separable Gaussian filter, derivative across its long axis (``gaussian_2D``).

    Shape: returns (2 support + 1, 2 support + 1).
    """
    sxr, syr = _rotated_support(support, support, -ori)
    m = np.outer(gaussian_1d(sigma_x, 0, False, sxr), gaussian_1d(sigma_y, deriv, hilbert, syr))
    m = rotate_crop(m, ori, (2 * support + 1, 2 * support + 1))
    if deriv > 0:
        m = m - m.mean()
    return m / np.abs(m).sum()


def filter_bank(sigma: float, n_ori: int = N_ORI) -> list[np.ndarray]:
    """The 2 n_ori + 1 texton filters at one scale: even, odd, centre-surround."""
    s = int(np.ceil(3 * sigma))
    oris = [k * np.pi / n_ori for k in range(n_ori)]
    even = [gaussian_2d(sigma, sigma / ELONGATION, o, 2, False, s) for o in oris]
    odd = [gaussian_2d(sigma, sigma / ELONGATION, o, 2, True, s) for o in oris]
    centre = gaussian_2d(sigma / CS_RATIO, sigma / CS_RATIO, 0.0, 0, False, s)
    cs = gaussian_2d(sigma, sigma, 0.0, 0, False, s) - centre
    cs = cs - cs.mean()
    return even + odd + [cs / np.abs(cs).sum()]


@lru_cache(maxsize=1)
def all_filters() -> tuple[np.ndarray, ...]:
    """The 34 filters of both scales, small scale first."""
    return tuple(f for sigma in SIGMAS for f in filter_bank(sigma))


def responses(grey: np.ndarray, border: int = 0) -> np.ndarray:
    """Filter responses (true convolution, zero outside the canvas), ``border`` px trimmed.

    Shape:
        grey: (H, W) float; returns (H - 2 border, W - 2 border, 34) float32.
    """
    g = np.asarray(grey, np.float32)
    out = []
    for f in all_filters():
        r = cv2.filter2D(
            g, -1, np.ascontiguousarray(f[::-1, ::-1], np.float32), borderType=cv2.BORDER_CONSTANT
        )
        out.append(r[border : g.shape[0] - border, border : g.shape[1] - border])
    return np.stack(out, -1)


@lru_cache(maxsize=4)
def load_dictionary(path: str | Path = DICTIONARY) -> np.ndarray:
    """The texton dictionary (K, 34) float32 from an ``.npz`` file with key ``textons``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"texton dictionary {path} is missing (run experiments/learn_textons.py)")
    with np.load(path) as z:
        t = np.asarray(z["textons"], np.float32)
    if t.ndim != 2 or t.shape[1] != len(all_filters()):
        raise ValueError(f"{path}: textons must be (K, {len(all_filters())}), got {t.shape}")
    return t


def assign(feats: np.ndarray, textons: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Index of the nearest texton (squared Euclidean distance; ties: the lowest index).

    Shape:
        feats: (..., D); textons: (K, D); returns (...) int64.
    """
    x = np.asarray(feats, np.float32).reshape(-1, feats.shape[-1])
    t = np.asarray(textons, np.float32)
    tn = (t * t).sum(1)
    out = np.empty(len(x), np.int64)
    for i in range(0, len(x), chunk):
        d = tn[None, :] - 2.0 * (x[i : i + chunk] @ t.T)  # |x|^2 is the same for every texton
        out[i : i + chunk] = d.argmin(1)
    return out.reshape(feats.shape[:-1])


def kmeans(x: np.ndarray, k: int, iters: int, rng: np.random.Generator, init: str = "kmeans++") -> np.ndarray:
    """Lloyd's k-means; an emptied cluster takes the worst-fitted point. Returns (k, D) centres.

    Args:
        init: ``kmeans++`` (D^2 seeding) or ``random`` (k distinct random points, as the
            original's per-image clustering starts).
    """
    x = np.asarray(x, np.float64)
    if init == "random":
        c = x[rng.choice(len(x), size=k, replace=False)].copy()
    else:
        c = [x[rng.integers(len(x))]]
        d2 = ((x - c[0]) ** 2).sum(1)
        for _ in range(1, k):
            c.append(x[rng.choice(len(x), p=d2 / d2.sum())])
            d2 = np.minimum(d2, ((x - c[-1]) ** 2).sum(1))
        c = np.stack(c)
    labels = None
    for _ in range(iters):
        new = assign(x, c)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            c[j] = members.mean(0) if len(members) else x[((x - c[labels]) ** 2).sum(1).argmax()]
    return c


def texton_map(grey: np.ndarray, border: int, textons: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """Texton labels of the canvas: assigned inside the border, mirrored into it as the original.

    ``textons`` None clusters this image's own responses instead, as the original does (64
    textons, 10 Lloyd iterations on a random 10 % of the pixels, seeded).

    Shape:
        grey: (H + 2 border, W + 2 border); returns the same shape, int64 in [0, K).
    """
    feats = responses(grey, border)
    if textons is None:
        flat = feats.reshape(-1, feats.shape[-1])
        rng = np.random.default_rng(seed)
        sample = flat[rng.choice(len(flat), size=max(64, len(flat) // 10), replace=False)]
        textons = kmeans(sample, 64, 10, rng, init="random")
    return np.pad(assign(feats, textons), border, mode="symmetric")
