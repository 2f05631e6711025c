"""Pixel correspondence between a predicted and a human boundary map (``correspondPixels``).

The official matcher (BSDS ``match.cc``) solves a min-cost bipartite assignment between the two
maps' boundary pixels: pixels at most ``maxDist`` (0.0075 of the image diagonal) apart may match
at the cost of their distance, a pixel may stay unmatched at ``outlierCost * maxDist``. Two
solvers are offered, both pure functions of their input (so caching never changes a number):

* ``"exact"`` (default): the exact optimum via a maximum flow plus a min-cost assignment solved
  per connected component (:mod:`wnet.bsds.assignment`, :mod:`wnet.bsds.lap`); solved
  components are cached across the levels of an image. ``"legacy"`` is the same optimum with the
  assignment in one LAPJVsp call (the matcher before the split; it can stall on dense maps and
  is kept for benchmarks).
* ``"csa"``: the official C++ code (Goldberg's CSA on a graph with random outlier edges) through
  the MIT-licensed Cython port in ``pyEdgeEval`` 0.2.8. The problem is split into the connected
  components of the "within maxDist" graph, each matched on its own bounding box (radius and
  outlier cost kept in pixels), with the C++ random generator reseeded before every call (its
  global state otherwise makes a result depend on all earlier calls); solved components are
  cached. A component with one pixel on a side matches its nearest partner (first in row-major
  order on ties), which is the optimum. pyEdgeEval is loaded on first use of ``"csa"`` only.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from wnet.bsds.assignment import exact_match as _exact

SEED = 5489  # any fixed value; the official mex seeds from the clock
SOLVERS = ("exact", "csa", "legacy")


def _load_csa():
    """pyEdgeEval's ``correspond_pixels`` and a function that reseeds its C++ RNG (or None)."""
    try:
        from pyEdgeEval._lib import correspond_pixels
    except ImportError as e:  # pragma: no cover - the venv pins pyEdgeEval
        raise ImportError("wnet.bsds needs pyEdgeEval==0.2.8 (its correspond_pixels port)") from e
    mod = sys.modules.get("pyEdgeEval._lib.correspond_pixels") or importlib.import_module(
        "pyEdgeEval._lib.correspond_pixels"
    )
    try:  # C++ symbols: Random Random::rand; void Random::reseed(uint64_t)
        lib = ctypes.CDLL(mod.__file__)
        addr = ctypes.addressof(ctypes.c_char.in_dll(lib, "_ZN6Random4randE"))
        fn = lib._ZN6Random6reseedEm
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_uint64], None

        def reseed(seed: int = SEED) -> None:
            fn(addr, seed)

    except (OSError, AttributeError, ValueError):  # pragma: no cover - other builds
        reseed = None
    return correspond_pixels, reseed


_CSA_FNS: tuple | None = None  # (correspond_pixels, reseed or None), loaded on first use


def _csa():
    global _CSA_FNS
    if _CSA_FNS is None:
        _CSA_FNS = _load_csa()
    return _CSA_FNS


@dataclass
class GroundTruthBoundary:
    """One annotator's boundary pixels, indexed for radius look-ups (built once per image)."""

    ys: np.ndarray  # (n2,)
    xs: np.ndarray  # (n2,)
    near: sp.csr_matrix  # (H*W, n2): 1 + distance from each image pixel to each GT pixel within maxDist
    count: int  # sum(Boundaries(:)), the official recall denominator


