"""Classical segmentation baselines for the same BSDS harness as W-Net.

Each baseline sweeps one parameter and returns one label map per level, ordered from the
finest level to the coarsest (the order of increasing ucm2 threshold), so that the benchmark
treats the list like the thresholds of a hierarchy:

* ``kmeans``: k-means on CIELAB colour plus scaled position (``cv2.kmeans``, k++ seeding, seeded
  RNG), k from 20 down to 2. A region is a cluster (clusters may be spatially disconnected).
* ``meanshift``: ``cv2.pyrMeanShiftFiltering`` (Comaniciu & Meer 2002) with a fixed spatial
  window and a sweep of colour bandwidths, then 4-connected components of the filtered image
  (neighbours joined when their filtered colours differ by less than half the bandwidth), with
  components under ``MIN_SIZE`` pixels absorbed into a neighbour.
* ``fh``: Felzenszwalb & Huttenlocher 2004 graph segmentation (OpenCV ximgproc) over a sweep
  of its scale parameter k.

One baseline is a hierarchy instead, and gives one ucm2 rather than a list of label maps:

* ``canny-owt-ucm``: Arbelaez et al. 2011's classical anchor (sec. 4.3), the oriented watershed
  + UCM (:func:`wnet.postprocess.owt.contours2ucm`) of a Canny-style oriented gradient of the image
  (:func:`wnet.postprocess.contours.canny_contours`, before non-maximum suppression).

:func:`baseline_prediction` returns what the BSDS benchmark scores for any of them.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from wnet.postprocess.contours import canny_contours
from wnet.postprocess.owt import contours2ucm

KMEANS_K = (20, 16, 12, 10, 8, 6, 5, 4, 3, 2)
KMEANS_STRIDE = 4  # k-means is fitted on every 4th pixel (raster order), then all pixels are assigned
KMEANS_POSITION_WEIGHT = 0.5  # position units per Lab unit: the image diagonal spans 0.5 * 255 "Lab units"
MEANSHIFT_SP = 5  # spatial window radius (pixels)
MEANSHIFT_SR = (12, 15, 18, 22, 26, 31, 37, 44, 52, 62)  # colour bandwidths (0-255 RGB units)
FH_K = (50, 100, 150, 250, 400, 600, 900, 1300, 2000, 3000)
FH_SIGMA = 0.8  # pre-smoothing, as in Felzenszwalb & Huttenlocher 2004
MIN_SIZE = 20  # pixels; meanshift and fh merge smaller components
CANNY_SIGMA = 2.0  # px: Gaussian smoothing of canny-owt-ucm's gradient (chosen on 50 val images)
CANNY_SCALE = 2.0  # Lab units / px at which its gradient term reaches 1 - 1/e


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"baselines take an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def kmeans_levels(image: np.ndarray, ks=KMEANS_K, seed: int = 0) -> list[np.ndarray]:
    """k-means on (L, a, b, w*y, w*x) for each k; labels are the cluster ids.

    Shape:
        image: (H, W, 3) uint8 RGB; returns len(ks) arrays (H, W) int32.
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)  # 8-bit Lab, all channels 0..255
    scale = KMEANS_POSITION_WEIGHT * 255.0 / np.hypot(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    feats = np.concatenate([lab, (yy * scale)[..., None], (xx * scale)[..., None]], -1)
    feats = np.ascontiguousarray(feats.reshape(-1, 5), dtype=np.float32)  # (H*W, 5)
    sample = feats[::KMEANS_STRIDE]  # fit on a regular subsample, assign every pixel after
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    sq = (feats * feats).sum(1, keepdims=True)  # (H*W, 1)
    out = []
    for k in ks:
        cv2.setRNGSeed(seed)  # k-means++ seeding draws from OpenCV's RNG: fix it for each level
        _, _, centres = cv2.kmeans(sample, int(k), None, criteria, 1, cv2.KMEANS_PP_CENTERS)  # (k, 5)
        d2 = sq - 2.0 * feats @ centres.T + (centres * centres).sum(1)  # (H*W, k) squared distances
        out.append(d2.argmin(1).reshape(h, w).astype(np.int32))
    return out


def components(image: np.ndarray, tol: float) -> np.ndarray:
    """4-connected components of pixels whose colours differ by less than ``tol`` (L2).

    Shape:
        image: (H, W, C); returns (H, W) int32 labels 0..R-1.
    """
    h, w = image.shape[:2]
    f = image.astype(np.float32)
    idx = np.arange(h * w).reshape(h, w)
    join_h = np.linalg.norm(f[:, 1:] - f[:, :-1], axis=-1) < tol
    join_v = np.linalg.norm(f[1:] - f[:-1], axis=-1) < tol
    rows = np.concatenate([idx[:, :-1][join_h], idx[:-1][join_v]])
    cols = np.concatenate([idx[:, 1:][join_h], idx[1:][join_v]])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(h * w, h * w))
    _, labels = connected_components(graph, directed=False)
    return labels.reshape(h, w).astype(np.int32)


