"""Post-processing at a working resolution, so that memory stays bounded on images of any size.

The CRF and the hierarchies hold several (K, H, W) float arrays (pydensecrf about 0.7 KB per pixel
at K = 64 on a BSDS image, the OWT contour signal K x H x W per orientation), so a 12 MP photo needs
many GB at full resolution. Above ``max_pixels``, they run instead on a grid downscaled by an
integer factor f (the smallest with ``ceil(H / f) * ceil(W / f) <= max_pixels``): each working
pixel is the mean of an f x f block of image pixels (the last row and column of blocks may be
cut by the image border). This is the downscaled-grid option, not overlapping tiles: the dense
CRF's appearance kernel reaches ~80 px (``sxy_bilateral``) and mean field passes messages on
every iteration, so tiles would need margins of several hundred pixels to agree with the whole
image, and each tile would still hold K maps per pixel.

On the working grid:

* the soft maps and the image are block means (:func:`block_mean`);
* the CRF's kernel widths in pixels are divided by f (:func:`scale_crf`), so that they cover the
  same part of the image as at full resolution (the smoothness kernel at least one working pixel);
  colour widths are unchanged;
* the hierarchies' parameters (radii, ``min_region``, ``size_prior``) are in working pixels: they
  were tuned on BSDS images (481 x 321), closer in size to the working grid than to a 12 MP photo;
* the full-resolution CRF labels are the full-resolution argmax, changed where the CRF changed
  the working grid's labels (both grids' argmax upsampled bilinearly, a band of rows at a time, so
  no full-size K-channel array is ever made: :func:`crf_labels_at`). Detail finer than a block,
  which the grid cannot hold, keeps its own label instead of the coarse grid's;
* a full-size ucm2, when asked for, is the working ucm2 with each working pixel an f x f block
  (:func:`upsample_ucm2`): the same hierarchy, with block-shaped boundaries.

At f = 1 (an image within ``max_pixels``) nothing changes: every stage sees the image itself.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from wnet.postprocess.crf import CRFParams
from wnet.postprocess.ucm import ucm2_from_cracks


def work_factor(h: int, w: int, max_pixels: int | None) -> int:
    """The smallest integer f >= 1 with ``ceil(h / f) * ceil(w / f) <= max_pixels`` (None or 0: 1)."""
    if not max_pixels or h * w <= max_pixels:
        return 1
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    f = max(2, math.floor(math.sqrt(h * w / max_pixels)))
    while math.ceil(h / f) * math.ceil(w / f) > max_pixels:
        f += 1
    return f


def work_shape(h: int, w: int, f: int) -> tuple[int, int]:
    """The working grid of an h x w image at factor f: ``(ceil(h / f), ceil(w / f))``."""
    return -(-h // f), -(-w // f)


def factor_between(small: tuple[int, int], full: tuple[int, int]) -> int:
    """The factor f that makes ``full`` into ``small`` (:func:`work_shape`); the smallest if several do.

    Raises ValueError when no integer factor does (the soft maps are not the image's working grid)."""
    (h, w), (H, W) = small, full
    if (h, w) == (H, W):
        return 1
    if h < H and w < W:
        for f in range(max(2, H // h), H // max(h - 1, 1) + 2):
            if work_shape(H, W, f) == (h, w):
                return f
    raise ValueError(
        f"soft maps of {h}x{w} are neither the image's size {H}x{W} nor its working grid at an integer factor"
    )


def block_counts(n: int, f: int) -> np.ndarray:
    """Pixels of each block along one axis of length n: f, except a last block cut by the border."""
    return np.minimum(f, n - f * np.arange(-(-n // f))).astype(np.float32)


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks of the last two axes (cut blocks at the border: mean of what is there).

    Shape:
        a: (..., H, W); returns (..., ceil(H / f), ceil(W / f)) float32.
    """
    a = np.asarray(a, dtype=np.float32)
    if f == 1:
        return a
    h, w = a.shape[-2:]
    hs, ws = work_shape(h, w, f)
    pad = [(0, 0)] * (a.ndim - 2) + [(0, hs * f - h), (0, ws * f - w)]
    sums = np.pad(a, pad).reshape(*a.shape[:-2], hs, f, ws, f).sum(axis=(-3, -1))
    return sums / (block_counts(h, f)[:, None] * block_counts(w, f)[None, :])


def image_at(rgb: np.ndarray, f: int) -> np.ndarray:
    """An (H, W, C) uint8 image as block means on the working grid, rounded to uint8."""
    if f == 1:
        return rgb
    means = block_mean(np.moveaxis(rgb, -1, 0), f)  # (C, h, w)
    return np.ascontiguousarray(np.moveaxis(means, 0, -1).round().clip(0, 255).astype(np.uint8))


def scale_crf(params: CRFParams, f: int) -> CRFParams:
    """The CRF's parameters on a grid downscaled f times: spatial widths in working pixels (the
    smoothness kernel at least 1 px, the torch CRF's window at least 2 px); colour widths and
    weights unchanged.

    A smoothness kernel narrower than a working pixel (3 px / f) has nothing left to smooth, and
    pydensecrf's permutohedral lattice for it gets about a point per pixel, K floats each: on a
    1000 x 675 grid at K = 64, sxy 0.75 px took 0.3 GB more than sxy 1 px."""
    if f == 1:
        return params
    return dataclasses.replace(
        params,
        sxy_gaussian=max(1.0, params.sxy_gaussian / f),
        sxy_bilateral=params.sxy_bilateral / f,
        radius=max(2.0, params.radius / f),
    )


@torch.no_grad()
def upsample_argmax(probs: np.ndarray, size: tuple[int, int], f: int, band: int = 16) -> np.ndarray:
    """Full-resolution labels: the argmax of the working-grid soft maps upsampled bilinearly.

    Each full pixel y maps to working coordinate ``(y + 0.5) / f - 0.5`` (block centres), as
    ``F.interpolate(scale_factor=f, align_corners=False)`` does; ``band`` working rows (with one
    row of context on each side) are upsampled at a time, so memory stays at K x band f x W.

    Shape:
        probs: (K, h, w) on the working grid of ``size`` at factor f; returns (H, W) int64.
    """
    H, W = size
    q = torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32))
    h = q.shape[1]
    if f == 1:
        return q.argmax(0).numpy()
    out = np.empty((H, W), np.int64)
    for a in range(0, h, band):
        lo, hi = max(0, a - 1), min(h, a + band + 1)
        up = F.interpolate(q[None, :, lo:hi], scale_factor=f, mode="bilinear", align_corners=False)[0]
        rows = up[:, (a - lo) * f : (a - lo + band) * f, :W]  # (K, band f, W)
        y0 = a * f
        n = min(rows.shape[1], H - y0)
        out[y0 : y0 + n] = rows[:, :n].argmax(0).numpy()
    return out


def upsample_ucm2(ucm2: np.ndarray, size: tuple[int, int], f: int) -> np.ndarray:
    """A working-grid ucm2 at the full image size: each working pixel becomes its f x f block.

    A crack between two full pixels in the same block is 0; between blocks it takes the working
    crack's level, so every threshold gives the upsampled working segmentation (a ucm2 still).

    Shape:
        ucm2: (2h+1, 2w+1) on the working grid of ``size``; returns (2H+1, 2W+1) float64.
    """
    H, W = size
    if f == 1:
        return ucm2
    sh_small, sv_small = ucm2[1::2, 2:-1:2], ucm2[2:-1:2, 1::2]  # (h, w-1), (h-1, w)
    by, bx = np.arange(H) // f, np.arange(W) // f
    cut_x = np.flatnonzero(bx[1:] != bx[:-1])  # x with x | x+1 in different blocks
    cut_y = np.flatnonzero(by[1:] != by[:-1])
    sh = np.zeros((H, W - 1))
    sh[:, cut_x] = sh_small[by][:, bx[cut_x]]
    sv = np.zeros((H - 1, W))
    sv[cut_y] = sv_small[by[cut_y]][:, bx]
    return ucm2_from_cracks(sh, sv)


def crf_labels_at(labels: np.ndarray, probs: np.ndarray, refined: np.ndarray, f: int) -> np.ndarray:
    """Full-resolution CRF labels from a CRF run on the working grid: ``labels`` (the full-size
    argmax) where the CRF left the working grid's label as it was, the refined maps' upsampled
    argmax where it changed it (both upsampled by :func:`upsample_argmax`).

    Shape:
        labels: (H, W); probs, refined: (K, h, w) before and after the CRF; returns (H, W) int64.
    """
    size = labels.shape
    after = upsample_argmax(refined, size, f)
    if f == 1:
        return after
    changed = after != upsample_argmax(probs, size, f)
    out = labels.astype(np.int64, copy=True)
    out[changed] = after[changed]
    return out
