"""Functional forms of every loss: ``f(logits, target, *, mode=..., ...) -> Tensor``.

from wnet.losses import functional as LF
LF.dice_loss(logits, target, mode="binary", smooth=0.0)
"""

from ._inputs import prepare
from .boundary import boundary_loss, hausdorff_dt_loss
from .dice_ce import combo_loss, exp_log_loss
from .distribution import (
    balanced_bce,
    binary_cross_entropy,
    conservative_loss,
    cross_entropy,
    dist_penalized_ce,
    focal_loss,
    inverse_frequency_weights,
    topk_cross_entropy,
    weighted_cross_entropy,
)
from .gdice import generalized_dice_loss, penalty_gdice_loss
from .lovasz import lovasz_grad, lovasz_hinge, lovasz_softmax
from .region import (
    asymmetric_loss,
    dice_loss,
    focal_tversky_loss,
    iou_loss,
    jaccard_loss,
    sensitivity_specificity_loss,
    tversky_loss,
)

__all__ = [
    "prepare",
    "cross_entropy",
    "weighted_cross_entropy",
    "inverse_frequency_weights",
    "binary_cross_entropy",
    "balanced_bce",
    "topk_cross_entropy",
    "focal_loss",
    "dist_penalized_ce",
    "conservative_loss",
    "dice_loss",
    "iou_loss",
    "jaccard_loss",
    "tversky_loss",
    "focal_tversky_loss",
    "asymmetric_loss",
    "generalized_dice_loss",
    "penalty_gdice_loss",
    "sensitivity_specificity_loss",
    "exp_log_loss",
    "combo_loss",
    "lovasz_grad",
    "lovasz_softmax",
    "lovasz_hinge",
    "boundary_loss",
    "hausdorff_dt_loss",
]
