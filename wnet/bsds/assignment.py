"""Exact, deterministic solution of the boundary correspondence problem.

The official ``correspondPixels`` minimises ``sum(distances of matched pairs) + outlierCost *
(unmatched pixels)`` over matchings that pair a predicted and a human boundary pixel at most
``maxDist`` apart, with ``outlierCost = 100 * maxDist``. Leaving two pixels unmatched costs
``200 * maxDist`` while matching them costs at most ``maxDist``, so the optimum is a *maximum
cardinality* matching of least total distance (the exception would need an augmenting path of
more than 200 edges). We compute exactly that, in C-speed scipy calls:

1. A maximum flow (Dinic's algorithm, ``scipy.sparse.csgraph.maximum_flow``; on a unit-capacity
   bipartite graph it is Hopcroft-Karp) gives a maximum matching and its cardinality k, the
   number of matched human pixels (recall's numerator) - the same for every maximum matching.
   (scipy's ``maximum_bipartite_matching`` took over a minute on some BSDS maps; Dinic takes
   milliseconds.)
2. Which predicted pixels are matched (precision's numerator, pooled over annotators) can differ
   between maximum matchings, but only inside the part of the graph reachable from an
   unmatched predicted pixel by alternating paths (Dulmage-Mendelsohn: every maximum matching
   matches the reached human pixels ``O_G`` into the reached predicted pixels ``E_P``, and every
   other predicted pixel with an edge is matched). Least total distance is thus decided by a
   min-cost assignment of ``O_G`` into ``E_P`` alone, solved exactly per connected component
   (:mod:`wnet.bsds.lap`). On a dense boundary map (a fine level of a real hierarchy) this part
   holds thousands of pixels; a single sparse LAPJVsp call on it (``legacy=True``, the matcher
   before the split) could take minutes on one map.

The official C++ code reaches the same optimum only approximately (integer costs and a graph
sparsified with random outlier edges), so its counts can differ by a few pixels per image.

References: D. Martin, C. Fowlkes, J. Malik, TPAMI 26(5), 2004 (the correspondence);
A. L. Dulmage, N. S. Mendelsohn, Canad. J. Math. 10, 1958; J. Hopcroft, R. Karp, SIAM J.
Comput. 2(4), 1973.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, min_weight_full_bipartite_matching

from wnet.bsds import kernels
from wnet.bsds.lap import min_cost_assignment
from wnet.bsds.ssp import tight_matching


def _max_matching(ei: np.ndarray, ej: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """A maximum matching: Hopcroft-Karp in C (:mod:`wnet.bsds.kernels`), else a unit-capacity
    max flow source -> pred -> human -> sink (scipy's Dinic).

    Returns: (n1,) int64, the human partner of each predicted pixel or -1.
    """
    lib = kernels.library()
    if lib is not None:
        return kernels.max_matching(ei, ej, n1, n2, lib)
    return tight_matching(ei, ej, n1, n2)


def _variable_part(ei, ej, mate, free, n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    """Dulmage-Mendelsohn: the predicted pixels E_P and human pixels O_G reachable by alternating
    paths (pred -> human on any edge, human -> pred on its matching edge) from the free predicted
    pixels. Every O_G pixel is matched into E_P in every maximum matching; E_P pixels may or may
    not be matched. Returns (E_P, O_G) indices."""
    src = n1 + n2  # a super source
    mp = np.flatnonzero(mate >= 0)
    rows = np.concatenate([ei, n1 + mate[mp], np.full(free.size, src)])
    cols = np.concatenate([n1 + ej, mp, free])
    g = sp.csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(src + 1, src + 1))
    reached = breadth_first_order(g, src, directed=True, return_predecessors=False)
    in_e = np.zeros(src + 1, dtype=bool)
    in_e[reached] = True
    return np.flatnonzero(in_e[:n1]), np.flatnonzero(in_e[n1:src])


def exact_match(
    ei: np.ndarray,
    ej: np.ndarray,
    ed: np.ndarray,
    n1: int,
    n2: int,
    keys1: np.ndarray | None = None,
    keys2: np.ndarray | None = None,
    cache: dict | None = None,
    legacy: bool = False,
) -> tuple[np.ndarray, int]:
    """Min-distance maximum matching between n1 predicted and n2 human pixels.

    Args:
        ei, ej, ed: candidate pairs (predicted index, human index, distance), each pair once.
        n1, n2: numbers of predicted and human pixels.
        keys1, keys2: pixel positions of the predicted and human pixels, to cache solved
            assignment components in ``cache`` (a dict kept across calls of one image size).
        legacy: solve the whole assignment part in one LAPJVsp call, as before the split
            (for benchmarks; can stall on dense maps).
    Returns:
        (matched, k): bool (n1,) flags of matched predicted pixels and the matching's size.
    Shape:
        ei, ej, ed: (E,); keys1: (n1,); keys2: (n2,).
    """
    matched = np.zeros(n1, dtype=bool)
    if ei.size == 0:
        return matched, 0
    mate = _max_matching(ei, ej, n1, n2)  # (n1,) human index or -1
    k = int(np.count_nonzero(mate >= 0))
    has_edge = np.zeros(n1, dtype=bool)
    has_edge[ei] = True
    free = np.flatnonzero(has_edge & (mate < 0))
    matched[mate >= 0] = True
    if free.size == 0:  # every predicted pixel with a partner is matched: nothing to choose
        return matched, k
    e_p, o_g = _variable_part(ei, ej, mate, free, n1, n2)
    matched[e_p] = False
    if o_g.size == 0:
        return matched, k
    # min-cost assignment of O_G (rows, all matched) into E_P (columns)
    col_of = np.full(n1, -1)
    col_of[e_p] = np.arange(e_p.size)
    row_of = np.full(n2, -1)
    row_of[o_g] = np.arange(o_g.size)
    keep = (row_of[ej] >= 0) & (col_of[ei] >= 0)
    r, c, w = row_of[ej[keep]], col_of[ei[keep]], ed[keep]
    if legacy:
        # +1 keeps zero distances as explicit edges; every row is matched once: same optimum
        cost = sp.csr_matrix((w + 1.0, (r, c)), shape=(o_g.size, e_p.size))
        col = min_weight_full_bipartite_matching(cost)[1]
    else:
        rk = None if keys2 is None else np.asarray(keys2)[o_g]
        ck = None if keys1 is None else np.asarray(keys1)[e_p]
        col = min_cost_assignment(r, c, w, o_g.size, e_p.size, rk, ck, cache)
    matched[e_p[col]] = True
    return matched, k
