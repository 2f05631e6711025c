"""Distribution-based losses: per-pixel cross-entropy and its reweightings.

Every function here takes ``(logits, target)`` as described in :mod:`wnet.losses._inputs`, builds
a per-pixel loss map (B, H, W) that is zero at ignored pixels, and reduces it with
``reduction``: 'mean' over the valid pixels (for ``weight``-ed CE: over the weights of the valid
pixels, as ``torch.nn.CrossEntropyLoss``), 'sum', or 'none' (the map itself). When every pixel
is ignored, 'mean' returns 0 (torch would return NaN).

In binary mode the two-class form ``(1 - p, p)`` is used (see ``_inputs``), so ``ce`` equals
``torch.nn.BCEWithLogitsLoss`` there. Losses whose minimum is not 0 say so.
"""

from __future__ import annotations

import math

import torch

from ._aggregate import reduce_pixels, safe_pow
from ._distance import boundary_proximity
from ._inputs import Prepared, class_weight_tensor, prepare
from ._module import LossModule


def _weighted_nll(prep: Prepared, w: torch.Tensor | None, reduction: str) -> torch.Tensor:
    nll = -prep.true_log_prob()  # (B, H, W), 0 at ignored pixels
    if w is None:
        return reduce_pixels(nll, prep.valid, reduction)
    w_map = torch.where(prep.valid, w[prep.labels], torch.zeros_like(nll))  # w_{y_i}
    return reduce_pixels(nll * w_map, prep.valid, reduction, denominator=w_map.sum())


def inverse_frequency_weights(prep: Prepared) -> torch.Tensor:
    """w_c = N / (K n_c) from the valid pixels of the batch; 0 for classes with no pixel.  # (K,)"""
    counts = prep.onehot.sum((0, 2, 3))  # (K,) n_c
    total = counts.sum()
    k = counts.numel()
    return torch.where(counts > 0, total / (k * counts.clamp_min(1)), torch.zeros_like(counts))


def cross_entropy(
    logits, target, *, mode="multiclass", from_logits=True, ignore_index=None, weight=None, reduction="mean"
):
    """Cross-entropy ``CE = -(1/N) sum_i log p_{i, y_i}`` (binary: BCE).

    Args:
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.
        weight: optional per-class weights (C entries; binary: 2 entries, background then
            foreground); 'mean' then divides by ``sum_i w_{y_i}`` as torch does.
        reduction: 'mean', 'sum' or 'none'.

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W) for both.
        Returns a scalar, or (B, H, W) with reduction='none'.

    References:
        Long et al., "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015 (the
        per-pixel softmax log-loss); equals ``torch.nn.functional.cross_entropy``.
    """
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    return _weighted_nll(prep, class_weight_tensor(weight, prep.num_classes, prep.probs), reduction)


def weighted_cross_entropy(
    logits, target, *, mode="multiclass", from_logits=True, ignore_index=None, weight=None, reduction="mean"
):
    """Weighted CE ``WCE = -sum_i w_{y_i} log p_{i, y_i} / sum_i w_{y_i}``.

    Args:
        weight: per-class weights w_c (C entries; binary: [background, foreground]). None:
            inverse class frequency of the *batch* target, ``w_c = N / (K n_c)`` over the valid
            pixels (0 for classes absent from the batch). Pass dataset-level weights for
            stable training.
        Others: as :func:`cross_entropy`.

    References:
        Ronneberger et al., "U-Net", MICCAI 2015, eq. 1 (weight map); Long et al. 2015. Equals
        ``torch.nn.functional.cross_entropy(weight=w)``.
    """
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    w = class_weight_tensor(weight, prep.num_classes, prep.probs)
    if w is None:
        w = inverse_frequency_weights(prep)
    return _weighted_nll(prep, w, reduction)


