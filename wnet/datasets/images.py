"""Unlabelled image folders and the BSDS500 layout.

Images are read with OpenCV in every format it knows (jpg, png, bmp, tif; grey, RGB, RGBA,
8- and 16-bit) and returned as float tensors in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image as float32 (H, W, channels) in [0, 1], RGB order.

    Grey images are replicated to 3 channels when ``channels=3``; colour images are converted
    to luminance when ``channels=1``; alpha is dropped; 16-bit images are scaled by 1/65535.
    """
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path} (missing or not an image OpenCV can decode)")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"{path}: unsupported image dtype {img.dtype}")
    img = img.astype(np.float32) / scale
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 4:
        img = img[..., :3]
    if img.shape[2] == 3:
        img = img[..., ::-1]  # BGR -> RGB
    if channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif channels == 1 and img.shape[2] == 3:
        img = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]  # ITU-R BT.601 luma
    elif img.shape[2] != channels:
        raise ValueError(f"{path}: cannot convert {img.shape[2]} channels to {channels}")
    return np.ascontiguousarray(img)


def list_images(root: str | Path) -> list[Path]:
    """All images under ``root``, recursively, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) found under {root}")
    return files


class ImageFolder(Dataset):
    """Unlabelled images from a list of files (or a folder, recursively).

    Returns ``{"image": (C, H, W) float in [0, 1], "name": str}`` (plus ``"gt"``: a ground-truth
    path string when ``gt_paths`` is given).
    """

    def __init__(self, files, channels: int = 3, transform=None, gt_paths=None):
        self.files = list_images(files) if isinstance(files, (str, Path)) else [Path(f) for f in files]
        if not self.files:
            raise FileNotFoundError("ImageFolder: empty file list")
        self.channels, self.transform, self.gt_paths = channels, transform, gt_paths

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        x = torch.from_numpy(read_image(path, self.channels)).permute(2, 0, 1)  # (C, H, W)
        if self.transform is not None:
            x = self.transform(x)  # an image-only call of a wnet.datasets.transforms pipeline
        item = {"image": x, "name": path.stem}
        if self.gt_paths is not None:
            item["gt"] = str(self.gt_paths[index])
        return item


def bsds_files(root: str | Path, split: str) -> tuple[list[Path], list[Path]]:
    """Images and ground-truth ``.mat`` files of one BSDS500 split (official layout).

    ``root`` holds ``images/{train,val,test}/*.jpg`` and ``groundTruth/{train,val,test}/*.mat``
    (``root`` may also be the ``BSDS500/data`` folder of the official archive).
    """
    root = Path(root)
    if not (root / "images").is_dir() and (root / "data" / "images").is_dir():
        root = root / "data"
    img_dir, gt_dir = root / "images" / split, root / "groundTruth" / split
    if not img_dir.is_dir():
        raise FileNotFoundError(
            f"BSDS500 split '{split}' not found: expected {img_dir} (layout images/{{train,val,test}}/*.jpg)"
        )
    images = sorted(img_dir.glob("*.jpg"))
    if not images:
        raise FileNotFoundError(f"no .jpg images in {img_dir}")
    gts = [gt_dir / f"{p.stem}.mat" for p in images]
    missing = [str(g) for g in gts if not g.is_file()]
    if missing:
        raise FileNotFoundError(f"BSDS500: {len(missing)} images have no ground truth, e.g. {missing[0]}")
    return images, gts
