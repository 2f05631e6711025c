"""Region-based losses: overlap scores between soft predictions and one-hot targets.

Shared conventions (all of them, see ``_aggregate``):

* soft counts per class c: ``TP = sum p g``, ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g`` over
  valid pixels, summed over batch and pixels (``per_image=False``) or per image (``True``);
* the per-class losses are averaged over ``classes``: 'present' in the target (default), 'all',
  or a list of class ids, optionally weighted by ``weight`` (C per-class weights);
* binary mode scores the foreground channel only (the segmentation_models_pytorch
  convention), so an all-background target gives 0 with classes='present' (nothing to score)
  and penalises false positives with classes='all';
* ``smooth`` is added to numerator and denominator; denominators are floored at 1e-7 so
  smooth=0 cannot divide by 0;
* reduction 'mean' / 'sum' over the selected cells, 'none' returns all of them, (K,) or (B, K).

All of them are 0 for a perfect prediction.
"""

from __future__ import annotations

import torch

from ._aggregate import check_smooth, reduce_classes, region_sums, safe_pow
from ._inputs import EPS, prepare
from ._module import LossModule

_COMMON = """
    Args:
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.
        smooth: added to numerator and denominator of each ratio.
        per_image: compute the counts per image instead of over the whole batch.
        classes: 'present' (classes in the target), 'all', or a list of class ids.
        weight: optional per-class weights for the average over classes.
        reduction: 'mean', 'sum' or 'none'.

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W) for both.
        Returns a scalar, or (K,) / (B, K) per-class values with reduction='none'.
"""


def _tversky_index(s, alpha: float, beta: float, smooth: float) -> torch.Tensor:
    return (s.tp + smooth) / (s.tp + alpha * s.fp + beta * s.fn + smooth).clamp_min(EPS)


def dice_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    smooth=0.0,
    squared=False,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """Soft Dice loss ``1 - (2 sum p g + s) / (sum p + sum g + s)`` per class (Sorensen-Dice).

    The default is the form of the segmentation-loss survey (Jadon 2020, eq. 6) and of
    segmentation_models_pytorch's ``DiceLoss`` (smooth 0, counts over batch and pixels, classes
    absent from the target left out), so ``get_loss("dice")`` gives the number those give.
    ``squared=True`` is the V-Net form ``sum p^2 + sum g^2`` in the denominator. The loss is
    ``1 - D`` (never ``-D``), so its minimum is 0.

    References:
        Jadon, "A survey of loss functions for semantic segmentation", CIBCB 2020, eq. 6;
        Milletari, Navab & Ahmadi, "V-Net", 3DV 2016, eq. 1 (``squared=True``).
    """
    check_smooth(smooth)
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s = region_sums(prep, per_image)
    denom = (s.sum_p2 + s.sum_g) if squared else (s.sum_p + s.sum_g)  # g^2 = g for a one-hot g
    dice = (2 * s.tp + smooth) / (denom + smooth).clamp_min(EPS)
    return reduce_classes(1 - dice, s, prep, classes, weight, reduction)


def iou_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    smooth=1.0,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """Soft Jaccard / IoU loss ``1 - (sum p g + s) / (sum p + sum g - sum p g + s)`` per class.

    Computed from probabilities, not from an argmax, so it is differentiable.

    References:
        Rahman & Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for Image
        Segmentation", ISVC 2016.
    """
    check_smooth(smooth)
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s = region_sums(prep, per_image)
    iou = (s.tp + smooth) / (s.sum_p + s.sum_g - s.tp + smooth).clamp_min(EPS)
    return reduce_classes(1 - iou, s, prep, classes, weight, reduction)


def tversky_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    alpha=0.3,
    beta=0.7,
    smooth=1.0,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """Tversky loss ``1 - (TP + s) / (TP + alpha FP + beta FN + s)`` per class.

    ``alpha`` weighs false positives and ``beta`` false negatives (alpha = beta = 0.5 is Dice,
    alpha = beta = 1 is IoU); the defaults 0.3 / 0.7 favour recall, as in the paper.

    References:
        Salehi, Erdogmus & Gholipour, "Tversky loss function for image segmentation using 3D
        fully convolutional deep networks", MLMI 2017.
    """
    check_smooth(smooth)
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s = region_sums(prep, per_image)
    return reduce_classes(1 - _tversky_index(s, alpha, beta, smooth), s, prep, classes, weight, reduction)


