"""The image channels of gPb: grey level, CIELAB brightness and colour, quantised into bins.

Every constant here is the BSR release's (``mex_pb_parts_final_selected.cc`` and ``lib_image.cc``
of the BSDS500 code, Arbelaez, Maire, Fowlkes & Malik 2011): the image (RGB in [0, 1]) is
mirrored by a 30 px border, its grey level is ``0.29894 r + 0.58704 g + 0.11402 b``, the RGB
values are gamma-corrected with exponent 2.5 before the sRGB -> XYZ (D65) -> L*a*b* conversion,
L* is divided by 100 and a*, b* are mapped from [-73, 95] to [0, 1] (``lab_normalize``), and
each channel is quantised into 25 bins (``quantize_values``: ``floor(v * 25)``, 25 -> 24).
"""

from __future__ import annotations

import numpy as np

BORDER = 30  # mirrored border (px) around the image while computing the cues, as the original
N_BINS = 25  # histogram bins of L*, a*, b*
GAMMA = 2.5  # rgb_gamma_correct exponent applied before the Lab conversion
AB_RANGE = (-73.0, 95.0)  # lab_normalize's range of a* and b*
GREY = np.array([0.29894, 0.58704, 0.11402])  # lib_image::grayscale
RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
WHITE = np.array([0.950456, 1.0, 1.088754])  # D65 reference white of xyz_to_lab


def as_rgb(image) -> np.ndarray:
    """An image as float64 (H, W, 3) RGB in [0, 1]: uint8 is divided by 255, grey is replicated.

    Shape:
        image: (H, W), (H, W, 1) or (H, W, 3); uint8, or float in [0, 1]; returns (H, W, 3).
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3) or min(a.shape[:2]) < 2:
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3) with H, W >= 2, got {a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float64) / 255.0
    elif a.dtype.kind == "f":
        a = a.astype(np.float64)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError("a float image must lie in [0, 1] (pass uint8 for 0-255 data)")
    else:
        raise ValueError(f"image dtype must be uint8 or float, got {a.dtype}")
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def mirror(a: np.ndarray, border: int = BORDER) -> np.ndarray:
    """Mirror ``border`` px around the first two axes, edge pixel repeated (``border_mirror_2D``).

    An image smaller than the border is mirrored repeatedly (numpy's symmetric padding).
    """
    pad = [(border, border), (border, border)] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, mode="symmetric")


def grey_level(rgb: np.ndarray) -> np.ndarray:
    """Grey level of an RGB image in [0, 1]. Shape: (H, W, 3) -> (H, W)."""
    return rgb @ GREY


def lab_normalized(rgb: np.ndarray) -> np.ndarray:
    """Gamma-corrected CIELAB, each channel mapped to [0, 1] as ``lab_normalize`` does.

    Shape:
        rgb: (H, W, 3) in [0, 1]; returns (H, W, 3) (L, a, b) in [0, 1].
    """
    xyz = (rgb**GAMMA) @ RGB_TO_XYZ.T / WHITE
    t = 0.008856
    f = np.where(xyz > t, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    y = xyz[..., 1]
    lum = np.where(y > t, 116.0 * np.cbrt(y) - 16.0, 903.3 * y)
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    lo, hi = AB_RANGE
    out = np.stack([lum / 100.0, (a - lo) / (hi - lo), (b - lo) / (hi - lo)], -1)
    return np.clip(out, 0.0, 1.0)


def quantize(values: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Bin index ``floor(v * n_bins)`` of values in [0, 1], the top value in the last bin.

    Shape: any -> same, int64 in [0, n_bins).
    """
    return np.minimum(np.floor(values * n_bins).astype(np.int64), n_bins - 1)


def image_channels(image) -> tuple[np.ndarray, np.ndarray]:
    """The grey level and the quantised L*, a*, b* of an image, on the mirrored canvas.

    Returns:
        grey (H + 2B, W + 2B) float64 and bins (3, H + 2B, W + 2B) int64 (L, a, b), B = BORDER.
    """
    rgb = mirror(as_rgb(image))
    return grey_level(rgb), np.moveaxis(quantize(lab_normalized(rgb)), -1, 0)
