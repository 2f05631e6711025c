"""Positional kappa: how much a segmentation follows pixel position instead of image content.

A convolutional net can read absolute position from its zero padding (Islam et al. 2020; Kayhan &
van Gemert 2020). The soft N-Cut rewards compact regions, and when K is large for the crop size a
fixed, content-blind tiling of the image into K cells scores a low N-Cut. A W-Net stuck in that
solution gives every image the same label map near its borders, and at full resolution the
interior, far from any border, falls into a few classes.

The diagnostic compares label maps of *different* images pixel by pixel. Their agreement, corrected
for chance with Cohen's kappa (agreement expected from the two maps' class frequencies), is about
0 for a segmentation that follows content and 1 for a pure tiling.

References:
    Cohen, "A coefficient of agreement for nominal scales", Educ. Psychol. Meas. 20(1), 1960.
    Islam, Jia & Bruce, "How much position information do convolutional neural networks
    encode?", ICLR 2020.
"""

from __future__ import annotations

import itertools
import math

import torch

TILING_KAPPA = 0.5  # kappa above this: most of a label map is explained by position alone


def _frequencies(m: torch.Tensor, k: int) -> torch.Tensor:
    """Class frequencies of a label map, (k,) float64."""
    return torch.bincount(m.flatten(), minlength=k).double() / m.numel()


def _kappa(a: torch.Tensor, b: torch.Tensor, pa: torch.Tensor, pb: torch.Tensor) -> float:
    """Cohen's kappa between two same-shape label maps with class frequencies ``pa``, ``pb``."""
    agree = (a == b).double().mean().item()
    chance = float((pa * pb).sum())
    if chance >= 1.0:  # both maps are one and the same single class: agreement says nothing
        return float("nan")
    return (agree - chance) / (1.0 - chance)


def positional_kappa(labels: list[torch.Tensor], k: int, max_images: int = 16) -> tuple[float, int]:
    """Mean Cohen's kappa over pairs of different images' label maps, position by position.

    Maps of different sizes are cut to their common top-left corner, so that the top and left
    image borders line up (a tiling is laid out from the borders).

    Args:
        labels: integer label maps, one per image, each (H_i, W_i) with labels in [0, k).
        k: number of classes.
        max_images: use only the first ``max_images`` maps (pairs grow as n^2).

    Returns:
        (mean kappa over the pairs that have one, number of such pairs); (nan, 0) with fewer than
        two maps.

    Shape:
        labels[i]: (H_i, W_i).
    """
    maps = labels[:max_images]
    if len(maps) < 2:
        return float("nan"), 0
    h = min(m.shape[-2] for m in maps)
    w = min(m.shape[-1] for m in maps)
    maps = [m[..., :h, :w].long() for m in maps]  # (h, w) each
    freqs = [_frequencies(m, k) for m in maps]  # once per map, not once per pair
    pairs = itertools.combinations(range(len(maps)), 2)
    values = [_kappa(maps[i], maps[j], freqs[i], freqs[j]) for i, j in pairs]
    values = [v for v in values if v == v]  # drop nan pairs
    if not values:
        return float("nan"), 0
    return sum(values) / len(values), len(values)


def looks_tiled(kappa: float, labels_kappa: float = float("nan")) -> bool:
    """A segmentation more positional than chance layouts allow: ``kappa`` above :data:`TILING_KAPPA`
    and above the ground truth's own kappa on the same images (street scenes share a layout, so
    their labels score well above 0). False when ``kappa`` is nan."""
    limit = TILING_KAPPA if math.isnan(labels_kappa) else max(TILING_KAPPA, labels_kappa)
    return kappa > limit
