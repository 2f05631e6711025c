"""Image (+ label-map) transforms, one pipeline for labelled and unlabelled data.

torchvision.transforms.v2 with ``tv_tensors.Mask``: every geometric op is drawn once and
applied to both the image and its mask; v2 resizes a ``Mask`` with nearest-neighbour
interpolation, so no new label value is ever invented. Unlabelled data calls the same pipeline
with the image alone, so W-Net and the supervised baselines see identical augmentation.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


class JointTransform:
    """Wrap a v2 pipeline so that it maps plain tensors ``(image, mask) -> (image, mask)``, or
    ``image -> image`` when called without a mask.

    Shape: image (C, H, W) float in [0, 1] -> (C, H', W') float32; mask (H, W) integer ->
    (H', W') int64.
    """

    def __init__(self, pipeline: v2.Transform):
        self.pipeline = pipeline

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        if mask is None:
            if image.ndim != 3:
                raise ValueError(f"expected an image (C, H, W), got {tuple(image.shape)}")
            return self.pipeline(tv_tensors.Image(image)).as_subclass(torch.Tensor).float()
        if image.ndim != 3 or mask.ndim != 2 or image.shape[-2:] != mask.shape:
            raise ValueError(
                f"expected image (C, H, W) and mask (H, W) of one size, got "
                f"{tuple(image.shape)} and {tuple(mask.shape)}"
            )
        image, mask = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask.long()))
        return image.as_subclass(torch.Tensor).float(), mask.as_subclass(torch.Tensor).long()

    def __repr__(self) -> str:
        return f"JointTransform({self.pipeline})"


def make_transforms(
    train: bool,
    size: int | tuple[int, int] = 0,
    scale: tuple[float, float] = (0.5, 2.0),
    flip: bool = True,
    ignore_index: int | None = None,
) -> JointTransform:
    """Standard augmentation for segmentation, labelled (image, mask) or unlabelled (image).

    Training: resize so that the short side is ``max(size) * s``, ``s ~ U(scale)``, random crop
    of ``size`` (padded where the resized image is smaller), random horizontal flip. Evaluation: resize to ``size``
    (an int sets the short side, a tuple the exact (H, W)); ``size=0`` keeps full resolution.

    Padding: the image gets 0 and the mask ``ignore_index``, so padded pixels count in no loss
    or metric. Without an ``ignore_index`` both are padded by reflection instead, which keeps
    every padded label true to the (reflected) image content.

    Args:
        train: augmentation (True) or deterministic evaluation resize (False).
        size: crop / resize size; int (square crop) or (H, W). Training requires size > 0.
        scale: range of the random scale factor.
        flip: random horizontal flips (training only).
        ignore_index: mask fill value for padding.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or min(hw) < 0:
        raise ValueError(f"size must be an int or (H, W) of non-negative ints, got {size!r}")
    if not train:
        if min(hw) == 0:
            return JointTransform(v2.Identity())
        return JointTransform(v2.Resize(size, antialias=True))
    if min(hw) == 0:
        raise ValueError("training transforms need a crop size > 0")
    lo, hi = scale
    if not 0 < lo <= hi:
        raise ValueError(f"scale must satisfy 0 < lo <= hi, got {scale!r}")
    base = max(hw)
    if ignore_index is None:
        crop = v2.RandomCrop(hw, pad_if_needed=True, padding_mode="reflect")
    else:
        fill = {tv_tensors.Image: 0.0, tv_tensors.Mask: ignore_index}
        crop = v2.RandomCrop(hw, pad_if_needed=True, fill=fill, padding_mode="constant")
    ops: list[v2.Transform] = [
        v2.RandomResize(max(1, round(base * lo)), round(base * hi) + 1, antialias=True),
        crop,
    ]
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    return JointTransform(v2.Compose(ops))
