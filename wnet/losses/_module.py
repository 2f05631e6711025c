"""The thin ``nn.Module`` shared by every loss: it stores keyword arguments and calls the function.

Each loss is a function ``f(logits, target, *, mode=..., ...)``; its module is a subclass of
:class:`LossModule` that only names that function, e.g.::

    class DiceLoss(LossModule):
        function = staticmethod(dice_loss)

``DiceLoss(mode="binary", smooth=0.0)(logits, target)`` is ``dice_loss(logits, target,
mode="binary", smooth=0.0)``. Unknown keywords fail at construction, listing the valid ones.
Per-class weights (``weight``, ``alpha`` as a list, ``pos_weight``) become buffers, so
``.to(device)`` moves them with the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from ._inputs import check_mode, check_reduction

TENSOR_ARGS = ("weight", "alpha", "pos_weight")  # per-class numbers kept as buffers


def keyword_names(function: Callable) -> list[str]:
    """The keyword arguments a loss function accepts (everything after ``logits, target``)."""
    params = list(inspect.signature(function).parameters.values())
    return [p.name for p in params[2:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


class LossModule(nn.Module):
    """``nn.Module`` form of a functional loss; subclasses set ``function``."""

    function: Callable[..., torch.Tensor]
    modes: tuple[str, ...] = ("binary", "multiclass")  # binary-only losses narrow this

    def __init__(self, **kwargs):
        super().__init__()
        valid = keyword_names(type(self).function)
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise ValueError(f"{type(self).__name__} got unknown argument(s) {unknown}; valid: {valid}")
        mode = kwargs.get("mode", inspect.signature(type(self).function).parameters["mode"].default)
        check_mode(mode)
        if mode not in self.modes:
            raise ValueError(f"{type(self).__name__} supports mode {self.modes}, got mode={mode!r}")
        if "reduction" in kwargs:
            check_reduction(kwargs["reduction"])
        self._options = {}
        self._buffers_names = []
        for key, value in kwargs.items():
            if key in TENSOR_ARGS and isinstance(value, (list, tuple, torch.Tensor)):
                self.register_buffer(key, torch.as_tensor(value, dtype=torch.get_default_dtype()))
                self._buffers_names.append(key)
            else:
                self._options[key] = value

    @property
    def options(self) -> dict:
        """All keyword arguments passed to the function (buffers included)."""
        return {**self._options, **{k: getattr(self, k) for k in self._buffers_names}}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return type(self).function(logits, target, **self.options)

    def extra_repr(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self._options.items()]
        parts += [f"{k}=<tensor {tuple(getattr(self, k).shape)}>" for k in self._buffers_names]
        return ", ".join(parts)
