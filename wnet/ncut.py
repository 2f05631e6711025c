"""The exact soft normalized-cut loss of W-Net (Xia & Kulis 2017, eq. 3).

For soft class maps S_k summing to 1 over the K classes and an affinity W between pixels,

    J_soft-Ncut(V, K) = K - sum_k A_k / D_k,
    A_k = sum_u S_k(u) (W S_k)(u),      D_k = sum_u S_k(u) d(u),      d = W 1,

with w(u, v) = exp(-||F(u) - F(v)||^2 / sigma_i^2) * exp(-||X(u) - X(v)||^2 / sigma_x^2) for
||X(u) - X(v)|| < r and 0 otherwise (w(u, u) = 1 is inside the window). Nothing is
approximated: W S_k is the exact windowed sum (see :mod:`wnet.affinity`), not the
"class-mean" shortcut some public code uses, which optimises a different objective.

Memory stays O(B * K * H * W): W is symmetric, so per image

    dJ / dS_k(u) = -(2 (W S_k)(u) / D_k - A_k d(u) / D_k^2),

and a custom autograd Function keeps only S, W S and d for the backward instead of a
(B, K, H, W, window) graph. The image is data: no gradient flows to it.

Intensity scale: ``sigma_i`` = 10 is meant for features F on the 0-255 scale; use
:func:`ncut_features` to turn a [0, 1] image into 0-255 RGB or BT.601 grey features.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from wnet import window_kernel
from wnet.affinity import pair_weights, use_kernel, window_apply, window_offsets

# ITU-R BT.601 luma weights (R, G, B): the usual grey conversion (also OpenCV's).
BT601 = (0.299, 0.587, 0.114)


def ncut_features(image: torch.Tensor, mode: str = "rgb") -> torch.Tensor:
    """Turn a [0, 1] image into the 0-255 features F compared by the N-Cut intensity kernel.

    Args:
        image: intensities in [0, 1] (RGB with 3 channels, or already grey with 1).
        mode: ``'rgb'`` keeps the 3 channels; ``'grey'`` takes the BT.601 luma
            0.299 R + 0.587 G + 0.114 B (a 1-channel image is used as is).

    Shape:
        image: (B, 3, H, W) or (B, 1, H, W); returns (B, 3, H, W) for 'rgb', (B, 1, H, W) for 'grey'.

    References:
        ITU-R Recommendation BT.601 (luma weights); Xia & Kulis 2017, sec. 3.1 (sigma_i on 0-255).
    """
    if image.dim() != 4:
        raise ValueError(f"ncut_features: expected image of shape (B, C, H, W), got {tuple(image.shape)}")
    c = image.shape[1]
    if mode not in ("rgb", "grey"):
        raise ValueError(f"ncut_features: mode must be 'rgb' or 'grey', got {mode!r}")
    if mode == "rgb" and c != 3:
        raise ValueError(f"ncut_features: mode 'rgb' needs 3 channels, got {c}; use mode='grey' for 1")
    if mode == "grey" and c not in (1, 3):
        raise ValueError(f"ncut_features: mode 'grey' needs 1 or 3 channels, got {c}")
    image = image.detach()
    if not image.is_floating_point():
        raise ValueError(f"ncut_features: expected a float image in [0, 1], got dtype {image.dtype}")
    lo, hi = float(image.min()), float(image.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"ncut_features: expected intensities in [0, 1] (raw, not normalised), got range [{lo}, {hi}]"
        )
    if mode == "grey" and c == 3:
        r, g, b = BT601
        image = r * image[:, 0:1] + g * image[:, 1:2] + b * image[:, 2:3]  # (B, 1, H, W)
    return image * 255.0


def _pixel_dot(x: torch.Tensor, y: torch.Tensor, chunks: int = 8) -> torch.Tensor:
    """``(x * y).sum((2, 3))`` a few classes at a time, so the product never takes a full copy of x.

    (A BLAS dot product would need no temporary at all, but it sums sequentially and loses
    about 3 more digits in float32 than torch.sum's cascade summation.)

    Shape:
        x: (B, K, H, W); y: (B, K, H, W) or (B, 1, H, W); returns (B, K).
    """
    k = x.shape[1]
    step = max(1, -(-k // chunks))
    parts = []
    for k0 in range(0, k, step):
        yk = y if y.shape[1] == 1 else y[:, k0 : k0 + step]
        parts.append((x[:, k0 : k0 + step] * yk).sum((2, 3)))
    return torch.cat(parts, 1)


class _SoftNCut(torch.autograd.Function):
    """Per-image J = K - sum_k A_k / D_k with the closed-form backward (W symmetric)."""

    @staticmethod
    def forward(
        ctx, probs, feats, radius: float, sigma_x: float, sigma_i: float, backend: str
    ) -> torch.Tensor:
        b, k, h, w = probs.shape
        ctx.kernel = use_kernel(backend, probs, feats)
        if ctx.kernel:
            # One fused pass over S: the weights (never stored), W S, d, and A_k, D_k in float64.
            ws, d, a, den = window_kernel.ncut_terms(probs, window_offsets(radius), feats, sigma_x, sigma_i)
        else:
            offsets, weights = pair_weights(feats, radius, sigma_x, sigma_i, backend="eager")  # (B, M, H, W)
            ws = window_apply(probs, offsets, weights, 1.0, backend="eager")  # (B, K, H, W): W S_k
            ones = probs.new_ones(b, 1, h, w)
            d = window_apply(ones, offsets, weights, 1.0, backend="eager")  # (B, 1, H, W): d = W 1
            a = _pixel_dot(probs, ws)  # (B, K): A_k
            den = _pixel_dot(probs, d)  # (B, K): D_k
        # D_k = 0 only when S_k is 0 everywhere (d >= 1), and then A_k = 0: count that class as 0.
        den_safe = torch.where(den > 0, den, torch.ones_like(den))
        j = (k - (a / den_safe).sum(1)).to(probs.dtype)  # (B,); float64 sums stay float64 until here
        a, den_safe = a.to(probs.dtype), den_safe.to(probs.dtype)
        # Any NaN/Inf in S reaches A_k (through S(u) (W S)(u), as w(u, u) = 1), so testing the
        # (B, K) sums replaces a full pass over S; the full tests only run to word the error.
        finite = bool(torch.isfinite(j.sum() + a.sum() + den_safe.sum()))  # one sync; may overflow, so:
        if not finite and not bool(torch.isfinite(a).all() and torch.isfinite(den_safe).all()):
            if not bool(torch.isfinite(probs).all()):
                raise ValueError("soft_ncut_loss: probs contain NaN or Inf")
            raise ValueError(f"soft_ncut_loss: A_k or D_k overflowed {probs.dtype}; are probs probabilities?")
        ctx.save_for_backward(probs, ws, d, a, den_safe)  # probs: already kept alive by the softmax
        return j

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_j: torch.Tensor):
        probs, ws, d, a, den = ctx.saved_tensors
        g = grad_j[:, None]  # (B, 1)
        c_ws = -2.0 * g / den  # (B, K): -2 / D_k
        c_d = g * a / (den * den)  # (B, K): A_k / D_k^2
        # dJ/dS_k(u) = -(2 (W S_k)(u) / D_k - A_k d(u) / D_k^2), built in one (B, K, H, W) buffer.
        if ctx.kernel:
            grad = window_kernel.ncut_grad(ws, d, c_ws, c_d)
        else:
            grad = torch.mul(ws, c_ws[:, :, None, None])
            grad.addcmul_(d, c_d[:, :, None, None])
        bad = ~(torch.isfinite(c_ws) & torch.isfinite(c_d))  # (B, K)
        if bool(bad.any()):
            _vanishing_classes_grad(grad, probs, ws, d, g, bad)
        return grad, None, None, None, None, None


def _vanishing_classes_grad(grad, probs, ws, d, g, bad) -> None:
    """Recompute, in float64, the gradient of the classes whose float32 coefficients overflowed.

    A class whose probabilities all fall below ~1e-23 (a logit gap of ~55-60; seed 0 of
    bsds500_cpu.yaml reached it at step 1912) has D_k^2 and A_k underflow to 0 in float32, so A_k / D_k^2 is
    0 / 0 = NaN and one step turns every weight NaN. The gradient itself is harmless: it does
    not change when S_k is scaled (A_k scales as c^2, D_k and (W S_k) as c), so it is of the
    order of a normal class's; float64 holds the sums. Only classes that would otherwise give
    NaN or Inf take this path, so every finite gradient stays bit for bit what it was.

    Shape:
        grad, probs, ws: (B, K, H, W), updated in place; d: (B, 1, H, W); g: (B, 1); bad: (B, K).
    """
    bi, ki = bad.nonzero().unbind(1)  # (N,) each: the (image, class) pairs to redo
    s, w_s, deg = probs[bi, ki].double(), ws[bi, ki].double(), d[bi, 0].double()  # (N, H, W)
    den, a = (s * deg).sum((1, 2)), (s * w_s).sum((1, 2))  # (N,)
    den = torch.where(den > 0, den, torch.ones_like(den))  # S_k == 0: W S_k == 0, the gradient is 0
    c_ws, c_d = -2.0 / den, a / (den * den)  # (N,)
    exact = g[bi].double()[:, :, None] * (c_ws[:, None, None] * w_s + c_d[:, None, None] * deg)
    grad[bi, ki] = exact.to(grad.dtype)


def _check(probs: torch.Tensor, image: torch.Tensor, radius: float, sigma_x: float, sigma_i: float) -> None:
    if probs.dim() != 4:
        raise ValueError(f"soft_ncut_loss: probs must be (B, K, H, W), got shape {tuple(probs.shape)}")
    if image.dim() != 4:
        raise ValueError(f"soft_ncut_loss: image must be (B, C, H, W), got shape {tuple(image.shape)}")
    if probs.shape[0] != image.shape[0] or probs.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"soft_ncut_loss: probs {tuple(probs.shape)} and image {tuple(image.shape)} must share "
            "batch size B and spatial size (H, W)"
        )
    if not (radius >= 1):
        raise ValueError(f"soft_ncut_loss: radius must be >= 1 pixel, got {radius}")
    if not (sigma_x > 0 and sigma_i > 0):
        raise ValueError(f"soft_ncut_loss: sigma_x and sigma_i must be > 0, got {sigma_x}, {sigma_i}")
    if not probs.is_floating_point():
        raise ValueError(f"soft_ncut_loss: probs must be floating point, got {probs.dtype}")
    # A NaN/Inf anywhere makes the sum non-finite; the sum is one fast pass, the full test runs only
    # if it fails (huge finite values can overflow the sum).
    if (
        image.is_floating_point()
        and not bool(torch.isfinite(image.sum()))
        and not bool(torch.isfinite(image).all())
    ):
        raise ValueError("soft_ncut_loss: image contains NaN or Inf")


def soft_ncut_loss(
    probs: torch.Tensor,
    image: torch.Tensor,
    radius: float = 5.0,
    sigma_x: float = 4.0,
    sigma_i: float = 10.0,
    backend: str = "auto",
) -> torch.Tensor:
    """Exact soft N-Cut loss, computed per image and averaged over the batch.

    Args:
        probs: soft class maps S (e.g. a softmax over K), summing to 1 over K.
        image: features F on the 0-255 scale (grey or RGB; see :func:`ncut_features`).
            Treated as data: no gradient flows to it.
        radius: window radius r in pixels; pairs at distance >= r have no affinity.
        sigma_x: spatial bandwidth (pixels).
        sigma_i: intensity bandwidth, on the scale of ``image`` (10 for 0-255).
        backend: ``'auto'`` (default: the fused C kernel for CPU float tensors when it builds,
            else PyTorch ops), ``'eager'`` or ``'kernel'``; see :mod:`wnet.affinity`. All give the
            same loss and gradient up to float rounding.

    Returns:
        A scalar tensor in [0, K] (float32, or float64 for float64 ``probs``). Under bf16/fp16
        autocast the loss is still computed in float32.

    Shape:
        probs: (B, K, H, W); image: (B, C, H, W).

    References:
        Xia & Kulis 2017, "W-Net", eq. 3 (soft N-Cut); Shi & Malik 2000, eq. 11 (affinity).
    """
    _check(probs, image, radius, sigma_x, sigma_i)
    dtype = probs.dtype if probs.dtype in (torch.float32, torch.float64) else torch.float32
    with torch.autocast(device_type=probs.device.type, enabled=False):
        probs = probs.to(dtype)
        feats = image.detach().to(device=probs.device, dtype=dtype)
        return _SoftNCut.apply(probs, feats, radius, sigma_x, sigma_i, backend).mean()


def image_ncut_loss(
    probs: torch.Tensor,
    images: torch.Tensor,
    radius: float = 5.0,
    sigma_x: float = 4.0,
    sigma_i: float = 10.0,
    features: str = "rgb",
) -> torch.Tensor:
    """:func:`soft_ncut_loss` of ``probs`` on the features of images in [0, 1]: what W-Net trains on.

    Args:
        probs: soft class maps S. images: the images in [0, 1]; grey images (C = 1) always use the
            grey feature. features: ``'rgb'`` or ``'grey'`` (:func:`ncut_features`). radius,
            sigma_x, sigma_i: as :func:`soft_ncut_loss` (sigma_i on the 0-255 scale).

    Shape:
        probs: (B, K, H, W); images: (B, C, H, W); returns a scalar.

    References:
        Xia & Kulis 2017, sec. 3.2 (the soft N-Cut on pixel intensities and positions).
    """
    mode = features if images.shape[1] == 3 else "grey"  # grey images have only the grey feature
    feats = ncut_features(images, mode).contiguous()  # (B, C', H, W) on the 0-255 scale
    return soft_ncut_loss(probs.contiguous(), feats, radius=radius, sigma_x=sigma_x, sigma_i=sigma_i)


class SoftNCutLoss(nn.Module):
    """Module form of :func:`soft_ncut_loss` with fixed radius and bandwidths."""

    def __init__(
        self, radius: float = 5.0, sigma_x: float = 4.0, sigma_i: float = 10.0, backend: str = "auto"
    ) -> None:
        super().__init__()
        if not (radius >= 1):
            raise ValueError(f"SoftNCutLoss: radius must be >= 1 pixel, got {radius}")
        self.radius, self.sigma_x, self.sigma_i = float(radius), float(sigma_x), float(sigma_i)
        self.backend = backend

    def forward(self, probs: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return soft_ncut_loss(probs, image, self.radius, self.sigma_x, self.sigma_i, self.backend)

    def extra_repr(self) -> str:
        return (
            f"radius={self.radius}, sigma_x={self.sigma_x}, sigma_i={self.sigma_i}, backend={self.backend!r}"
        )