def binary_cross_entropy(
    logits, target, *, mode="binary", from_logits=True, ignore_index=None, pos_weight=None, reduction="mean"
):
    """Binary cross-entropy ``BCE = -(1/N) sum_i [pw y_i log p_i + (1 - y_i) log(1 - p_i)]``.

    Args:
        mode: must be 'binary' (use ``ce`` for multiclass).
        pos_weight: optional scalar pw multiplying the positive term (torch semantics).
        Others: as :func:`cross_entropy`.

    References:
        Equals ``torch.nn.functional.binary_cross_entropy_with_logits`` (from_logits=True) and
        ``binary_cross_entropy`` (from_logits=False, away from p in {0, 1} where torch clamps).
    """
    if mode != "binary":
        raise ValueError(f"bce is binary-only (mode='binary'), got mode={mode!r}; use 'ce' for multiclass")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    y = prep.onehot[:, 1]  # (B, H, W), 0 at ignored
    pos = y * prep.log_probs[:, 1]
    neg = (1 - y) * prep.log_probs[:, 0]  # log_probs is 0 at ignored pixels
    if pos_weight is not None:
        pos = pos * torch.as_tensor(pos_weight, dtype=pos.dtype, device=pos.device)
    return reduce_pixels(-(pos + neg), prep.valid, reduction)


