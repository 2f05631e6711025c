"""Checking and normalising ``(logits, target)`` once, so every loss sees the same tensors.

Every loss starts from :func:`prepare`. It turns both modes into one representation:

* multiclass: ``logits`` (B, C, H, W) and ``target`` (B, H, W) int64 class ids;
* binary: ``logits`` (B, 1, H, W) or (B, H, W) and ``target`` {0, 1} of the same shape, handled
  as the two-class problem with scores ``(0, z)``. ``softmax((0, z)) = (1 - sigmoid(z), sigmoid(z))``
  and ``log_softmax((0, z)) = (logsigmoid(-z), logsigmoid(z))`` exactly, so binary losses are
  the multiclass ones with C = 2 and class 1 as the foreground.

``ignore_index`` is masked *before* one-hot encoding, so it may be any integer (-1, 255, or
C itself). Ignored pixels are removed with ``torch.where`` (never by multiplying by 0), so they
carry exactly zero gradient and NaN-free values whatever their logits are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MODES = ("binary", "multiclass")
EPS = 1e-7  # floor for log(p) and for denominators when from_logits=False or smooth=0


@dataclass
class Prepared:
    """Inputs in the common two-or-more-class form.

    Attributes:
        probs: class probabilities, 0 at ignored pixels.  # (B, K, H, W), K = C or 2
        log_probs: log-probabilities, 0 at ignored pixels.  # (B, K, H, W)
        onehot: one-hot target, 0 at ignored pixels.  # (B, K, H, W) float
        labels: class ids, 0 at ignored pixels.  # (B, H, W) int64
        valid: pixels that count.  # (B, H, W) bool
        scores: the raw binary score z (logit, or 2p - 1 when from_logits=False), binary only.
        mode: 'binary' or 'multiclass'.
    """

    probs: torch.Tensor
    log_probs: torch.Tensor
    onehot: torch.Tensor
    labels: torch.Tensor
    valid: torch.Tensor
    scores: torch.Tensor | None
    mode: str

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]

    @property
    def region_channels(self) -> slice:
        """Channels scored by region losses: foreground only in binary mode (smp convention)."""
        return slice(1, 2) if self.mode == "binary" else slice(0, self.num_classes)

    def true_log_prob(self) -> torch.Tensor:
        """log p of the target class at each pixel, 0 at ignored pixels.  # (B, H, W)"""
        return self.log_probs.gather(1, self.labels.unsqueeze(1)).squeeze(1)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _binary_shapes(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring binary inputs to logits (B, H, W) and target (B, H, W)."""
    if logits.dim() == 4 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if target.dim() == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if logits.dim() != 3:
        raise ValueError(
            f"binary mode expects logits of shape (B, 1, H, W) or (B, H, W), got {tuple(logits.shape)}"
        )
    if target.shape != logits.shape:
        raise ValueError(
            f"binary mode expects target of the same shape as logits {tuple(logits.shape)} "
            f"(channel dim optional), got {tuple(target.shape)}"
        )
    return logits, target


def _prepare_binary(logits, target, from_logits: bool, ignore_index: int | None):
    """Binary inputs as two-class probabilities: (probs, log_probs (B, 2, H, W), labels, valid, scores)."""
    z, t = _binary_shapes(logits, target)  # (B, H, W) each
    valid = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    bad = valid & (t != 0) & (t != 1)
    if bad.any():
        raise ValueError(
            f"binary target must hold 0 or 1 (or ignore_index={ignore_index}), found {t[bad].unique()[:5].tolist()}"
        )
    labels = torch.where(valid, t, torch.zeros_like(t)).long()
    if from_logits:
        two = torch.stack([torch.zeros_like(z), z], dim=1)  # (B, 2, H, W)
        return two.softmax(1), two.log_softmax(1), labels, valid, z
    _check_probabilities(z)
    probs = torch.stack([1 - z, z], dim=1)
    # 2 z - 1: a margin-like score in [-1, 1] for the Lovasz hinge
    return probs, probs.clamp_min(EPS).log(), labels, valid, 2 * z - 1


def _prepare_multiclass(logits, target, from_logits: bool, ignore_index: int | None):
    """Multiclass inputs checked: (probs, log_probs (B, C, H, W), labels (B, H, W), valid, None)."""
    if logits.dim() != 4:
        raise ValueError(f"multiclass mode expects logits (B, C, H, W), got {tuple(logits.shape)}")
    if target.dim() != 3 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"multiclass mode expects target (B, H, W) = {tuple(logits.shape[:1] + logits.shape[2:])} "
            f"for logits {tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"multiclass target must hold integer class ids, got dtype {target.dtype}")
    c = logits.shape[1]
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    bad = valid & ((target < 0) | (target >= c))
    if bad.any():
        raise ValueError(
            f"multiclass target has labels {target[bad].unique()[:5].tolist()} outside [0, {c}) "
            f"that are not ignore_index={ignore_index}"
        )
    labels = torch.where(valid, target, torch.zeros_like(target)).long()
    if from_logits:
        return logits.softmax(1), logits.log_softmax(1), labels, valid, None
    _check_probabilities(logits)
    return logits, logits.clamp_min(EPS).log(), labels, valid, None


def prepare(
    logits: torch.Tensor,
    target: torch.Tensor,
    mode: str = "multiclass",
    from_logits: bool = True,
    ignore_index: int | None = None,
) -> Prepared:
    """Check shapes and values, apply softmax/sigmoid, mask ignored pixels, one-hot the target.

    Args:
        logits: network output (or probabilities when ``from_logits=False``); float16 and
            bfloat16 (autocast) are cast to float32 first, so losses are computed in float32.
        target: class ids (multiclass) or {0, 1} (binary); may contain ``ignore_index``.
        mode: 'binary' or 'multiclass'.
        from_logits: apply softmax (multiclass) / sigmoid (binary) here; False means ``logits``
            already holds probabilities in [0, 1].
        ignore_index: label whose pixels count for nothing (None: no such label).

    Shape:
        multiclass: logits (B, C, H, W), target (B, H, W); binary: (B, 1, H, W) or (B, H, W) both.

    Raises:
        ValueError: on a wrong mode, shape, dtype or label value, naming what was expected.
    """
    check_mode(mode)
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor, got {getattr(logits, 'dtype', logits)}")
    if not torch.is_tensor(target):
        raise ValueError(f"target must be a tensor, got {type(target).__name__}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # losses in float32 under autocast; the cast passes gradients back
    if mode == "binary":
        probs, log_probs, labels, valid, scores = _prepare_binary(logits, target, from_logits, ignore_index)
    else:
        probs, log_probs, labels, valid, scores = _prepare_multiclass(
            logits, target, from_logits, ignore_index
        )
    k = probs.shape[1]
    v = valid.unsqueeze(1)  # (B, 1, H, W)
    zero = probs.new_zeros(())
    onehot = F.one_hot(labels, k).permute(0, 3, 1, 2).to(probs.dtype)  # (B, K, H, W)
    return Prepared(
        probs=torch.where(v, probs, zero),
        log_probs=torch.where(v, log_probs, zero),
        onehot=torch.where(v, onehot, zero),
        labels=labels,
        valid=valid,
        scores=scores,
        mode=mode,
    )


def _check_probabilities(p: torch.Tensor) -> None:
    with torch.no_grad():
        if p.numel() and (p.min() < 0 or p.max() > 1):
            raise ValueError(
                "from_logits=False expects probabilities in [0, 1], got values in "
                f"[{p.min().item():.4g}, {p.max().item():.4g}]; pass from_logits=True for raw logits"
            )


def class_weight_tensor(weight, num: int, like: torch.Tensor, name: str = "weight") -> torch.Tensor | None:
    """Turn a list/tuple/tensor of per-class weights into a float tensor of length ``num``."""
    if weight is None:
        return None
    w = torch.as_tensor(weight, dtype=like.dtype, device=like.device).flatten()
    if w.numel() != num:
        raise ValueError(f"{name} must have {num} entries (one per class), got {w.numel()}")
    if (w < 0).any():
        raise ValueError(f"{name} must be non-negative, got {w.tolist()}")
    return w
