"""OWT-UCM on the original's partition: an 8-connected watershed with one-pixel lines.

``contours2ucm(E, watershed="lines")`` (:mod:`wnet.postprocess.owt`) follows ``contours2ucm.m`` of the BSR
release (Arbelaez et al. 2011) more closely than the default crack layout:

1. **Watershed** of ``max_o E`` as MATLAB's ``watershed``: flooding (Meyer's algorithm, a
   priority queue, first come first served on ties) from the 8-connected regional minima with
   8-connectivity; a pixel reached by two basins becomes a **line** pixel (label 0) and stops
   the flood. Lines are one pixel wide and block every 8-connected path between basins.
2. **Regions on the corner grid.** As ``super_contour_4c`` + ``bwlabel(ws_wt2 == 0, 8)``: on the
   doubled grid, line pixels and the cells between two line pixels are walls; the regions are
   the 8-connected empty components, read at the corners between pixels (corner (i, j) lies
   between pixels (i, j) and (i + 1, j + 1); the last row and column repeat the image's). The
   ucm2 written is this corner grid's, as in the official files. Regions of a single corner
   (the middle of a 2x2 block of line pixels) are absorbed at level 0, the counterpart of the
   original's ``clean_watersheds``.
3. **Oriented strengths.** Each boundary crack of the corner grid takes the orientation of its
   arc (:func:`wnet.postprocess.owt.arc_orientations`, recursive splitting); a line pixel takes the largest
   ``E(pixel, o)`` over the orientations o of the boundary cracks around it (the original gives
   each pixel of a contour fragment its fragment's orientation, the max where fragments meet).
   A crack between two corners is worth the smaller of the two line pixels it runs between
   (``super_contour_4c``: ``min`` of neighbouring pixels), 0 if either is not a line pixel.
4. **UCM**: :func:`wnet.postprocess.ucm.merge_levels` on the corner grid, as the default layout.
"""

from __future__ import annotations

import heapq

import numpy as np

from wnet.postprocess.owt import arc_orientations
from wnet.postprocess.ucm import crack_maps, merge_levels, ucm2_from_cracks

_NEIGHBOURS8 = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def regional_minima(relief: np.ndarray) -> np.ndarray:
    """8-connected regional minima, numbered 1..R (0 elsewhere). Shape: (H, W) -> (H, W) int64."""
    from scipy.ndimage import label
    from skimage.morphology import local_minima  # on first use, as wnet.postprocess.owt's watershed

    return label(local_minima(relief, connectivity=2), structure=np.ones((3, 3)))[0].astype(np.int64)


def watershed_lines(relief: np.ndarray) -> np.ndarray:
    """Basins 1..R of an 8-connected flooding with one-pixel watershed lines (0); step 1 above.

    Shape:
        relief: (H, W) float; returns (H, W) int64.
    """
    h, w = relief.shape
    lab = regional_minima(relief).ravel().tolist()
    val = np.asarray(relief, np.float64).ravel().tolist()
    state = [1 if v > 0 else 0 for v in lab]  # 0 unseen, 1 labelled or line, 2 queued
    heap: list[tuple[float, int, int]] = []
    age = 0

    def neighbours(p):
        y, x = divmod(p, w)
        for dy, dx in _NEIGHBOURS8:
            if 0 <= y + dy < h and 0 <= x + dx < w:
                yield p + dy * w + dx

    def push_around(p):
        nonlocal age
        for q in neighbours(p):
            if state[q] == 0:
                state[q] = 2
                heapq.heappush(heap, (val[q], age, q))
                age += 1

    for p in [i for i, v in enumerate(lab) if v > 0]:
        push_around(p)
    while heap:
        p = heapq.heappop(heap)[2]
        seen = {lab[q] for q in neighbours(p) if state[q] == 1 and lab[q] > 0}
        state[p] = 1
        if len(seen) == 1:
            lab[p] = seen.pop()
            push_around(p)
        else:  # two basins meet here (a pixel reached only by lines cannot be queued)
            lab[p] = 0
    return np.asarray(lab, np.int64).reshape(h, w)


def corner_regions(line: np.ndarray) -> np.ndarray:
    """Regions of the corner grid (step 2), numbered 0..R-1. Shape: (H, W) bool -> (H, W) int64."""
    from scipy.ndimage import label

    h, w = line.shape
    wall = np.zeros((2 * h, 2 * w), bool)  # doubled grid: pixel (i, j) at (2i, 2j)
    wall[0::2, 0::2] = line
    wall[0::2, 1:-1:2] = line[:, :-1] & line[:, 1:]
    wall[1:-1:2, 0::2] = line[:-1] & line[1:]
    wall[-1, :] = wall[-2, :]  # the padding of super_contour_4c
    wall[:, -1] |= wall[:, -2]
    comp = label(~wall, structure=np.ones((3, 3)))[0][1::2, 1::2]
    return np.unique(comp, return_inverse=True)[1].reshape(h, w).astype(np.int64)


def line_strengths(e: np.ndarray, line: np.ndarray, labels: np.ndarray, split_tol: float) -> np.ndarray:
    """Oriented strength of every line pixel, 0 elsewhere (step 3). Shape: (H, W, O) -> (H, W)."""
    h, w, n_orient = e.shape
    o = arc_orientations(labels, n_orient, split_tol)
    oh, ov = o[: h * (w - 1)].reshape(h, w - 1), o[h * (w - 1) :].reshape(h - 1, w)
    wt = np.zeros((h, w))
    # corner crack (i, j)|(i, j+1) runs between pixels (i, j+1) and (i+1, j+1);
    # corner crack (i, j)|(i+1, j) between pixels (i+1, j) and (i+1, j+1)
    for orient, offsets in ((oh, ((0, 1), (1, 1))), (ov, ((1, 0), (1, 1)))):
        ii, jj = np.nonzero(orient >= 0)
        for di, dj in offsets:
            pi, pj = np.minimum(ii + di, h - 1), np.minimum(jj + dj, w - 1)
            v = np.where(line[pi, pj], e[pi, pj, orient[ii, jj]], 0.0)
            np.maximum.at(wt, (pi, pj), v)
    return wt


def lines_ucm2(e: np.ndarray, split_tol: float, min_region: int = 0, size_prior: float = 0.0) -> np.ndarray:
    """The whole of steps 1-4 for a checked contour map e (H, W, O) in [0, 1]; returns the ucm2."""
    h, w, _ = e.shape
    line = watershed_lines(e.max(-1)) == 0
    labels = corner_regions(line)
    wt = np.pad(line_strengths(e, line, labels, split_tol), ((0, 1), (0, 1)), mode="edge")
    sh = np.where(labels[:, :-1] != labels[:, 1:], np.minimum(wt[:h, 1:w], wt[1 : h + 1, 1:w]), 0.0)
    sv = np.where(labels[:-1] != labels[1:], np.minimum(wt[1:h, :w], wt[1:h, 1 : w + 1]), 0.0)
    g = merge_levels(labels, sh, sv, max(2, min_region), size_prior)
    return ucm2_from_cracks(*crack_maps(labels, g, g.level))
