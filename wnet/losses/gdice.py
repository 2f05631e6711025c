"""Generalised Dice losses: one Dice over all classes, each weighted by 1 / (its target volume)^2.

Unlike the per-class region losses, these give one value per batch (or per image): the class
weights ``w_c = 1 / (sum_i g_ic)^2`` are the point, so in binary mode *both* background and
foreground channels are scored (with the foreground alone the weight would cancel out).

Classes absent from the target have an infinite weight. ``classes='present'`` (default) leaves
them out; ``'all'`` or an explicit list gives them the largest weight of the present classes
(as MONAI does), so their false positives still count. Weights depend only on the target and
carry no gradient.
"""

from __future__ import annotations

import torch

from ._aggregate import RegionSums, check_smooth, class_mask, region_sums
from ._inputs import EPS, Prepared, check_reduction, prepare
from ._module import LossModule


def _gd_sums(prep: Prepared, per_image: bool, classes) -> tuple[RegionSums, torch.Tensor]:
    """Soft counts over every channel and the weights w_c.  # each (K,) or (B, K)"""
    s = region_sums(prep, per_image, channels=slice(0, prep.num_classes))
    selected = class_mask(s.present, s.ids, classes, prep.num_classes)
    w_present = torch.where(s.present, 1 / s.sum_g.clamp_min(1) ** 2, torch.zeros_like(s.sum_g))
    w_absent = w_present.amax(-1, keepdim=True).expand_as(w_present)  # largest present weight
    w = torch.where(s.present, w_present, w_absent) * selected.to(w_present.dtype)
    return s, w.detach()


def _reduce_rows(loss: torch.Tensor, scored: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean/sum over images (per_image) of a (B,) or () loss; rows with nothing to score give 0."""
    check_reduction(reduction)
    loss = torch.where(scored, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum" or loss.dim() == 0:
        return loss.sum()
    return loss.sum() / scored.sum().clamp_min(1)


def generalized_dice_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    smooth=1e-5,
    per_image=False,
    classes="present",
    reduction="mean",
):
    """GDL ``1 - (2 sum_c w_c sum_i p g + s) / (sum_c w_c sum_i (p + g) + s)``, ``w_c = 1/(sum_i g)^2``.

    Args:
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.
        smooth: added to numerator and denominator (small: the weighted sums are O(1 / volume)).
        per_image: one GDL per image, averaged over images, instead of one over the batch.
        classes: 'present', 'all' or a list of class ids (see the module docstring).
        reduction: 'mean' / 'sum' over images, or 'none': (B,) with per_image, else a scalar.

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W) for both.

    References:
        Sudre et al., "Generalised Dice Overlap as a Deep Learning Loss Function for Highly
        Unbalanced Segmentations", DLMIA 2017 (GDL, with w_l = 1 / (sum_n r_ln)^2).
    """
    check_smooth(smooth)
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s, w = _gd_sums(prep, per_image, classes)
    num = 2 * (w * s.tp).sum(-1) + smooth
    den = (w * (s.sum_p + s.sum_g)).sum(-1) + smooth
    return _reduce_rows(1 - num / den.clamp_min(EPS), w.sum(-1) > 0, reduction)


def penalty_gdice_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    k=2.5,
    smooth=1e-5,
    per_image=False,
    classes="present",
    reduction="mean",
):
    """Penalty GDL ``1 - pGD``, ``pGD = GD / (1 + k (1 - GD))``, GD the generalised Dice score.

    Written out, ``pGD = (2 TP_w + s) / (2 TP_w + (1 + k)(FP_w + FN_w) + s)`` with the
    w_c-weighted soft counts ``TP_w = sum_c w_c TP_c`` (and likewise FP, FN): false positives
    and negatives cost 1 + k times as much as in GDL. k = 0 gives :func:`generalized_dice_loss`.

    Args:
        k: the penalty (paper: 2.5). Others: as :func:`generalized_dice_loss`.

    References:
        Yang, Kweon & Kim, "Major Vessel Segmentation on X-ray Coronary Angiography using Deep
        Networks with a Novel Penalty Loss Function", MIDL 2019 (pGD).
    """
    check_smooth(smooth)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s, w = _gd_sums(prep, per_image, classes)
    tp = 2 * (w * s.tp).sum(-1)
    errors = (w * (s.fp + s.fn)).sum(-1)
    pgd = (tp + smooth) / (tp + (1 + k) * errors + smooth).clamp_min(EPS)
    return _reduce_rows(1 - pgd, w.sum(-1) > 0, reduction)


class GeneralizedDiceLoss(LossModule):
    function = staticmethod(generalized_dice_loss)


class PenaltyGDiceLoss(LossModule):
    function = staticmethod(penalty_gdice_loss)
