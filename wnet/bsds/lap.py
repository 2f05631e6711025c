"""Min-cost assignment of the boundary matcher's reduced problem, bounded on dense boundary maps.

:func:`wnet.bsds.assignment.exact_match` reduces the correspondence to a sparse assignment
problem: every row (a human pixel that every maximum matching matches) must get one column (a
predicted pixel that may or may not be matched), at the cost of their distance; rows <= columns.
This module solves it exactly, in three steps:

1. Split the bipartite graph into connected components (each is an independent problem).
2. A component whose rows all have distinct cheapest columns is solved by taking them: every row
   pays its own minimum, which no assignment can beat. Most components end here.
3. The others go to one of two exact solvers, chosen by size (measured on 2044 such components
   from the dense levels of 12 gPb-owt-ucm hierarchies of BSDS500 val, docs/bsds.md):

   * below ``DENSE_ROWS`` rows, scipy's dense shortest-augmenting-path solver
     (``linear_sum_assignment``, forbidden pairs at +inf): at most 42 ms there, 1-3x faster than
     the sparse solver, whose fixed costs dominate on small problems;
   * from ``DENSE_ROWS`` rows on, the sparse successive-shortest-path solver of
     :mod:`wnet.bsds.ssp`: 2-10x faster than the dense one there (0.15 s against 2.1 s on
     5819 x 10357), memory linear in the edges, and no stall.

   scipy's sparse LAPJVsp (``min_weight_full_bipartite_matching``, the matcher before this
   module) is not used: it took 53 s on one 1763 x 2043 component, 42 s on a 529 x 559 one.

Solved components can be cached (``cache``, keyed by the pixel positions of their rows and
columns, which fix the costs): consecutive thresholds of a hierarchy share most of them.
Both solvers are exact and deterministic, so the choice and the cache never change a count
(between equally cheap assignments, which one a solver returns may differ).

References: D. F. Crouse, "On implementing 2D rectangular assignment algorithms", IEEE TAES 52(4),
2016 (scipy's dense solver); :mod:`wnet.bsds.ssp` for the sparse one.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from wnet.bsds.ssp import shortest_augmenting_paths

DENSE_ROWS = 800  # components with fewer rows go to the dense solver
DENSE_CELLS = 4_000_000  # ... if rows x columns fits (32 MB of float64)


def use_dense(nr: int, nc: int) -> bool:
    """Whether a component of nr rows and nc columns goes to the dense solver (module docstring)."""
    return nr < DENSE_ROWS and nr * nc <= DENSE_CELLS


def solve_component(r: np.ndarray, c: np.ndarray, w: np.ndarray, nr: int, nc: int) -> np.ndarray:
    """Exact min-cost assignment of all ``nr`` rows of one component.

    Args:
        r, c, w: edges (row, column, cost >= 0), each pair once; every row has an edge and a
            full row assignment exists.
        nr, nc: numbers of rows and columns, ``nr <= nc``.
    Returns:
        (nr,) int: the column of each row.
    Shape:
        r, c, w: (E,).
    """
    if use_dense(nr, nc):
        m = np.full((nr, nc), np.inf)  # (nr, nc): +inf marks a forbidden pair
        m[r, c] = w
        _, col = linear_sum_assignment(m)
        return col
    return shortest_augmenting_paths(r, c, w, nr, nc)


def cheapest_columns(r: np.ndarray, c: np.ndarray, w: np.ndarray, nr: int) -> np.ndarray:
    """Each row's cheapest column (ties: the lowest column index). Shape: (E,) -> (nr,)."""
    order = np.lexsort((c, w, r))  # by row, then cost, then column
    first = np.flatnonzero(np.r_[True, np.diff(r[order]) != 0])
    best = np.full(nr, -1, dtype=np.int64)
    best[r[order[first]]] = c[order[first]]
    return best


def _key(rows: np.ndarray, cols: np.ndarray) -> bytes:
    data = np.concatenate([[rows.size], rows, cols]).astype(np.int64)
    return hashlib.blake2b(data.tobytes(), digest_size=16).digest()


def min_cost_assignment(
    r: np.ndarray,
    c: np.ndarray,
    w: np.ndarray,
    nr: int,
    nc: int,
    row_keys: np.ndarray | None = None,
    col_keys: np.ndarray | None = None,
    cache: dict | None = None,
) -> np.ndarray:
    """Exact min-cost assignment of every row to a distinct column (see the module docstring).

    Args:
        r, c, w: edges (row, column, cost >= 0), each pair once.
        nr, nc: numbers of rows and columns; a full row assignment must exist.
        row_keys, col_keys: pixel positions of rows and columns (with ``cache``): equal positions
            must mean equal costs.
        cache: dict reused across calls, or None.
    Returns:
        (nr,) int64: the column of each row.
    Shape:
        r, c, w: (E,); row_keys: (nr,); col_keys: (nc,).
    """
    r, c = np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    best = cheapest_columns(r, c, w, nr)
    if np.any(best < 0):
        raise ValueError("min_cost_assignment: a row has no edge, no full assignment exists")
    wanted = np.bincount(best, minlength=nc)  # (nc,) rows whose cheapest column each column is
    if wanted.max(initial=0) <= 1:
        return best  # every row gets its own cheapest column
    g = sp.csr_matrix((np.ones(r.size, dtype=np.int8), (r, nr + c)), shape=(nr + nc, nr + nc))
    _, lab = connected_components(g, directed=False)  # (nr + nc,)
    clash = wanted[best] > 1  # (nr,) rows sharing their cheapest column
    todo = np.zeros(lab.max() + 1, dtype=bool)
    todo[lab[:nr][clash]] = True
    e = np.flatnonzero(todo[lab[r]])  # edges of the components left to solve
    e = e[np.argsort(lab[r[e]], kind="stable")]
    cuts = np.flatnonzero(np.diff(lab[r[e]])) + 1
    for grp in np.split(e, cuts):
        rows, cols = np.unique(r[grp]), np.unique(c[grp])
        key = None
        if cache is not None and row_keys is not None and col_keys is not None:
            key = _key(row_keys[rows], col_keys[cols])
            hit = cache.get(key)
            if hit is not None:
                best[rows] = cols[hit]
                continue
        col = solve_component(
            np.searchsorted(rows, r[grp]), np.searchsorted(cols, c[grp]), w[grp], rows.size, cols.size
        )
        best[rows] = cols[col]
        if key is not None:
            cache[key] = col
    return best
