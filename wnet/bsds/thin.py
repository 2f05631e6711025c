"""Morphological thinning as MATLAB's ``bwmorph(bw, 'thin', Inf)`` computes it.

The official boundary benchmark thins every predicted boundary map before matching it to the
human boundaries, so that a thick response is not rewarded with extra true positives.
MATLAB's ``thin`` is the two-subiteration parallel algorithm of Guo & Hall (1989) in the form
given by Lam, Lee & Suen (1992, p. 879): a foreground pixel ``p`` with neighbours
``x1..x8`` (``x1`` east, then counter-clockwise) is deleted in subiteration 1 when G1, G2 and
G3 hold, and in subiteration 2 when G1, G2 and G3' hold, every pixel of a subiteration being
tested against the same image. Passes repeat until nothing changes.

This port works on the coordinates of the foreground pixels only (a boundary map has a few
thousand of them), so one call costs well under a millisecond for a BSDS image.
"""

from __future__ import annotations

import numpy as np

# (dy, dx) of x1..x8: east, north-east, north, north-west, west, south-west, south, south-east
# (row index grows downwards, so "north" is dy = -1).
_NEIGHBOURS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def _deletable(x: list[np.ndarray], second: bool) -> np.ndarray:
    """G1 & G2 & G3 (or G3') for the foreground pixels whose neighbours are ``x[0..7]``.

    Args:
        x: eight boolean arrays, x[k] = neighbour x_{k+1} of each candidate pixel.
        second: False for subiteration 1 (G3), True for subiteration 2 (G3').
    Shape:
        each x[k]: (P,), output (P,).
    """
    x1, x2, x3, x4, x5, x6, x7, x8 = x
    # G1: the crossing number X_H(p) = 1 (exactly one 0 -> 1 transition around p)
    xh = (~x1 & (x2 | x3)).astype(np.int8) + (~x3 & (x4 | x5)) + (~x5 & (x6 | x7)) + (~x7 & (x8 | x1))
    g1 = xh == 1
    # G2: 2 <= min(n1, n2) <= 3 (p is neither an end point nor interior)
    n1 = (x1 | x2).astype(np.int8) + (x3 | x4) + (x5 | x6) + (x7 | x8)
    n2 = (x2 | x3).astype(np.int8) + (x4 | x5) + (x6 | x7) + (x8 | x1)
    m = np.minimum(n1, n2)
    g2 = (m >= 2) & (m <= 3)
    if not second:
        g3 = ~((x2 | x3 | ~x8) & x1)  # G3: (x2 | x3 | ~x8) & x1 == 0
    else:
        g3 = ~((x6 | x7 | ~x4) & x5)  # G3': (x6 | x7 | ~x4) & x5 == 0
    return g1 & g2 & g3


def thin(bw: np.ndarray) -> np.ndarray:
    """Thin a binary map to one-pixel-wide lines, as ``bwmorph(bw, 'thin', Inf)``.

    Args:
        bw: binary image (any dtype; non-zero is foreground).

    Returns:
        bool array of the same shape; pixels outside the image count as background.

    Shape:
        (H, W) -> (H, W).

    References:
        Z. Guo, R. W. Hall, "Parallel thinning with two-subiteration algorithms", CACM 32(3), 1989;
        L. Lam, S.-W. Lee, C. Y. Suen, "Thinning methodologies - a comprehensive survey",
        TPAMI 14(9), 1992, p. 879; MATLAB ``bwmorph`` 'thin'.
    """
    bw = np.asarray(bw)
    if bw.ndim != 2:
        raise ValueError(f"thin expects a 2-D binary map, got shape {bw.shape}")
    h, w = bw.shape
    img = np.zeros((h + 2, w + 2), dtype=bool)  # one pixel of background padding
    img[1:-1, 1:-1] = bw != 0
    ys, xs = np.nonzero(img)
    while True:
        changed = False
        for second in (False, True):
            if ys.size == 0:
                break
            x = [img[ys + dy, xs + dx] for dy, dx in _NEIGHBOURS]
            kill = _deletable(x, second)
            if kill.any():
                changed = True
                img[ys[kill], xs[kill]] = False
                ys, xs = ys[~kill], xs[~kill]
        if not changed:
            break
    return img[1:-1, 1:-1].copy()
