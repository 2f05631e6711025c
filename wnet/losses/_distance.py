"""Distance maps of label masks, per image and per class, for the distance-weighted losses.

All maps come from ``scipy.ndimage.distance_transform_edt`` on the (B, K, H, W) one-hot masks,
one (image, class) slice at a time: the channel axis is the *class* axis, never a spatial one.
They are computed on the CPU without gradient (they depend only on labels or on a thresholded
prediction) and returned on the input's device and dtype. Distances are in pixels.

A class that is absent from an image, or that fills it, has no boundary: its map is all zeros.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt


def _edt(mask: np.ndarray) -> np.ndarray:
    """Distance from each True pixel to the nearest False pixel; 0 on False pixels.

    ``distance_transform_edt`` of an all-True mask measures to a virtual pixel beyond the corner,
    so a mask without any False pixel gives zeros here instead.
    """
    if mask.all() or not mask.any():
        return np.zeros(mask.shape, dtype=np.float64)
    return distance_transform_edt(mask)


def _per_slice(masks: torch.Tensor, fn) -> torch.Tensor:
    """Apply ``fn(bool (H, W) array) -> float (H, W) array`` to every (image, class) slice."""
    if masks.dim() != 4:
        raise ValueError(f"distance maps expect masks (B, K, H, W), got {tuple(masks.shape)}")
    m = masks.detach().to("cpu", torch.bool).numpy()
    out = np.zeros(m.shape, dtype=np.float64)  # (B, K, H, W)
    for b in range(m.shape[0]):
        for k in range(m.shape[1]):
            if m[b, k].any() and not m[b, k].all():
                out[b, k] = fn(m[b, k])
    return torch.from_numpy(out)


def signed_distance(masks: torch.Tensor) -> torch.Tensor:
    """Signed distance map phi_G of each class mask (Kervadec et al. 2019, sec. 2).

    Outside the class, phi is the distance to the nearest class pixel (>= 1); inside, it is
    ``-(d - 1)`` with d the distance to the nearest non-class pixel, so pixels on the inner
    boundary get 0 and deeper pixels are more negative.

    Args:
        masks: class masks (one-hot target), 0 at ignored pixels.  # (B, K, H, W)

    Shape:
        returns (B, K, H, W) float64 on the CPU; the caller moves it.
    """

    def phi(pos: np.ndarray) -> np.ndarray:
        neg = ~pos
        return _edt(neg) * neg - (_edt(pos) - 1.0) * pos

    return _per_slice(masks, phi)


def boundary_distance(masks: torch.Tensor) -> torch.Tensor:
    """Unsigned distance of every pixel to the boundary of each class mask (Karimi & Salcudean 2019).

    ``edt(mask) + edt(~mask)``: inside pixels get their distance to the nearest outside pixel,
    outside pixels their distance to the nearest inside pixel, so every pixel scores >= 1.

    Args:
        masks: class masks.  # (B, K, H, W) bool or {0, 1}
    """
    return _per_slice(masks, lambda pos: _edt(pos) + _edt(~pos))


def boundary_proximity(labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Phi in [0, 1]: 1 on the pixels next to another label (or to ignored pixels), 0 deepest inside.

    For a pixel of class c in image b, d is its distance to the nearest pixel that is not class c;
    ``Phi = (d_max - d) / (d_max - 1)`` with d_max the largest d of class c in that image (Phi = 1
    where d_max = 1, i.e. structures one pixel thick). This is the inverted, normalised distance
    transform of Caliva et al. (2019); a class filling the whole image gets 0.

    Args:
        labels: class ids, any value at ignored pixels.  # (B, H, W) int64
        valid: pixels that count.  # (B, H, W) bool

    Shape:
        returns (B, H, W) float64 on the CPU, 0 at ignored pixels.
    """
    lab = labels.detach().cpu().numpy()
    ok = valid.detach().cpu().numpy()
    out = np.zeros(lab.shape, dtype=np.float64)
    for b in range(lab.shape[0]):
        for c in np.unique(lab[b][ok[b]]):
            pos = ok[b] & (lab[b] == c)
            if pos.all():
                continue
            d = _edt(pos)[pos]
            d_max = d.max()
            out[b][pos] = 1.0 if d_max <= 1 else (d_max - d) / (d_max - 1)
    return torch.from_numpy(out)
