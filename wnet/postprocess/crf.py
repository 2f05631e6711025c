"""Conditional-random-field smoothing of soft class maps (W-Net's first post-processing step).

Two implementations of the same model, chosen by ``CRFParams.kind``:

* ``dense``: the fully connected CRF of Krähenbühl & Koltun (2011) through ``pydensecrf``
  (permutohedral-lattice filtering over the whole image, CPU, one image per process).
* ``torch``: mean-field inference restricted to a local window (ConvCRF, Teichmann & Cipolla
  2018), batched, on CPU or GPU. Its kernels are built and applied by the windowed affinity
  code that the soft N-Cut loss also uses (:mod:`wnet.affinity`).

Both use a Potts model with a smoothness kernel and an appearance (bilateral) kernel

    k(u, v) = w_g exp(-|p_u - p_v|^2 / (2 theta_g^2))
            + w_b exp(-|p_u - p_v|^2 / (2 theta_a^2) - |I_u - I_v|^2 / (2 theta_b^2)),

with positions p in pixels and colours I on the 0-255 scale (Krähenbühl & Koltun 2011, eq. 3;
Chen et al. 2015/2018 (DeepLab) for the default parameters). Each kernel is normalised
symmetrically, D^-1/2 K D^-1/2, as ``pydensecrf`` does by default, so the compat weights mean
the same thing in both implementations.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wnet.affinity import Offsets, pair_weights, window_apply
from wnet.postprocess.layouts import as_image_tensor, as_probs, as_uint8_image

__all__ = [
    "CRFParams",
    "as_image_tensor",
    "as_probs",
    "as_uint8_image",
    "crf_messages",
    "crf_weights",
    "dense_crf",
    "dense_crf_batch",
    "refine",
    "torch_crf",
]

_EPS = 1e-8
KINDS = ("dense", "torch", "none")


@dataclass
class CRFParams:
    """Which CRF, its kernels and its inference budget (DeepLab's defaults; the W-Net paper gives none)."""

    kind: str = "dense"  # dense (pydensecrf) | torch (windowed mean field) | none
    iterations: int = 5
    sxy_gaussian: float = 3.0  # smoothness kernel theta_gamma (DeepLab)
    compat_gaussian: float = 3.0
    sxy_bilateral: float = 80.0  # appearance kernel theta_alpha (DeepLab)
    srgb_bilateral: float = 13.0  # appearance kernel theta_beta
    compat_bilateral: float = 10.0
    radius: float = 7.0  # torch CRF window radius
    workers: int = 0  # process pool size for pydensecrf (0: all cores)

    def check(self) -> None:
        """Raise ValueError naming the first parameter out of its range."""
        if self.kind not in KINDS:
            raise ValueError(f"crf.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.iterations < 1:
            raise ValueError(f"crf.iterations must be >= 1, got {self.iterations}")
        for name in ("sxy_gaussian", "sxy_bilateral", "srgb_bilateral"):
            if not getattr(self, name) > 0:
                raise ValueError(f"crf.{name} must be > 0, got {getattr(self, name)}")
        for name in ("compat_gaussian", "compat_bilateral"):
            if getattr(self, name) < 0:
                raise ValueError(f"crf.{name} must be >= 0, got {getattr(self, name)}")
        if not self.radius > 1:
            raise ValueError(f"crf.radius must be > 1 pixel (a window with neighbours), got {self.radius}")
        if self.workers < 0:
            raise ValueError(f"crf.workers must be >= 0 (0: all cores), got {self.workers}")


def dense_crf(probs, image, params: CRFParams) -> np.ndarray:
    """Refine one image's soft class maps with ``pydensecrf`` (fully connected CRF).

    Args:
        probs: soft class maps S (numpy or torch), each pixel's K values summing to 1.
        image: the image, any layout accepted by :func:`as_uint8_image` (HxW, HxWx1,
            HxWx3 arrays, uint8 or float in [0, 1]; torch CxHxW or HxW).
        params: kernel widths, compat weights and number of mean-field iterations.

    Shape:
        probs: (K, H, W); image: (H, W[, C]) or (C, H, W); returns (K, H, W) float32.

    References:
        Krähenbühl & Koltun 2011 (eq. 3, Algorithm 1); Xia & Kulis 2017, sec. 4.1.
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    probs = as_probs(probs)
    k, h, w = probs.shape
    rgb = as_uint8_image(image, (h, w))  # (H, W, 3) uint8, C-contiguous
    unary = np.ascontiguousarray(unary_from_softmax(probs), dtype=np.float32)  # (K, H*W) = -log p
    crf = dcrf.DenseCRF2D(w, h, k)  # width first
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params.sxy_gaussian, compat=params.compat_gaussian)
    crf.addPairwiseBilateral(
        sxy=params.sxy_bilateral, srgb=params.srgb_bilateral, rgbim=rgb, compat=params.compat_bilateral
    )
    q = crf.inference(params.iterations)
    return np.asarray(q, dtype=np.float32).reshape(k, h, w)


def _dense_crf_job(args) -> np.ndarray:
    return dense_crf(*args)


def dense_crf_batch(probs_list, images, params: CRFParams, workers: int | None = None) -> list[np.ndarray]:
    """:func:`dense_crf` over several images in a process pool; the output order is the input's.

    Args:
        probs_list: K x H x W soft maps, one per image (sizes may differ between images).
        images: the matching images (see :func:`dense_crf`).
        workers: processes; ``None`` takes ``params.workers``; 0 means all cores, 1 a plain loop.

    Returns:
        list of (K, H, W) float32 arrays.
    """
    if len(probs_list) != len(images):
        raise ValueError(f"dense_crf_batch: {len(probs_list)} soft maps but {len(images)} images")
    workers = params.workers if workers is None else workers
    if workers < 0:
        raise ValueError(f"dense_crf_batch: workers must be >= 0, got {workers}")
    workers = min(workers or os.cpu_count() or 1, len(probs_list))
    # torch tensors become numpy here so that the worker processes never touch torch.
    probs_np = [as_probs(p) for p in probs_list]
    jobs = [(p, as_uint8_image(im, p.shape[-2:]), params) for p, im in zip(probs_np, images, strict=True)]
    if workers <= 1:
        return [_dense_crf_job(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_dense_crf_job, jobs))


def _normalised(offsets: Offsets, weights: torch.Tensor) -> torch.Tensor:
    """Symmetric normalisation D^-1/2 W D^-1/2, with D the row sums including w(u, u) = 1.

    ``weights[:, m, y, x]`` pairs u = (y, x) with v = u + o_m, so it is scaled by
    d_u^-1/2 d_v^-1/2; outside the image the weight is 0 and the padding value does not matter.

    Shape:
        weights: (B, M, H, W); returns (B, M, H, W).
    """
    ones = weights.new_ones(weights.shape[0], 1, *weights.shape[-2:])
    inv = window_apply(ones, offsets, weights, self_weight=1.0)[:, 0].rsqrt()  # (B, H, W): d^-1/2
    r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    h, w = inv.shape[-2:]
    padded = F.pad(inv[:, None], (r, r, r, r), value=1.0)[:, 0]  # (B, H + 2r, W + 2r)
    out = weights * inv[:, None]  # d_u^-1/2
    for m, (dy, dx) in enumerate(offsets):
        out[:, m].mul_(padded[:, r + dy : r + dy + h, r + dx : r + dx + w])  # d_v^-1/2
    return out


def crf_weights(
    images: torch.Tensor, params: CRFParams, normalize: bool = True
) -> tuple[Offsets, torch.Tensor]:
    """The CRF's combined pairwise weights over the half-window, ready for ``window_apply``.

    ``compat_g * K_g + compat_b * K_b``, where both kernels come from
    :func:`wnet.affinity.pair_weights` with ``sigma = sqrt(2) * theta`` (the CRF writes
    ``exp(-d^2 / (2 theta^2))``, the affinity code ``exp(-d^2 / sigma^2)``).

    Args:
        images: colour image I on any scale accepted by :func:`as_image_tensor`
            (floats in [0, 1] or 0-255 integers; 1 channel is replicated to 3 as pydensecrf does).
        params: sxy_gaussian (theta_gamma), sxy_bilateral (theta_alpha), srgb_bilateral (theta_beta),
            compat_gaussian, compat_bilateral, radius (window radius, pixels).
        normalize: normalise each kernel symmetrically (as pydensecrf) before combining.

    Shape:
        images: (B, C, H, W); returns offsets (M) and weights (B, M, H, W).
    """
    if not params.radius > 1:
        raise ValueError(f"crf.radius must be > 1 pixel (a window with neighbours), got {params.radius}")
    rgb = as_image_tensor(images)  # (B, 3, H, W) float, 0-255
    offsets, k_g = pair_weights(rgb, params.radius, math.sqrt(2) * params.sxy_gaussian, None)
    _, k_b = pair_weights(
        rgb, params.radius, math.sqrt(2) * params.sxy_bilateral, math.sqrt(2) * params.srgb_bilateral
    )
    if normalize:
        k_g, k_b = _normalised(offsets, k_g), _normalised(offsets, k_b)
    return offsets, params.compat_gaussian * k_g + params.compat_bilateral * k_b


def crf_messages(q: torch.Tensor, offsets: Offsets, weights: torch.Tensor) -> torch.Tensor:
    """Mean-field message ``sum_{v != u} k(u, v) Q_v(l)`` for every label l.

    With the Potts compatibility mu(l, l') = [l != l'] the pairwise energy of label l at u is
    ``sum_v k(u, v) (1 - Q_v(l))``, i.e. minus this message up to a per-pixel constant that
    the softmax cancels.

    Shape:
        q: (B, K, H, W); weights: (B, M, H, W); returns (B, K, H, W).
    """
    return window_apply(q, offsets, weights, self_weight=0.0)


def torch_crf(
    probs: torch.Tensor, images: torch.Tensor, params: CRFParams, normalize: bool = True
) -> torch.Tensor:
    """Windowed mean-field CRF (ConvCRF-style), batched, on the device of ``probs``.

    Q^0 = probs; Q^{t+1} = softmax_l(log probs + message(Q^t)) for ``params.iterations`` steps.

    Args:
        probs: soft class maps S (rows sum to 1 over K).
        images: the images (floats in [0, 1] or 0-255 integers), 1 or 3 channels.
        params: see :func:`crf_weights`; ``iterations`` mean-field steps.
        normalize: see :func:`crf_weights`.

    Shape:
        probs: (B, K, H, W); images: (B, C, H, W); returns (B, K, H, W) float32.

    References:
        Krähenbühl & Koltun 2011 (mean field, eq. 4-5); Teichmann & Cipolla 2018 (ConvCRF).
    """
    if probs.dim() != 4:
        raise ValueError(f"torch_crf: probs must have shape (B, K, H, W), got {tuple(probs.shape)}")
    if images.dim() != 4 or images.shape[0] != probs.shape[0] or images.shape[-2:] != probs.shape[-2:]:
        raise ValueError(
            f"torch_crf: images must have shape (B, C, H, W) = ({probs.shape[0]}, C, "
            f"{probs.shape[2]}, {probs.shape[3]}), got {tuple(images.shape)}"
        )
    probs = probs.detach().float()
    offsets, weights = crf_weights(images.to(probs.device), params, normalize)
    unary = probs.clamp_min(_EPS).log()  # -U, (B, K, H, W)
    q = probs
    for _ in range(params.iterations):
        q = torch.softmax(unary + crf_messages(q, offsets, weights), dim=1)
    return q


def refine(probs, images, params: CRFParams):
    """Refine soft class maps with the CRF chosen by ``params.kind`` (dense | torch | none).

    Args:
        probs: one image's maps (K, H, W) or a batch (B, K, H, W); numpy or torch.
        images: the matching image(s): (C, H, W)/(H, W, C)/(H, W) for one, (B, C, H, W) or a
            list for a batch.

    Returns:
        refined maps of the same shape, and the same type (numpy/torch, device) as ``probs``.
    """
    if params.kind == "none":
        return probs
    if params.kind not in ("dense", "torch"):
        raise ValueError(f"crf.kind must be 'dense', 'torch' or 'none', got {params.kind!r}")
    is_torch = isinstance(probs, torch.Tensor)
    p = probs if is_torch else torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32))
    single = p.dim() == 3
    if single:
        p, images = p[None], [images]
    if p.dim() != 4:
        raise ValueError(f"refine: probs must be (K, H, W) or (B, K, H, W), got {tuple(p.shape)}")
    if params.kind == "dense":
        out = torch.from_numpy(np.stack(dense_crf_batch(list(p), list(images), params)))
    else:
        size = tuple(p.shape[-2:])
        ims = torch.stack([torch.from_numpy(as_uint8_image(im, size)).permute(2, 0, 1) for im in images])
        out = torch_crf(p, ims.to(p.device), params)
    out = out[0] if single else out
    return out.to(device=p.device, dtype=p.dtype) if is_torch else out.cpu().numpy()
