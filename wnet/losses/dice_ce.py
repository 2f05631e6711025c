"""Published mixtures of a Dice term and a cross-entropy term, each with its own reweighting.

Both follow the region conventions of :mod:`wnet.losses.region` for the Dice part (Sorensen
form ``sum p + sum g``, classes 'present' by default, foreground only in binary mode) and average
the cross-entropy part over valid pixels. ``reduction`` is 'mean' or 'sum' (the two parts have
different shapes, so there is no 'none').
"""

from __future__ import annotations

import torch

from ._aggregate import check_smooth, reduce_classes, reduce_pixels, region_sums, safe_pow
from ._inputs import EPS, class_weight_tensor, prepare
from ._module import LossModule


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"this loss mixes two terms; reduction must be 'mean' or 'sum', got {reduction!r}")


def _soft_dice(prep, per_image: bool, smooth: float):
    s = region_sums(prep, per_image)
    return s, (2 * s.tp + smooth) / (s.sum_p + s.sum_g + smooth).clamp_min(EPS)


def exp_log_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    w_dice=0.8,
    w_cross=0.2,
    gamma_dice=0.3,
    gamma_cross=0.3,
    smooth=1.0,
    weight=None,
    per_image=False,
    classes="present",
    reduction="mean",
):
    """Exponential logarithmic loss ``w_dice L_Dice + w_cross L_Cross``.

    ``L_Dice = E_c[(-ln Dice_c) ** gamma_dice]`` over the selected classes, and
    ``L_Cross = E_x[w_l (-ln p_l(x)) ** gamma_cross]`` over valid pixels with l the label of x and
    ``w_l = (sum_k f_k / f_l) ** 0.5``, f_k the pixel count of label k. Both are 0 for a perfect
    prediction. The exponents < 1 have an infinite slope at 0; the powers are taken so that the
    gradient there is 0 instead.

    Args:
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.
        w_dice, w_cross: weights of the two terms (paper: 0.8, 0.2).
        gamma_dice, gamma_cross: exponents (paper: 0.3, 0.3).
        smooth: Dice smoothing (paper: 1).
        weight: label weights w_l (C entries; binary: 2). None: computed from the batch target
            as above (the paper uses training-set frequencies: pass them here).
        per_image, classes: for the Dice term, as in :mod:`wnet.losses.region`.
        reduction: 'mean' or 'sum'.

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W). Returns a scalar.

    References:
        Wong et al., "3D Segmentation with Exponential Logarithmic Loss for Highly Unbalanced
        Object Sizes", MICCAI 2018 (L_Exp = w_Dice L_Dice + w_Cross L_Cross).
    """
    _check_reduction(reduction)
    check_smooth(smooth)
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    s, dice = _soft_dice(prep, per_image, smooth)
    l_dice = reduce_classes(
        safe_pow(-torch.log(dice.clamp_min(EPS)), gamma_dice), s, prep, classes, None, reduction
    )
    w = class_weight_tensor(weight, prep.num_classes, prep.probs)
    if w is None:
        f = prep.onehot.sum((0, 2, 3))  # (K,) label counts
        w = torch.where(f > 0, (f.sum() / f.clamp_min(1)) ** 0.5, torch.zeros_like(f))
    cross = w[prep.labels] * safe_pow(-prep.true_log_prob(), gamma_cross)  # (B, H, W)
    l_cross = reduce_pixels(torch.where(prep.valid, cross, torch.zeros_like(cross)), prep.valid, reduction)
    return w_dice * l_dice + w_cross * l_cross


def combo_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    alpha=0.5,
    beta=0.5,
    smooth=1.0,
    per_image=False,
    classes="present",
    reduction="mean",
):
    """Combo loss ``alpha L_mCE + (1 - alpha)(1 - DSC)``.

    ``L_mCE = -(1/N) sum_i sum_c [beta g log p + (1 - beta)(1 - g) log(1 - p)]`` over the region
    channels (binary: the foreground channel, which is the paper's binary form; multiclass:
    one-vs-rest over the C softmax channels), and DSC the mean soft Dice over the selected
    classes. In the paper's notation alpha weighs the modified CE against Dice and beta trades
    false negatives (beta > 0.5 penalises them more) against false positives (beta < 0.5).

    The paper writes ``... - (1 - alpha) DSC``; we use ``1 - DSC`` so that a perfect prediction
    scores 0. The two differ by the constant 1 - alpha and have identical gradients.

    Args:
        alpha: weight of the modified CE (1 - alpha goes to the Dice term).
        beta: weight of the positive term inside the modified CE.
        smooth, per_image, classes: for the Dice term. reduction: 'mean' or 'sum'.
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W). Returns a scalar.

    References:
        Taghanaki et al., "Combo loss: Handling input and output imbalance in multi-organ
        segmentation", Computerized Medical Imaging and Graphics 75, 2019.
    """
    _check_reduction(reduction)
    check_smooth(smooth)
    if not (0 <= alpha <= 1 and 0 <= beta <= 1):
        raise ValueError(f"alpha and beta must be in [0, 1], got alpha={alpha}, beta={beta}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    ch = prep.region_channels
    g = prep.onehot[:, ch]  # (B, K, H, W)
    if prep.mode == "binary":
        log_p, log_1mp = prep.log_probs[:, 1:2], prep.log_probs[:, 0:1]  # exact log(1 - sigmoid)
    else:
        log_p = prep.log_probs
        log_1mp = (1 - prep.probs).clamp_min(EPS).log()  # clamp before log: no inf, no 0 * inf
    terms = -(beta * g * log_p + (1 - beta) * (1 - g) * log_1mp).sum(1)  # (B, H, W)
    mce = reduce_pixels(torch.where(prep.valid, terms, torch.zeros_like(terms)), prep.valid, reduction)
    s, dice = _soft_dice(prep, per_image, smooth)
    return alpha * mce + (1 - alpha) * reduce_classes(1 - dice, s, prep, classes, None, reduction)


class ExpLogLoss(LossModule):
    function = staticmethod(exp_log_loss)


class ComboLoss(LossModule):
    function = staticmethod(combo_loss)
