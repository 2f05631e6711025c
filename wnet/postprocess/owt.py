"""``contours2ucm``: any contour map to a hierarchy, by the Oriented Watershed Transform and UCM.

Arbelaez, Maire, Fowlkes & Malik 2011 (TPAMI), sec. 4: the generic grouping step that turns a
contour signal E(x, y, theta) into an ultrametric contour map (the MATLAB/mex ``contours2ucm`` of
the BSDS500 release). Here:

1. **Watershed** of ``E(x, y) = max_theta E(x, y, theta)``, flooding from its regional minima
   (``skimage.segmentation.watershed``, 4-connectivity). Every pixel joins a basin; the
   boundaries are the cracks between 4-neighbours of different basins, the layout of the
   project's ``ucm2`` (the original puts one-pixel watershed lines on pixels instead).
2. **Oriented reweighting** (sec. 4.1). The boundary cracks form arcs: chains between junctions
   (lattice corners where other than two boundary cracks meet; a closed loop is one arc). An arc
   is the polyline through its crack midpoints, split recursively at the point farthest from the
   chord while that distance exceeds ``split_tol`` times the chord length (scale invariant, as in
   the paper). Each crack takes the orientation of its segment, quantised to the nearest of the
   O orientations, and the strength ``max(E(u, o), E(v, o))`` over its two pixels u, v: the ridge
   of E lies on one of them. So a horizontal arc that grazes a strong vertical contour reads the
   weak horizontal response there, not the strong one (the artefact OWT removes, their fig. 12).
3. **UCM** (sec. 4.2): greedy merging of the adjacent regions with the lowest mean boundary
   strength (:func:`wnet.postprocess.ucm.merge_levels`; the mean over the cracks of a common boundary equals
   the paper's length-weighted mean of its arcs' weights). Optional, off by default: absorbing
   basins under ``min_region`` px first, and the size prior of :mod:`wnet.postprocess.hierarchy`.

Orientation convention: ``E[y, x, o]`` is the strength of a contour whose tangent makes the angle
``theta_o = o * pi / O`` with the x axis, counter-clockwise as displayed (rows grow downwards):
o = 0 is a horizontal contour (it separates a pixel from the one below), o = O/2 a vertical one.
A plain (H, W) map is O = 1: step 2 then only averages E along the arcs.

Output values are the merge levels themselves, in [0, 1]: no per-image rescaling (the original
divides by the image's maximum and applies a sigmoid), so a threshold means the same boundary
strength in every image, which is what the benchmark's ODS assumes.
"""

from __future__ import annotations

import math

import numpy as np

from wnet.postprocess.ucm import crack_maps, merge_levels, ucm2_from_cracks

SPLIT_TOL = 0.1  # max distance from the chord / chord length before an arc is split (sec. 4.1)


