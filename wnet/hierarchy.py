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

The official benchmark reads a ucm2 as ``seg_t = bwlabel(ucm2 <= t)[1::2, 1::2]`` (0-based,
8-connected), and its boundary maps from ``ucm2[2::2, 2::2]``; hence the layout below.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import cv2
import numpy as np

from wnet.crf import as_probs, as_uint8_image

LAB_SCALE = 10.0  # CIELAB distance at which the image term reaches 1 - 1/e (about a "clearly visible" step)
MIN_LEVEL = 1e-6  # smallest merge level, so that ucm2 <= 0 gives back exactly the initial regions


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


def ucm2_from_cracks(sh: np.ndarray, sv: np.ndarray) -> np.ndarray:
    """Lay crack values out on the doubled grid of the official BSDS ucm2.

    Pixel (y, x) sits at (2y+1, 2x+1) and is 0; the crack between (y, x) and (y, x+1) at
    (2y+1, 2x+2), between (y, x) and (y+1, x) at (2y+2, 2x+1); every even-even cell (junctions
    and the outer frame) takes the max of its 4-neighbouring crack cells, as in the official
    ucm2 files, so no 8-connected path leaks through a junction.

    Shape:
        sh: (H, W-1); sv: (H-1, W); returns (2H+1, 2W+1) float64.
    """
    h, w = sh.shape[0], sv.shape[1]
    if sh.shape != (h, w - 1) or sv.shape != (h - 1, w):
        raise ValueError(f"crack maps must be (H, W-1) and (H-1, W), got {sh.shape} and {sv.shape}")
    u = np.zeros((2 * h + 1, 2 * w + 1))
    u[1::2, 2:-1:2] = sh
    u[2:-1:2, 1::2] = sv
    p = np.pad(u, 1)  # p[r + 1, c + 1] = u[r, c]; the junction u[2i, 2j] is p[2i + 1, 2j + 1]
    ee = np.maximum(p[0:-2:2, 1:-1:2], p[2::2, 1:-1:2])  # cracks above and below, (H+1, W+1)
    np.maximum(ee, p[1:-1:2, 0:-2:2], out=ee)  # left
    np.maximum(ee, p[1:-1:2, 2::2], out=ee)  # right
    u[0::2, 0::2] = ee
    return u


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
        probs: soft maps S; image: the image (any layout of :func:`wnet.crf.as_uint8_image`) or
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


