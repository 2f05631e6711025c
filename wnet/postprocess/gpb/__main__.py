"""Command line: gPb-owt-ucm of every image of a folder, cached per image and resumable.

    python -m wnet.postprocess.gpb IMAGES_DIR OUT_DIR [--workers N] [--save-gpb] [--watershed lines]
        [--textons image] [--eigensolver arpack] [--limit N]

Writes ``OUT_DIR/<id>.mat`` (key ``ucm2``), the per-image timings and their summary
(``timings.jsonl``, ``timings.json``); see :mod:`wnet.postprocess.gpb.batch`. Prints the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wnet.postprocess.gpb.batch import run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wnet.postprocess.gpb", description=__doc__.split("\n\n")[0])
    ap.add_argument("images_dir", help="folder of images (jpg, png, ...), searched recursively")
    ap.add_argument("out_dir", help="where <id>.mat (key ucm2) and the timings go")
    ap.add_argument("--workers", type=int, default=1, help="processes, one image each (default 1)")
    ap.add_argument("--save-gpb", action="store_true", help="also keep the oriented gPb as <id>.gpb.npz")
    ap.add_argument(
        "--watershed",
        choices=("cracks", "lines"),
        default="cracks",
        help="OWT-UCM layout: the project's crack watershed, or the original's 8-connected one with lines",
    )
    ap.add_argument(
        "--textons",
        default="bsds500-train",
        help="texton dictionary: bsds500-train (shipped), image (per image, as the original) or an .npz path",
    )
    ap.add_argument(
        "--eigensolver",
        choices=("multigrid", "arpack"),
        default="multigrid",
        help="sPb's eigensolver: coarse-to-fine LOBPCG (default) or ARPACK to convergence (about 4x slower)",
    )
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (name order)")
    args = ap.parse_args(argv)
    from wnet.datasets.images import list_images

    try:
        images = list_images(args.images_dir)[: args.limit]
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    from wnet.postprocess.gpb import GPbParams

    try:
        params = GPbParams(textons=args.textons, eigensolver=args.eigensolver)
    except ValueError as err:
        print(f"error: --textons: {err}", file=sys.stderr)
        return 2
    summary = run(images, Path(args.out_dir), args.workers, args.save_gpb, args.watershed, params)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
