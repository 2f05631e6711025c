"""gPb of an image, computed once: kept on disk under a key of the image's pixels and the settings.

gPb takes seconds to minutes per image and depends on the image alone, so every row built on it
(gpb-owt-ucm, W-Net + CRF + gPb, W-Net+ucm), every training seed and every rerun shares one
computation:

    orient = cached_gpb(image, GPbParams(), cache_dir)   # (H, W, 8) float32

The key covers the pixels (uint8 RGB), the :class:`GPbParams`, the source of the gPb package
and the texton dictionary, so a changed algorithm or constant never serves a stale map. Files
are written under a temporary name and renamed, so a killed process leaves none half-written.
Processes that need the same image at once (the seeds of one benchmark job, run side by side)
take turns on a lock file per image: one computes, the others wait and read its file. The lock
is ``flock``'s, which the kernel drops when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from wnet.postprocess.gpb import GPbParams, gpb
from wnet.postprocess.layouts import as_uint8_image

_SOURCES: str | None = None


def _source_digest() -> str:
    """A hash of the gPb package's code and data files (computed once per process)."""
    global _SOURCES
    if _SOURCES is None:
        h = hashlib.sha1()
        root = Path(__file__).parent
        for f in sorted([*root.glob("*.py"), *root.glob("*.c"), *root.glob("*.npz")]):
            h.update(f.name.encode() + f.read_bytes())
        _SOURCES = h.hexdigest()
    return _SOURCES


def gpb_key(image, params: GPbParams) -> str:
    """The cache key of ``image`` (any layout :func:`as_uint8_image` takes) under ``params``."""
    rgb = as_uint8_image(image)
    h = hashlib.sha1(rgb.tobytes() + repr(rgb.shape).encode() + repr(params).encode())
    h.update(_source_digest().encode())
    return h.hexdigest()[:24]


def cached_gpb(image, params: GPbParams | None = None, cache_dir: str | Path | None = None) -> np.ndarray:
    """The oriented gPb of ``image``, from ``cache_dir`` when it holds it, else computed (and
    stored there). ``cache_dir=None`` computes every time.

    Shape:
        image: (H, W, 3) uint8 or float in [0, 1]; returns (H, W, 8) float32 (the orientation
        convention of :mod:`wnet.postprocess.owt`).
    """
    params = params or GPbParams()
    rgb = as_uint8_image(image)
    if cache_dir is None:
        return gpb(rgb, params).orient.astype(np.float32)
    folder = Path(cache_dir)
    path = folder / f"gpb-{gpb_key(rgb, params)}.npy"
    stored = _load(path)
    if stored is not None:
        return stored
    with _turn(folder, path.stem):
        stored = _load(path)  # another process may have computed it while this one waited
        if stored is not None:
            return stored
        orient = gpb(rgb, params).orient.astype(np.float32)
        _store(folder, path, orient)
    return orient


def _load(path: Path) -> np.ndarray | None:
    try:
        return np.load(path) if path.is_file() else None
    except (OSError, ValueError):  # unreadable (a foreign or damaged file): computed again
        return None


@contextlib.contextmanager
def _turn(folder: Path, stem: str):
    """Hold the image's lock file (``flock``) while computing; without a writable folder, no lock."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f".{stem}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _store(folder: Path, path: Path, orient: np.ndarray) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".gpb-", suffix=".npy")
    except OSError:
        return  # a full or read-only cache only costs the next run a computation
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, orient)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
