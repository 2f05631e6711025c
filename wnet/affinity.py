"""Windowed Gaussian affinities shared by the soft N-Cut loss and the mean-field CRF.

One function builds the weights, one applies them; neither ever materialises a
(B, K, H, W, window) tensor. The affinity between pixels u and v is

    w(u, v) = exp(-||F(u) - F(v)||^2 / sigma_i^2) * exp(-||X(u) - X(v)||^2 / sigma_x^2)

when ||X(u) - X(v)|| < radius, and 0 otherwise (Shi & Malik 2000, eq. 11; Xia & Kulis 2017,
sec. 3.1). Pixels outside the image have no weight at all: nothing is zero-padded.

Because w is symmetric, only half of the window is stored: the offsets o = (dy, dx) with
dy > 0, or dy == 0 and dx > 0. ``weights[:, m, y, x]`` is w((y, x), (y, x) + o_m) and is
zero where the neighbour falls outside the image. Applying W to a map uses each stored
weight twice (u -> u + o and u + o -> u).

Backends: ``'eager'`` is PyTorch ops (one pass over memory per offset; any device, autograd);
``'kernel'`` is the fused C kernel of :mod:`wnet.window_kernel` (CPU float32/float64, no autograd
graph); ``'auto'`` (the default) takes the kernel where it applies and builds, else eager.
Both compute the same numbers up to float rounding (tests/test_affinity.py).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as nnf

from wnet import window_kernel

Offsets = list[tuple[int, int]]

_BLOCK_BYTES = 4 * 2**20  # window_apply: bytes of x per class block on one CPU thread


def window_offsets(radius: float) -> Offsets:
    """Half of the window ``0 < dy^2 + dx^2 < radius^2``, one offset of each +/- pair.

    Args:
        radius: window radius ``r`` in pixels; the test is strict (``< r``), as in the paper.
    """
    return list(_window_offsets(float(radius)))


@functools.lru_cache(maxsize=64)
def _window_offsets(radius: float) -> tuple[tuple[int, int], ...]:
    r = int(math.ceil(radius))
    offsets = []
    for dy in range(0, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx <= 0:
                continue
            if dy * dy + dx * dx < radius * radius:
                offsets.append((dy, dx))
    return tuple(offsets)


BACKENDS = ("auto", "eager", "kernel")


def use_kernel(backend: str, *tensors: torch.Tensor) -> bool:
    """Whether ``backend`` sends these tensors to :mod:`wnet.window_kernel` (see the module doc)."""
    if backend not in BACKENDS:
        raise ValueError(f"affinity backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "eager":
        return False
    if not window_kernel.supports(*tensors):
        if backend == "kernel":
            raise ValueError(
                "backend='kernel' needs CPU float32/float64 tensors of one dtype without autograd, got "
                f"{[(t.device.type, t.dtype, t.requires_grad) for t in tensors]}"
            )
        return False
    if backend == "kernel" and not window_kernel.available():
        raise RuntimeError(
            f"backend='kernel': compiled kernel unavailable ({window_kernel.unavailable_reason()})"
        )
    return window_kernel.available()


def _slices(dy: int, dx: int, h: int, w: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices of the pixels u whose neighbour u + (dy, dx) is inside, and of those neighbours."""
    u = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
    v = (slice(dy, h), slice(max(0, dx), w + min(0, dx)))
    return u, v


def pair_weights(
    features: torch.Tensor,
    radius: float,
    sigma_x: float,
    sigma_i: float | None = None,
    backend: str = "auto",
) -> tuple[Offsets, torch.Tensor]:
    """Affinities between each pixel and the half-window of neighbours.

    Args:
        features: F, the per-pixel features compared by the intensity kernel (intensities on
            whatever scale ``sigma_i`` is expressed in).
        radius: window radius r; neighbours with distance >= r get no weight.
        sigma_x: spatial bandwidth (pixels).
        sigma_i: intensity bandwidth (units of ``features``); ``None`` drops the intensity
            term, leaving a purely spatial Gaussian (the CRF's smoothness kernel).
        backend: ``'auto'``, ``'eager'`` or ``'kernel'`` (see the module doc).

    Shape:
        features: (B, C, H, W)
        returns: offsets (M pairs) and weights (B, M, H, W)
    """
    if features.dim() != 4 or not features.is_floating_point():
        raise ValueError(
            f"pair_weights: features must be a float (B, C, H, W) tensor, got {features.dtype} "
            f"of shape {tuple(features.shape)}"
        )
    b, _, h, w = features.shape
    offsets = window_offsets(radius)
    if use_kernel(backend, features):
        return offsets, window_kernel.pair_weights(features, offsets, sigma_x, sigma_i)
    weights = features.new_zeros(b, len(offsets), h, w)
    inv_i2 = None if sigma_i is None else -1.0 / (sigma_i * sigma_i)
    floor = math.log(torch.finfo(features.dtype).tiny) + 1.0  # log w below which w := 0 (see below)
    for m, (dy, dx) in enumerate(offsets):
        (uy, ux), (vy, vx) = _slices(dy, dx, h, w)
        if uy.stop <= uy.start or ux.stop <= ux.start:
            continue  # the image is smaller than this offset
        spatial = -(dy * dy + dx * dx) / (sigma_x * sigma_x)
        if inv_i2 is None:
            weights[:, m, uy, ux] = math.exp(spatial) if math.exp(spatial) > 1.5 * math.exp(floor) else 0.0
            continue
        # Few passes, written straight into the weights: this loop runs M times per loss call.
        diff = features[:, :, uy, ux] - features[:, :, vy, vx]  # (B, C, h', w')
        expo = diff.square_().sum(1).mul_(inv_i2).add_(spatial)  # (B, h', w'): log w
        # exp() that underflows (to a subnormal or 0) is ~10x slower on CPU, and most pairs
        # across an edge do. Weights under 1.5 e tiny (4.8e-38 in float32, 9e-308 in float64)
        # are set to exactly 0: next to w(u, u) = 1 that changes nothing representable.
        # (Clamping, then thresholding, is 2x faster than exp(-inf) here; the kernel does the same.)
        out = weights[:, m, uy, ux]  # (B, h', w') view
        torch.exp(expo.clamp_min_(floor), out=out)
        nnf.threshold_(out, 1.5 * math.exp(floor), 0.0)  # the clamped ones (= e * tiny) -> 0
    return offsets, weights


