"""gPb, the globalized probability of boundary (Arbelaez, Maire, Fowlkes & Malik 2011), and gPb-owt-ucm.

    gPb(x, y, theta) = sum_s sum_i beta_{i,s} G_{i,s}(x, y, theta) + gamma sPb(x, y, theta)

G are the half-disc chi^2 gradients of brightness, colour a*, b* and texture at three scales,
smoothed (:mod:`.multiscale`, :mod:`.gradients`, :mod:`.smoothing`); sPb is the spectral term
(:mod:`.spectral`) computed on the non-max suppressed mPb. The hierarchy gPb-owt-ucm is
``contours2ucm`` of the oriented gPb, with the original's sigmoid ``normalize_output`` on its
levels.

**The weights use labels.** beta (mPb and gPb) and gamma are the published values of the BSDS500
release (``multiscalePb.m`` and ``globalPb.m``, 2010), which Arbelaez et al. fitted on the BSDS
training images with their human boundaries; the UCM sigmoid was fitted on BSDS as well. Every
result built on gPb is therefore not label-free. The texton dictionary was learned here without
labels, on the BSDS500 train images only.

Orientation convention of the outputs: that of :mod:`wnet.postprocess.owt`: channel o is a contour whose
tangent makes o pi / 8 with the x axis, counter-clockwise as displayed (o = 0 horizontal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wnet.postprocess.gpb import eigs, multiscale, spectral, textons
from wnet.postprocess.gpb.timing import timed

# multiscalePb.m (BSDS500 release, Dec 2010): bg1-3, cga1-3, cgb1-3, tg1-3, for mPb (the sPb input)
MPB_WEIGHTS = (0.0146, 0.0145, 0.0163, 0.0210, 0.0243, 0.0287, 0.0166, 0.0185, 0.0204, 0.0101, 0.0111, 0.0141)
# globalPb.m (same release): the same 12 cues then sPb, for gPb
GPB_WEIGHTS = (
    0.0,
    0.0,
    0.0039,
    0.0050,
    0.0058,
    0.0069,
    0.0040,
    0.0044,
    0.0049,
    0.0024,
    0.0027,
    0.0170,
    0.0074,
)
UCM_SIGMOID = (-2.7487, 11.1189, 0.0602)  # contours2ucm.m normalize_output: beta0, beta1, offset


@dataclass(frozen=True)
class GPbParams:
    """Settings of :func:`gpb`; the defaults are the BSDS500 release's.

    Attributes:
        mpb_weights: 12 cue weights of mPb (the input of sPb).
        gpb_weights: 12 cue weights then the sPb weight gamma, of gPb.
        textons: ``bsds500-train`` (the shipped dictionary), ``image`` (cluster each image's own
            responses, as the original does), or the path of a dictionary (.npz, key ``textons``).
        n_vec: eigenvectors of the spectral step, the constant one included.
        ic_radius: px, reach of the intervening-contour affinities.
        ic_rho: scale of the affinities.
        eigensolver: ``multigrid`` (coarse to fine LOBPCG) or ``arpack`` (direct, slow).
        eig_iters: LOBPCG iterations per level of the multigrid solver.
    """

    mpb_weights: tuple[float, ...] = MPB_WEIGHTS
    gpb_weights: tuple[float, ...] = GPB_WEIGHTS
    textons: str = "bsds500-train"
    n_vec: int = spectral.N_VEC
    ic_radius: int = spectral.RADIUS
    ic_rho: float = spectral.RHO
    eigensolver: str = "multigrid"
    eig_iters: int = 20

    def __post_init__(self):
        if len(self.mpb_weights) != 12 or len(self.gpb_weights) != 13:
            raise ValueError("mpb_weights needs 12 values and gpb_weights 13 (12 cues, then sPb)")
        if self.n_vec < 2 or self.ic_radius < 1 or not self.ic_rho > 0 or self.eig_iters < 1:
            raise ValueError("n_vec >= 2, ic_radius >= 1, ic_rho > 0 and eig_iters >= 1 are required")
        if self.textons not in ("bsds500-train", "image") and not Path(self.textons).is_file():
            raise ValueError(
                f"textons must be 'bsds500-train', 'image' or a dictionary file, got {self.textons!r}"
            )
        if self.eigensolver not in ("multigrid", "arpack"):
            raise ValueError(f"eigensolver must be 'multigrid' or 'arpack', got {self.eigensolver!r}")


@dataclass
class GPb:
    """gPb of one image. Shapes: orient (H, W, 8), mpb (H, W) non-max suppressed, spb (H, W, 8)."""

    orient: np.ndarray
    mpb: np.ndarray
    spb: np.ndarray
    eigenvalues: np.ndarray
    timings: dict = field(default_factory=dict)


def _to_project(a: np.ndarray) -> np.ndarray:
    """(8, H, W) in the original's channels -> (H, W, 8) in the project's (o = k + 4 mod 8)."""
    return np.moveaxis(np.roll(a, 4, axis=0), 0, -1)


def gpb(image, params: GPbParams | None = None) -> GPb:
    """gPb of an image (module docstring), with the CPU and wall seconds of each stage in ``timings``.

    Args:
        image: (H, W, 3) or (H, W) uint8, or float in [0, 1], RGB.
        params: :class:`GPbParams` (None: the defaults).
    """
    p = params or GPbParams()
    t: dict = {}
    dictionary = (
        None
        if p.textons == "image"
        else textons.load_dictionary(textons.DICTIONARY if p.textons == "bsds500-train" else p.textons)
    )
    grads = multiscale.gradients(image, dictionary, t)
    with timed(t, "mpb_nonmax"):
        mpb = np.clip(1.2 * multiscale.nonmax_channels(multiscale.combine(grads, p.mpb_weights)), 0, 1)
    with timed(t, "spb_eigensolver"):  # the affinities of every level included
        if p.eigensolver == "arpack":
            lam, vec = eigs.arpack_eigs(spectral.affinities(mpb, p.ic_radius, p.ic_rho), p.n_vec)
        else:
            lam, vec = eigs.multigrid_eigs(mpb, p.n_vec, p.ic_radius, p.ic_rho, iters=p.eig_iters)
    with timed(t, "spb_filters"):
        spb = spectral.spb_from_vectors(lam, vec, mpb.shape)
    orient = multiscale.combine(grads, p.gpb_weights) + p.gpb_weights[12] * spb
    return GPb(_to_project(orient), mpb, _to_project(spb), lam, t)


def normalize_output(levels: np.ndarray) -> np.ndarray:
    """The sigmoid of ``contours2ucm.m``, fitted on BSDS, mapping UCM levels into [0, 1]."""
    b0, b1, off = UCM_SIGMOID
    s = 1.0 / (1.0 + np.exp(-(b0 + b1 * np.asarray(levels, np.float64))))
    return np.clip((s - off) / (1 - off), 0.0, 1.0)


def gpb_ucm2(orient: np.ndarray, watershed: str = "cracks") -> np.ndarray:
    """gPb-owt-ucm: OWT-UCM of the oriented gPb, levels through ``normalize_output``.

    ``watershed`` is passed to ``contours2ucm``: ``cracks`` (the project's layout) or ``lines``
    (the original's 8-connected watershed with lines, :mod:`wnet.postprocess.owt_lines`).

    ``contours2ucm`` takes maps in [0, 1], so gPb is mapped affinely into it and the levels back
    (watershed, arc orientations and mean-strength merging all commute with that map).

    Shape:
        orient: (H, W, 8) (project orientation convention); returns (2H+1, 2W+1) in [0, 1].
    """
    from wnet.postprocess.owt import contours2ucm  # moves to wnet.postprocess.owt with the pipeline

    g = np.asarray(orient, np.float64)
    lo = min(0.0, float(g.min()))
    scale = max(float(g.max()) - lo, 1e-12)
    ucm = contours2ucm((g - lo) / scale, watershed=watershed)
    raw = np.where(ucm > 0, ucm * scale + lo, 0.0)
    return normalize_output(raw)


__all__ = ["GPb", "GPbParams", "gpb", "gpb_ucm2", "normalize_output", "GPB_WEIGHTS", "MPB_WEIGHTS"]
