"""Applying a trained model to images: mixed precision, mirror padding, labels.

Shared by training-time evaluation, the BSDS pipeline and every other consumer, so that a
model is run the same way everywhere.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

AMP_MODES = ("bf16", "none")


def autocast(device: torch.device | str, amp: str):
    """bf16 autocast on CUDA when ``amp == 'bf16'``; a no-op context elsewhere.

    bf16 needs no loss scaling (fp16 would); CPU autocast is left off because it is slower
    than float32 for these convolutions on the CPUs measured.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if torch.device(device).type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def mirror_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad every side by ``pad`` px; pad must be smaller than the image (reflection's limit).

    Shape:
        x: (B, C, H, W); returns (B, C, H + 2 pad, W + 2 pad).
    """
    h, w = x.shape[-2:]
    if not 0 <= pad < min(h, w):
        raise ValueError(f"pad={pad} must be >= 0 and smaller than the image size {h}x{w}")
    return F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, amp: str = "none", pad: int = 0):
    """A W-Net's soft classes and reconstruction in eval mode, on the model's device.

    ``pad`` > 0 mirrors the image by that many pixels on every side and crops the outputs back:
    the U-Nets' zero padding otherwise gives a band of border-specific classes along the frame of
    a full-resolution image (a spurious contour in a ucm2).

    Args:
        model: a :class:`wnet.model.WNet`.
        x: images in [0, 1].
        amp: ``'bf16'`` (autocast on CUDA) or ``'none'``.
        pad: mirror padding in pixels (0: none).

    Shape:
        x: (B, C, H, W); returns probs (B, K, H, W) and recon (B, C, H, W), float32.
    """
    model.eval()
    device = model_device(model)
    h, w = x.shape[-2:]
    x = mirror_pad(x.to(device), pad)
    with autocast(device, amp):
        probs, recon = model(x)
    if pad:
        probs, recon = probs[..., pad : pad + h, pad : pad + w], recon[..., pad : pad + h, pad : pad + w]
    return probs.float().contiguous(), recon.float().contiguous()


@torch.no_grad()
def predict_labels(model: nn.Module, x: torch.Tensor, binary: bool, amp: str = "none") -> torch.Tensor:
    """Class ids of a supervised segmenter: argmax of the logits, or logit > 0 (sigmoid > 0.5) in binary mode.

    Shape:
        x: (B, C_in, H, W); returns (B, H, W) int64 on the CPU.
    """
    model.eval()
    device = model_device(model)
    with autocast(device, amp):
        logits = model(x.to(device)).float()  # (B, C or 1, H, W)
    labels = (logits[:, 0] > 0).long() if binary else logits.argmax(1)
    return labels.cpu()
