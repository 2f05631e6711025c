"""The embedded default dataset: deterministic images of overlapping textured shapes.

Every image is a pure function of ``(seed, index)``, so the default run downloads nothing and
is reproducible. Each image has 3-6 overlapping shapes (ellipses, rectangles, triangles) over
a background, every region in a distinct colour and one of four textures (flat, stripes,
checker, blotches), plus Gaussian noise. The label map gives the region each pixel belongs to
(0 = background, 1.. = shapes in drawing order), so segmentations can be scored.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

# Well-separated RGB colours; regions draw without replacement, so neighbours always differ.
PALETTE = np.array(
    [
        [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
        [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40],
        [128, 0, 0], [170, 255, 195], [128, 128, 0], [0, 0, 128], [128, 128, 128], [255, 255, 255], [20, 20, 20],
    ],
    dtype=np.float32,
)  # fmt: skip


def _texture(kind: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A brightness modulation in [-1, 1] (H, W) for one region."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        return np.zeros((h, w), np.float32)
    if kind == 1:  # stripes at a random angle and period
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 10)
        return np.sign(np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)).astype(
            np.float32
        )
    if kind == 2:  # checkerboard
        cell = int(rng.integers(3, 8))
        return (((yy // cell + xx // cell) % 2) * 2 - 1).astype(np.float32)
    noise = rng.standard_normal((h // 4 + 1, w // 4 + 1)).astype(np.float32)  # smooth blotches
    return np.clip(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), -1, 1)


def make_image(index: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (image uint8 (H, W, 3) RGB, labels int64 (H, W)) for ``index``."""
    rng = np.random.default_rng([seed, index])
    h = w = size
    n_shapes = int(rng.integers(3, 7))
    colours = PALETTE[rng.permutation(len(PALETTE))[: n_shapes + 1]]
    labels = np.zeros((h, w), np.int64)
    for s in range(1, n_shapes + 1):
        mask = np.zeros((h, w), np.uint8)
        kind = rng.integers(3)
        cy, cx = rng.uniform(0.15, 0.85, 2) * size
        r = rng.uniform(0.12, 0.3) * size
        if kind == 0:
            axes = (int(r), int(r * rng.uniform(0.5, 1.0)))
            cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        elif kind == 1:
            x0, y0 = int(cx - r), int(cy - r * rng.uniform(0.5, 1))
            cv2.rectangle(mask, (x0, y0), (int(cx + r), int(cy + r)), 1, -1)
        else:
            angles = rng.uniform(0, 2 * np.pi, 3)
            pts = np.stack([cx + r * 1.3 * np.cos(angles), cy + r * 1.3 * np.sin(angles)], 1).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
        labels[mask > 0] = s
    image = np.zeros((h, w, 3), np.float32)
    for s in range(n_shapes + 1):
        region = labels == s
        if not region.any():
            continue
        tex = _texture(int(rng.integers(4)), h, w, rng)
        shade = colours[s][None, None, :] * (1 + 0.15 * tex[..., None])
        image[region] = shade[region]
    image += rng.normal(0, 6.0, image.shape).astype(np.float32)  # sensor-like noise, 0-255 scale
    # relabel so that ids are contiguous over the regions that survived occlusion
    _, labels = np.unique(labels, return_inverse=True)
    return np.clip(image, 0, 255).astype(np.uint8), labels.reshape(h, w)


class ProceduralShapes(Dataset):
    """Deterministic procedural images with ground-truth label maps.

    Args:
        num_images: dataset length.
        size: square image side, pixels.
        seed: dataset seed; train and eval splits use different seeds.
        in_channels: 3 (RGB) or 1 (grey).
        flip: random horizontal flips (training).

    Returns items ``{"image": (C, H, W) float in [0, 1], "label": (H, W) int64, "name": str}``.
    """

    def __init__(
        self, num_images: int, size: int = 64, seed: int = 0, in_channels: int = 3, flip: bool = False
    ):
        self.num_images, self.size, self.seed = num_images, size, seed
        self.in_channels, self.flip = in_channels, flip

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> dict:
        image, labels = make_image(index, self.size, self.seed)
        if self.in_channels == 1:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        y = torch.from_numpy(labels)
        if self.flip and torch.rand(()) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return {"image": x, "label": y, "name": f"shapes_{self.seed}_{index:05d}"}
