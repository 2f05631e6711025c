"""Applying a trained model to images: mixed precision, mirror padding, tiling, labels.

Shared by training-time evaluation, the BSDS pipeline, ``task=segment`` and every other
consumer, so that a model is run the same way everywhere.
"""

from __future__ import annotations

import contextlib
import math

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
def predict_image(model: nn.Module, image, amp: str = "none", pad: int = 0):
    """One image's soft maps at full resolution, with mirror padding of at most ``pad`` px.

    The padding is clamped to the image (reflection needs ``pad`` < the smaller side), so one
    setting serves every image size.

    Shape:
        image: (H, W, C) float in [0, 1], numpy; returns (K, H, W) float32 numpy.
    """
    x = torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, C, H, W)
    pad = max(0, min(pad, min(x.shape[-2:]) - 1))
    return predict(model, x, amp, pad=pad)[0][0].cpu().numpy()


ALIGN = 16  # the U-Nets pool 4 times: tiles that start on multiples of 16 see the whole image's pooling grid


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def axis_tiles(length: int, n: int, overlap: int, align: int = ALIGN) -> list[tuple[int, int]]:
    """``n`` tiles ``[start, end)`` over ``length`` px: starts on multiples of ``align``, neighbours
    overlapping by at least ``overlap`` px, the last one ending at ``length`` (so it may be shorter)."""
    tile = _ceil_to(math.ceil((length + (n - 1) * overlap) / n), align) if n > 1 else length
    if tile >= length:
        return [(0, length)]
    while (step := _ceil_to(math.ceil((length - tile) / (n - 1)), align)) > tile - overlap:
        tile += align
    starts = [0]
    while starts[-1] + tile < length:  # at most n tiles; fewer when rounding up to align covers sooner
        starts.append(starts[-1] + step)
    return [(a, min(a + tile, length)) for a in starts]