def absorb_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Give each region under ``min_size`` pixels the label of its nearest larger region.

    Uses the distance transform's nearest-pixel indices (scipy.ndimage), so it is one pass.
    """
    sizes = np.bincount(labels.ravel())
    small = sizes[labels] < min_size
    if not small.any() or small.all():
        return labels
    _, (iy, ix) = ndimage.distance_transform_edt(small, return_indices=True)
    merged = labels[iy, ix]
    return np.unique(merged, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)


def meanshift_levels(image: np.ndarray, srs=MEANSHIFT_SR, sp: int = MEANSHIFT_SP) -> list[np.ndarray]:
    """Mean-shift filtering for each colour bandwidth, then colour-connected components.

    Shape:
        image: (H, W, 3) uint8 RGB; returns len(srs) arrays (H, W) int32.
    """
    image = _check_image(image)
    filtered = [(sr, cv2.pyrMeanShiftFiltering(image, sp, sr, maxLevel=1)) for sr in srs]
    return [absorb_small(components(f, sr / 2.0), MIN_SIZE) for sr, f in filtered]


def fh_levels(image: np.ndarray, ks=FH_K, sigma: float = FH_SIGMA) -> list[np.ndarray]:
    """Felzenszwalb-Huttenlocher segmentation for each scale k.

    Shape:
        image: (H, W, 3) uint8 RGB; returns len(ks) arrays (H, W) int32.
    """
    image = _check_image(image)
    make = cv2.ximgproc.segmentation.createGraphSegmentation
    return [make(sigma=sigma, k=float(k), min_size=MIN_SIZE).processImage(image).astype(np.int32) for k in ks]


def canny_owt_ucm(image: np.ndarray, sigma: float = CANNY_SIGMA, scale: float = CANNY_SCALE) -> np.ndarray:
    """Canny-owt-ucm: ``contours2ucm(canny_contours(image, sigma, scale))``.

    Shape:
        image: (H, W, 3) uint8 RGB; returns the BSDS ``ucm2`` (2H+1, 2W+1) float64 in [0, 1].

    References:
        Arbelaez, Maire, Fowlkes, Malik, TPAMI 2011, sec. 4.3 ("Canny-owt-ucm").
    """
    return contours2ucm(canny_contours(_check_image(image), sigma, scale))


def gpb_owt_ucm(image: np.ndarray, cache_dir=None) -> np.ndarray:
    """gPb-owt-ucm computed here (:mod:`wnet.postprocess.gpb`): the OWT-UCM of the oriented gPb.
    ``cache_dir`` keeps each image's gPb (shared with the paper's W-Net hierarchies).

    gPb's cue weights are the BSDS500 release's, fitted with BSDS labels: not a label-free row.

    Shape:
        image: (H, W, 3) uint8 RGB; returns the BSDS ``ucm2`` (2H+1, 2W+1) float64 in [0, 1].

    References:
        Arbelaez, Maire, Fowlkes, Malik, TPAMI 2011, sec. 3-4.
    """
    from wnet.postprocess.gpb import gpb_ucm2
    from wnet.postprocess.gpb.cache import cached_gpb

    return gpb_ucm2(cached_gpb(_check_image(image), None, cache_dir))


# The one table of baselines: name -> function of an (H, W, 3) uint8 RGB image, giving a list of
# label maps (finest first) or, for UCM2_BASELINES, one ucm2. task=bsds validates and runs from it.
BASELINES = {
    "kmeans": kmeans_levels,
    "meanshift": meanshift_levels,
    "fh": fh_levels,
    "canny-owt-ucm": canny_owt_ucm,
    "gpb-owt-ucm": gpb_owt_ucm,
}
UCM2_BASELINES = ("canny-owt-ucm", "gpb-owt-ucm")
LEVEL_BASELINES = tuple(name for name in BASELINES if name not in UCM2_BASELINES)


def baseline_prediction(name: str, image_rgb_uint8: np.ndarray, gpb_cache=None) -> np.ndarray:
    """What the BSDS benchmark scores for baseline ``name`` (any of :data:`BASELINES`).

    Shape:
        image: (H, W, 3) uint8 RGB; returns the label maps of :func:`run_baseline` stacked and
        numbered from 1 (the benchmark's ``segs``), (levels, H, W) int32, or for
        :data:`UCM2_BASELINES` a ucm2 (2H+1, 2W+1) float32.
    """
    if name == "gpb-owt-ucm":
        return gpb_owt_ucm(image_rgb_uint8, gpb_cache).astype(np.float32)
    if name in UCM2_BASELINES:
        return BASELINES[name](image_rgb_uint8).astype(np.float32)
    # labels from 1: the covering counts label 0 as no region (the official regionprops reading)
    return np.stack(run_baseline(name, image_rgb_uint8)).astype(np.int32) + 1


def run_baseline(name: str, image_rgb_uint8: np.ndarray) -> list[np.ndarray]:
    """Run baseline ``name`` (kmeans | meanshift | fh) with its default sweep.

    Args:
        name: one of :data:`LEVEL_BASELINES` (``canny-owt-ucm`` gives a ucm2: use
            :func:`baseline_prediction` or :func:`canny_owt_ucm`).
        image_rgb_uint8: the image.

    Shape:
        image: (H, W, 3) uint8 RGB; returns a list of (H, W) int32 label maps, finest first.

    References:
        Comaniciu & Meer 2002 (mean shift); Felzenszwalb & Huttenlocher 2004; both are among
        the baselines compared in Arbelaez et al. 2011 and Xia & Kulis 2017.
    """
    if name in UCM2_BASELINES:
        raise ValueError(f"baseline {name!r} gives a ucm2, not label maps: use baseline_prediction")
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    return BASELINES[name](image_rgb_uint8)