class Matcher:
    """correspondPixels for one image size.

    Args:
        shape: (H, W) of the image.
        max_dist: match radius as a fraction of the image diagonal (official 0.0075).
        outlier_cost: cost of an unmatched pixel in units of the radius (official 100).
        cache: ``"csa"`` only: reuse solved components (the result is identical either way).
        solver: ``"exact"``, ``"csa"`` or ``"legacy"`` (see the module docstring).
    """

    def __init__(
        self,
        shape,
        max_dist: float = 0.0075,
        outlier_cost: float = 100.0,
        cache: bool = True,
        solver: str = "exact",
    ):
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if solver == "csa" and _csa()[1] is None:  # pragma: no cover - other pyEdgeEval builds
            warnings.warn(
                "pyEdgeEval's C++ Random::reseed symbol was not found: CSA results will vary run to run",
                stacklevel=2,
            )
        self.solver = solver
        self.shape = tuple(shape)
        self.radius = max_dist * float(np.hypot(*self.shape))  # in pixels
        self.outlier_cost = outlier_cost
        r = int(np.ceil(self.radius))
        dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
        keep = np.hypot(dy, dx) <= self.radius  # match.cc: skip pairs with dist > maxDist
        self.r, self.dy, self.dx = r, dy[keep], dx[keep]
        self.dist = np.hypot(self.dy, self.dx)
        self.cache: dict | None = {} if cache else None
        self.lap_cache: dict | None = {} if cache else None  # exact solver: solved components
        self.solver_calls = 0

    def prepare(self, gt_boundary: np.ndarray) -> GroundTruthBoundary:
        """Index one annotator's boundary map: the candidate partners of every image pixel.

        Built once per image and annotator, so that matching a predicted map is a row selection.
        Shape: (H, W).
        """
        b = np.asarray(gt_boundary) != 0
        h, w = self.shape
        ys, xs = np.nonzero(b)
        py = ys[None, :] - self.dy[:, None]  # (K, n2) predicted pixel that sees GT j at offset k
        px = xs[None, :] - self.dx[:, None]
        ok = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        k, j = np.nonzero(ok)
        # stored as distance + 1: a zero distance must not look like a missing entry
        near = sp.csr_matrix((self.dist[k] + 1.0, (py[ok] * w + px[ok], j)), shape=(h * w, ys.size))
        near.sort_indices()  # each row's partners in GT order: a fixed, input-independent order
        return GroundTruthBoundary(ys, xs, near, int(b.sum()))

    def match(self, bmap: np.ndarray, gt: GroundTruthBoundary) -> tuple[np.ndarray, int]:
        """Match a (thinned) boundary map to one annotator.

        Returns:
            (match1, n2): bool (H, W) map of matched predicted pixels, number of matched GT pixels.
        """
        flat = np.flatnonzero(np.asarray(bmap).ravel())  # predicted pixels, row-major
        match1 = np.zeros(self.shape, dtype=bool)
        if flat.size == 0 or gt.ys.size == 0:
            return match1, 0
        sub = gt.near[flat]  # (n1, n2) candidate pairs of each predicted pixel
        if sub.nnz == 0:
            return match1, 0
        ei = np.repeat(np.arange(flat.size), np.diff(sub.indptr))
        ej, ed = sub.indices.astype(np.int64), sub.data - 1.0
        ys, xs = np.divmod(flat, self.shape[1])
        if self.solver != "csa":
            # only predicted pixels with a candidate partner enter the solver (same result, smaller graph)
            deg = np.diff(sub.indptr)
            rows = np.flatnonzero(deg)
            ci = np.repeat(np.arange(rows.size), deg[rows])
            m1, k2 = _exact(
                ci,
                ej,
                ed,
                rows.size,
                gt.ys.size,
                keys1=flat[rows],
                keys2=gt.ys * self.shape[1] + gt.xs,
                cache=self.lap_cache,
                legacy=self.solver == "legacy",
            )
            match1[ys[rows[m1]], xs[rows[m1]]] = True
            return match1, k2
        return self._match_csa(ys, xs, gt, ei, ej, match1)

    def _match_csa(self, ys, xs, gt, ei, ej, match1) -> tuple[np.ndarray, int]:
        n1, n2 = ys.size, gt.ys.size
        graph = sp.csr_matrix((np.ones(ei.size), (ei, n1 + ej)), shape=(n1 + n2, n1 + n2))
        _, comp = connected_components(graph, directed=False)
        # group the matchable nodes (those with an edge) by component
        nodes = np.unique(np.concatenate([ei, n1 + ej]))
        nodes = nodes[np.argsort(comp[nodes], kind="stable")]
        cuts = np.flatnonzero(np.diff(comp[nodes])) + 1
        n_matched = 0
        for group in np.split(nodes, cuts):
            p, g = group[group < n1], group[group >= n1] - n1  # both sorted (row-major order)
            m1, k2 = self._component(ys[p], xs[p], gt.ys[g], gt.xs[g])
            match1[ys[p][m1], xs[p][m1]] = True
            n_matched += k2
        return match1, n_matched

    def _component(self, py, px, gy, gx) -> tuple[np.ndarray, int]:
        """Solve one component. Returns (matched flags of its predicted pixels, matched GT count)."""
        if py.size == 1 or gy.size == 1:
            d = np.hypot(py[:, None] - gy[None, :], px[:, None] - gx[None, :])  # (n1, n2)
            m1 = np.zeros(py.size, dtype=bool)
            m1[np.argmin(d.min(1)) if py.size > 1 else 0] = True
            return m1, 1
        key = None
        if self.cache is not None:
            w = self.shape[1]
            key = hashlib.blake2b(
                np.concatenate([[py.size], py * w + px, gy * w + gx]).astype(np.int64).tobytes(),
                digest_size=16,
            ).digest()
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        y0, x0 = min(py.min(), gy.min()), min(px.min(), gx.min())
        h, w = max(py.max(), gy.max()) - y0 + 1, max(px.max(), gx.max()) - x0 + 1
        a, b = np.zeros((h, w)), np.zeros((h, w))
        a[py - y0, px - x0] = 1.0
        b[gy - y0, gx - x0] = 1.0
        csa, reseed = _csa()
        if reseed is not None:
            reseed()
        # keep the radius and outlier cost in pixels: the port scales max_dist by the crop diagonal
        m1, m2, _, _ = csa(a, b, max_dist=self.radius / float(np.hypot(h, w)), outlier_cost=self.outlier_cost)
        self.solver_calls += 1
        res = (m1[py - y0, px - x0] > 0, int(np.count_nonzero(m2[gy - y0, gx - x0])))
        if key is not None:
            self.cache[key] = res
        return res