def focal_tversky_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    alpha=0.3,
    beta=0.7,
    gamma=4 / 3,
    smooth=1.0,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """Focal Tversky loss ``(1 - TI) ** (1 / gamma)`` per class, TI the Tversky index.

    ``alpha`` weighs FP and ``beta`` FN as in :func:`tversky_loss` (the paper writes the FN
    weight first: its alpha = 0.7 is our beta = 0.7). gamma in [1, 3]; the paper uses 4/3.

    References:
        Abraham & Khan, "A Novel Focal Tversky Loss Function with Improved Attention U-Net for
        Lesion Segmentation", ISBI 2019.
    """
    check_smooth(smooth)
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s = region_sums(prep, per_image)
    loss = safe_pow(1 - _tversky_index(s, alpha, beta, smooth), 1 / gamma)  # finite gradient at TI = 1
    return reduce_classes(loss, s, prep, classes, weight, reduction)


def asymmetric_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    beta=1.5,
    smooth=1.0,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """Asymmetric similarity (F-beta) loss ``1 - (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)``.

    Dividing by 1 + b^2 shows it is the Tversky loss with FN weight ``b^2 / (1 + b^2)`` and FP
    weight ``1 / (1 + b^2)``; b > 1 favours recall (the paper's best: 1.5). ``beta`` here is
    the F-beta b, not the Tversky beta.

    References:
        Hashemi et al., "Asymmetric Loss Functions and Deep Densely-Connected Networks for Highly
        Imbalanced Medical Image Segmentation", IEEE Access 2018 (F-beta loss, sec. III).
    """
    check_smooth(smooth)
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s = region_sums(prep, per_image)
    b2 = beta**2
    ti = _tversky_index(s, 1 / (1 + b2), b2 / (1 + b2), smooth)
    return reduce_classes(1 - ti, s, prep, classes, weight, reduction)


def sensitivity_specificity_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    r=0.05,
    smooth=1.0,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """``r sum (g - p)^2 g / (sum g + s) + (1 - r) sum (g - p)^2 (1 - g) / (sum (1 - g) + s)``.

    Mean squared error on the class pixels (sensitivity term) and on the others (specificity
    term), mixed by r; the paper's r = 0.05 stresses specificity. ``smooth`` is added to the
    denominators only, so a perfect prediction gives exactly 0.

    References:
        Brosch et al., "Deep Convolutional Encoder Networks for Multiple Sclerosis Lesion
        Segmentation", MICCAI 2015 (the sensitivity-specificity objective).
    """
    check_smooth(smooth)
    if not 0 <= r <= 1:
        raise ValueError(f"r must be in [0, 1], got {r}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    ch = prep.region_channels
    p, g = prep.probs[:, ch], prep.onehot[:, ch]  # (B, K, H, W), 0 at ignored pixels
    neg = prep.valid.unsqueeze(1).to(g.dtype) - g  # (1 - g) on valid pixels only
    dims = (2, 3) if per_image else (0, 2, 3)
    sq = (g - p) ** 2
    s = region_sums(prep, per_image)
    sens = (sq * g).sum(dims) / (g.sum(dims) + smooth).clamp_min(EPS)
    spec = (sq * neg).sum(dims) / (neg.sum(dims) + smooth).clamp_min(EPS)
    return reduce_classes(r * sens + (1 - r) * spec, s, prep, classes, weight, reduction)


for _f in (
    dice_loss,
    iou_loss,
    tversky_loss,
    focal_tversky_loss,
    asymmetric_loss,
    sensitivity_specificity_loss,
):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ += _COMMON
jaccard_loss = iou_loss


class DiceLoss(LossModule):
    function = staticmethod(dice_loss)


class IoULoss(LossModule):
    function = staticmethod(iou_loss)


JaccardLoss = IoULoss


class TverskyLoss(LossModule):
    function = staticmethod(tversky_loss)


class FocalTverskyLoss(LossModule):
    function = staticmethod(focal_tversky_loss)


class AsymmetricLoss(LossModule):
    function = staticmethod(asymmetric_loss)


class SensitivitySpecificityLoss(LossModule):
    function = staticmethod(sensitivity_specificity_loss)
