"""Oriented contour signals E(x, y, theta) in [0, 1] for :func:`wnet.postprocess.owt.contours2ucm`.

* :func:`softmap_gradients`: oriented gradients of W-Net's soft class maps S (K, H, W): at each
  pixel and orientation, the total variation distance ``0.5 * |S(D+) - S(D-)|_1`` between the
  mean class distributions over the two halves D+ / D- of a disc split along the orientation
  (the half-disc gradient of Martin et al. 2004 and gPb, Arbelaez et al. 2011 sec. 3.1, with
  the soft maps as the histograms). In [0, 1] by construction.
* :func:`image_gradients`: the same half-disc difference of the CIELAB image, the Euclidean
  distance of the two half-disc mean colours mapped by ``1 - exp(-d / LAB_SCALE)``, the image
  term of :mod:`wnet.postprocess.hierarchy`.
* :func:`wnet_contours`: ``alpha * softmap + (1 - alpha) * image``, the W-Net contour signal;
  :func:`wnet_owt_ucm2` feeds it to :func:`wnet.postprocess.owt.contours2ucm` with :class:`OWTParams`
  (the "W-Net + CRF + OWT-UCM" row of ``task=bsds``, whose ``owt`` config section is that class).
* :func:`canny_contours`: the classical anchor "Canny-owt-ucm" (Arbelaez et al. 2011, sec. 4.3:
  "the Canny edge detector before thresholding"): the Gaussian-smoothed gradient of the CIELAB
  image projected on each orientation's normal, mapped by ``1 - exp(-g / scale)``; no
  non-maximum suppression (the watershed finds the ridges itself).

Orientation convention (that of :mod:`wnet.postprocess.owt`): channel o holds contours whose tangent makes
``theta_o = o * pi / O`` with the x axis, counter-clockwise as displayed; o = 0 is horizontal.
Fixed mappings to [0, 1], no per-image rescaling: a ucm2 threshold means the same in every image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from wnet.postprocess.layouts import as_probs, as_uint8_image
from wnet.postprocess.owt import contours2ucm

LAB_SCALE = 10.0  # CIELAB distance at which the image term reaches 1 - 1/e (as in wnet.postprocess.hierarchy)
N_ORIENT = 8  # orientations, as in gPb


def half_disc_kernels(radius: int, n_orient: int = N_ORIENT) -> np.ndarray:
    """Difference kernels ``mean over D+ - mean over D-`` of the two half discs, per orientation.

    D+ is the half on the left of the tangent (above a horizontal contour). A pixel counts by its
    distance to the dividing line, capped at 1 px, so pixels on the line (the centre among them)
    count on neither side and a clean step through the centre gives exactly 1.

    Shape:
        returns (n_orient, 2 radius + 1, 2 radius + 1) float32; each kernel sums to 0.
    """
    if int(radius) != radius or radius < 1:
        raise ValueError(f"radius must be an integer >= 1, got {radius}")
    if int(n_orient) != n_orient or n_orient < 1:
        raise ValueError(f"n_orient must be an integer >= 1, got {n_orient}")
    r = int(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    disc = dx**2 + dy**2 <= r * r + 1e-9
    out = []
    for o in range(int(n_orient)):
        t = o * math.pi / n_orient
        side = -math.sin(t) * dx - math.cos(t) * dy  # offset along the normal (y up = -row)
        plus = np.clip(side, 0, 1) * disc
        minus = np.clip(-side, 0, 1) * disc
        out.append(plus / plus.sum() - minus / minus.sum())
    return np.stack(out).astype(np.float32)


def _half_disc_diffs(maps_hwc: np.ndarray, radius: int, n_orient: int):
    """Yield (o, D(+) - D(-)) for every orientation; (H, W, C) float32 in and out."""
    for o, k in enumerate(half_disc_kernels(radius, n_orient)):
        d = cv2.filter2D(maps_hwc, -1, k, borderType=cv2.BORDER_REFLECT)
        yield o, d.reshape(*maps_hwc.shape[:2], -1)


def softmap_gradients(probs, radius: int = 3, n_orient: int = N_ORIENT) -> np.ndarray:
    """Half-disc total variation distance of the soft maps at every orientation.

    Shape:
        probs: (K, H, W) numpy or torch, each pixel a distribution; returns (H, W, O) float32 in [0, 1].
    """
    p = as_probs(probs)
    hwc = np.ascontiguousarray(p.transpose(1, 2, 0))  # (H, W, K)
    out = np.empty((*hwc.shape[:2], n_orient), np.float32)
    for o, d in _half_disc_diffs(hwc, radius, n_orient):
        out[..., o] = 0.5 * np.abs(d).sum(-1)
    return np.clip(out, 0.0, 1.0)


def _lab(image, size=None, sigma: float = 0.0) -> np.ndarray:
    """CIELAB (L 0..100) float32 (H, W, 3) of any image layout :func:`as_uint8_image` takes."""
    rgb = as_uint8_image(image, size).astype(np.float32) / 255.0
    if sigma > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), sigma)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)


def image_gradients(
    image, radius: int = 3, n_orient: int = N_ORIENT, lab_scale: float = LAB_SCALE, size=None
) -> np.ndarray:
    """Half-disc CIELAB colour difference, ``1 - exp(-d / lab_scale)``, at every orientation.

    ``size`` (H, W): the size the image must have (None: any).

    Shape:
        image: (H, W, 3) / (H, W) / torch (C, H, W), uint8 or float in [0, 1]; returns (H, W, O) float32 in [0, 1].
    """
    if not lab_scale > 0:
        raise ValueError(f"lab_scale must be > 0, got {lab_scale}")
    lab = _lab(image, size)
    out = np.empty((*lab.shape[:2], n_orient), np.float32)
    for o, d in _half_disc_diffs(lab, radius, n_orient):
        out[..., o] = -np.expm1(-np.linalg.norm(d, axis=-1) / lab_scale)
    return np.clip(out, 0.0, 1.0)


def wnet_contours(
    probs,
    image=None,
    alpha: float = 0.3,
    radius: int = 10,
    image_radius: int = 5,
    n_orient: int = N_ORIENT,
    lab_scale: float = LAB_SCALE,
) -> np.ndarray:
    """The W-Net contour signal: ``alpha * softmap_gradients + (1 - alpha) * image_gradients``.

    Args:
        probs: soft maps S (CRF-refined), (K, H, W); image: the image or None (soft term only);
        alpha: weight of the soft-map term; radius / image_radius: half-disc radii (px).
            Defaults chosen on BSDS500 val (docs/postprocessing.md, "OWT-UCM"), used with
            ``contours2ucm(..., size_prior=400.0)``.

    Shape:
        returns (H, W, O) float32 in [0, 1], ready for :func:`wnet.postprocess.owt.contours2ucm`.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    e = softmap_gradients(probs, radius, n_orient)
    if image is None or alpha == 1.0:
        return e
    g = image_gradients(image, image_radius, n_orient, lab_scale, size=e.shape[:2])
    return np.clip(alpha * e + (1.0 - alpha) * g, 0.0, 1.0)