def _class_block(x: torch.Tensor) -> int:
    """How many classes :func:`window_apply` filters at a time.

    On one CPU thread, blocks of about ``_BLOCK_BYTES`` of x run ~1.5x faster than whole
    tensors (measured at B=4, K=64, 224x224, r=5). With several threads every op is a parallel
    region, and on a busy machine more, smaller ops stalled badly (>3x slower) in the same
    measurement; on GPU the whole tensor is best. So block only on a single CPU thread.
    """
    k = x.shape[1]
    if x.device.type != "cpu" or torch.get_num_threads() != 1:
        return k
    per_class = x.shape[0] * x.shape[2] * x.shape[3] * x.element_size()
    return max(1, min(k, _BLOCK_BYTES // per_class))


def window_apply(
    x: torch.Tensor,
    offsets: Offsets,
    weights: torch.Tensor,
    self_weight: float = 1.0,
    backend: str = "auto",
) -> torch.Tensor:
    """Return ``(W x)(u) = self_weight * x(u) + sum_{v != u in window} w(u, v) x(v)``.

    Args:
        x: maps to filter, e.g. soft class maps S.
        offsets, weights: the output of :func:`pair_weights` for the same image size.
        self_weight: w(u, u); 1 for the N-Cut affinity (distance 0 is inside the window),
            0 for CRF message passing, which sums over v != u only.
        backend: ``'auto'``, ``'eager'`` or ``'kernel'`` (see the module doc).

    Shape:
        x: (B, K, H, W); weights: (B, M, H, W); returns (B, K, H, W).
    """
    if x.dim() != 4 or weights.dim() != 4 or weights.shape[1] != len(offsets):
        raise ValueError(
            f"window_apply: expected x (B, K, H, W) and weights (B, M={len(offsets)}, H, W), "
            f"got {tuple(x.shape)} and {tuple(weights.shape)}"
        )
    if x.shape[0] != weights.shape[0] or x.shape[-2:] != weights.shape[-2:]:
        raise ValueError(
            f"window_apply: x has shape {tuple(x.shape)} but weights have {tuple(weights.shape)}; "
            "batch and spatial sizes must agree"
        )
    if use_kernel(backend, x, weights):
        return window_kernel.window_apply(x, offsets, weights, self_weight)
    b, k, h, w = x.shape
    pairs = []  # (w_m, slices of u, slices of u + o_m) for the offsets that fit in the image
    for m, (dy, dx) in enumerate(offsets):
        (uy, ux), (vy, vx) = _slices(dy, dx, h, w)
        if uy.stop > uy.start and ux.stop > ux.start:
            pairs.append((weights[:, m : m + 1, uy, ux], (uy, ux), (vy, vx)))  # w_m: (B, 1, h', w')
    out = x * self_weight if self_weight != 1.0 else x.clone()
    step = _class_block(x)
    for k0 in range(0, k, step):
        # All offsets are applied to a block of classes before the next block, so the block
        # stays in cache instead of streaming all of x from memory once per offset.
        xb, ob = x[:, k0 : k0 + step], out[:, k0 : k0 + step]  # (B, step, H, W)
        for wm, (uy, ux), (vy, vx) in pairs:
            ob[:, :, uy, ux].addcmul_(wm, xb[:, :, vy, vx])
            ob[:, :, vy, vx].addcmul_(wm, xb[:, :, uy, ux])
    return out
