"""The paper's own hierarchies: W-Net's CRF boundaries weighted by gPb (Xia & Kulis 2017, sec. 4.2, 5.1).

* **Alg. 2** (:func:`alg2_ucm2`): the argmax of the CRF output is an over-segmentation; its
  boundaries, and only they, get the strength of gPb computed on the image (Eq. 5: brightness,
  colour and texture gradients at three scales plus the spectral term), and that weighted map goes
  to contours2ucm (oriented watershed, then the UCM). W-Net decides *where* a boundary may be,
  the image cues *how strong* it is. Evaluating gPb only on those pixels (as the paper does for
  speed) or masking the whole map gives the same signal; here the whole map is masked.
* **W-Net+ucm** (:func:`wnet_ucm_ucm2`): the same CRF boundaries combined with the ultrametric
  contour map of gPb-owt-ucm of the image before the final contours2ucm. The paper does not say
  how; :data:`COMBINATIONS` holds the natural candidates, compared on BSDS500 val
  (``experiments/owt_val.py``, docs/postprocessing.md) and :data:`COMBINATION` is the one chosen there.

gPb's weights were fitted on BSDS training images with their human boundaries (Arbelaez et al.
2011), so neither hierarchy is label-free.

Shapes: refined soft maps (K, H, W); oriented gPb (H, W, 8) (:func:`wnet.postprocess.gpb.gpb`);
every ucm2 (2H+1, 2W+1) in [0, 1].
"""

from __future__ import annotations

import numpy as np

from wnet.postprocess.gpb import gpb_ucm2

__all__ = [
    "COMBINATION",
    "COMBINATIONS",
    "alg2_ucm2",
    "argmax_boundaries",
    "gpb_ucm2",
    "ucm2_pixels",
    "wnet_ucm_ucm2",
]
from wnet.postprocess.layouts import as_probs
from wnet.postprocess.owt import contours2ucm


def argmax_boundaries(refined) -> np.ndarray:
    """Pixels that have a 4-neighbour of another argmax class: the boundaries of the over-segmentation,
    two pixels wide (one on each side of every crack), so the watershed's ridge lies on them.

    Shape:
        refined: (K, H, W); returns (H, W) bool.
    """
    labels = as_probs(refined).argmax(0)
    mask = np.zeros(labels.shape, bool)
    dy, dx = labels[1:] != labels[:-1], labels[:, 1:] != labels[:, :-1]
    mask[1:] |= dy
    mask[:-1] |= dy
    mask[:, 1:] |= dx
    mask[:, :-1] |= dx
    return mask


def alg2_ucm2(refined, orient: np.ndarray, watershed: str = "cracks") -> np.ndarray:
    """W-Net + CRF + gPb (the paper's Alg. 2): gPb kept on the CRF argmax boundaries, then OWT-UCM
    with gPb-owt-ucm's level mapping (:func:`wnet.postprocess.gpb.gpb_ucm2`)."""
    mask = argmax_boundaries(refined)
    return gpb_ucm2(np.asarray(orient, np.float64) * mask[..., None], watershed)


def ucm2_pixels(ucm2: np.ndarray) -> np.ndarray:
    """A ucm2 as a contour map on the pixels: each pixel takes its strongest adjacent crack.

    Shape:
        ucm2: (2H+1, 2W+1); returns (H, W).
    """
    u = np.asarray(ucm2, np.float64)
    left, right = u[1::2, 0:-1:2], u[1::2, 2::2]
    up, down = u[0:-1:2, 1::2], u[2::2, 1::2]
    return np.maximum(np.maximum(left, right), np.maximum(up, down))


# How the CRF boundaries (Alg. 2's ucm2 on the pixels, a) and gPb-owt-ucm (b) make one contour map:
COMBINATIONS = {
    "mean": lambda a, b: (a + b) / 2,  # both vote: a W-Net-only or gPb-only boundary counts half
    "max": np.maximum,  # either suffices: the union of the two hierarchies' boundaries
    "min": np.minimum,  # both must agree: the W-Net boundaries, at the gPb-owt-ucm strength
}
COMBINATION = "mean"  # chosen on BSDS500 val (docs/postprocessing.md, "The paper's hierarchy")


def wnet_ucm_ucm2(
    refined, orient: np.ndarray, how: str = COMBINATION, watershed: str = "cracks", gpb_ucm=None
) -> np.ndarray:
    """W-Net+ucm: Alg. 2's map and gPb-owt-ucm's, combined by ``COMBINATIONS[how]``, then contours2ucm.

    Args:
        refined: the CRF-refined soft maps; orient: gPb of the image.
        how: a key of :data:`COMBINATIONS`.
        watershed: the OWT layout of every contours2ucm here.
        gpb_ucm: gPb-owt-ucm's ucm2 of the image when already computed (else computed from ``orient``).
    """
    if how not in COMBINATIONS:
        raise ValueError(f"unknown combination {how!r}; expected one of {', '.join(COMBINATIONS)}")
    a = ucm2_pixels(alg2_ucm2(refined, orient, watershed))
    b = ucm2_pixels(gpb_ucm if gpb_ucm is not None else gpb_ucm2(orient, watershed))
    return contours2ucm(np.clip(COMBINATIONS[how](a, b), 0.0, 1.0), watershed=watershed)
