"""Greedy region merging into an ultrametric contour map (UCM), shared by every hierarchy.

Arbelaez et al. 2011, sec. 4.2: starting from a fine partition whose cracks carry boundary
strengths, repeatedly merge the two adjacent regions with the weakest common boundary (the mean
strength of the cracks between them) and label those cracks with the level of the merge. Levels
never decrease, so thresholding the map at any t gives a partition, and the partitions are nested:
an ultrametric. :mod:`wnet.postprocess.hierarchy` (argmax regions of W-Net) and :mod:`wnet.postprocess.owt` (watershed
regions of any contour map) build their fine partitions differently and share this step.

Layout: the official BSDS ``ucm2`` doubled grid, see :func:`ucm2_from_cracks`. The benchmark
reads a ucm2 as ``seg_t = bwlabel(ucm2 <= t)[1::2, 1::2]`` (0-based, 8-connected), and its
boundary maps from ``ucm2[2::2, 2::2]``.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

MIN_LEVEL = 1e-6  # smallest merge level, so that ucm2 <= 0 gives back exactly the initial regions


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


class RegionGraph:
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


def merge_levels(
    labels: np.ndarray, sh: np.ndarray, sv: np.ndarray, min_region: int, size_prior: float = 0.0
) -> RegionGraph:
    """Run absorption then greedy merging; the graph's ``level`` holds each initial edge's level."""
    if size_prior < 0:
        raise ValueError(f"size_prior must be >= 0, got {size_prior}")
    g = RegionGraph(labels, sh, sv)
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


def crack_maps(labels: np.ndarray, g: RegionGraph, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = labels.shape
    flat = np.zeros(g.crack.shape)
    flat[g.crack] = values[g.crack_edge]
    return flat[: h * (w - 1)].reshape(h, w - 1), flat[h * (w - 1) :].reshape(h - 1, w)
