"""From an image to its segmentation in one call: the W-Net (in tiles), the CRF and the hierarchy.

    import wnet
    model = wnet.pretrained("bsds500_cpu")
    seg = wnet.segment_image(model, PIL.Image.open("photo.jpg"))  # or a numpy array
    seg.labels, seg.crf_labels, seg.ucm2

Composes :func:`wnet.tiled.predict_reduced` (the soft maps, tiled above ``max_pixels``) and
:func:`wnet.postprocess.postprocess_many` (CRF + hierarchy, on a working grid above
``post_max_pixels``: :mod:`wnet.postprocess.working`). ``task=segment`` runs the same function on
every image it reads, so a notebook and the command line give the same labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from wnet.postprocess.pipeline import Stages, postprocess_many
from wnet.postprocess.working import crf_labels_at, upsample_ucm2, work_factor
from wnet.tiled import predict_reduced


@dataclass
class Tiling:
    """How much one step may hold: the model's tiles and the post-processing's working grid.

    The defaults keep a 12 MP photo under 3 GB at K = 64: a forward pass takes about 0.9 KB per
    pixel with the bsds500_cpu W-Net, pydensecrf about 2 KB per working pixel (five K x N float
    arrays and its lattices), the OWT hierarchy about 1.5 KB."""

    pad: int = 64  # px of mirror padding (and of context around each tile)
    max_pixels: int = 2**20  # most pixels in one forward pass (padding included)
    overlap: int = 64  # px of overlap between neighbouring tiles (blended)
    post_max_pixels: int = 2**19  # most pixels the CRF and the hierarchy work on
    amp: str = "none"  # bf16 autocast on CUDA, or none


@dataclass
class Segmentation:
    """One image's segmentation. ``scale`` is the working grid's factor f: (h, w) = (ceil(H / f),
    ceil(W / f)); at f = 1 (images within ``post_max_pixels``) every array has the image's size."""

    labels: np.ndarray  # (H, W) int64: argmax of the soft maps
    crf_labels: np.ndarray | None  # (H, W) int64 after the CRF (None without a CRF)
    ucm2: np.ndarray | None  # (2h+1, 2w+1) on the working grid (None without a hierarchy)
    probs: np.ndarray  # (K, h, w) float32 soft maps on the working grid
    refined: np.ndarray | None  # (K, h, w) after the CRF
    scale: int = 1
    seconds: dict[str, float] = field(default_factory=dict)  # model, crf, hierarchy

    def full_ucm2(self) -> np.ndarray | None:
        """The ucm2 at the image's size, (2H+1, 2W+1): each working pixel an f x f block."""
        return None if self.ucm2 is None else upsample_ucm2(self.ucm2, self.labels.shape, self.scale)


def as_model_input(image, channels: int = 3) -> np.ndarray:
    """A numpy or PIL image as float32 (H, W, channels) in [0, 1], RGB, as the loaders read files.

    Accepted: PIL images of any mode; arrays (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha is
    dropped), uint8 (/255), uint16 (/65535) or float in [0, 1]. Grey is replicated to 3 channels,
    colour turned into luma (ITU-R BT.601) for a 1-channel model.
    """
    if hasattr(image, "mode") and hasattr(image, "convert"):  # a PIL image
        image = image if image.mode in ("L", "RGB", "RGBA", "I;16") else image.convert("RGB")
    a = np.asarray(image)
    if a.dtype == np.uint8 or a.dtype == np.uint16:
        a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 65535.0)
    elif np.issubdtype(a.dtype, np.floating):
        if a.size and not (np.nanmin(a) >= 0 and np.nanmax(a) <= 1):
            raise ValueError(
                f"a float image must lie in [0, 1], got [{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]"
            )
        a = a.astype(np.float32)
    else:
        raise ValueError(f"image dtype must be uint8, uint16 or float in [0, 1], got {a.dtype}")
    a = a[..., None] if a.ndim == 2 else a
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) < 1:
        raise ValueError(f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    a = a[..., :3] if a.shape[2] == 4 else a
    if channels == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif channels == 1 and a.shape[2] == 3:
        a = (a @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return np.ascontiguousarray(a)


@torch.no_grad()
def segment_images(
    model, images: list[np.ndarray], stages: Stages, ucm: str | None = "owt", tiling: Tiling | None = None,
    workers: int | None = None,
) -> list[Segmentation]:  # fmt: skip
    """:func:`segment_image` for several images of one size, in one model pass (tiled when large)
    and one post-processing pool (``workers``: as :func:`wnet.postprocess.postprocess_many`).

    Shape:
        images: each (H, W, C) float32 in [0, 1] (:func:`as_model_input`); see :class:`Segmentation`.
    """
    t = tiling or Tiling()
    h, w = images[0].shape[:2]
    f = work_factor(h, w, t.post_max_pixels)
    t0 = time.perf_counter()
    views = [torch.from_numpy(im).permute(2, 0, 1) for im in images]
    x = views[0][None] if len(views) == 1 else torch.stack(views)  # (B, C, H, W); one image: no copy
    labels, probs = predict_reduced(model, x, t.amp, t.pad, t.max_pixels, t.overlap, f)
    probs_np = list(probs.numpy())  # (K, h, w) each
    t_model = (time.perf_counter() - t0) / len(images)
    run_crf, ucms = stages.crf.kind != "none", (ucm,) if ucm else ()
    post = [None] * len(images)
    if run_crf or ucms:
        post = postprocess_many(probs_np, images, stages, ucms, workers=workers)
    out = []
    for lab, p, r in zip(labels.numpy(), probs_np, post, strict=True):
        seg = Segmentation(lab, None, None, p, None, f, {"model": t_model, "crf": 0.0, "hierarchy": 0.0})
        if r is not None:
            seg.seconds.update(r.seconds)
            seg.refined = r.refined if run_crf else None
            seg.crf_labels = crf_labels_at(lab, p, r.refined, f) if run_crf else None
            seg.ucm2 = r.ucm2[ucm] if ucm else None
        out.append(seg)
    return out


def segment_image(
    model, image, stages: Stages | None = None, ucm: str | None = "owt", tiling: Tiling | None = None
) -> Segmentation:  # fmt: skip
    """Segment one image: labels, CRF labels and the hierarchy (ucm2), at bounded memory.

    Args:
        model: a :class:`wnet.model.WNet` (e.g. :func:`wnet.pretrained`), on any device.
        image: a numpy array or a PIL image (:func:`as_model_input`).
        stages: the CRF and hierarchy parameters (default: the dense CRF and OWT-UCM's defaults);
            ``Stages(crf=CRFParams(kind="none"))`` skips the CRF.
        ucm: the hierarchy, a name of :data:`wnet.postprocess.HIERARCHIES`, or None for none.
        tiling: tile and working-grid sizes (:class:`Tiling`).

    Shape:
        image: (H, W[, C]); returns :class:`Segmentation` (labels (H, W), ucm2 (2h+1, 2w+1): the
        working grid's; :meth:`Segmentation.full_ucm2` at the image's size).

    References:
        Xia & Kulis 2017, sec. 4 (CRF, then hierarchical merging).
    """
    x = as_model_input(image, model.in_channels)
    return segment_images(model, [x], stages or Stages(), ucm, tiling, workers=1)[0]