def balanced_bce(
    logits, target, *, mode="binary", from_logits=True, ignore_index=None, beta=None, reduction="mean"
):
    """Class-balanced BCE ``-(1/N) sum_i [beta y_i log p_i + (1 - beta)(1 - y_i) log(1 - p_i)]``.

    Args:
        mode: must be 'binary'.
        beta: weight of the positives; None: ``beta = |Y-| / |Y|``, the fraction of negative
            (valid) pixels in the batch, so the rarer class weighs more.
        Others: as :func:`cross_entropy` (the mean divides by N, not by the weights).

    References:
        Xie & Tu, "Holistically-Nested Edge Detection", ICCV 2015, eq. 2.
    """
    if mode != "binary":
        raise ValueError(f"balanced_bce is binary-only (mode='binary'), got mode={mode!r}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    y = prep.onehot[:, 1]  # (B, H, W)
    if beta is None:
        n = prep.valid.sum().clamp_min(1)
        beta = (prep.onehot[:, 0].sum() / n).detach()  # |Y-| / |Y|
    elif not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    loss = -(beta * y * prep.log_probs[:, 1] + (1 - beta) * (1 - y) * prep.log_probs[:, 0])
    return reduce_pixels(loss, prep.valid, reduction)


def topk_cross_entropy(
    logits, target, *, mode="multiclass", from_logits=True, ignore_index=None, k=10.0, reduction="mean"
):
    """CE averaged over the k% hardest valid pixels of the batch (bootstrapped CE).

    ``L = -(1/M) sum_{i in top-M} log p_{i, y_i}`` with M = ceil(k/100 * N) and the top-M taken by
    CE value.

    Args:
        k: percentage of pixels kept, in (0, 100]; 100 gives plain CE.
        reduction: 'mean' (over the M pixels), 'sum', or 'none' (the CE map with unselected
            pixels zeroed).

    References:
        Wu, Shen & van den Hengel, "Bridging Category-level and Instance-level Semantic Image
        Segmentation", arXiv:1605.06885, 2016 (online bootstrapping of the hardest pixels).
    """
    if not 0 < k <= 100:
        raise ValueError(f"k must be a percentage in (0, 100], got {k}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    nll = -prep.true_log_prob()  # (B, H, W)
    n = int(prep.valid.sum())
    m = max(1, math.ceil(k * n / 100)) if n else 0
    # ignored pixels get -1 < any CE value, so they are picked only if nothing else is left
    ranked = torch.where(prep.valid, nll, torch.full_like(nll, -1.0)).flatten()
    keep = torch.zeros_like(ranked, dtype=torch.bool)
    if m:
        keep[ranked.topk(m).indices] = True
    keep = keep.view_as(nll) & prep.valid
    selected = torch.where(keep, nll, torch.zeros_like(nll))
    return reduce_pixels(selected, keep, reduction)


def focal_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    gamma=2.0,
    alpha=None,
    reduction="mean",
):
    """Focal loss ``FL = -(1/N) sum_i alpha_t (1 - p_t) ** gamma log p_t`` with p_t = p_{i, y_i}.

    Args:
        gamma: focusing parameter (>= 0); 0 with alpha=None gives CE.
        alpha: binary: scalar weight of the positives (alpha_t = alpha for y = 1, 1 - alpha for
            y = 0; the paper uses 0.25). Multiclass: a sequence of C per-class weights. None: 1.
        Others: as :func:`cross_entropy` (the mean divides by N).

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, eq. 5.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    log_pt = prep.true_log_prob()  # (B, H, W), 0 at ignored pixels
    one_minus_pt = -torch.expm1(log_pt)  # 1 - p_t, accurate near p_t = 1
    loss = -safe_pow(one_minus_pt, gamma) * log_pt  # the ** gamma is the whole point
    if alpha is not None:
        a = torch.as_tensor(alpha, dtype=loss.dtype, device=loss.device).flatten()
        if mode == "binary":
            if a.numel() != 1 or not 0 <= float(a) <= 1:
                raise ValueError(f"binary focal alpha must be one number in [0, 1], got {alpha}")
            a = torch.cat([1 - a, a])  # [negatives, positives]
        elif a.numel() != prep.num_classes:
            raise ValueError(
                f"multiclass focal alpha must have C={prep.num_classes} entries, got {a.numel()}"
            )
        loss = loss * a[prep.labels]
    return reduce_pixels(torch.where(prep.valid, loss, torch.zeros_like(loss)), prep.valid, reduction)


def dist_penalized_ce(
    logits, target, *, mode="multiclass", from_logits=True, ignore_index=None, reduction="mean"
):
    """CE weighted by the target's inverted distance map: ``-(1/N) sum_i (1 + Phi_i) log p_{i, y_i}``.

    Phi (see ``_distance.boundary_proximity``) is 1 on pixels touching another label and falls to
    0 at the pixel of each region farthest from its boundary, so weights run from 2 at
    boundaries to 1 deep inside. Computed per image and per class with
    ``scipy.ndimage.distance_transform_edt``, without gradient.

    References:
        Caliva et al., "Distance Map Loss Penalty Term for Semantic Segmentation", MIDL 2019
        (CE weighted by 1 + Phi, Phi the inverted distance transform of the target).
    """
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    phi = boundary_proximity(prep.labels, prep.valid).to(prep.probs)  # (B, H, W)
    loss = -(1 + phi) * prep.true_log_prob()
    return reduce_pixels(loss, prep.valid, reduction)


def conservative_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    lam=5.0,
    base=math.e,
    eps=1e-6,
    reduction="mean",
):
    """Conservative loss ``CL = (1/N) sum_i lam (1 + log_a p_t) ** 2 * log_a(-log_a p_t)``.

    With u = -log_a p_t this is ``lam (1 - u) ** 2 log_a u``: large for wrong pixels, 0 at
    p_t = 1/a, negative above, and unbounded below as p_t -> 1. u is clamped to ``eps``, which
    bounds the minimum at ``lam (1 - eps) ** 2 log_a(eps)`` (about -69.08 with the defaults,
    reached by a perfect prediction) and stops the gradient of pixels already that confident.

    Args:
        lam: lambda, the loss scale (paper: 5). base: a, the logarithm base (paper: e).
        eps: floor of u = -log_a p_t.
        Others: as :func:`cross_entropy`.

    References:
        Zhu et al., "Penalizing Top Performers: Conservative Loss for Semantic Segmentation
        Adaptation", ECCV 2018 (the Conservative Loss definition, sec. 3).
    """
    if base <= 1:
        raise ValueError(f"base must be > 1, got {base}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    u = (-prep.true_log_prob() / math.log(base)).clamp_min(eps)  # (B, H, W) -log_a p_t
    loss = lam * (1 - u) ** 2 * torch.log(u) / math.log(base)
    return reduce_pixels(torch.where(prep.valid, loss, torch.zeros_like(loss)), prep.valid, reduction)


class CELoss(LossModule):
    function = staticmethod(cross_entropy)


class WCELoss(LossModule):
    function = staticmethod(weighted_cross_entropy)


class BCELoss(LossModule):
    function = staticmethod(binary_cross_entropy)
    modes = ("binary",)


class BalancedBCELoss(LossModule):
    function = staticmethod(balanced_bce)
    modes = ("binary",)


class TopKLoss(LossModule):
    function = staticmethod(topk_cross_entropy)


class FocalLoss(LossModule):
    function = staticmethod(focal_loss)


class DistPenalizedCELoss(LossModule):
    function = staticmethod(dist_penalized_ce)


class ConservativeLoss(LossModule):
    function = staticmethod(conservative_loss)
