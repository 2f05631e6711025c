"""Unlabelled image folders and the BSDS500 layout.

Images are read with OpenCV in every format it knows (jpg, png, bmp, tif; grey, RGB, RGBA,
8- and 16-bit) and returned as float tensors in [0, 1].

Files are read as bytes by Python and decoded by ``cv2.imdecode``: OpenCV never sees a file name,
so a name that is not valid UTF-8 (which OpenCV's ``imread`` crashed on, signal 11) reads like any
other; messages show such names escaped (:func:`shown`). A file cut short (an interrupted copy or
download) is refused before decoding (:func:`truncation`), because libjpeg decodes a truncated
JPEG with a grey lower part and only a warning on stderr that OpenCV does not report back (with
opencv 5.0.0, ``imread`` returns that image while ``imdecode`` of the same bytes returns None: the
check makes the outcome, and its message, independent of the OpenCV build).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def shown(path) -> str:
    """A path as text that can always be printed or written: bytes that are not UTF-8 (a file name
    from another system) appear as ``\\xNN`` escapes instead of the lone surrogates Python keeps."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _jpeg_truncation(data: bytes) -> str | None:
    """Walk the header segments (by their lengths, so an EXIF thumbnail's own end marker is skipped)
    to the first scan; the end-of-image marker FF D9 must follow it. Inside scan data every FF byte
    is followed by 00 or a restart marker, so FF D9 there is the real end (ITU-T T.81, B.1.1)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not the layout expected: let the decoder judge
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xD9:
            return None
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
        elif marker == 0xDA:  # start of scan
            return None if data.find(b"\xff\xd9", pos) >= 0 else "no JPEG end-of-image marker (FF D9)"
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return "the JPEG header is cut short"


def _png_truncation(data: bytes) -> str | None:
    """Walk the chunks (length, type, data, CRC) to IEND, the chunk a PNG must end with."""
    pos = 8
    while pos + 8 <= len(data):
        if data[pos + 4 : pos + 8] == b"IEND":
            return None if pos + 12 <= len(data) else "the PNG IEND chunk is cut short"
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
    return "no PNG IEND chunk"


def truncation(data: bytes) -> str | None:
    """Why an encoded image is cut short, or None when it is complete or of a kind not checked.

    JPEG: no end-of-image marker after the first scan; PNG: no IEND chunk; BMP: shorter than its
    header's file size. Bytes after the end (some cameras append data) are allowed. Other formats
    (TIFF) are left to the decoder. Checking the structure costs one pass over the bytes already
    read, where decoding a second time with PIL (whose ``load()`` raises on truncation) would double
    the decoding time, and PIL's ``LOAD_TRUNCATED_IMAGES`` switch, a process-wide global any library
    may set, would turn the check off.
    """
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_truncation(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_truncation(data)
    if data[:2] == b"BM" and len(data) >= 6:
        size = int.from_bytes(data[2:6], "little")
        return f"{len(data)} of the {size} bytes its BMP header gives" if len(data) < size else None
    return None


def decode_file(path: str | Path, flags: int = cv2.IMREAD_UNCHANGED, what: str = "image") -> np.ndarray:
    """``cv2.imdecode`` of the file's bytes: OpenCV never gets the name (see the module doc).

    Raises:
        FileNotFoundError: the file is missing or OpenCV cannot decode it.
        ValueError: the file is truncated (:func:`truncation`) or cannot be read (permissions).
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot read {what} {shown(path)}: no such file") from None
    except OSError as e:
        raise ValueError(f"cannot read {what} {shown(path)}: {e.strerror or e}") from None
    cut = truncation(data)
    if cut is not None:
        raise ValueError(f"cannot read {what} {shown(path)}: it is truncated ({cut})")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if img is None:
        raise FileNotFoundError(f"cannot read {what} {shown(path)} (not an image OpenCV can decode)")
    return img


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image as float32 (H, W, channels) in [0, 1], RGB order.

    Grey images are replicated to 3 channels when ``channels=3``; colour images are converted
    to luminance when ``channels=1``; alpha is dropped; 16-bit images are scaled by 1/65535.
    """
    img = decode_file(path)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"{shown(path)}: unsupported image dtype {img.dtype}")
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
        raise ValueError(f"{shown(path)}: cannot convert {img.shape[2]} channels to {channels}")
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
        item = {"image": x, "name": shown(path.stem)}  # names become sample files and captions
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
