"""mPb: brightness, colour and texture gradients at three scales, smoothed (``multiscalePb.m``).

Channels and radii as ``mex_pb_parts_final_selected.cc``: brightness L* at r = 3, 5, 10 px
(bin smoothing sigma 0.1 x 25 bins), colour a* and b* at r = 5, 10, 20 (sigma 0.05 x 25),
texture (64 textons, no bin smoothing) at r = 5, 10, 20. Each oriented gradient is smoothed by
the parabola fit with ra = its radius (``fitparab(z, r, r/4, gtheta(o))``).

Orientations here are the original's channels k = 0..7 (row/column frame, see
:mod:`wnet.postprocess.gpb.smoothing`); :func:`wnet.postprocess.gpb.gpb` converts them to the
project's convention at the end.
"""

from __future__ import annotations

import numpy as np

from wnet.postprocess.gpb import cues, textons
from wnet.postprocess.gpb.gradients import hist_gradient
from wnet.postprocess.gpb.smoothing import fit_parabola, nonmax_oriented
from wnet.postprocess.gpb.timing import timed

# (name, radii, bin smoothing sigma in bins) in the order of the weight vectors below
CHANNELS = (
    ("bg", (3, 5, 10), 0.1 * cues.N_BINS),
    ("cga", (5, 10, 20), 0.05 * cues.N_BINS),
    ("cgb", (5, 10, 20), 0.05 * cues.N_BINS),
    ("tg", (5, 10, 20), None),
)
# gtheta of multiScalePb.m: the fit direction of channel k, pi/2 - k pi/8 (mod pi), to 4 decimals
GTHETA = (1.5708, 1.1781, 0.7854, 0.3927, 0.0, 2.7489, 2.3562, 1.9635)
N_ORI = 8


def gradients(image, texton_dict: np.ndarray | None, timings: dict | None = None) -> dict[str, np.ndarray]:
    """The 12 smoothed oriented gradients, keyed by channel name (textons: see ``texton_map``).

    Shape:
        image: (H, W, 3) uint8 or float in [0, 1]; returns {name: (3, 8, H, W) float64}.
    """
    with timed(timings, "cues"):
        grey, bins = cues.image_channels(image)
    with timed(timings, "textons"):
        labels = {"bg": bins[0], "cga": bins[1], "cgb": bins[2]}
        labels["tg"] = textons.texton_map(grey, cues.BORDER, texton_dict)
    out = {}
    for name, radii, sigma in CHANNELS:
        with timed(timings, f"gradient_{name}"):
            n_bins = (64 if texton_dict is None else len(texton_dict)) if name == "tg" else cues.N_BINS
            raw = hist_gradient(labels[name], n_bins, radii, sigma, cues.BORDER, N_ORI)
        with timed(timings, "smoothing"):
            out[name] = np.stack(
                [[fit_parabola(raw[i, k], r, GTHETA[k]) for k in range(N_ORI)] for i, r in enumerate(radii)]
            )
    return out


def combine(grads: dict[str, np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    """sum_i w_i G_i over the 12 (channel, scale) maps in CHANNELS order. Shape: (8, H, W)."""
    stack = np.concatenate([grads[name] for name, _, _ in CHANNELS])  # (12, 8, H, W)
    return np.tensordot(np.asarray(weights[:12], np.float64), stack, axes=1)


def nonmax_channels(pb: np.ndarray, tol: float = np.pi / 8) -> np.ndarray:
    """Max over orientations, non-max suppressed across the winning one (``nonmax_channels``).

    Shape: pb (8, H, W); returns (H, W).
    """
    k = pb.argmax(0)
    m = np.maximum(pb.max(0), 0.0)
    return nonmax_oriented(m, k / pb.shape[0] * np.pi, tol)
