"""Pascal VOC 2012 semantic segmentation, in the same item format as ``PairedFolderDataset``.

The file lists and the download come from ``torchvision.datasets.VOCSegmentation``; images
are decoded with OpenCV like every other dataset here, and masks with PIL because they are
palette PNGs (OpenCV would expand the palette into colours instead of returning class ids).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import VOCSegmentation as _TorchvisionVOC

from wnet.datasets.images import read_image

VOC_NUM_CLASSES = 21  # background + 20 object classes
VOC_IGNORE_INDEX = 255  # object boundaries and difficult regions


class VOCSegmentation(Dataset):
    """Pascal VOC segmentation (20 classes + background; label 255 is ignored).

    Args:
        root: folder holding (or to receive) ``VOCdevkit/VOC<year>/``.
        split: ``"train"``, ``"val"`` or ``"trainval"`` (``ImageSets/Segmentation/<split>.txt``).
        year: VOC release, ``"2012"`` by default.
        download: fetch and extract the archive (about 2 GB) into ``root`` when it is missing.
            Off by default: nothing is downloaded unless asked.
        transform: joint ``(image, mask) -> (image, mask)``, e.g. ``make_transforms(...)``.
        in_channels: 3, or 1 for luma.

    Returns items ``{"image": (C, H, W) float32 in [0, 1], "label": (H, W) int64, "name": id}``;
    labels are 0..20 and 255 (``ignore_index``).

    Raises:
        FileNotFoundError: the data is missing and ``download`` is False (says how to get it).
    """

    num_classes = VOC_NUM_CLASSES
    ignore_index = VOC_IGNORE_INDEX

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        year: str = "2012",
        download: bool = False,
        transform: Callable | None = None,
        in_channels: int = 3,
    ):
        self.root, self.split = Path(root), split
        base = self.root / "VOCdevkit" / f"VOC{year}"
        split_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not download and not split_file.is_file():
            raise FileNotFoundError(
                f"Pascal VOC {year} not found: expected {split_file} (and JPEGImages/, SegmentationClass/ "
                f"under {base}). Download it with VOCSegmentation('{self.root}', download=True) or the "
                f"config override data.download=true, or extract VOCtrainval_11-May-2012.tar into {self.root}"
            )
        try:
            tv = _TorchvisionVOC(str(self.root), year=year, image_set=split, download=download)
        except RuntimeError as e:  # torchvision's own "not found or corrupted" message
            raise FileNotFoundError(f"Pascal VOC {year} under {base}: {e}") from None
        self.image_paths = [Path(p) for p in tv.images]
        self.mask_paths = [Path(p) for p in tv.masks]
        missing = [p for p in self.image_paths + self.mask_paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"VOC split '{split}' lists {missing[0]}, which does not exist")
        self.transform, self.in_channels = transform, in_channels

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_mask(self, index: int) -> np.ndarray:
        """(H, W) int64 class ids 0..20 and 255, from the palette PNG."""
        path = self.mask_paths[index]
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise ValueError(f"VOC mask {path}: expected a palette or grey PNG, got mode {im.mode}")
            m = np.array(im, dtype=np.int64)
        bad = np.setdiff1d(np.unique(m), [*range(VOC_NUM_CLASSES), VOC_IGNORE_INDEX])
        if bad.size:
            raise ValueError(f"VOC mask {path}: label {bad[0]} is neither a class (0..20) nor 255")
        return m

    def iter_masks(self) -> Iterator[np.ndarray]:
        """All label maps, untransformed, reading no image (for ``class_frequencies``)."""
        return (self.load_mask(i) for i in range(len(self)))

    def __getitem__(self, index: int) -> dict:
        image = read_image(self.image_paths[index], self.in_channels)  # (H, W, C)
        mask = self.load_mask(index)  # (H, W)
        if image.shape[:2] != mask.shape:
            raise ValueError(
                f"VOC mask {self.mask_paths[index]} is {mask.shape} but image "
                f"{self.image_paths[index]} is {image.shape[:2]} (HxW)"
            )
        x, y = torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(mask)
        if self.transform is not None:
            x, y = self.transform(x, y)
        return {"image": x, "label": y, "name": self.image_paths[index].stem}
