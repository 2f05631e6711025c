"""Boundary-based losses: soft predictions weighted by distance maps of the target (and prediction).

Distance maps are computed per image and per class with ``scipy.ndimage.distance_transform_edt``
(see ``_distance``), without gradient, in pixels. Both losses follow the region conventions
(foreground channel only in binary mode; per-class values averaged over the classes 'present' in
the target by default; ``per_image``; ``weight``; reduction 'none' gives (K,) or (B, K)). Each
per-class value is a mean over the valid pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._aggregate import reduce_classes, region_sums
from ._distance import boundary_distance, signed_distance
from ._inputs import prepare
from ._module import LossModule


def _pixel_means(values: torch.Tensor, valid: torch.Tensor, per_image: bool) -> torch.Tensor:
    """Mean over valid pixels of a (B, K, H, W) map -> (K,) or (B, K)."""
    if per_image:
        return values.sum((2, 3)) / valid.sum((1, 2)).clamp_min(1).unsqueeze(1).to(values.dtype)
    return values.sum((0, 2, 3)) / valid.sum().clamp_min(1).to(values.dtype)


def boundary_loss(
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
    """Boundary loss ``L_B = (1/N) sum_q phi_G(q) s(q)`` per class.

    phi_G is the signed distance map of the target class (negative inside, 0 on its inner
    boundary, positive outside; see ``_distance.signed_distance``) and s the softmax (sigmoid)
    probability. The minimum is **not 0**: it is ``(1/N) sum_{q in G} phi_G(q) <= 0``, reached by
    the perfect prediction. Classes absent from an image (or filling it) have phi = 0. The
    paper combines it with a region loss, e.g. ``get_loss({"dice": 1.0, "boundary": 0.01})``.

    Args:
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.
        per_image, classes, weight, reduction: as in :mod:`wnet.losses.region`.

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W).

    References:
        Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019 (Medical
        Image Analysis 2021).
    """
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    ch = prep.region_channels
    p = prep.probs[:, ch]  # (B, K, H, W), 0 at ignored pixels
    phi = signed_distance(prep.onehot[:, ch]).to(p)  # ignored pixels count as outside every class
    values = _pixel_means(phi * p, prep.valid, per_image)
    return reduce_classes(values, region_sums(prep, per_image), prep, classes, weight, reduction)


def hausdorff_dt_loss(
    logits,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    ignore_index=None,
    alpha=2.0,
    per_image=False,
    classes="present",
    weight=None,
    reduction="mean",
):
    """Distance-transform Hausdorff loss ``(1/N) sum_q (p - g)^2 (d_G^alpha + d_P^alpha)`` per class.

    d_G and d_P are the distances of each pixel to the boundary of the target and of the
    predicted mask (``p > 0.5`` in binary mode, the argmax class in multiclass mode), recomputed
    from the current prediction at every call, without gradient. 0 for a perfect prediction.

    Args:
        alpha: exponent of the distances (paper: 2).
        logits, target, mode, from_logits, ignore_index: see :func:`wnet.losses.prepare`.
        per_image, classes, weight, reduction: as in :mod:`wnet.losses.region`.

    Shape:
        logits (B, C, H, W) / target (B, H, W); binary (B, 1, H, W) or (B, H, W).

    References:
        Karimi & Salcudean, "Reducing the Hausdorff Distance in Medical Image Segmentation with
        Convolutional Neural Networks", IEEE TMI 2019 (Loss_DT).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    prep = prepare(logits, target, mode, from_logits, ignore_index)
    ch = prep.region_channels
    p, g = prep.probs[:, ch], prep.onehot[:, ch]  # (B, K, H, W)
    with torch.no_grad():
        if prep.mode == "binary":
            predicted = prep.probs[:, 1:2] > 0.5
        else:
            predicted = F.one_hot(prep.probs.argmax(1), prep.num_classes).permute(0, 3, 1, 2).bool()
        predicted &= prep.valid.unsqueeze(1)  # ignored pixels belong to no predicted region
        w = boundary_distance(g) ** alpha + boundary_distance(predicted) ** alpha
    values = _pixel_means((p - g) ** 2 * w.to(p), prep.valid, per_image)
    return reduce_classes(values, region_sums(prep, per_image), prep, classes, weight, reduction)


class BoundaryLoss(LossModule):
    function = staticmethod(boundary_loss)


class HausdorffDTLoss(LossModule):
    function = staticmethod(hausdorff_dt_loss)
