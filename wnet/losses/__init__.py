"""Supervised segmentation losses with one call, ``loss(logits, target)``.

    from wnet.losses import get_loss, DiceLoss
    loss = get_loss("dice+ce", mode="multiclass", ignore_index=255)
    value = loss(logits, target)  # logits (B, C, H, W), target (B, H, W) int64

Families: distribution-based (:mod:`.distribution`), region-based (:mod:`.region`,
:mod:`.gdice`, :mod:`.dice_ce`, :mod:`.lovasz`), boundary-based (:mod:`.boundary`); names and
weighted sums in :mod:`.compound`; functional forms in :mod:`.functional`. See docs/losses.md.
"""

from . import functional
from ._inputs import prepare
from ._module import LossModule
from .boundary import BoundaryLoss, HausdorffDTLoss
from .compound import LOSSES, CompoundLoss, get_loss, parse_spec
from .dice_ce import ComboLoss, ExpLogLoss
from .distribution import (
    BalancedBCELoss,
    BCELoss,
    CELoss,
    ConservativeLoss,
    DistPenalizedCELoss,
    FocalLoss,
    TopKLoss,
    WCELoss,
)
from .gdice import GeneralizedDiceLoss, PenaltyGDiceLoss
from .lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from .region import (
    AsymmetricLoss,
    DiceLoss,
    FocalTverskyLoss,
    IoULoss,
    JaccardLoss,
    SensitivitySpecificityLoss,
    TverskyLoss,
)

__all__ = [
    "LOSSES",
    "get_loss",
    "parse_spec",
    "prepare",
    "functional",
    "LossModule",
    "CompoundLoss",
    "CELoss",
    "WCELoss",
    "BCELoss",
    "BalancedBCELoss",
    "TopKLoss",
    "FocalLoss",
    "DistPenalizedCELoss",
    "ConservativeLoss",
    "DiceLoss",
    "IoULoss",
    "JaccardLoss",
    "TverskyLoss",
    "FocalTverskyLoss",
    "AsymmetricLoss",
    "GeneralizedDiceLoss",
    "PenaltyGDiceLoss",
    "SensitivitySpecificityLoss",
    "ExpLogLoss",
    "ComboLoss",
    "LovaszSoftmaxLoss",
    "LovaszHingeLoss",
    "BoundaryLoss",
    "HausdorffDTLoss",
]
