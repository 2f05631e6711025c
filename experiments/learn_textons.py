"""Learn the texton dictionary of gPb on the BSDS500 train images (k-means, deterministic).

    python experiments/learn_textons.py --images DIR/BSDS500/images/train \\
        --out wnet/postprocess/gpb/textons_bsds500_train.npz

The filter bank is :func:`wnet.postprocess.gpb.textons.all_filters` (34 filters, the BSR release's
two scales); responses are taken as gPb takes them (mirrored 30 px border, grey level). From
every image, ``--per-image`` pixels are drawn with a seeded generator; k-means (K = 64, the
original's count) starts from k-means++ seeds and runs Lloyd iterations until no assignment
changes or ``--iters`` is reached. Only train images are read: no val or test image enters the
dictionary. The output keeps the settings and the image list's hash next to the textons.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from wnet.datasets.images import list_images, read_image
from wnet.postprocess.gpb import cues, textons


def sample_responses(files: list[Path], per_image: int, rng: np.random.Generator) -> np.ndarray:
    """``per_image`` random pixels' 34 responses from every image. Shape: (n_files * per_image, 34)."""
    out = []
    for f in files:
        grey = cues.grey_level(cues.mirror(cues.as_rgb(read_image(f))))
        r = textons.responses(grey, cues.BORDER).reshape(-1, len(textons.all_filters()))
        out.append(r[rng.choice(len(r), size=min(per_image, len(r)), replace=False)])
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="BSDS500 images/train folder")
    ap.add_argument("--out", default=str(textons.DICTIONARY))
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--per-image", type=int, default=2500)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        files = list_images(args.images)
    except FileNotFoundError as e:  # one line naming the folder, not a traceback
        raise SystemExit(f"learn_textons: error: {e}") from None
    if any(part in ("test", "val") for f in files for part in f.parts):
        raise SystemExit(f"{args.images}: only BSDS500 train images may be used for the dictionary")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    x = sample_responses(files, args.per_image, rng)
    centres = textons.kmeans(x, args.k, args.iters, rng)
    names = "\n".join(f.name for f in files).encode()
    meta = {
        "images": str(args.images), "n_images": len(files), "per_image": args.per_image,
        "k": args.k, "seed": args.seed, "max_iterations": args.iters, "n_samples": len(x),
        "image_list_sha256": hashlib.sha256(names).hexdigest(), "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    np.savez_compressed(args.out, textons=centres.astype(np.float32), meta=json.dumps(meta))
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
