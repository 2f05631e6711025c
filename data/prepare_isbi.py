"""Turn the ISBI 2012 challenge's TIFF stacks into the image/ + label/ PNG folders the loader reads.

    python data/prepare_isbi.py --volume train-volume.tif --labels train-labels.tif --out isbi2012

The challenge ships the 30 training slices as one multi-page TIFF (``train-volume.tif``, 8-bit
grey) and their membrane labels as another (``train-labels.tif``, 0 = membrane, 255 = cell).
Slice i becomes ``OUT/image/i.png`` and ``OUT/label/i.png``; the loader then reads them with
``data.image_dir=image data.mask_dir=label data.binary_255=true`` (see data/README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def read_stack(path: str | Path) -> list[np.ndarray]:
    """The pages of a multi-page TIFF as 2-D uint8 arrays; a clear error for anything else."""
    ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
    if not ok or not pages:
        raise SystemExit(f"error: cannot read {path} as a TIFF stack")
    for i, p in enumerate(pages):
        if p.ndim != 2 or p.dtype != np.uint8:
            raise SystemExit(f"error: {path} page {i} is {p.dtype} {p.shape}; expected 8-bit grey slices")
    return list(pages)


def prepare(volume: str | Path, labels: str | Path, out: str | Path) -> int:
    """Write the slices; returns their number. Labels must hold only 0 and 255, sized as their slice."""
    images, masks = read_stack(volume), read_stack(labels)
    if len(images) != len(masks):
        raise SystemExit(f"error: {volume} has {len(images)} slices but {labels} has {len(masks)}")
    out = Path(out)
    (out / "image").mkdir(parents=True, exist_ok=True)
    (out / "label").mkdir(parents=True, exist_ok=True)
    for i, (img, mask) in enumerate(zip(images, masks, strict=True)):
        if img.shape != mask.shape:
            raise SystemExit(f"error: slice {i}: image {img.shape} and label {mask.shape} differ in size")
        bad = np.setdiff1d(np.unique(mask), [0, 255])
        if bad.size:
            raise SystemExit(f"error: {labels} slice {i} has label value {bad[0]}; expected only 0 and 255")
        cv2.imwrite(str(out / "image" / f"{i}.png"), img)
        cv2.imwrite(str(out / "label" / f"{i}.png"), mask)
    return len(images)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volume", required=True, help="train-volume.tif (multi-page, 8-bit grey)")
    ap.add_argument("--labels", required=True, help="train-labels.tif (multi-page, 0/255)")
    ap.add_argument("--out", required=True, help="output folder (gets image/ and label/)")
    args = ap.parse_args(argv)
    n = prepare(args.volume, args.labels, args.out)
    print(f"wrote {n} slices to {Path(args.out) / 'image'} and {Path(args.out) / 'label'}")


if __name__ == "__main__":
    main()
