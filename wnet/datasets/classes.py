"""Class names, colour palettes and class pixel frequencies of labelled datasets.

A class file (YAML or JSON) lists the classes in label order; see ``data/classes/*.yaml``::

    ignore_index: 11          # optional: the label that is not a class
    classes:
      - {name: Sky, color: [128, 128, 128]}     # label 0, RGB colour
      - {name: Building, color: [128, 0, 0]}    # label 1
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import yaml

CLASSES_DIR = Path(__file__).resolve().parent / "classes"


def _read_class_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file() and not path.suffix and (CLASSES_DIR / f"{path}.yaml").is_file():
        path = CLASSES_DIR / f"{path}.yaml"  # a bare name such as "camvid" means a shipped file
    if not path.is_file():
        raise FileNotFoundError(
            f"class file {path} does not exist (shipped: {sorted(shipped_class_files())})"
        )
    with open(path) as f:
        spec = json.load(f) if path.suffix.lower() == ".json" else yaml.safe_load(f)
    if not isinstance(spec, dict) or not isinstance(spec.get("classes"), list) or not spec["classes"]:
        raise ValueError(f"class file {path}: expected a mapping with a non-empty list under 'classes'")
    for i, entry in enumerate(spec["classes"]):
        if not isinstance(entry, dict) or "name" not in entry or "color" not in entry:
            raise ValueError(f"class file {path}: classes[{i}] must have 'name' and 'color', got {entry!r}")
        color = entry["color"]
        if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
            raise ValueError(
                f"class file {path}: classes[{i}].color must be 3 integers in 0..255, got {color!r}"
            )
    return spec


def shipped_class_files() -> dict[str, Path]:
    """The class files that come with the package, by name (``camvid``, ``isbi``, ``voc``)."""
    return {p.stem: p for p in CLASSES_DIR.glob("*.yaml")}


def load_classes(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a class file.

    Args:
        path: a YAML/JSON class file, or the bare name of a shipped one (``"camvid"``).

    Returns:
        ``(names, palette)``: C class names in label order, and the (C, 3) uint8 RGB palette.
    """
    spec = _read_class_file(path)
    names = [str(e["name"]) for e in spec["classes"]]
    palette = np.array([e["color"] for e in spec["classes"]], dtype=np.uint8)  # (C, 3)
    return names, palette


def load_ignore_index(path: str | Path) -> int | None:
    """The ``ignore_index`` a class file declares, or None."""
    value = _read_class_file(path).get("ignore_index")
    return None if value is None else int(value)


def class_frequencies(
    masks, num_classes: int, ignore_index: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts and frequencies of each class, for class-weighted losses.

    Args:
        masks: a dataset with ``iter_masks()`` (``PairedFolderDataset``, ``VOCSegmentation``:
            reads the label files only, no image is decoded), or any iterable of (H, W) label
            maps (NumPy / torch) or of dataset items with a ``"label"`` entry.
        num_classes: C.
        ignore_index: label left out of the counts.

    Returns:
        ``(counts, freqs)``: (C,) int64 pixel counts and (C,) float64 ``counts / counts.sum()``.

    Raises:
        ValueError: a label outside ``[0, C)`` other than ``ignore_index``.
    """
    source: Iterable = masks.iter_masks() if hasattr(masks, "iter_masks") else masks
    counts = np.zeros(num_classes, dtype=np.int64)
    for i, m in enumerate(source):
        if isinstance(m, dict):
            m = m["label"]
        m = m.cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
        m = m.reshape(-1).astype(np.int64)
        if ignore_index is not None:
            m = m[m != ignore_index]
        if m.size and (m.min() < 0 or m.max() >= num_classes):
            bad = m.min() if m.min() < 0 else m.max()
            raise ValueError(
                f"mask {i}: label {bad} outside [0, {num_classes - 1}] (ignore_index={ignore_index})"
            )
        counts += np.bincount(m, minlength=num_classes)
    total = counts.sum()
    freqs = counts / total if total > 0 else np.zeros(num_classes)
    return counts, freqs
