"""Hierarchical region merging of a (CRF-refined) W-Net output into a BSDS ``ucm2``.

W-Net's second post-processing step (Xia & Kulis 2017, sec. 4.2) follows the hierarchical
merging of Arbelaez et al. 2011 (sec. 4.2, "ultrametric contour map"): a fine partition is
merged greedily, weakest boundary first, and every boundary is labelled with the strength at
which it disappears. Algorithm used here:

1. Initial regions: 4-connected components of the argmax of the soft maps S (4-connected
   because the ucm2 separates pixels by cracks only; diagonal contacts are not adjacency).
2. Boundary strength of each crack (u, v) between 4-neighbours,
   ``s = alpha * 0.5 * ||S(u) - S(v)||_1 + (1 - alpha) * (1 - exp(-dE / LAB_SCALE))``
   where dE is the CIELAB distance between the Gaussian-smoothed image (``image_sigma``) at
   the pixels ``image_reach`` px beyond u and v on the line through them (a 3-px span by
   default: soft, blurred edges count as well as sharp ones). Both terms lie in [0, 1], so s
   does too: no per-image rescaling, thresholds mean the same in every image.
3. Region adjacency graph; an edge's boundary strength is the mean of s over its cracks (the
   average boundary strength of Arbelaez et al. 2011). Regions smaller than ``min_region``
   pixels are first absorbed, smallest first, into the neighbour with the weakest shared
   boundary (those cracks get level 0: they are not in the hierarchy).
4. Repeatedly merge the cheapest edge (heapq with lazy invalidation); the edges of the merged
   region to a common neighbour are combined (sums and lengths add). The cost of an edge is
   its strength times the size prior ``1 - exp(-min(|A|, |B|) / size_prior)``, so a small
   region joins its neighbour before two large ones separated by the same contrast (Arbelaez
   et al.'s mean boundary strength alone lets slivers survive to high levels). The level of a
   merge is ``max(previous level, cost)``, so levels never decrease: the map is an ultrametric.
5. ucm2: every crack gets the level at which its two sides joined; see :func:`ucm2_from_cracks`.

Steps 3-5 (the region graph, greedy merging, the ucm2 layout) live in :mod:`wnet.postprocess.ucm`, shared
with the oriented watershed hierarchy of :mod:`wnet.postprocess.owt`.

The official benchmark reads a ucm2 as ``seg_t = bwlabel(ucm2 <= t)[1::2, 1::2]`` (0-based,
8-connected), and its boundary maps from ``ucm2[2::2, 2::2]``; hence the layout below.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from wnet.postprocess.layouts import as_probs, as_uint8_image
from wnet.postprocess.ucm import RegionGraph as _RegionGraph
from wnet.postprocess.ucm import crack_maps as _crack_maps
from wnet.postprocess.ucm import merge_levels as _merge_levels
from wnet.postprocess.ucm import ucm2_from_cracks

LAB_SCALE = 10.0  # CIELAB distance at which the image term reaches 1 - 1/e (about a "clearly visible" step)


MODES = ("merge", "flat")


@dataclass
class HierarchyParams:
    """How the ucm2 is built from soft maps (defaults tuned on 50 BSDS500 val images, docs/postprocessing.md)."""

    mode: str = "merge"  # merge (ucm2 by region merging) | flat (the initial regions, one level)
    min_region: int = 64  # regions smaller than this (pixels) are absorbed first
    alpha: float = 0.3  # weight of soft-class contrast vs image gradient in boundary strength
    image_sigma: float = 2.0  # px: Gaussian smoothing of the image before its colour differences
    image_reach: int = 1  # px: compare colours this far beyond each side of a crack (0: adjacent pixels)
    size_prior: float = 400.0  # px: merge cost x (1 - exp(-min area / size_prior)); 0 disables

    def check(self) -> None:
        """Raise ValueError naming the first parameter out of its range."""
        if self.mode not in MODES:
            raise ValueError(f"hierarchy.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.min_region < 0:
            raise ValueError(f"hierarchy.min_region must be >= 0, got {self.min_region}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"hierarchy.alpha must lie in [0, 1], got {self.alpha}")
        if self.image_sigma < 0:
            raise ValueError(f"hierarchy.image_sigma must be >= 0, got {self.image_sigma}")
        if self.image_reach < 0:
            raise ValueError(f"hierarchy.image_reach must be >= 0, got {self.image_reach}")
        if self.size_prior < 0:
            raise ValueError(f"hierarchy.size_prior must be >= 0, got {self.size_prior}")


def ucm2_from_labels(labels: np.ndarray) -> np.ndarray:
    """One flat segmentation as a ucm2: value 1 on every crack between different labels.

    Every benchmark threshold in (0, 1) then returns the same segmentation (ODS = OIS). A
    label that is not 4-connected becomes several regions, as the benchmark sees it.

    Shape:
        labels: (H, W) integers; returns (2H+1, 2W+1) float64.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an (H, W) integer array, got {labels.shape} {labels.dtype}")
    return ucm2_from_cracks(
        (labels[:, 1:] != labels[:, :-1]).astype(float), (labels[1:] != labels[:-1]).astype(float)
    )


