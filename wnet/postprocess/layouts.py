"""The array layouts the post-processing accepts: images and one image's soft class maps.

The CRF (:mod:`wnet.postprocess.crf`), the region hierarchy (:mod:`wnet.postprocess.hierarchy`) and the contour signal of
OWT-UCM (:mod:`wnet.postprocess.contours`) take images as numpy arrays or torch tensors, grey or RGB, uint8 or
float, and soft maps as (K, H, W) numpy arrays or tensors. These functions turn them into the one
layout each consumer needs and refuse anything else with a message naming what was expected.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_image_tensor", "as_probs", "as_uint8_image"]


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """uint8 as is, floats in [0, 1] scaled by 255, other integers in 0..255 cast; anything else refused."""
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if a.size and (not np.isfinite(a).all() or a.min() < -1e-3 or a.max() > 1 + 1e-3):
            raise ValueError(
                f"float image must have values in [0, 1], got [{a.min():.3g}, {a.max():.3g}]; pass uint8 for 0-255 images"
            )
        return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"integer image must have values in 0..255, got [{a.min()}, {a.max()}]")
        return a.astype(np.uint8)
    raise ValueError(f"image dtype must be uint8, integer or float, got {a.dtype}")


def as_uint8_image(image, size: tuple[int, int] | None = None) -> np.ndarray:
    """Any accepted image layout as the C-contiguous (H, W, 3) uint8 RGB array pydensecrf wants.

    Accepted: numpy arrays (H, W), (H, W, 1), (H, W, 3) and torch tensors (C, H, W) with C in
    {1, 3}, or (H, W); uint8 (0-255), other integers in 0..255, or floats in [0, 1]. Grey images
    are replicated to three channels.

    Args:
        image: the image.
        size: (H, W) it must have, e.g. that of the soft maps; ``None`` skips the check.

    Shape:
        returns (H, W, 3) uint8.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 3 and t.shape[0] in (1, 3):
            t = t.permute(1, 2, 0)
        elif t.dim() != 2:
            raise ValueError(
                f"image tensor must be (C, H, W) with C in (1, 3) or (H, W), got {tuple(t.shape)}"
            )
        a = t.numpy()
    else:
        a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"image array must be (H, W), (H, W, 1) or (H, W, 3), got {a.shape}")
    if size is not None and tuple(a.shape[:2]) != tuple(size):
        raise ValueError(f"image has size {a.shape[:2]} but the soft maps have {tuple(size)}")
    a = _to_uint8(a)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def as_image_tensor(images: torch.Tensor) -> torch.Tensor:
    """A (B, C, H, W) batch as float RGB on the 0-255 scale (the scale of ``srgb_bilateral``).

    uint8 batches are taken as 0-255, float batches must lie in [0, 1]; C = 1 is replicated.

    Shape:
        images: (B, C, H, W) with C in {1, 3}; returns (B, 3, H, W) float32.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (B, C, H, W) with C in (1, 3), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        x = images.float()
    elif images.is_floating_point():
        lo, hi = images.min().item(), images.max().item()
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"float images must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; pass uint8 for 0-255"
            )
        x = images.float().clamp(0, 1) * 255.0
    else:
        raise ValueError(f"images must be uint8 or float, got {images.dtype}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def as_probs(probs) -> np.ndarray:
    """One image's soft class maps (numpy or torch) as a C-contiguous float32 array, checked.

    Shape:
        probs: (K, H, W); returns (K, H, W) float32.

    Raises:
        ValueError: another shape, an empty axis, NaN/inf or a negative value.
    """
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs)
    if probs.ndim != 3 or 0 in probs.shape:
        raise ValueError(f"soft maps must have shape (K, H, W), got {probs.shape}")
    if not np.isfinite(probs).all() or probs.min() < 0:
        raise ValueError("soft maps must be finite and non-negative (soft class maps)")
    return np.ascontiguousarray(probs, dtype=np.float32)