def canny_contours(image, sigma: float = 2.0, scale: float = 2.0, n_orient: int = N_ORIENT) -> np.ndarray:
    """Oriented smoothed gradient of the CIELAB image (Canny before non-maximum suppression).

    ``g_theta = |n_theta . grad(G_sigma * Lab)|`` (Euclidean over the 3 channels, Lab units per
    px, central differences), mapped by ``1 - exp(-g / scale)``.

    Shape:
        image: see :func:`image_gradients`; returns (H, W, O) float32 in [0, 1].
    """
    if not sigma > 0 or not scale > 0:
        raise ValueError(f"sigma and scale must be > 0, got {sigma} and {scale}")
    if int(n_orient) != n_orient or n_orient < 1:
        raise ValueError(f"n_orient must be an integer >= 1, got {n_orient}")
    lab = _lab(image, sigma=sigma)  # (H, W, 3)
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=1, scale=0.5, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=1, scale=0.5, borderType=cv2.BORDER_REFLECT)
    out = np.empty((*lab.shape[:2], n_orient), np.float32)
    for o in range(int(n_orient)):
        t = o * math.pi / n_orient
        g = -math.sin(t) * gx - math.cos(t) * gy  # derivative along the normal (y up = -row)
        out[..., o] = -np.expm1(-np.linalg.norm(g, axis=-1) / scale)
    return np.clip(out, 0.0, 1.0)


@dataclass
class OWTParams:
    """W-Net + CRF + OWT-UCM settings (chosen on 50 BSDS500 val images, docs/postprocessing.md)."""

    alpha: float = 0.3  # weight of the soft-map term against the image term, in [0, 1]
    radius: int = 10  # px: half-disc radius of the soft-map gradients
    image_radius: int = 5  # px: half-disc radius of the CIELAB image gradients
    size_prior: float = 400.0  # px: merge cost x (1 - exp(-min area / size_prior)); 0: the paper's plain mean

    def check(self) -> None:
        """Raise ValueError naming the first parameter out of its range."""
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"owt.alpha must lie in [0, 1], got {self.alpha}")
        for name in ("radius", "image_radius"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"owt.{name} must be an integer >= 1, got {value}")
        if self.size_prior < 0:
            raise ValueError(f"owt.size_prior must be >= 0, got {self.size_prior}")


def wnet_owt_ucm2(probs, image=None, params: OWTParams | None = None) -> np.ndarray:
    """W-Net + CRF + OWT-UCM: ``contours2ucm(wnet_contours(probs, image, ...), size_prior=...)``.

    Shape:
        probs: (K, H, W) CRF-refined soft maps; image: as in :func:`image_gradients` or None;
        returns the BSDS ``ucm2`` (2H+1, 2W+1) float64 in [0, 1].
    """
    params = params or OWTParams()
    params.check()
    e = wnet_contours(probs, image, params.alpha, int(params.radius), int(params.image_radius))
    return contours2ucm(e, size_prior=params.size_prior)