def argmax_regions(probs) -> np.ndarray:
    """4-connected components of the argmax of the soft maps, numbered 0..R-1.

    Shape:
        probs: (K, H, W); returns (H, W) int64.
    """
    cls = as_probs(probs).argmax(0)
    out = np.zeros(cls.shape, np.int64)
    n = 0
    for k in np.unique(cls):
        count, lab = cv2.connectedComponents((cls == k).astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        m = lab > 0
        out[m] = lab[m] - 1 + n
        n += count - 1
    return out


def crack_strengths(
    probs, image=None, alpha: float = 0.3, image_sigma: float = 2.0, image_reach: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Boundary strength s in [0, 1] of every horizontal and vertical crack (module docstring).

    Args:
        probs: soft maps S; image: the image (any layout of :func:`wnet.postprocess.layouts.as_uint8_image`) or
            None (then only the soft-map term is used); alpha: weight of the soft-map term;
            image_sigma: smoothing (px) of the image; image_reach: the colours compared across
            a crack are ``image_reach`` px beyond its two pixels (0: the two pixels themselves).

    Shape:
        probs: (K, H, W); returns sh (H, W-1), sv (H-1, W).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"hierarchy.alpha must be in [0, 1], got {alpha}")
    p = as_probs(probs)
    sh = 0.5 * np.abs(p[:, :, 1:] - p[:, :, :-1]).sum(0)
    sv = 0.5 * np.abs(p[:, 1:] - p[:, :-1]).sum(0)
    if image is None or alpha == 1.0:
        return np.clip(sh, 0, 1), np.clip(sv, 0, 1)
    if image_sigma < 0 or image_reach < 0:
        raise ValueError(f"image_sigma and image_reach must be >= 0, got {image_sigma} and {image_reach}")
    rgb = as_uint8_image(image, p.shape[1:]).astype(np.float32) / 255.0
    if image_sigma > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), image_sigma)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)  # (H, W, 3), L in 0..100
    o, (h, w) = image_reach, p.shape[1:]
    pad = np.pad(lab, ((o, o), (o, o), (0, 0)), mode="edge")  # pad[y + o, x + o] = lab[y, x]
    # crack (y, x)|(y, x+1): pixels (y, x - o) and (y, x + 1 + o); likewise vertically
    gh = 1.0 - np.exp(
        -np.linalg.norm(pad[o : o + h, 2 * o + 1 :] - pad[o : o + h, : w - 1], axis=-1) / LAB_SCALE
    )
    gv = 1.0 - np.exp(
        -np.linalg.norm(pad[2 * o + 1 :, o : o + w] - pad[: h - 1, o : o + w], axis=-1) / LAB_SCALE
    )
    return np.clip(alpha * sh + (1 - alpha) * gh, 0, 1), np.clip(alpha * sv + (1 - alpha) * gv, 0, 1)


