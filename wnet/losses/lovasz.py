"""Lovasz-Softmax and Lovasz hinge: the Lovasz extension of the Jaccard (IoU) loss.

For one class with ground truth g and pixel errors m, sorting the errors in decreasing order
(pi) and taking ``grad_i = Delta_J(pi_1..i) - Delta_J(pi_1..i-1)`` (the Jaccard loss of the
top-i errors set, minus that of the top-(i-1)) gives the tight convex surrogate
``loss = sum_i m_pi(i) grad_i`` (Berman et al. 2018, Alg. 1). Ignored pixels are
dropped before sorting, so they receive exactly zero gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._aggregate import reduce_classes, region_sums
from ._inputs import check_reduction, prepare
from ._module import LossModule


def lovasz_grad(g_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at sorted ground truth.

    Args:
        g_sorted: 0/1 ground truth ordered by decreasing error.  # (..., N)

    Shape:
        returns (..., N); the union is >= 1 at every position, so no division by 0.
    """
    gts = g_sorted.sum(-1, keepdim=True)
    intersection = gts - g_sorted.cumsum(-1)
    union = gts + (1 - g_sorted).cumsum(-1)
    jaccard = 1 - intersection / union  # Delta_J of the top-i set
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _lovasz_flat(errors: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """sum_i m_sorted_i * grad_i per row.  errors, g: (K, N) -> (K,)"""
    if errors.shape[-1] == 0:
        return errors.sum(-1)
    errors_sorted, perm = errors.sort(dim=-1, descending=True)
    g_sorted = g.gather(-1, perm)
    return (errors_sorted * lovasz_grad(g_sorted).detach()).sum(-1)


def lovasz_softmax(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """Lovasz-Softmax loss: per class, the Lovasz extension of 1 - IoU at errors ``|g - p|``.

    p is the softmax probability (sigmoid in binary mode, foreground channel only, i.e. the
    Lovasz-sigmoid); the probabilities, not the raw logits, are sorted.

    Args:
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.
        per_image: one loss per image (then averaged) instead of one over the batch.
        classes: 'present' (paper default), 'all', or a list of class ids.
        weight: optional per-class weights for the average over classes.
        reduction: 'mean', 'sum', or 'none' ((K,) or (B, K) per-class values).

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W).

    References:
        Berman, Rannen Triki & Blaschko, "The Lovasz-Softmax loss: A tractable surrogate for the
        optimization of the intersection-over-union measure in neural networks", CVPR 2018
        (Lovasz-Softmax, Alg. 1).
    """
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    ch = prep.region_channels
    p = prep.probs[:, ch].transpose(0, 1)  # (K, B, H, W)
    g = prep.onehot[:, ch].transpose(0, 1)
    if per_image:
        values = torch.stack(
            [
                _lovasz_flat((g[:, b] - p[:, b]).abs()[:, prep.valid[b]], g[:, b][:, prep.valid[b]])
                for b in range(p.shape[1])
            ]
        )  # (B, K)
    else:
        values = _lovasz_flat((g - p).abs()[:, prep.valid], g[:, prep.valid])  # (K,)
    return reduce_classes(values, region_sums(prep, per_image), prep, classes, weight, reduction)


def lovasz_hinge(
    logits, target, *, mode="binary", from_logits=True, ignore_index=None, per_image=True, reduction="mean"
):
    """Binary Lovasz hinge: the Lovasz extension of 1 - IoU at hinge errors ``max(0, 1 - z y)``.

    z is the logit and y = 2 g - 1 the sign of the label; with ``from_logits=False`` the input
    p is mapped to the score ``z = 2 p - 1`` (so p in {0, 1} scores 0 error). Images without
    foreground still score their largest error, as in the paper.

    Args:
        mode: must be 'binary'.
        per_image: one loss per image, averaged (the paper's default for binary), or one over
            the batch.
        reduction: 'mean' / 'sum' over images, or 'none' ((B,) with per_image, else a scalar).
        logits, target, from_logits, ignore_index: see :func:`wnet.losses.prepare`.

    Shape:
        logits (B, 1, H, W) or (B, H, W), target the same.

    References:
        Berman, Rannen Triki & Blaschko, CVPR 2018 (Lovasz hinge, Alg. 1).
    """
    if mode != "binary":
        raise ValueError(f"lovasz_hinge is binary-only (mode='binary'), got {mode!r}; use lovasz_softmax")
    check_reduction(reduction)
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    z, g = prep.scores, prep.onehot[:, 1]  # (B, H, W)
    errors = F.relu(1 - z * (2 * g - 1))
    if per_image:
        values = torch.cat(
            [
                _lovasz_flat(errors[b][prep.valid[b]][None], g[b][prep.valid[b]][None])
                for b in range(z.shape[0])
            ]
        )
        scored = prep.valid.flatten(1).any(1)  # (B,)
    else:
        values = _lovasz_flat(errors[prep.valid][None], g[prep.valid][None])[0]
        scored = prep.valid.any()
    values = torch.where(scored, values, torch.zeros_like(values))
    if reduction == "none":
        return values
    if reduction == "sum" or values.dim() == 0:
        return values.sum()
    return values.sum() / scored.sum().clamp_min(1)


class LovaszSoftmaxLoss(LossModule):
    function = staticmethod(lovasz_softmax)


class LovaszHingeLoss(LossModule):
    function = staticmethod(lovasz_hinge)
    modes = ("binary",)