def tile_grid(
    h: int, w: int, pad: int, max_pixels: int, overlap: int, align: int = ALIGN
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Tiles over an h x w image such that one tile with ``pad`` px of context has <= max_pixels pixels.

    The axis with the larger tiles is split into one more tile until they fit (:func:`axis_tiles`).
    Returns the row intervals and the column intervals; the tiles are their products.
    """
    ny = nx = 1
    while True:
        ys, xs = axis_tiles(h, ny, overlap, align), axis_tiles(w, nx, overlap, align)
        th, tw = max(b - a for a, b in ys), max(b - a for a, b in xs)
        if (th + 2 * pad) * (tw + 2 * pad) <= max_pixels:
            return ys, xs
        if th >= tw:
            ny += 1
        else:
            nx += 1
        if ny > h // align + 2 or nx > w // align + 2:
            raise ValueError(
                f"max_pixels={max_pixels} is too small for pad={pad} and overlap={overlap}; "
                f"it must be at least {min_tile_pixels(pad, overlap, align)}"
            )


def min_tile_pixels(pad: int, overlap: int, align: int = ALIGN) -> int:
    """The smallest ``max_pixels`` that :func:`predict_tiled` accepts for ``pad`` and ``overlap``
    (tiles shrink towards ``overlap + align`` px as they are split)."""
    return (2 * pad + overlap + 2 * align) ** 2


def blend_window(n: int, ramp_start: int, ramp_end: int) -> torch.Tensor:
    """1-D weights of one tile: 1 inside, rising linearly from about 0 over ``ramp_*`` px at each
    end that borders another tile (0 px: an image border, weight 1 up to the edge). Shape: (n,)."""
    i = torch.arange(n, dtype=torch.float32)
    w = torch.ones(n)
    if ramp_start:
        w = torch.minimum(w, (i + 0.5) / ramp_start)
    if ramp_end:
        w = torch.minimum(w, (n - i - 0.5) / ramp_end)
    return w


@torch.no_grad()
def predict_tiled(
    model: nn.Module,
    x: torch.Tensor,
    amp: str = "none",
    pad: int = 64,
    max_pixels: int = 2**22,
    overlap: int = 64,
):
    """:func:`predict` in overlapping tiles, so that one forward pass sees at most ``max_pixels`` pixels.

    Where the padded image fits (``(H + 2 pad) (W + 2 pad) <= max_pixels``) this is
    :func:`predict`. Otherwise each tile is run with ``pad`` px of context on every side, taken
    from the image (mirrored only at the image's own borders, as :func:`predict` does), and the
    tiles' outputs are blended over their overlaps with separable linear ramps (weights normalised to
    sum to 1 at every pixel), so that no seam shows. Tiles start on multiples of 16 px, so that they see
    the whole image's pooling grid: away from the seams a tile computes what the whole image does.
    The outputs are accumulated on the CPU: the device holds one tile at a time.

    Args:
        model: a :class:`wnet.model.WNet`; x: images in [0, 1]; amp, pad: as :func:`predict`
            (``pad`` is reduced to fit images smaller than it); max_pixels: pixels of one padded
            tile, batch included; overlap: least overlap of neighbouring tiles, px.

    Shape:
        x: (B, C, H, W); returns probs (B, K, H, W) and recon (B, C, H, W), float32 on the CPU.
    """
    b, _, h, w = x.shape
    pad = max(0, min(pad, min(h, w) - 1))
    if b * (h + 2 * pad) * (w + 2 * pad) <= max_pixels:
        probs, recon = predict(model, x, amp, pad)
        return probs.cpu(), recon.cpu()
    ys, xs = tile_grid(h, w, pad, max(1, max_pixels // b), overlap)
    xp = mirror_pad(x.cpu().float(), pad)  # (B, C, H + 2 pad, W + 2 pad)
    acc = recon_acc = None
    weight = torch.zeros(h, w)
    for y0, y1, x0, x1, wt in blended_tiles(ys, xs, overlap):
        probs, recon = model_outputs(model, xp[..., y0 : y1 + 2 * pad, x0 : x1 + 2 * pad], amp, pad)
        if acc is None:  # (B, K, H, W) and (B, C, H, W)
            acc, recon_acc = (
                probs.new_zeros(b, probs.shape[1], h, w),
                recon.new_zeros(b, recon.shape[1], h, w),
            )
        acc[..., y0:y1, x0:x1] += probs * wt
        recon_acc[..., y0:y1, x0:x1] += recon * wt
        weight[y0:y1, x0:x1] += wt
    return acc / weight, recon_acc / weight


def blended_tiles(ys: list[tuple[int, int]], xs: list[tuple[int, int]], overlap: int):
    """Every tile ``(y0, y1, x0, x1, weights (th, tw))`` of the grid ``ys x xs``, row by row, with its
    separable blending ramps (:func:`blend_window`) on the sides it shares with a neighbour."""
    for i, (y0, y1) in enumerate(ys):
        wy = blend_window(y1 - y0, overlap if i else 0, overlap if i < len(ys) - 1 else 0)
        for j, (x0, x1) in enumerate(xs):
            wx = blend_window(x1 - x0, overlap if j else 0, overlap if j < len(xs) - 1 else 0)
            yield y0, y1, x0, x1, wy[:, None] * wx[None, :]


def model_outputs(model: nn.Module, x: torch.Tensor, amp: str, crop: int):
    """The model's outputs for an already padded input, cropped by ``crop`` px per side, on the CPU."""
    model.eval()
    device = model_device(model)
    with autocast(device, amp):
        probs, recon = model(x.to(device))
    if crop:
        probs, recon = probs[..., crop:-crop, crop:-crop], recon[..., crop:-crop, crop:-crop]
    return probs.float().cpu(), recon.float().cpu()


def soft_maps(model: nn.Module, x: torch.Tensor, amp: str, crop: int) -> torch.Tensor:
    """:func:`model_outputs` without U_Dec: the soft maps alone (the same values, half the work)."""
    model.eval()
    device = model_device(model)
    with autocast(device, amp):
        probs = torch.softmax(model.encode(x.to(device)), dim=1)  # (B, K, H, W)
    if crop:
        probs = probs[..., crop:-crop, crop:-crop]
    return probs.float().cpu()


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