def absorb_singletons(labels: np.ndarray, sh: np.ndarray, sv: np.ndarray) -> np.ndarray:
    """Give every one-pixel region the label across its weakest crack to a larger region, at once.

    A vectorised first pass of the small-region absorption: noisy argmax maps have thousands of
    isolated pixels, and merging them one by one in Python would dominate the run time.

    Shape:
        labels: (H, W) 0..R-1; sh: (H, W-1); sv: (H-1, W); returns (H, W) int64 0..R'-1.
    """
    single = np.bincount(labels.ravel())[labels] == 1  # (H, W)
    if not single.any() or labels.size == 1:
        return labels
    col, row = np.full((labels.shape[0], 1), np.inf), np.full((1, labels.shape[1]), np.inf)
    cost = np.stack(
        [
            np.hstack([col, sh]),  # crack to the left neighbour
            np.hstack([sh, col]),  # right
            np.vstack([row, sv]),  # up
            np.vstack([sv, row]),  # down
        ]
    )  # (4, H, W)
    pad = np.pad(labels, 1)
    nbr = np.stack([pad[1:-1, :-2], pad[1:-1, 2:], pad[:-2, 1:-1], pad[2:, 1:-1]])  # (4, H, W)
    pad = np.pad(single, 1, constant_values=True)
    nbr_single = np.stack([pad[1:-1, :-2], pad[1:-1, 2:], pad[:-2, 1:-1], pad[2:, 1:-1]])
    cost[nbr_single] = np.inf  # joining another singleton could leave a region in pieces
    pick = cost.argmin(0)[None]  # (1, H, W)
    ok = single & np.isfinite(np.take_along_axis(cost, pick, 0)[0])
    merged = np.where(ok, np.take_along_axis(nbr, pick, 0)[0], labels)
    return np.unique(merged, return_inverse=True)[1].reshape(labels.shape)


def _initial(probs, image, params: HierarchyParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Argmax regions (singletons pre-absorbed when min_region > 1) and crack strengths."""
    if params.min_region < 0:
        raise ValueError(f"hierarchy.min_region must be >= 0, got {params.min_region}")
    labels = argmax_regions(probs)
    sh, sv = crack_strengths(probs, image, params.alpha, params.image_sigma, params.image_reach)
    if params.min_region > 1:
        labels = absorb_singletons(labels, sh, sv)
    return labels, sh, sv


def flat_labels(probs, image=None, params: HierarchyParams | None = None) -> np.ndarray:
    """The initial regions: argmax components with regions < ``params.min_region`` absorbed.

    Shape:
        probs: (K, H, W); returns (H, W) int64 labels 0..R-1.
    """
    params = params or HierarchyParams()
    labels, sh, sv = _initial(probs, image, params)
    g = _RegionGraph(labels, sh, sv)
    g.absorb_small(params.min_region)
    roots = np.array([g.find(r) for r in range(len(g.size))])
    return np.unique(roots, return_inverse=True)[1].reshape(-1)[labels]


def to_ucm2(probs, image=None, params: HierarchyParams | None = None) -> np.ndarray:
    """Ultrametric contour map of a W-Net output, in the official BSDS ``ucm2`` format.

    ``params.mode == 'merge'``: the hierarchy of the module docstring; ``'flat'``: the initial
    regions only (:func:`flat_labels`), every boundary at 1.

    Args:
        probs: soft class maps S (after CRF refinement); image: the image (optional, see
            :func:`crack_strengths`); params: mode, min_region, alpha, image_sigma, image_reach,
            size_prior.

    Shape:
        probs: (K, H, W); returns (2H+1, 2W+1) float64 with values in [0, 1].

    References:
        Arbelaez et al. 2011, sec. 4.2 (UCM) and the BSDS500 benchmark's ucm2 convention;
        Xia & Kulis 2017, sec. 4.2.
    """
    params = params or HierarchyParams()
    if params.mode == "flat":
        return ucm2_from_labels(flat_labels(probs, image, params))
    if params.mode != "merge":
        raise ValueError(f"hierarchy.mode must be 'merge' or 'flat', got {params.mode!r}")
    labels, sh, sv = _initial(probs, image, params)
    g = _merge_levels(labels, sh, sv, params.min_region, params.size_prior)
    return ucm2_from_cracks(*_crack_maps(labels, g, g.level))
