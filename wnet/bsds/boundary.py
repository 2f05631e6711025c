"""Boundary benchmark of one image: matched counts per level (``evaluation_bdry_image.m``).

For every level the predicted boundary map is thinned (``bwmorph(.., 'thin', Inf)``) and matched
to each annotator in turn. Recall pools over annotators (``cntR += matched GT pixels``,
``sumR += GT boundary pixels``); precision counts a predicted pixel once if it matches *any*
annotator (``cntP = |OR_i match1_i|``, ``sumP = |thinned map|``).

Speed (same numbers): a level whose thinned map equals the previous level's reuses its counts,
the annotators' pixel indices are built once per image, and :class:`Matcher` caches solved
connected components across levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wnet.bsds.correspond import Matcher
from wnet.bsds.levels import Prediction, boundary_maps
from wnet.bsds.thin import thin


@dataclass
class BoundaryResult:
    """Per-level counts of one image, as the official ``_ev1.txt`` columns. Shape: each (T,)."""

    thresh: np.ndarray
    cntR: np.ndarray
    sumR: np.ndarray
    cntP: np.ndarray
    sumP: np.ndarray


def boundary_image(
    pred: Prediction,
    gt_boundaries: list[np.ndarray],
    levels: np.ndarray,
    max_dist: float = 0.0075,
    thin_pb: bool = True,
    fast: bool = True,
    solver: str = "exact",
) -> BoundaryResult:
    """Boundary precision/recall counts of one image.

    Args:
        pred: a resolved prediction (ucm2, segs or pb).
        gt_boundaries: each annotator's boundary map, (H, W).
        levels: thresholds (ucm2/pb) or 1..n (segs).
        max_dist: match radius as a fraction of the image diagonal.
        thin_pb: thin the predicted maps first (official default true).
        fast: reuse unchanged levels and cached components; ``False`` is the literal official
            loop (every level, every annotator) and gives the same numbers, slower.
        solver: ``"exact"`` (default) or ``"csa"`` (the official C++ matcher, see
            :mod:`wnet.bsds.correspond`).
    Returns:
        :class:`BoundaryResult`.
    References:
        D. Martin, C. Fowlkes, J. Malik, "Learning to detect natural image boundaries using local
        brightness, color, and texture cues", TPAMI 26(5), 2004 (the correspondence); BSDS500
        ``evaluation_bdry_image.m``.
    """
    shape = gt_boundaries[0].shape
    matcher = Matcher(shape, max_dist=max_dist, cache=fast, solver=solver)
    gts = [matcher.prepare(b) for b in gt_boundaries]
    T = len(levels)
    cntR, sumR, cntP, sumP = (np.zeros(T) for _ in range(4))
    prev = None
    for t, bmap in enumerate(boundary_maps(pred, levels)):
        if thin_pb:
            bmap = thin(bmap)
        if fast and prev is not None and np.array_equal(bmap, prev):
            cntR[t], sumR[t], cntP[t], sumP[t] = cntR[t - 1], sumR[t - 1], cntP[t - 1], sumP[t - 1]
            continue
        acc = np.zeros(shape, dtype=bool)  # predicted pixels matched by any annotator
        for g in gts:
            m1, k2 = matcher.match(bmap, g)
            acc |= m1
            sumR[t] += g.count
            cntR[t] += k2
        sumP[t] = np.count_nonzero(bmap)
        cntP[t] = np.count_nonzero(acc)
        prev = bmap
    return BoundaryResult(np.asarray(levels, dtype=np.float64), cntR, sumR, cntP, sumP)
