"""Name lookup and weighted sums of losses: ``get_loss("dice+ce")``.

``LOSSES`` is a plain dict from name to module class. :func:`get_loss` accepts

* a name: ``"dice"``;
* a '+'-separated sum with optional weights: ``"dice+ce"``, ``"0.5*dice + ce"``;
* a mapping name -> weight: ``{"dice": 1.0, "ce": 0.5}``; or a list of names (weights 1).

Keyword arguments are *shared*: each goes to every member whose function accepts it (so
``mode``, ``ignore_index``, ``from_logits``, ``weight``... reach all that understand them), and
one that no member accepts is an error. A keyword named after a member, holding a dict, is that
member's own arguments and overrides the shared ones:
``get_loss({"dice": 1, "focal": 0.5}, mode="binary", focal={"gamma": 3})``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from . import boundary, dice_ce, distribution, gdice, lovasz, region
from ._module import LossModule, keyword_names

LOSSES: dict[str, type[LossModule]] = {
    # distribution-based
    "ce": distribution.CELoss,
    "wce": distribution.WCELoss,
    "bce": distribution.BCELoss,
    "balanced_bce": distribution.BalancedBCELoss,
    "topk": distribution.TopKLoss,
    "focal": distribution.FocalLoss,
    "dist_penalized_ce": distribution.DistPenalizedCELoss,
    "conservative": distribution.ConservativeLoss,
    # region-based
    "dice": region.DiceLoss,
    "iou": region.IoULoss,
    "jaccard": region.IoULoss,
    "tversky": region.TverskyLoss,
    "focal_tversky": region.FocalTverskyLoss,
    "asymmetric": region.AsymmetricLoss,
    "generalized_dice": gdice.GeneralizedDiceLoss,
    "penalty_gdice": gdice.PenaltyGDiceLoss,
    "sensitivity_specificity": region.SensitivitySpecificityLoss,
    "exp_log": dice_ce.ExpLogLoss,
    "combo": dice_ce.ComboLoss,
    "lovasz_softmax": lovasz.LovaszSoftmaxLoss,
    "lovasz_hinge": lovasz.LovaszHingeLoss,
    # boundary-based
    "boundary": boundary.BoundaryLoss,
    "hausdorff_dt": boundary.HausdorffDTLoss,
}


def _check_name(name: str, spec) -> str:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r} in {spec!r}; valid names: {', '.join(LOSSES)}")
    return name


def parse_spec(spec) -> dict[str, float]:
    """``"0.5*dice+ce"`` / ``{"dice": 0.5, "ce": 1}`` / ``["dice", "ce"]`` -> {"dice": 0.5, "ce": 1.0}."""
    if isinstance(spec, str):
        items = []
        for term in spec.split("+"):
            term = term.strip()
            weight, _, name = term.rpartition("*")
            try:
                items.append((name.strip().lower(), float(weight) if weight.strip() else 1.0))
            except ValueError:
                raise ValueError(f"loss term {term!r} in {spec!r} is not 'name' or 'weight*name'") from None
    elif isinstance(spec, Mapping):
        items = [(str(k).strip().lower(), v) for k, v in spec.items()]
    elif isinstance(spec, Sequence):
        items = [(str(k).strip().lower(), 1.0) for k in spec]
    else:
        raise ValueError(f"loss spec must be a name, 'a+b', a mapping or a list, got {type(spec).__name__}")
    weights: dict[str, float] = {}
    for name, weight in items:
        _check_name(name, spec)
        if name in weights:
            raise ValueError(f"loss {name!r} appears twice in {spec!r}; give it one weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"weight of loss {name!r} in {spec!r} must be a finite number, got {weight!r}")
        weights[name] = float(weight)
    if not weights:
        raise ValueError(f"loss spec {spec!r} names no loss; valid names: {', '.join(LOSSES)}")
    return weights


class CompoundLoss(nn.Module):
    """Weighted sum ``sum_j w_j L_j(logits, target)`` of scalar losses.

    After each call, ``last_terms`` maps each member name to its (detached, unweighted) value,
    for logging.
    """

    def __init__(self, weights: Mapping[str, float], losses: Mapping[str, nn.Module]):
        super().__init__()
        self.weights = dict(weights)
        self.losses = nn.ModuleDict(dict(losses))
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = None
        terms = {}
        for name, loss in self.losses.items():
            value = loss(logits, target)
            if value.dim() != 0:
                raise ValueError(
                    f"compound member {name!r} returned shape {tuple(value.shape)}; use a scalar reduction"
                )
            terms[name] = value.detach()
            total = self.weights[name] * value if total is None else total + self.weights[name] * value
        self.last_terms = terms
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{n}" for n, w in self.weights.items())


def get_loss(spec, **kwargs) -> nn.Module:
    """Build a loss module from a name or a weighted combination of names.

    Args:
        spec: ``"dice"``, ``"dice+ce"``, ``"0.5*dice+ce"``, ``{"dice": 1.0, "ce": 0.5}`` or
            ``["dice", "ce"]``. Unknown names raise ValueError listing the valid ones.
        **kwargs: shared arguments, given to every member that accepts them (e.g. ``mode``,
            ``ignore_index``, ``from_logits``, ``weight``); ``<member>={...}`` gives arguments
            to one member only and overrides shared ones.

    Returns:
        The loss module itself for a single name with weight 1, else a :class:`CompoundLoss`.
    """
    weights = parse_spec(spec)
    own = {k: kwargs.pop(k) for k in list(kwargs) if k in LOSSES and isinstance(kwargs[k], Mapping)}
    stray = sorted(set(own) - set(weights))
    if stray:
        raise ValueError(f"per-loss arguments given for {stray}, which are not in {spec!r}")
    used: set[str] = set()
    modules = {}
    for name in weights:
        accepted = keyword_names(LOSSES[name].function)
        kw = {k: v for k, v in kwargs.items() if k in accepted}
        used |= kw.keys()
        kw.update(own.get(name, {}))
        modules[name] = LOSSES[name](**kw)
    unused = sorted(set(kwargs) - used)
    if unused:
        accepts = {n: keyword_names(LOSSES[n].function) for n in weights}
        raise ValueError(f"argument(s) {unused} are accepted by no loss in {spec!r}; accepted: {accepts}")
    if len(weights) == 1 and next(iter(weights.values())) == 1.0:
        return next(iter(modules.values()))
    return CompoundLoss(weights, modules)