def check_contours(contours) -> np.ndarray:
    """A contour map as (H, W, O) float64 in [0, 1]; (H, W) becomes O = 1.

    Shape:
        contours: (H, W) or (H, W, O); returns (H, W, O).
    """
    e = np.asarray(contours, dtype=np.float64)
    if e.ndim == 2:
        e = e[..., None]
    if e.ndim != 3 or e.shape[0] < 2 or e.shape[1] < 2 or e.shape[2] < 1:
        raise ValueError(f"contours must be (H, W) or (H, W, O) with H, W >= 2, got shape {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError("contours contain NaN or inf")
    if e.min() < 0 or e.max() > 1:
        raise ValueError(f"contours must lie in [0, 1], got [{e.min():.4g}, {e.max():.4g}]")
    return e


def watershed_regions(contours) -> np.ndarray:
    """Step 1: the catchment basins of ``max_o E``, numbered 0..R-1, 4-connected.

    Shape:
        contours: (H, W) or (H, W, O); returns (H, W) int64.
    """
    from skimage.segmentation import watershed  # on first use: importing wnet needs no scikit-image

    e = check_contours(contours).max(-1)
    basins = watershed(e, connectivity=1).astype(np.int64)  # numbered from 1
    return np.maximum(basins - 1, 0)  # a constant map has no regional minimum: all 0, one region


def _crack_geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """End corners and midpoints of every crack, horizontal-neighbour cracks first.

    Corner (i, j), 0 <= i <= H, 0 <= j <= W, is the lattice point at row i, column j between
    pixels; its id is ``i * (W + 1) + j``. The crack between (y, x) and (y, x+1) runs from corner
    (y, x+1) to (y+1, x+1); the one between (y, x) and (y+1, x) from (y+1, x) to (y+1, x+1).

    Shape:
        returns end0, end1 (n_cracks,) int64 and mid (n_cracks, 2) (row, col) float64, with
        n_cracks = H (W-1) + (H-1) W in the order of :func:`wnet.postprocess.ucm.crack_maps`.
    """
    y, x = np.mgrid[0:h, 0 : w - 1]
    a_h = y * (w + 1) + x + 1
    mid_h = np.stack([y + 0.5, x + 1.0], -1)
    y, x = np.mgrid[0 : h - 1, 0:w]
    a_v = (y + 1) * (w + 1) + x
    mid_v = np.stack([y + 1.0, x + 0.5], -1)
    end0 = np.concatenate([a_h.ravel(), a_v.ravel()])
    end1 = np.concatenate([(a_h + w + 1).ravel(), (a_v + 1).ravel()])
    return end0, end1, np.concatenate([mid_h.reshape(-1, 2), mid_v.reshape(-1, 2)])


def boundary_arcs(labels: np.ndarray) -> list[tuple[list[int], int, int]]:
    """The boundary cracks of a partition, chained into arcs between junctions.

    Returns:
        one ``(cracks, start_corner, end_corner)`` per arc: crack ids in path order (see
        :func:`_crack_geometry`) and the corner ids at its two ends (equal for a closed loop).
    """
    h, w = labels.shape
    end0, end1, _ = _crack_geometry(h, w)
    boundary = np.concatenate(
        [(labels[:, :-1] != labels[:, 1:]).ravel(), (labels[:-1] != labels[1:]).ravel()]
    )
    ids = np.flatnonzero(boundary)
    e0, e1 = end0[ids], end1[ids]
    ends = np.concatenate([e0, e1])
    order = np.argsort(ends, kind="stable")
    ends, owner = ends[order], np.concatenate([ids, ids])[order]
    deg = np.bincount(ends, minlength=(h + 1) * (w + 1))
    slot = np.arange(len(ends)) - (np.cumsum(deg) - deg)[ends]
    inc = np.full((len(deg), 4), -1, np.int64)  # a corner touches at most 4 cracks
    inc[ends, slot] = owner
    # plain Python containers for the walk (numpy scalar indexing is ~10x slower)
    other = dict(zip(ids.tolist(), zip(e0.tolist(), e1.tolist(), strict=True), strict=True))
    degl, incl = deg.tolist(), inc.ravel().tolist()
    seen: set[int] = set()

    def walk(c: int, k: int) -> tuple[list[int], int, int]:
        start, path = c, []
        while True:
            seen.add(k)
            path.append(k)
            a, b = other[k]
            c = b if a == c else a
            if degl[c] != 2:
                return path, start, c
            a, b = incl[4 * c], incl[4 * c + 1]
            k = b if a == k else a
            if k in seen:  # back at the start of a closed loop
                return path, start, c

    arcs = []
    for c in np.flatnonzero((deg > 0) & (deg != 2)).tolist():  # junctions and frame ends first
        for k in incl[4 * c : 4 * c + 4]:
            if k >= 0 and k not in seen:
                arcs.append(walk(c, k))
    for k in ids.tolist():  # what is left are closed loops without a junction
        if k not in seen:
            arcs.append(walk(other[k][0], k))
    return arcs


def _split(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    """Recursive subdivision of many polylines at once; returns the kept-vertex mask.

    Polyline i is ``points[lo[i] : hi[i] + 1]``. Each round splits every pending piece whose
    farthest interior point lies more than ``tol`` x its chord from the chord (a closed piece,
    chord 0, at the point farthest from its start) and queues the two halves.

    Shape:
        points: (N, 2); lo, hi: (P,) int64; returns (N,) bool.
    """
    keep = np.zeros(len(points), bool)
    keep[lo] = keep[hi] = True
    while len(lo):
        n_in = hi - lo - 1
        lo, hi, n_in = lo[n_in > 0], hi[n_in > 0], n_in[n_in > 0]
        if not len(lo):
            break
        first = np.cumsum(n_in) - n_in  # (P,) offset of each piece's interior in the flat arrays
        piece = np.repeat(np.arange(len(lo)), n_in)  # (M,)
        idx = lo[piece] + 1 + np.arange(len(piece)) - first[piece]  # interior point indices
        d = points[hi] - points[lo]  # (P, 2) chords
        chord = np.hypot(d[:, 0], d[:, 1])
        rel = points[idx] - points[lo][piece]
        cross = np.abs(d[piece, 0] * rel[:, 1] - d[piece, 1] * rel[:, 0])
        dist = np.where(
            chord[piece] > 0, cross / np.maximum(chord[piece], 1e-12), np.hypot(rel[:, 0], rel[:, 1])
        )
        best = np.maximum.reduceat(dist, first)  # (P,)
        at = np.flatnonzero(dist == best[piece])
        at = at[np.unique(piece[at], return_index=True)[1]]  # first farthest point of each piece
        cut = (best > tol * chord) & (best > 0)
        mid = idx[at][cut]
        keep[mid] = True
        lo, hi = np.concatenate([lo[cut], mid]), np.concatenate([mid, hi[cut]])
    return keep


def split_arc(points: np.ndarray, tol: float = SPLIT_TOL) -> list[int]:
    """Recursive subdivision of one polyline into straight segments (Arbelaez et al. 2011, fig. 13).

    A piece is split at its point farthest from the chord while that distance exceeds ``tol``
    times the chord length; a closed piece (zero chord) at the point farthest from its start.

    Shape:
        points: (n, 2); returns the sorted indices of the kept vertices, first and last included.
    """
    pts = np.asarray(points, dtype=np.float64)
    return np.flatnonzero(_split(pts, np.array([0]), np.array([len(pts) - 1]), tol)).tolist()


def arc_orientations(labels: np.ndarray, n_orient: int, tol: float = SPLIT_TOL) -> np.ndarray:
    """Orientation bin (0..n_orient-1) of every crack from its arc's segment; -1 off the boundary.

    Shape:
        labels: (H, W); returns (n_cracks,) int64 in the order of :func:`wnet.postprocess.ucm.crack_maps`.
    """
    h, w = labels.shape
    _, _, mid = _crack_geometry(h, w)
    out = np.full(len(mid), -1, np.int64)
    code: list[int] = []  # per arc: -1 - start corner, its cracks, -1 - end corner
    for cracks, a, b in boundary_arcs(labels):
        code.append(-1 - a)
        code.extend(cracks)
        code.append(-1 - b)
    if not code:
        return out
    code = np.asarray(code)
    corner = -1 - code
    pts = np.where(
        (code >= 0)[:, None], mid[np.maximum(code, 0)], np.stack([corner // (w + 1), corner % (w + 1)], -1)
    )
    is_end = code < 0
    keep = _split(pts, np.flatnonzero(is_end)[0::2], np.flatnonzero(is_end)[1::2], tol)
    pos = np.arange(len(code))
    prev = np.maximum.accumulate(np.where(keep, pos, -1))  # last kept vertex at or before i
    prev = np.concatenate([[0], prev[:-1]])  # ... strictly before i
    nxt = np.minimum.accumulate(np.where(keep, pos, len(pos))[::-1])[::-1]  # first kept at or after i
    c = np.flatnonzero(~is_end)  # crack points: their segment is (prev, nxt]
    d = pts[nxt[c]] - pts[prev[c]]  # (drow, dcol)
    theta = np.mod(np.arctan2(-d[:, 0], d[:, 1]), math.pi)  # counter-clockwise, rows point down
    out[code[c]] = np.rint(theta / (math.pi / n_orient)).astype(np.int64) % n_orient
    return out


def owt_strengths(
    contours, labels: np.ndarray, split_tol: float = SPLIT_TOL
) -> tuple[np.ndarray, np.ndarray]:
    """Step 2: every boundary crack's strength at its arc's orientation; 0 off the boundary.

    Shape:
        contours: (H, W, O) or (H, W); labels: (H, W); returns sh (H, W-1), sv (H-1, W).
    """
    e = check_contours(contours)
    h, w, n_orient = e.shape
    if labels.shape != (h, w):
        raise ValueError(f"labels must have the contours' size {(h, w)}, got {labels.shape}")
    if not split_tol > 0:
        raise ValueError(f"split_tol must be > 0, got {split_tol}")
    per_orient = np.concatenate(
        [
            np.maximum(e[:, :-1], e[:, 1:]).reshape(-1, n_orient),
            np.maximum(e[:-1], e[1:]).reshape(-1, n_orient),
        ]
    )  # (n_cracks, O): the larger of the two pixels of each crack
    o = arc_orientations(labels, n_orient, split_tol)
    s = np.where(o >= 0, per_orient[np.arange(len(o)), np.maximum(o, 0)], 0.0)
    return s[: h * (w - 1)].reshape(h, w - 1), s[h * (w - 1) :].reshape(h - 1, w)


def contours2ucm(
    contours,
    *,
    split_tol: float = SPLIT_TOL,
    min_region: int = 0,
    size_prior: float = 0.0,
    watershed: str = "cracks",
) -> np.ndarray:
    """Oriented Watershed Transform + Ultrametric Contour Map of a contour map (module docstring).

    Args:
        contours: E in [0, 1], oriented (H, W, O) or plain (H, W); numpy or CPU torch.
        split_tol: arc subdivision tolerance (max distance from the chord / chord length).
        min_region: basins smaller than this (px) are first absorbed into the neighbour across
            their weakest boundary, at level 0 (0: none, as in the paper).
        size_prior: px; merge cost x (1 - exp(-min area / size_prior)) as in
            :mod:`wnet.postprocess.hierarchy` (0: plain mean boundary strength, as in the paper).
        watershed: ``cracks`` (the default, this module's steps 1-3) or ``lines``: the original's
            8-connected watershed with one-pixel lines and regions on the corner grid between
            pixels (:mod:`wnet.postprocess.owt_lines`), closer to the official BSDS500 hierarchies.

    Shape:
        returns the BSDS ``ucm2`` (2H+1, 2W+1) float64 in [0, 1]; read it with
        :func:`wnet.bsds.ucm2_to_segmentations`.

    References:
        Arbelaez, Maire, Fowlkes, Malik, "Contour Detection and Hierarchical Image
        Segmentation", TPAMI 33(5) 2011, sec. 4.1-4.2.
    """
    if min_region < 0:
        raise ValueError(f"min_region must be >= 0, got {min_region}")
    if watershed not in ("cracks", "lines"):
        raise ValueError(f"watershed must be 'cracks' or 'lines', got {watershed!r}")
    e = check_contours(contours)
    if watershed == "lines":
        from wnet.postprocess.owt_lines import lines_ucm2  # imports this module: resolved at call time

        if not split_tol > 0:
            raise ValueError(f"split_tol must be > 0, got {split_tol}")
        return lines_ucm2(e, split_tol, min_region, size_prior)
    labels = watershed_regions(e)
    sh, sv = owt_strengths(e, labels, split_tol)
    g = merge_levels(labels, sh, sv, min_region, size_prior)
    return ucm2_from_cracks(*crack_maps(labels, g, g.level))
