"""Paired image / label-map folders (CamVid, ISBI 2012, any ``images/`` + ``masks/`` layout).

Images and masks are matched by file stem. Folder names are templates in which ``{split}`` is
replaced by the split name, so CamVid's ``train/`` + ``trainannot/`` is
``image_dir="{split}", mask_dir="{split}annot"`` and ISBI 2012's split-less ``image/`` +
``label/`` is ``image_dir="image", mask_dir="label"`` with a deterministic split by index.
"""

from __future__ import annotations

import fnmatch
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from wnet.datasets.classes import load_classes
from wnet.datasets.images import IMAGE_EXTS, decode_file, read_image, shown

MASK_EXTS = (".png", ".bmp", ".tif", ".tiff", ".pgm")  # lossless only: a jpg mask would invent labels
LOSSY_MASK_EXTS = (".jpg", ".jpeg")  # read only with a mask_threshold (binary masks)


class MaskSizeError(ValueError):
    """A mask whose (H, W) differs from its image's (the message names both files and sizes)."""


def natural_key(path: Path) -> list:
    """Sort key where digit runs compare as numbers: 2.png < 10.png (ISBI's 0.png .. 29.png)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.stem)]


def carve_split(names: Sequence[str], heldout: Sequence[str] = (), select_fraction: float = 0.0) -> dict:
    """Positions of a training split's files in three disjoint parts, for evaluation on unseen data.

    Args:
        names: the split's image file names (``"0006R0_f00930.jpg"``), in the dataset's (natural) order.
        heldout: file-name globs (``fnmatch``, case-sensitive; ``"0006R0_*"``, ``"[0-5].png"``): the files
            that match any form ``"heldout"``, e.g. a whole video sequence that no model trains on.
        select_fraction: the last ``ceil(n * select_fraction)`` of the remaining n files form
            ``"select"`` (model selection, e.g. the checkpoint to keep); the rest is ``"train"``.

    Returns:
        ``{"train": [...], "heldout": [...], "select": [...]}``, positions in ascending order.

    Raises:
        ValueError: a glob list that matches no file, or no file left for ``"train"``.
    """
    held = [i for i, n in enumerate(names) if any(fnmatch.fnmatchcase(n, g) for g in heldout)]
    if heldout and not held:
        raise ValueError(
            f"heldout globs {list(heldout)} match none of the {len(names)} file names, e.g. {names[0]!r}"
        )
    taken = set(held)
    rest = [i for i in range(len(names)) if i not in taken]
    n_select = math.ceil(len(rest) * select_fraction)
    parts = {"train": rest[: len(rest) - n_select], "heldout": held, "select": rest[len(rest) - n_select :]}
    if not parts["train"]:
        raise ValueError(
            f"no training file left: {len(held)} of {len(names)} are held out and {n_select} kept for selection"
        )
    return parts


def _by_stem(folder: Path, exts: Sequence[str], what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {folder} does not exist")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in exts:
            if p.stem in files:
                raise ValueError(f"two {what} files share the stem '{p.stem}': {files[p.stem]} and {p}")
            files[p.stem] = p
    return files


def read_mask(path: str | Path, binary_255: bool = False, threshold: int | None = None) -> np.ndarray:
    """Read a label map as int64 (H, W).

    Args:
        path: a single-channel 8- or 16-bit label image (a 3-channel image is accepted only when
            its channels are equal, e.g. a grey PNG saved as RGB).
        binary_255: the mask stores two classes as 0/255 (ISBI 2012): map 255 -> 1; any other
            value is an error.
        threshold: a binary mask stored with noise (a JPEG's ringing at edges): label = mask >
            threshold (channels averaged). Overrides ``binary_255``.
    """
    m = decode_file(path, what="mask")
    if threshold is not None:
        grey = m.mean(axis=2) if m.ndim == 3 else m
        return (grey > threshold).astype(np.int64)
    if m.ndim == 3:
        if not all(np.array_equal(m[..., 0], m[..., c]) for c in range(1, m.shape[2])):
            raise ValueError(
                f"mask {path} has {m.shape[2]} different channels; expected a single-channel "
                "label image (convert colour-coded masks to class ids first)"
            )
        m = m[..., 0]
    m = m.astype(np.int64)
    if binary_255:
        bad = np.setdiff1d(np.unique(m), [0, 255])
        if bad.size:
            raise ValueError(f"mask {path}: binary_255 expects only 0 and 255, found {bad[0]}")
        m = m // 255
    return m


def _no_mask_error(image: Path, mask_folder: Path, n_missing: int) -> FileNotFoundError:
    """The error for an image without a usable mask; names a lossy mask when that is what is there."""
    lossy = [
        mask_folder / f"{image.stem}{e}" for e in (*LOSSY_MASK_EXTS, *(e.upper() for e in LOSSY_MASK_EXTS))
    ]
    found = next((p for p in lossy if p.is_file()), None)
    if found is not None:
        return FileNotFoundError(
            f"mask {found} is a JPEG: lossy compression invents label values along every edge, so it is "
            "refused; save masks as PNG, or for a binary mask set data.mask_threshold (e.g. 127)"
        )
    return FileNotFoundError(
        f"image {image} has no mask named '{image.stem}.*' in {mask_folder} ({n_missing} images lack a mask)"
    )


def _resize_image(image: np.ndarray, shape: tuple[int, int], path: Path, mask_path: Path) -> np.ndarray:
    """Resize an image to its mask's (H, W) when the aspect ratios agree within 1%."""
    h, w = image.shape[:2]
    if abs(h * shape[1] - w * shape[0]) > 0.01 * h * shape[1]:
        raise ValueError(
            f"image {path} is {h}x{w} and its mask {mask_path} {shape[0]}x{shape[1]}: the aspect ratios "
            "differ, so resize_to_mask cannot apply"
        )
    out = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return out[..., None] if out.ndim == 2 else out


class PairedFolderDataset(Dataset):
    """Images with per-pixel class labels from two folders, matched by file stem.

    Args:
        root: dataset folder.
        split: split name substituted for ``{split}``. For a split-less layout (no ``{split}`` in
            the folder names) it is ``"train"``, ``"val"`` or ``"all"``: the files, in natural
            order, are split by index, the LAST ``ceil(n * val_fraction)`` going to ``"val"``.
        image_dir, mask_dir: folder templates relative to ``root``.
        num_classes: C; labels must lie in ``[0, C)`` or equal ``ignore_index``. 0 takes C from
            ``classes_file``.
        ignore_index: the label excluded from losses and metrics (CamVid 11, VOC 255), or None.
        binary_255: masks hold 0/255 (ISBI 2012); they are mapped to 0/1.
        transform: joint ``(image, mask) -> (image, mask)``, e.g. ``make_transforms(...)``.
        in_channels: 3 (grey images are replicated) or 1 (colour converted to luma).
        val_fraction: split-less layouts only, see ``split``.
        indices: explicit positions in the sorted file list (overrides ``val_fraction``).
        warn_unpaired_masks: warn about masks that have no image (an image with no mask is an error).
        classes_file: optional class file (``wnet/datasets/classes/*.yaml`` or a shipped name such
            as ``"camvid"``); sets ``class_names`` and ``palette`` (else None).
        mask_threshold: binary masks: label = mask > threshold; also admits JPEG masks, which are
            otherwise refused (lossy compression invents labels along edges).
        resize_to_mask: resize each image to its mask's size when the aspect ratios agree (some
            public datasets ship images at a higher resolution than their masks).
        keep: picks positions among the split's image file names (natural order), after the
            split is made: e.g. ``lambda names: carve_split(names, ["0006R0_*"])["heldout"]``.

    Returns items ``{"image": (C, H, W) float32 in [0, 1], "label": (H, W) int64, "name": stem}``.

    Raises:
        FileNotFoundError: missing folder, no images, or an image without a mask (named).
        ValueError (on load): a mask of another size than its image (:class:`MaskSizeError`), or a
            label outside the class range other than ``ignore_index`` (file and value named).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        image_dir: str = "{split}",
        mask_dir: str = "{split}annot",
        num_classes: int = 0,
        ignore_index: int | None = None,
        binary_255: bool = False,
        transform: Callable | None = None,
        in_channels: int = 3,
        val_fraction: float = 0.0,
        indices: Sequence[int] | None = None,
        warn_unpaired_masks: bool = True,
        classes_file: str | Path | None = None,
        mask_threshold: int | None = None,
        resize_to_mask: bool = False,
        keep: Callable[[list[str]], Sequence[int]] | None = None,
    ):
        self.class_names, self.palette = load_classes(classes_file) if classes_file else (None, None)
        if num_classes == 0 and self.class_names is not None:
            num_classes = len(self.class_names)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 (or 0 with a classes_file), got {num_classes}")
        if self.class_names is not None and len(self.class_names) != num_classes:
            raise ValueError(
                f"num_classes={num_classes} but {classes_file} lists {len(self.class_names)} classes"
            )
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        self.root, self.split = Path(root), split
        self.num_classes, self.ignore_index, self.binary_255 = num_classes, ignore_index, binary_255
        self.transform, self.in_channels = transform, in_channels
        self.mask_threshold, self.resize_to_mask = mask_threshold, resize_to_mask
        img_folder = self.root / image_dir.format(split=split)
        mask_folder = self.root / mask_dir.format(split=split)
        images = _by_stem(img_folder, IMAGE_EXTS, "image")
        mask_exts = MASK_EXTS + (LOSSY_MASK_EXTS if mask_threshold is not None else ())
        masks = _by_stem(mask_folder, mask_exts, "mask")
        if not images:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) in {img_folder}")
        missing = [p for s, p in images.items() if s not in masks]
        if missing:
            raise _no_mask_error(missing[0], mask_folder, len(missing))
        orphans = sorted(set(masks) - set(images))
        if orphans and warn_unpaired_masks:
            warnings.warn(
                f"{len(orphans)} masks in {mask_folder} have no image, e.g. {masks[orphans[0]]}", stacklevel=2
            )
        self.image_paths = sorted(images.values(), key=natural_key)
        self.mask_paths = [masks[p.stem] for p in self.image_paths]
        chosen = self._select(split, "{split}" in image_dir or "{split}" in mask_dir, val_fraction, indices)
        if keep is not None:  # a part of the split (held-out files, a selection split)
            chosen = [chosen[i] for i in keep([self.image_paths[j].name for j in chosen])]
        self.image_paths = [self.image_paths[i] for i in chosen]
        self.mask_paths = [self.mask_paths[i] for i in chosen]
        if not self.image_paths:
            raise FileNotFoundError(f"split '{split}' of {self.root} is empty (val_fraction={val_fraction})")

    def _select(self, split: str, has_split: bool, val_fraction: float, indices) -> list[int]:
        n = len(self.image_paths)
        if indices is not None:
            bad = [i for i in indices if not -n <= i < n]
            if bad:
                raise ValueError(f"indices {bad[:3]} out of range for {n} files in {self.root}")
            return list(indices)
        if has_split:
            return list(range(n))
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        n_val = math.ceil(n * val_fraction)
        if split == "train":
            return list(range(n - n_val))
        if split == "val":
            return list(range(n - n_val, n))
        if split == "all":
            return list(range(n))
        raise ValueError(f"split-less layout: split must be 'train', 'val' or 'all', got '{split}'")

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_mask(self, index: int) -> np.ndarray:
        """The (H, W) int64 label map of item ``index``, checked against the class range."""
        path = self.mask_paths[index]
        m = read_mask(path, self.binary_255, self.mask_threshold)
        labels = m[m != self.ignore_index] if self.ignore_index is not None else m
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = labels.min() if labels.min() < 0 else labels.max()
            raise ValueError(
                f"mask {path}: label {bad} outside [0, {self.num_classes - 1}] "
                f"(ignore_index={self.ignore_index})"
            )
        return m

    def iter_masks(self) -> Iterator[np.ndarray]:
        """All label maps, untransformed, reading no image (for ``class_frequencies``)."""
        return (self.load_mask(i) for i in range(len(self)))

    def __getitem__(self, index: int) -> dict:
        image = read_image(self.image_paths[index], self.in_channels)  # (H, W, C) float32
        mask = self.load_mask(index)  # (H, W) int64
        if self.resize_to_mask and image.shape[:2] != mask.shape:
            image = _resize_image(image, mask.shape, self.image_paths[index], self.mask_paths[index])
        if image.shape[:2] != mask.shape:
            raise MaskSizeError(
                f"mask {self.mask_paths[index]} is {mask.shape[0]}x{mask.shape[1]} but image "
                f"{self.image_paths[index]} is {image.shape[0]}x{image.shape[1]} (HxW)"
            )
        x = torch.from_numpy(image).permute(2, 0, 1)  # (C, H, W)
        y = torch.from_numpy(mask)  # (H, W)
        if self.transform is not None:
            x, y = self.transform(x, y)
        return {"image": x, "label": y, "name": shown(self.image_paths[index].stem)}