class _RegionGraph:
    """Region adjacency graph with mergeable edges; ``level[i]`` is set for initial edge i."""

    def __init__(self, labels: np.ndarray, sh: np.ndarray, sv: np.ndarray):
        r = int(labels.max()) + 1
        a = np.concatenate([labels[:, :-1].ravel(), labels[:-1].ravel()])
        b = np.concatenate([labels[:, 1:].ravel(), labels[1:].ravel()])
        s = np.concatenate([sh.ravel(), sv.ravel()])
        self.crack = a != b  # (n_cracks,) which cracks separate two regions
        lo, hi = np.minimum(a, b)[self.crack], np.maximum(a, b)[self.crack]
        keys, self.crack_edge = np.unique(lo * r + hi, return_inverse=True)
        self.sum = np.bincount(self.crack_edge, s[self.crack]).tolist()
        self.len = np.bincount(self.crack_edge).tolist()
        self.ends = list(zip((keys // r).tolist(), (keys % r).tolist(), strict=True))
        self.members = [[i] for i in range(len(keys))]
        self.version = [0] * len(keys)
        self.level = np.zeros(len(keys))
        self.size = np.bincount(labels.ravel(), minlength=r).tolist()
        self.parent = list(range(r))  # union-find forest of the merges
        self.adj: list[dict[int, int]] = [{} for _ in range(r)]
        for e, (i, j) in enumerate(self.ends):
            self.adj[i][j] = e
            self.adj[j][i] = e

    def find(self, r: int) -> int:
        while self.parent[r] != r:
            self.parent[r] = self.parent[self.parent[r]]
            r = self.parent[r]
        return r

    def absorb_small(self, min_region: int) -> None:
        """Merge regions below ``min_region`` pixels, smallest first, at level 0."""
        small = [(n, r) for r, n in enumerate(self.size) if n < min_region]
        heapq.heapify(small)
        while small:
            n, r = heapq.heappop(small)
            if self.size[r] != n or not self.adj[r]:
                continue  # stale entry (the region grew or was absorbed) or the whole image
            survivor, _ = self.merge(min(self.adj[r].values(), key=self.strength), 0.0)
            if self.size[survivor] < min_region:
                heapq.heappush(small, (self.size[survivor], survivor))

    def strength(self, e: int) -> float:
        return self.sum[e] / self.len[e]

    def merge(self, e: int, level: float) -> tuple[int, list[int]]:
        """Merge the two ends of edge e at ``level``; returns the survivor and changed edges."""
        i, j = self.ends[e]
        if len(self.adj[i]) < len(self.adj[j]):
            i, j = j, i  # move the smaller adjacency (small-to-large)
        if level:  # levels start at 0: absorption (level 0) needs no write
            self.level[self.members[e]] = level
        self.version[e] = -1  # dead: its two sides are one region now
        self.parent[j] = i
        del self.adj[i][j], self.adj[j][i]
        changed = []
        for c, f in self.adj[j].items():
            del self.adj[c][j]
            g = self.adj[i].get(c)
            if g is None:  # f now joins i and c; its strength is unchanged
                self.ends[f] = (i, c)
                self.adj[i][c] = self.adj[c][i] = f
                continue
            self.sum[g] += self.sum[f]
            self.len[g] += self.len[f]
            big, small = (self.members[g], self.members[f])
            if len(big) < len(small):
                big, small = small, big
            big.extend(small)
            self.members[g], self.members[f] = big, []
            self.version[g] += 1
            self.version[f] = -1  # dead
            changed.append(g)
        self.adj[j] = {}
        self.size[i] += self.size[j]
        self.size[j] = 0
        return i, changed


def _merge_levels(
    labels: np.ndarray, sh: np.ndarray, sv: np.ndarray, min_region: int, size_prior: float = 0.0
) -> _RegionGraph:
    """Run absorption then greedy merging; the graph's ``level`` holds each initial edge's level."""
    if size_prior < 0:
        raise ValueError(f"hierarchy.size_prior must be >= 0, got {size_prior}")
    g = _RegionGraph(labels, sh, sv)
    g.absorb_small(min_region)

    def cost(e: int) -> float:
        if not size_prior:
            return g.strength(e)
        i, j = g.ends[e]
        return g.strength(e) * -math.expm1(-min(g.size[i], g.size[j]) / size_prior)

    heap = [(cost(e), e, v) for e, v in enumerate(g.version) if v >= 0]
    heapq.heapify(heap)
    level = MIN_LEVEL
    while heap:
        c, e, v = heapq.heappop(heap)
        if g.version[e] != v:
            continue  # lazily invalidated: its cost changed since it was pushed
        level = max(level, c)
        survivor, changed = g.merge(e, level)
        if size_prior:  # the grown region's area enters the cost of every one of its edges
            for f in set(g.adj[survivor].values()).difference(changed):
                g.version[f] += 1  # combined edges were already re-versioned by merge()
            changed = list(g.adj[survivor].values())
        for f in changed:
            heapq.heappush(heap, (cost(f), f, g.version[f]))
    return g


def _crack_maps(labels: np.ndarray, g: _RegionGraph, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = labels.shape
    flat = np.zeros(g.crack.shape)
    flat[g.crack] = values[g.crack_edge]
    return flat[: h * (w - 1)].reshape(h, w - 1), flat[h * (w - 1) :].reshape(h - 1, w)


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
