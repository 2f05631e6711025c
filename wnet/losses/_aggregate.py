"""Sums and averages shared by the losses: over pixels, over (image, class) cells, soft counts.

Two families of reduction:

* pixel losses (``ce``, ``focal``, ...) produce a (B, H, W) map, zero at ignored pixels, and
  average it over the *valid* pixels (or over their weights, as ``torch.nn.CrossEntropyLoss``);
* region losses (``dice``, ``tversky``, ...) produce one value per class, summed over batch and
  pixels (``per_image=False``) or per image (``per_image=True``), and average those values over
  the classes selected by ``classes`` ('present' in the target by default).

Empty selections return a zero that stays connected to the graph, so ``backward()`` works and
gives zero gradients instead of NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._inputs import EPS, Prepared, check_reduction, class_weight_tensor


def safe_pow(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """``x ** exponent`` for x >= 0 with a finite gradient at x = 0 (0 there), also for exponent < 1."""
    positive = x > 0
    return torch.where(
        positive, torch.where(positive, x, torch.ones_like(x)) ** exponent, torch.zeros_like(x)
    )


def reduce_pixels(
    loss: torch.Tensor, valid: torch.Tensor, reduction: str, denominator: torch.Tensor | None = None
) -> torch.Tensor:
    """Reduce a per-pixel loss map that is already zero at ignored pixels.

    Args:
        loss: per-pixel loss.  # (B, H, W)
        valid: pixels that count.  # (B, H, W) bool
        reduction: 'mean' (over valid pixels, or over ``denominator``), 'sum' or 'none'.
        denominator: what 'mean' divides by instead of the number of valid pixels (e.g. the sum
            of the class weights of the valid pixels).
    """
    check_reduction(reduction)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if denominator is None:
        denominator = valid.sum()
    # all pixels ignored: total is 0 and so is the result (torch would give NaN)
    return total / denominator.to(total.dtype).clamp_min(EPS)


@dataclass
class RegionSums:
    """Soft counts per class, over batch and pixels or per image.

    Attributes (shape (K,) with per_image=False, (B, K) with per_image=True):
        tp: sum of p * g.  sum_p: sum of p.  sum_g: sum of g.  sum_p2: sum of p ** 2.
        present: sum_g > 0 (class present in the target).
        ids: class id of each of the K channels.  # (K,)
    """

    tp: torch.Tensor
    sum_p: torch.Tensor
    sum_g: torch.Tensor
    sum_p2: torch.Tensor
    present: torch.Tensor
    ids: torch.Tensor

    @property
    def fp(self) -> torch.Tensor:
        return self.sum_p - self.tp

    @property
    def fn(self) -> torch.Tensor:
        return self.sum_g - self.tp


def region_sums(prep: Prepared, per_image: bool, channels: slice | None = None) -> RegionSums:
    """Soft TP / sums over the region channels (foreground only in binary mode)."""
    ch = prep.region_channels if channels is None else channels
    p = prep.probs[:, ch]  # (B, K, H, W), 0 at ignored pixels
    g = prep.onehot[:, ch]  # (B, K, H, W), 0 at ignored pixels
    dims = (2, 3) if per_image else (0, 2, 3)
    sum_g = g.sum(dims)
    ids = torch.arange(prep.num_classes, device=p.device)[ch]
    return RegionSums(
        tp=(p * g).sum(dims),
        sum_p=p.sum(dims),
        sum_g=sum_g,
        sum_p2=(p * p).sum(dims),
        present=sum_g > 0,
        ids=ids,
    )


def class_mask(present: torch.Tensor, ids: torch.Tensor, classes: str | Sequence[int], num_classes: int):
    """Which (image, class) cells count: 'present' in the target, 'all', or a list of class ids."""
    if isinstance(classes, str):
        if classes == "present":
            return present
        if classes == "all":
            return torch.ones_like(present)
        raise ValueError(f"classes must be 'present', 'all' or a list of class ids, got {classes!r}")
    wanted = torch.as_tensor(list(classes), dtype=torch.long, device=ids.device)
    if wanted.numel() == 0 or (wanted < 0).any() or (wanted >= num_classes).any():
        raise ValueError(
            f"classes must be a non-empty list of ids in [0, {num_classes}), got {list(classes)}"
        )
    return torch.isin(ids, wanted).expand_as(present)


def reduce_classes(
    values: torch.Tensor,
    sums: RegionSums,
    prep: Prepared,
    classes: str | Sequence[int],
    weight,
    reduction: str,
) -> torch.Tensor:
    """Average per-class values over the selected classes (and images), weighted by ``weight``.

    Args:
        values: one loss value per class (per image).  # (K,) or (B, K)
        sums: the :class:`RegionSums` the values came from (for ``present`` and ``ids``).
        prep: the prepared inputs (for the number of classes and the mode).
        classes: 'present' (default of every region loss), 'all', or a list of class ids.
        weight: optional per-class weights: C entries (multiclass), 1 or 2 entries (binary; only
            the foreground entry is used, so a single class makes it a no-op).
        reduction: 'mean' (weighted mean over the selected cells), 'sum', or 'none' (``values``
            unmasked: absent classes are included).
    """
    check_reduction(reduction)
    if reduction == "none":
        return values
    mask = class_mask(sums.present, sums.ids, classes, prep.num_classes).to(values.dtype)
    if weight is not None:
        if prep.mode == "binary":
            w = torch.as_tensor(weight, dtype=values.dtype, device=values.device).flatten()
            if w.numel() not in (1, 2):
                raise ValueError(f"binary weight must have 1 or 2 entries, got {w.numel()}")
            w = w[-1:]
        else:
            w = class_weight_tensor(weight, prep.num_classes, values)
        mask = mask * w[sums.ids]
    total = torch.where(mask > 0, values * mask, torch.zeros_like(values)).sum()
    if reduction == "sum":
        return total
    return total / mask.sum().clamp_min(EPS)


def check_smooth(smooth: float) -> None:
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth}")
