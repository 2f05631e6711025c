"""Datasets from the config: the one place that turns ``DataConfig`` into labelled Dataset objects.

Used by the supervised trainer, by W-Net training on labelled data (labels unused) and by the
comparison, so every method sees exactly the same images, splits and transforms.
"""

from __future__ import annotations

from data.paired import PairedFolderDataset
from data.transforms import make_transforms
from data.voc import VOCSegmentation
from wnet.config import Config

LABELLED = ("paired", "voc")


def ignore_index(cfg: Config) -> int | None:
    """``data.ignore_index`` with -1 meaning none."""
    return None if cfg.data.ignore_index < 0 else cfg.data.ignore_index


def build_labelled(cfg: Config, split: str, train: bool):
    """A labelled dataset for ``split`` with training augmentation (``train``) or the eval resize.

    Items are ``{"image": (C, H, W) float in [0, 1], "label": (H, W) int64, "name": str}``.
    """
    d = cfg.data
    ign = ignore_index(cfg)
    size = d.image_size if train else d.eval_size
    tf = make_transforms(train, size, scale=tuple(d.scale), flip=d.flip and train, ignore_index=ign)
    if d.name == "paired":
        if not d.root:
            raise ValueError("data.root must be set for data.name=paired")
        return PairedFolderDataset(
            d.root,
            split,
            image_dir=d.image_dir,
            mask_dir=d.mask_dir,
            num_classes=d.num_classes,
            ignore_index=ign,
            binary_255=d.binary_255,
            transform=tf,
            in_channels=cfg.model.in_channels,
            val_fraction=d.val_fraction,
            classes_file=d.classes_file or None,
        )
    if d.name == "voc":
        return VOCSegmentation(
            d.root, split, download=d.download, transform=tf, in_channels=cfg.model.in_channels
        )
    raise ValueError(f"data.name={d.name!r} is not labelled; expected one of {LABELLED}")
